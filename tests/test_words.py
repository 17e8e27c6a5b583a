"""Where a term may start: word boundaries and Arabic proclitics, without the automaton."""

from __future__ import annotations

import pytest

from monitor.match.words import (
    ARABIC,
    SHORT_ARABIC,
    UNSPACED,
    WordIndex,
    key_flags,
    proclitic_blocked,
    word_prefix,
)
from monitor.text import Folded, fold_term


@pytest.mark.parametrize(
    ("term", "text", "prefix"),
    [
        ("haftar", "said haftar", ""),
        ("haftar", "#haftar", ""),
        ("haftar", "@haftar", ""),
        ("haftar", "khaftar", None),  # inside a longer word
        ("سرت", "بسرت", "ب"),
        ("أنقرة", "وأنقرة", "و"),
        ("السراج", "للسراج", "لل"),  # the term's own ال absorbed: matched as سراج after لل
        ("القيادة", "وبالقيادة", "وب"),
        ("سرت", "أسرت", None),  # ا is no proclitic
        ("東京", "在東京", ""),  # no spaces in CJK: every character starts a word
    ],
)
def test_word_prefix(term: str, text: str, prefix: str | None) -> None:
    key, norm = fold_term(term), fold_term(text)
    if prefix == "لل":
        key = key[2:]
    start = norm.rindex(key)
    assert word_prefix(norm, start, key_flags(key)) == prefix


def test_key_flags() -> None:
    assert key_flags("haftar") == 0
    assert key_flags(fold_term("حفتر")) == ARABIC
    assert key_flags(fold_term("سرت")) == ARABIC | SHORT_ARABIC
    assert key_flags(fold_term("إعلان القاهرة")) == ARABIC
    assert key_flags("東京") == UNSPACED


def test_word_index_counts_words_as_the_scanner_splits_them() -> None:
    # Punctuation counts for nothing; each CJK character is a word of its own.
    fields = (Folded(""), Folded("Haftar, — in Sirte; 利比亚的局势"))
    words = WordIndex(fields)
    folded = fields[1].folded
    assert [words.word(1, folded.index(w)) for w in ("haftar", "in", "sirte", "利", "局")] == \
        [0, 1, 2, 3, 7]


@pytest.mark.parametrize(
    ("prefix", "term", "blocked"),
    [
        ("ب", "لد", True),  # بلد: country
        ("و", "صل", True),  # وصل: arrived
        ("ل", "قد", True),  # لقد: indeed, far commoner than ل + قد would make it
        ("وب", "حث", True),  # و + بحث: and research
        ("و", "حث", False),  # وحث: and urged
        ("ب", "مصر", False),  # بمصر: in Egypt, as common as ب + مصر makes it
        ("وب", "مصر", False),
        ("و", "سرت", False),  # وسرت is rare: nothing likelier than و + سرت
    ],
)
def test_proclitic_blocked_weighs_the_readings_of_a_word(prefix: str, term: str,
                                                         blocked: bool) -> None:
    assert proclitic_blocked(fold_term(prefix), fold_term(term)) is blocked
