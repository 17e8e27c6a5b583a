"""The boilerplate phrases of `data/boilerplate.yaml`, folded: notices that are dropped
with their block, advertisement labels, and headings that introduce link lists."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources

import ahocorasick_rs
import yaml

from monitor.text import fold

NOTICE_MAX_CHARS = 300
HEADING_MAX_CHARS = 80
LABEL_MAX_CHARS = 200  # a label and the link beside it


@dataclass(frozen=True)
class Boilerplate:
    """Folded phrases: notices to drop, advertisement labels, and headings that introduce
    link lists."""

    notices: tuple[str, ...]
    more_from: tuple[str, ...]
    labels: frozenset[str] = frozenset()
    ends: tuple[str, ...] = ()

    def is_notice(self, folded: str) -> bool:
        """A short block that starts with a notice ("We use cookies ...")."""
        return len(folded) <= NOTICE_MAX_CHARS and folded.startswith(self.notices)

    def is_label(self, folded: str, unlinked: str | None = None) -> bool:
        """A block that is only an advertisement label, or the label and a link
        (`unlinked`: its folded text outside links). "إعلان القاهرة" (the Cairo
        Declaration) starts with one and is news."""
        bare = " ".join((folded if unlinked is None else unlinked).split())
        return bare in self.labels

    def is_end(self, folded: str) -> bool:
        """A heading that usually comes after the article ("About the author")."""
        return len(folded) <= HEADING_MAX_CHARS and folded.startswith(self.ends)

    def is_more_from(self, folded: str) -> bool:
        return len(folded) <= HEADING_MAX_CHARS and folded.startswith(self.more_from)

    def mentions(self, folded: str) -> bool:
        """Whether a notice, a label or a heading occurs anywhere in `folded`: one
        automaton pass, where searching for each phrase in turn costs about twice as much."""
        return self._automaton is None or bool(self._automaton.find_matches_as_indexes(folded))

    @cached_property
    def _automaton(self) -> ahocorasick_rs.AhoCorasick | None:
        """None when a phrase is empty: that one starts every text."""
        phrases = [*self.notices, *self.more_from, *self.labels]
        return ahocorasick_rs.AhoCorasick(phrases) if all(phrases) else None


def _folded(phrases: list[str]) -> tuple[str, ...]:
    return tuple(fold(p).strip() for p in phrases)


@lru_cache(maxsize=1)
def default_boilerplate() -> Boilerplate:
    raw = yaml.safe_load(
        resources.files("monitor.extract").joinpath("data/boilerplate.yaml").read_text("utf-8"))
    return Boilerplate(notices=_folded(raw["notices"]), more_from=_folded(raw["more_from"]),
                       labels=frozenset(" ".join(fold(p).split()) for p in raw.get("labels", [])),
                       ends=_folded(raw.get("ends", [])))
