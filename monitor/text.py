"""Unicode folding shared by every stage that compares text: one normalisation for terms and text.

Rules, in order, per character: NFKC; case folding; Latin/Greek/Cyrillic accents removed
(Erdoğan = Erdogan), and so are Turkish ı and İ (i) and œ æ ø ł đ (oe ae o l d); Arabic
folding (أ إ آ ٱ -> ا, ة -> ه, ى -> ي, harakat and tatweel removed); every decimal
digit (Unicode Nd: ٠-٩, ۰-۹, ०-९) is its ASCII digit; format characters (ZWNJ, soft
hyphen) removed; white space and punctuation become a space, except `+ # & @`, which
belong to names such as C++ or AT&T. Letters, digits and the marks of other scripts stay.
A character that folds to several never starts or ends with a space, nor holds two
together (… is one space, ⑴ is 1).

The matcher's text (`fold_mapped`, `Folded`) is the same, character for character, but
that the first separator of a run between two words that ends a sentence is \x1e, and
of one that ends a block \x1d: a phrase runs across any other run of separators
(commas, hyphens, apostrophes, quotes, abbreviation dots, spaces), never across these
(`term_keys` says where a term may: where it has a stop of its own). A run is:
1. a block end when it holds two line breaks, or one that is not followed by a lowercase
   word and stands with no comma-like mark (, ; : ، ؛ 、) beside it;
2. else a sentence end when it holds `. … ! ? ؟ 。` (or another script's full stop),
   the last of them followed in the run by no comma-like mark and, for a dot, by white
   space, unless the next word starts with a lowercase letter, or the run holds only
   dots and the word before it is a single letter (D.C., U.S., J. Smith) or a known
   abbreviation (St., Mr., Gen.; data/abbreviations.txt);
3. else words of one sentence.

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
from importlib import resources

from monitor import speedups

_ARABIC_LETTERS = {"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ة": "ه", "ى": "ي"}
# Latin letters that are an accented or joined letter to their writers but that Unicode
# does not decompose: Turkish dotless i (İ is i with a dot above, dropped as an accent),
# œuvre = oeuvre, Łódź = Lodz, Søren = Soren, Đoković = Dokovic.
_LATIN_LETTERS = {"ı": "i", "œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d"}
KEPT_SYMBOLS = frozenset("+#&@")

# What separators mean in the matcher's text (rules 1-3 of the module docstring), by class.
DOTS = ".…．‥"  # end a sentence only before white space, and not after an abbreviation
STOPS = "!?؟。｡！？‼⁇⁈⁉‽۔।॥።။"  # the other full stops
COMMAS = ",;:،؛、，；：﹐﹑﹔﹕"  # go on with the sentence
_DOT, _STOP, _COMMA, _LINE, _PARAGRAPH, _RETURN = range(1, 7)
SEPARATOR_CLASSES = {
    **{ord(c): _DOT for c in DOTS}, **{ord(c): _STOP for c in STOPS},
    **{ord(c): _COMMA for c in COMMAS}, **{ord(c): _LINE for c in "\n\x0b\x0c\x85\u2028"},
    ord("\u2029"): _PARAGRAPH, ord("\r"): _RETURN,  # \r\n is one line break
}
# What separates two words in the matcher's text: one sentence, a sentence end, a block
# end (run_spaces' answers); and the characters that mark the two ends there: white
# space to str.split and to regular expressions, never in a folded term.
WORDS_BETWEEN, SENTENCE_END, BLOCK_END = 1, 2, 3
SENTENCE_MARK, BLOCK_MARK = "\x1e", "\x1d"
ABBREVIATION_CHARS = 6  # the longest abbreviation looked up


def _abbreviations() -> frozenset[str]:
    text = resources.files("monitor").joinpath("data/abbreviations.txt").read_text("utf-8")
    words = (word for line in text.splitlines() if not line.startswith("#")
             for word in line.split())
    return frozenset(folded for word in words
                     if 0 < len(folded := " ".join(fold_translate(word).split()))
                     <= ABBREVIATION_CHARS)


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
        c = _ARABIC_LETTERS.get(c) or _LATIN_LETTERS.get(c, c)
        if c.isdecimal():  # every decimal digit (٥ ۵ ५) is its ASCII digit
            c = str(unicodedata.decimal(c))
        word = c.isalnum() or unicodedata.category(c)[0] == "M" or c in KEPT_SYMBOLS
        out.append(c if word else " ")
    folded = "".join(out)
    if " " in folded and len(folded) > 1:  # … is one space; ⑴ is 1, not " 1 "
        folded = " ".join(folded.split()) or " "
    return folded


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


def run_spaces(run: str, following: str, before: str | None) -> int:
    """What a run of separators is in the matcher's text (rules 1-3 of the module
    docstring: WORDS_BETWEEN, SENTENCE_END or BLOCK_END): `run`, the original characters
    from its first separator to the next word (what folds to nothing among them
    included), `following`, the character that starts the next word ('' at the end of
    the text), and `before`, the folded word before it (None when longer than
    ABBREVIATION_CHARS). The definition of monitor/_fold.c's."""
    lines = last = 0
    strong = comma = comma_after = space_after = False
    for i, ch in enumerate(run):
        kind = SEPARATOR_CLASSES.get(ord(ch), 0)
        if kind == _DOT or kind == _STOP:
            last, comma_after, space_after = kind, False, False
            strong = strong or kind == _STOP
        elif kind == _COMMA:
            comma = comma_after = True
        elif kind == _LINE:
            lines += 1
        elif kind == _PARAGRAPH:
            lines += 2
        elif kind == _RETURN:
            lines += (run[i + 1] if i + 1 < len(run) else following) != "\n"
        if ch.isspace():
            space_after = True
    lower = following.islower()
    if lines >= 2 or (lines and not lower and not comma):
        return BLOCK_END
    if not last or comma_after or (last == _DOT and not space_after) or lower:
        return WORDS_BETWEEN
    if not strong and before is not None and (
            (len(before) == 1 and before.isalpha()) or before in ABBREVIATIONS):
        return WORDS_BETWEEN
    return SENTENCE_END


