from collections.abc import Callable, Iterable
from typing import Any, TypeVar

_H = TypeVar("_H")

def hits(groups: Iterable[list[tuple[int, int, int, int, str]]], fields: tuple[Any, Any],
         kinds: list[str], terms: list[str], weights: list[float], hit_type: type[_H],
         labels: tuple[str, str], /) -> tuple[tuple[_H, ...], _H | None]: ...
def snippet(body: str, offset: int, length: int, chars: int, /) -> str: ...
def matches(per_list: dict[int, dict[int, list[tuple[int, int, int, int, str]]]],
            fields: tuple[Any, Any], plan: tuple[Any, ...],
            other: Callable[[int, dict[int, list[tuple[int, int, int, int, str]]]], Any], /
            ) -> list[Any]: ...
