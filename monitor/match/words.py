"""Where a watchlist term may start in folded text: word boundaries, Arabic proclitics.

Rules, in order (monitor.match rule 3):
1. A term starts a word: at the start of the text or after a space (the automaton reads
   the matcher's text with each run of separators one space, or a sentence or block
   mark between spaces: monitor.match._collapsed); `#` and `@` before it count as
   nothing (#Libya, @Haftar).
2. An Arabic term may carry proclitics: و ف ب ك ل ال and their combinations (بسرت is
   سرت); a term starting with ال also matches after لل (للسراج is السراج).
3. For a term of three letters or fewer, a proclitic reading loses when a reading of the
   whole word as a common word, with or without its own proclitics, is likelier: بلد is
   not ب + لد, وبحث is و + بحث and not وب + حث, but بمصر is ب + مصر. A common word (one
   of data/arabic_common.txt's of Zipf >= 4) is the likelier when it occurs over three
   times as often as the proclitic reading would make it (the term's frequency times the
   share of words that carry that proclitic, from the same file): `proclitic_blocked`.
4. Scripts written without spaces (CJK, Thai) have no word boundaries: every character
   starts a word.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from functools import lru_cache
from importlib import resources

from monitor.text import Folded, is_arabic, is_unspaced

# Proclitics that may stand before an Arabic name or noun, folded (أ is ا after folding).
ARABIC_PROCLITICS = frozenset(
    {"و", "ف", "ب", "ك", "ل", "ال", "وال", "فال", "بال", "كال", "وب", "فب", "ول", "فل", "وك",
     "فك", "وبال", "فبال", "وكال", "فكال", "لل", "ولل", "فلل"}
)
# Before a term whose article ال was absorbed: ل + ال is written لل.
ARABIC_LAM_PROCLITICS = frozenset({"لل", "ولل", "فلل"})
SHORT_TERM = 3
_HASH_AT = frozenset("#@")
# A word as the C scanner splits the text into tokens: a run of characters between spaces,
# or one character of a script written without spaces.
_UNSPACED = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f" \
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"  # text.is_unspaced
_WORD = re.compile(f"[{_UNSPACED}]|[^\\s{_UNSPACED}]+")
# Flags of an automaton key, worked out once per key: which of the rules above apply.
ARABIC, UNSPACED, SHORT_ARABIC = 1, 2, 4


COMMON_ZIPF = 4.0  # a word this frequent may stand for another reading (rule 3)
LIKELIER = math.log10(3)  # how much more often, in Zipf, it must occur than that reading


@lru_cache(maxsize=1)
def arabic_frequencies() -> tuple[dict[str, float], dict[str, float]]:
    """Rule 3's data: the Zipf frequency of folded Arabic words, and the share of words
    that carry each proclitic (data/arabic_common.txt, by tools/build_arabic_common.py)."""
    text = resources.files("monitor").joinpath("data/arabic_common.txt").read_text("utf-8")
    zipf: dict[str, float] = {}
    share: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("@"):
            _, proclitic, value = line.split()
            share[proclitic] = float(value)
        elif line and not line.startswith("#"):
            word, value = line.split()
            zipf[word] = float(value)
    return zipf, share


@lru_cache(maxsize=4096)
def proclitic_blocked(prefix: str, key: str) -> bool:
    """Rule 3: whether the word `prefix + key` is likelier a common word, whole or after a
    proclitic of its own shorter than `prefix`, than the proclitic `prefix` before the
    short term `key`."""
    zipf, share = arabic_frequencies()
    word = prefix + key
    for cut in range(len(prefix)):
        rest, rest_prefix = word[cut:], prefix[cut:]
        if cut and prefix[:cut] not in share or rest_prefix not in share:
            continue  # not a proclitic and a word: no such reading
        common = zipf.get(rest, 0.0)
        if common < COMMON_ZIPF:
            continue
        if rest_prefix in ARABIC_LAM_PROCLITICS:
            continue  # لل stands for ل + ال: that reading has its own rule
        reading = share[rest_prefix]
        expected = zipf.get(key, -math.inf) + (math.log10(reading) if reading > 0 else -math.inf)
        if common - expected > LIKELIER:
            return True
    return False


def key_flags(key: str) -> int:
    """The flags of a folded term: Arabic (rule 2), unspaced (rule 4), short Arabic (3)."""
    arabic = is_arabic(key[0])
    return (ARABIC if arabic else 0) | (UNSPACED if is_unspaced(key[0]) else 0) | (
        SHORT_ARABIC if arabic and len(key) <= SHORT_TERM and " " not in key else 0)


def word_prefix(norm: str, start: int, flags: int) -> str | None:
    """What stands between the word's start and a candidate at `start` of the folded
    `norm` ('' for nothing), or None when the candidate does not start a word and no
    proclitic explains the difference (rules 1, 2 and 4; rule 3 needs the term's table)."""
    if start == 0:
        return ""
    before = norm[start - 1]
    if before == " " or flags & UNSPACED or is_unspaced(before):
        return ""
    word_start = norm.rfind(" ", 0, start) + 1
    prefix = norm[word_start:start]
    if _HASH_AT.issuperset(prefix):
        return ""  # #Libya, @Haftar
    if flags & ARABIC and (prefix in ARABIC_PROCLITICS or prefix in ARABIC_LAM_PROCLITICS):
        return prefix
    return None


class WordIndex:
    """Word numbers of folded offsets per field, computed only when a `near` rule asks:
    words counted as phrases match them, punctuation between them counting for nothing
    and each character of a script written without spaces for one."""

    def __init__(self, fields: tuple[Folded, Folded]) -> None:
        self._fields = fields
        self._starts: dict[int, list[int]] = {}

    def word(self, field: int, offset: int) -> int:
        starts = self._starts.get(field)
        if starts is None:
            text = self._fields[field].folded
            starts = self._starts[field] = [m.start() for m in _WORD.finditer(text)]
        return bisect_right(starts, offset) - 1