# The separators that can end a sentence or a block (not the commas).
_ENDS = re.compile("[" + re.escape("".join(
    chr(c) for c, kind in SEPARATOR_CLASSES.items() if kind != _COMMA)) + "]")
_MARKS = {SENTENCE_END: SENTENCE_MARK, BLOCK_END: BLOCK_MARK}


class _Lengths:
    """Where folding changes a text's length, by original offset, and the maps between the
    original and the folded text that follow from it."""

    def __init__(self, lengths: dict[int, int]) -> None:
        self.positions = sorted(lengths)
        self.lengths = lengths
        self.starts: list[int] = []
        self.after: list[int] = []
        shift = 0
        for position in self.positions:
            self.starts.append(position + shift)
            shift += lengths[position] - 1
            self.after.append(shift)

    def folded(self, i: int) -> int:
        """The folded offset of the original character i."""
        k = bisect_right(self.positions, i - 1) - 1
        return i + (self.after[k] if k >= 0 else 0)

    def producer(self, j: int) -> int:
        """The original character the folded character j comes from."""
        k = bisect_right(self.starts, j) - 1
        if k < 0:
            return j
        if j < self.starts[k] + self.lengths[self.positions[k]]:
            return self.positions[k]
        return j - self.after[k]

    def rows(self) -> bytes | None:
        rows = array("q")
        for start, position, after in zip(self.starts, self.positions, self.after, strict=True):
            rows.extend((start, position, self.lengths[position], after))
        return rows.tobytes() if rows else None


def _word_before(folded: str, at: int) -> str | None:
    """The folded word that ends at `at`, or None when it is longer than
    ABBREVIATION_CHARS (monitor/_fold.c looks back as far)."""
    low = max(0, at - ABBREVIATION_CHARS - 1)
    space = folded.rfind(" ", low, at)
    if space >= 0:
        return folded[space + 1:at]
    return folded[low:at] if low == 0 else None


def fold_mapped_translate(text: str) -> tuple[str, bytes | None]:
    """The matcher's text of `text`: `fold_translate(text)`, with the first separator of each
    run that ends a sentence made SENTENCE_MARK and of each that ends a block BLOCK_MARK
    (the module docstring); and where it differs from the original in length (see
    Folded.shifts): `fold_mapped` where the C extension is missing. Only runs that hold
    a stop or a line break can end anything; the others are left as they are."""
    folded = fold_translate(text)
    pattern = _TABLE.irregular_pattern()  # every character of text has been seen
    maps = _Lengths({found.start(): len(_TABLE[ord(found.group())])
                     for found in pattern.finditer(text)} if pattern is not None else {})
    chars = None
    done = 0  # where the last run read ends
    for found in _ENDS.finditer(text):
        a = maps.folded(found.start())
        if a < done or _TABLE[ord(found.group())] != " ":
            continue
        b = a + 1
        while a > done and folded[a - 1] == " ":
            a -= 1
        while b < len(folded) and folded[b] == " ":
            b += 1
        done = b
        x, z = maps.producer(a), maps.producer(b) if b < len(folded) else len(text)
        spaces = run_spaces(text[x:z], text[z] if z < len(text) else "", _word_before(folded, a))
        if spaces != WORDS_BETWEEN:
            chars = list(folded) if chars is None else chars
            chars[a] = _MARKS[spaces]
    return "".join(chars) if chars is not None else folded, maps.rows()


