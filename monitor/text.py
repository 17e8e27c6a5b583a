"""Unicode folding shared by every stage that compares text: one normalisation for terms and text.

Rules, in order, per character: NFKC; case folding; Latin/Greek/Cyrillic accents removed
(Erdoğan = Erdogan); Arabic folding (أ إ آ ٱ -> ا, ة -> ه, ى -> ي, harakat and tatweel
removed); format characters (ZWNJ, soft hyphen) removed; every run of white space becomes
one space. The same function folds watchlist terms and article text, so both sides agree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cached_property

_ARABIC_LETTERS = {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي"}
_SPACES = re.compile(" {2,}")


def _is_dropped_mark(ch: str) -> bool:
    """Accents and harakat whose presence varies by writer; other scripts' marks carry meaning."""
    code = ord(ch)
    return (
        0x0300 <= code <= 0x036F
        or 0x0610 <= code <= 0x061A
        or 0x064B <= code <= 0x065F
        or code == 0x0670
        or 0x06D6 <= code <= 0x06ED
    )


def _fold_char(ch: str) -> str:
    if ch.isspace():
        return " "
    if unicodedata.category(ch) == "Cf" or ch == "\u0640":  # format chars, tatweel
        return ""
    folded = unicodedata.normalize("NFKC", ch).casefold()
    decomposed = unicodedata.normalize("NFD", folded)
    kept = "".join(c for c in decomposed if not _is_dropped_mark(c))
    kept = unicodedata.normalize("NFC", kept)
    return "".join(_ARABIC_LETTERS.get(c, c) for c in kept)


class _FoldTable(dict[int, str]):
    """A lazily filled str.translate table: each code point is folded once per process."""

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        self[code] = folded
        return folded


_TABLE = _FoldTable()


def fold(text: str) -> str:
    """The normalised form of `text` (see the module docstring)."""
    return _SPACES.sub(" ", text.translate(_TABLE))


class Folded:
    """A text with its folded form; maps folded offsets back to the original on demand.

    The map costs a Python loop over the text, so it is built only when a caller asks for
    the original of a hit, which most texts never have.
    """

    __slots__ = ("original", "folded", "__dict__")

    def __init__(self, original: str) -> None:
        self.original = original
        self.folded = fold(original)

    @cached_property
    def _origin(self) -> list[int]:
        origin: list[int] = []
        last_space = False
        for i, ch in enumerate(self.original):
            for out in _TABLE[ord(ch)]:
                if out == " " and last_space:
                    continue
                last_space = out == " "
                origin.append(i)
        origin.append(len(self.original))
        return origin

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original [start, end) of the folded [start, end)."""
        origin = self._origin
        # origin[end] is where the next kept character starts, so trailing harakat or
        # tatweel that folding dropped stay part of the match (صدّ, not صد).
        return origin[start], origin[end]

    def original_text(self, start: int, end: int) -> str:
        a, b = self.span(start, end)
        return self.original[a:b]


def is_word_char(ch: str) -> bool:
    return ch.isalnum() or unicodedata.category(ch)[0] == "M"


def is_unspaced(ch: str) -> bool:
    """Scripts written without spaces between words: every character can start a word."""
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # Hiragana, Katakana
        or 0x3400 <= code <= 0x4DBF
        or 0x4E00 <= code <= 0x9FFF  # CJK ideographs
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x2FA1F
        or 0x0E00 <= code <= 0x0EFF  # Thai, Lao
        or 0x1000 <= code <= 0x109F  # Myanmar
        or 0x1780 <= code <= 0x17FF  # Khmer
    )


def is_arabic(ch: str) -> bool:
    code = ord(ch)
    return 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0x08A0 <= code <= 0x08FF
