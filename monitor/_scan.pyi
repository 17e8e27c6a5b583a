class Scanner:
    def __init__(self, keys: list[str], flags: bytes, common: list[int],
                 plain: list[tuple[tuple[int, str], ...]],
                 lam_only: list[tuple[tuple[int, str], ...]], natoms: int,
                 proclitics: tuple[str, ...], lam_proclitics: frozenset[str]) -> None: ...
    def scan(self, text: str, body_at: int, cap: int, /) -> list[tuple[int, int, int, int, str]]:
        ...