def fold_term_translate(term: str) -> tuple[str, bool]:
    """`fold_term(term)`, and whether the term holds a stop (DOTS or STOPS): the matcher's
    build asks both of every term. `fold_term_stop` where the C extension is missing."""
    return " ".join(fold(term).split()), STOP_CHARACTER.search(term) is not None


ABBREVIATIONS = _abbreviations()

fold: Callable[[str], str]
fold_mapped: Callable[[str], tuple[str, bytes | None]]
fold_term_stop: Callable[[str], tuple[str, bool]]
# The same translation at C speed, where the extension was built and MONITOR_SPEEDUPS
# allows it (monitor.speedups).
_c_fold_module = speedups.load("monitor._fold")
if _c_fold_module is None:
    fold, fold_mapped = fold_translate, fold_mapped_translate
    fold_term_stop = fold_term_translate
else:
    _c_fold_module.init(_TABLE, SEPARATOR_CLASSES, ABBREVIATIONS, ABBREVIATION_CHARS)
    fold, fold_mapped = _c_fold_module.fold, _c_fold_module.fold_mapped
    fold_term_stop = _c_fold_module.fold_term


def fold_term(term: str) -> str:
    """A watchlist term folded, with its words separated by exactly one space."""
    return fold_term_stop(term)[0]



def same_case(term: str, text: str) -> bool:
    """Whether the cased letters of `text` are those of `term` in case, one for one
    (`case: sensitive`): "UN" is "UN" and "U.N.", not "Un" nor "un". A term without
    cased letters (Arabic) is in the case of any text."""
    return _cases(term) == _cases(text)


def _cases(text: str) -> str:
    return "".join("A" if c.isupper() else "a" for c in text if c.isupper() or c.islower())


MAX_OWN_STOPS = 4  # a term's own stops that it may run across: 2 ** 4 keys at most
STOP_CHARACTER = re.compile(f"[{re.escape(STOPS + DOTS)}]")  # a quick first look
_OWN_STOP = re.compile(f"[{re.escape(STOPS)}]|[{re.escape(DOTS)}]\\S*\\s")


def term_keys(term: str, key: str | None = None) -> list[str]:
    """`fold_term(term)`, then the same with a sentence end (" \x1e ") at some of the
    places where the term itself has a full stop between two words (a dot followed by
    white space, after a quote or a bracket maybe, or ! ? ؟ 。: "Acme Inc. Board",
    "Yahoo! News", 'said." The'): there the term
    runs across a sentence end, as its writer read the stop as part of it. At most
    MAX_OWN_STOPS such places; the rest stay one space. `key`: fold_term(term), if known."""
    key = fold_term(term) if key is None else key
    if not STOP_CHARACTER.search(term) or not _OWN_STOP.search(term):
        return [key] if key else []
    folded = Folded(term)
    words = list(re.finditer(r"\S+", folded.folded))
    places = [i for i, (left, right) in enumerate(zip(words, words[1:], strict=False))
              if _OWN_STOP.search(term[folded.span(left.start(), left.end())[1]:
                                       folded.span(right.start(), right.end())[0]])]
    places = places[:MAX_OWN_STOPS]
    keys = [key]
    parts = key.split(" ")
    for chosen in range(1, 2 ** len(places)):
        doubled = {place for bit, place in enumerate(places) if chosen >> bit & 1}
        keys.append("".join(part + (f" {SENTENCE_MARK} " if i in doubled else " ")
                            for i, part in enumerate(parts[:-1])) + parts[-1])
    return keys


class Folded:
    """A text with its folded form; maps folded offsets back to the original.

    `folded` is the matcher's text (`fold_mapped`: sentence and block ends marked).
    `shifts`: per character that folds to other than one character, in text order, four
    native long longs: its folded offset, its offset in the original, the length it
    folds to, and the folded text's shift (folded minus original length) after it; None
    when every character folds to exactly one. Made in the same pass as the fold.
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
        if j < start + length:  # at or inside an expansion such as ß -> ss
            return position + (1 if end and j > start else 0)
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


_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str) -> str:
    """`text` without control characters, with any lone surrogate as U+FFFD."""
    if not text.isprintable() and _CONTROLS.search(text):  # isprintable: 2x faster
        text = _CONTROLS.sub("", text)
    try:
        text.encode()  # 5x faster than searching for surrogates
    except UnicodeEncodeError:
        text = _SURROGATES.sub("\ufffd", text)
    return text


# Rule 1: labels whose documents are read with a superset, as browsers read them (feeds and
# pages alike).
SUPERSETS = {
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis",
                     "windows-31j"), "cp932"),
    **dict.fromkeys(("euc-kr", "euc_kr", "ks_c_5601-1987", "csksc56011987", "korean"),
                    "cp949"),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "csgb2312", "chinese", "gb_2312-80"),
                    "gb18030"),
    **dict.fromkeys(("big5", "csbig5", "x-x-big5", "big5-hkscs"), "big5hkscs"),
}
