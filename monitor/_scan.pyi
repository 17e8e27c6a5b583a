_Hit = tuple[int, int, int, int, str]

class Scanner:
    def __init__(self, keys: list[str], plain: list[tuple[tuple[int, str], ...]],
                 lam_only: list[tuple[tuple[int, str], ...]], proclitics: tuple[str, ...],
                 lam_proclitics: frozenset[str], common_words: frozenset[str],
                 list_of: list[int], title_points: list[float], body_points: list[float],
                 thresholds: list[float]) -> None: ...
    def scan(self, text: str, body_at: int, cap: int, /) -> list[_Hit]: ...
    def lists(self, text: str, body_at: int, cap: int, quick: bool, /
              ) -> dict[int, dict[int, list[_Hit]]]: ...
