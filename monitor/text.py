"""Unicode folding shared by every stage that compares text: one normalisation for terms and text.

Rules, in order, per character: NFKC; case folding; Latin/Greek/Cyrillic accents removed
(Erdoğan = Erdogan); Arabic folding (أ إ آ ٱ -> ا, ة -> ه, ى -> ي, harakat and tatweel
removed); format characters (ZWNJ, soft hyphen) removed; white space and punctuation
become a space, except `+ # & @`, which belong to names such as C++ or AT&T. Letters,
digits and the marks of other scripts stay.

Folding is one translation over a table filled lazily, one entry per code point ever
seen: by the C extension monitor._fold where it was built (about 1 GB/s), else by
str.translate (about 30 MB/s on non-ASCII text). Almost every character folds to exactly
one character; the few that do not (harakat, tatweel, ß -> ss, ligatures) are tracked,
in the same pass, so a folded offset maps back to the original text by bisection.
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from bisect import bisect_right
from collections.abc import Callable

_ARABIC_LETTERS = {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي"}
KEPT_SYMBOLS = frozenset("+#&@")


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
    kept = unicodedata.normalize("NFC", "".join(c for c in decomposed if not _is_dropped_mark(c)))
    out = []
    for c in kept:
        c = _ARABIC_LETTERS.get(c, c)
        word = c.isalnum() or unicodedata.category(c)[0] == "M" or c in KEPT_SYMBOLS
        out.append(c if word else " ")
    return "".join(out)


class _FoldTable(dict[int, str]):
    """A lazily filled str.translate table that also knows which entries change length."""

    def __init__(self) -> None:
        super().__init__()
        self.irregular: set[int] = set()
        self._pattern: re.Pattern[str] | None = None

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        self[code] = folded
        if len(folded) != 1:
            self.irregular.add(code)
            self._pattern = None
        return folded

    def irregular_pattern(self) -> re.Pattern[str] | None:
        if self._pattern is None and self.irregular:
            chars = "".join(re.escape(chr(c)) for c in sorted(self.irregular))
            self._pattern = re.compile(f"[{chars}]")
        return self._pattern


_TABLE = _FoldTable()


_NON_ASCII_RUN = re.compile(r"([^\x00-\x7f]+)")


def fold_translate(text: str) -> str:
    """The folded form of `text`, character for character (see the module docstring), by
    str.translate: `fold` where the C extension is missing.

    CPython translates an all-ASCII string at C speed but a string with one accent one
    code point at a time, so mostly-ASCII text is folded in runs; the result is the same.
    """
    if text.isascii():
        return text.translate(_TABLE)
    if len(text.encode("utf-8", "surrogatepass")) - len(text) > len(text) // 8:
        return text.translate(_TABLE)  # mostly non-ASCII (Arabic, CJK): one pass is best
    return "".join([piece.translate(_TABLE) for piece in _NON_ASCII_RUN.split(text)])


def fold_mapped_translate(text: str) -> tuple[str, bytes | None]:
    """`fold_translate(text)` and where folding changed its length (see Folded.shifts):
    `fold_mapped` where the C extension is missing."""
    folded = fold_translate(text)
    pattern = _TABLE.irregular_pattern()  # every character of text has been seen
    if pattern is None:
        return folded, None
    rows = array("q")
    shift = 0
    for found in pattern.finditer(text):
        position = found.start()
        length = len(_TABLE[ord(found.group())])
        rows.append(position + shift)
        shift += length - 1
        rows.extend((position, length, shift))
    return folded, rows.tobytes() if rows else None


fold: Callable[[str], str]
fold_mapped: Callable[[str], tuple[str, bytes | None]]
try:  # the same translation at C speed, where the extension was built (setup.py)
    from monitor._fold import fold as _c_fold
    from monitor._fold import fold_mapped as _c_fold_mapped
    from monitor._fold import init as _c_init
except ImportError:  # pragma: no cover - installs without a C compiler
    fold, fold_mapped = fold_translate, fold_mapped_translate
    C_FOLD = False
else:
    _c_init(_TABLE)
    fold, fold_mapped = _c_fold, _c_fold_mapped
    C_FOLD = True


def fold_term(term: str) -> str:
    """A watchlist term folded, with its words separated by exactly one space."""
    return " ".join(fold(term).split())


class Folded:
    """A text with its folded form; maps folded offsets back to the original.

    `shifts`: per character that folds to other than one character, in text order, four
    native long longs: its folded offset, its offset in the original, the length it folds
    to, and the folded text's shift (folded minus original length) after it; None when
    every character folds to exactly one. Made in the same pass as the fold.
    """

    __slots__ = ("original", "folded", "shifts")

    def __init__(self, original: str) -> None:
        self.original = original
        self.folded, self.shifts = fold_mapped(original)

    def _original(self, rows: memoryview, j: int, end: bool) -> int:
        k = bisect_right(rows[0::4], j) - 1
        if k < 0:
            return j
        start, position, length, after = rows[4 * k:4 * k + 4]
        if j < start + length:  # inside an expansion such as ß -> ss
            return position + (1 if end else 0)
        return j - after

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original [a, b) of the folded [start, end); b takes in trailing harakat (صدّ)."""
        if self.shifts is None:  # every character folded to exactly one
            return start, end
        rows = memoryview(self.shifts).cast("q")
        return self._original(rows, start, False), self._original(rows, end, True)

    def original_text(self, start: int, end: int) -> str:
        a, b = self.span(start, end)
        return self.original[a:b]


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


# A byte that is not UTF-8, escaped by the "surrogateescape" decoding, and what it is in
# Windows-1252 (U+FFFD for the five bytes that code page leaves undefined).
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_NON_ASCII = re.compile("[^\x00-\x7f]")
_WINDOWS_1252 = {chr(0xDC00 + b): bytes([b]).decode("cp1252", errors="replace")
                 for b in range(0x80, 0x100)}


def mostly_utf8(data: bytes) -> tuple[str, int] | None:
    """`data` decoded as UTF-8 when it is UTF-8 but for a few stray bytes (pasted from a
    Windows editor, or a database that mixed encodings: "5\x80" for "5€"), each such byte
    read as Windows-1252, with their count; None when fewer than four in five of its
    non-ASCII characters are valid UTF-8 (it is in another encoding, mislabelled).
    Decoders that give up on such a document read all of it in a fallback codepage, so
    its every accented or Arabic letter came out garbled. Valid UTF-8: its text, 0."""
    try:
        return data.decode("utf-8"), 0  # the common case, without the scans below
    except UnicodeDecodeError:
        pass
    text = data.decode("utf-8", errors="surrogateescape")
    stray = sum(1 for _ in _ESCAPED_BYTE.finditer(text))
    valid = sum(1 for _ in _NON_ASCII.finditer(text)) - stray
    if valid < 4 * stray:
        return None
    return _ESCAPED_BYTE.sub(lambda m: _WINDOWS_1252[m.group()], text), stray
