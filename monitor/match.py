"""Scores an item's title and text against every watchlist with one compiled automaton.

Rules, in order:
1. Terms (entity names and aliases, keywords, phrases, exclusions) and text are folded by
   `monitor.text.fold`, so case, accents, Arabic letter forms and harakat never matter.
2. All terms of all watchlists go into one Aho-Corasick automaton, built once per config:
   the cost of matching grows with the text, not with the number of terms.
3. A candidate counts only on whole words: the characters around it must not be letters or
   digits. Arabic terms may carry proclitics (و ف ب ك ل ال and their combinations, so بسرت
   is سرت) and a term starting with ال also matches after لل (للسراج is السراج). Scripts
   written without spaces (CJK, Thai) have no word boundaries to check.
4. A rule (entity or term) adds its weight once, times the watchlist's title weight when it
   hits the title; an exclusion hit vetoes the watchlist. The watchlist matches when the
   score reaches its threshold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import ahocorasick

from monitor.config import WatchlistConfig
from monitor.models import Hit, Match
from monitor.text import Folded, fold, is_arabic, is_unspaced, is_word_char

# Proclitics that may stand before an Arabic name or noun, folded (أ is ا after folding).
ARABIC_PROCLITICS = frozenset(
    {"و", "ف", "ب", "ك", "ل", "ال", "وال", "فال", "بال", "كال", "وب", "فب", "ول", "فل", "وك",
     "فك", "وبال", "فبال", "وكال", "فكال", "لل", "ولل", "فلل"}
)
# Before a term whose article ال was absorbed: ل + ال is written لل.
ARABIC_LAM_PROCLITICS = frozenset({"لل", "ولل", "فلل"})
MAX_HITS_PER_RULE = 10
SNIPPET_CHARS = 240


@dataclass(frozen=True, slots=True)
class _Pattern:
    watchlist: int
    rule: str
    term: str
    weight: float
    exclude: bool
    lam_only: bool  # the key is the term without its leading ال


@dataclass(frozen=True, slots=True)
class Result:
    """A watchlist's verdict on one item, matched or not (the dry run shows both)."""

    match: Match
    threshold: float
    matched: bool
    excluded_by: tuple[str, ...] = ()


class Matcher:
    """All watchlists of one config, compiled; `evaluate` is pure and thread-safe."""

    def __init__(self, watchlists: Sequence[WatchlistConfig]) -> None:
        self.watchlists = tuple(watchlists)
        self._patterns: dict[str, list[_Pattern]] = {}
        for index, wl in enumerate(self.watchlists):
            for entity in wl.entities:
                for spelling in entity.spellings:
                    self._add(spelling, _Pattern(index, entity.name, spelling, entity.weight,
                                                 False, False))
            for term in (*wl.keywords, *wl.phrases):
                self._add(term.term, _Pattern(index, term.term, term.term, term.weight,
                                              False, False))
            for term in wl.exclude:
                self._add(term.term, _Pattern(index, term.term, term.term, 0.0, True, False))
        self._automaton = ahocorasick.Automaton()
        for key in self._patterns:
            self._automaton.add_word(key, key)
        if self._patterns:
            self._automaton.make_automaton()

    def _add(self, term: str, pattern: _Pattern) -> None:
        key = fold(term).strip()
        if not key:
            return
        self._patterns.setdefault(key, []).append(pattern)
        if key.startswith("ال") and len(key) > 3:
            lam = _Pattern(pattern.watchlist, pattern.rule, pattern.term, pattern.weight,
                           pattern.exclude, True)
            self._patterns.setdefault(key[2:], []).append(lam)

    @property
    def term_count(self) -> int:
        return len(self._patterns)

    def hits(self, text: str, field: str) -> list[tuple[_Pattern, Hit]]:
        """Every whole-word occurrence of every term in `text`."""
        if not self._patterns or not text:
            return []
        folded = Folded(text)
        norm = folded.folded
        found: list[tuple[_Pattern, Hit]] = []
        for end, key in self._automaton.iter(norm):
            start = end - len(key) + 1
            prefix = _accepted_prefix(norm, start, end + 1, key)
            if prefix is None:
                continue
            a, b = folded.span(start - len(prefix), end + 1)
            for pattern in self._patterns[key]:
                if pattern.lam_only != (prefix in ARABIC_LAM_PROCLITICS):
                    continue
                if pattern.lam_only or not prefix or prefix in ARABIC_PROCLITICS:
                    hit = Hit(pattern.rule, pattern.term, text[a:b], field, a, pattern.weight)
                    found.append((pattern, hit))
        return found

    def evaluate(self, title: str, body: str) -> list[Result]:
        """One Result per watchlist, in config order."""
        per_list: list[list[tuple[_Pattern, Hit]]] = [[] for _ in self.watchlists]
        for pattern, hit in (*self.hits(title, "title"), *self.hits(body, "body")):
            per_list[pattern.watchlist].append((pattern, hit))
        return [
            _score(wl, found, body) for wl, found in zip(self.watchlists, per_list, strict=True)
        ]

    def matches(self, title: str, body: str) -> list[Match]:
        return [r.match for r in self.evaluate(title, body) if r.matched]


def _accepted_prefix(norm: str, start: int, end: int, key: str) -> str | None:
    """The proclitic before a candidate ('' for none), or None when it is not a whole word."""
    if end < len(norm) and _joined(norm[end - 1], norm[end]):
        return None
    word_start = start
    while word_start > 0 and _joined(norm[word_start - 1], norm[word_start]):
        word_start -= 1
    prefix = norm[word_start:start]
    if not prefix:
        return ""
    if is_arabic(key[0]) and (prefix in ARABIC_PROCLITICS or prefix in ARABIC_LAM_PROCLITICS):
        return prefix
    return None


def _joined(left: str, right: str) -> bool:
    """Whether two neighbouring characters belong to one word."""
    if not (is_word_char(left) and is_word_char(right)):
        return False
    return not (is_unspaced(left) or is_unspaced(right))


def _score(wl: WatchlistConfig, found: Iterable[tuple[_Pattern, Hit]], body: str) -> Result:
    rules: dict[str, list[Hit]] = {}
    weights: dict[str, float] = {}
    excluded: list[str] = []
    for pattern, hit in found:
        if pattern.exclude:
            excluded.append(hit.matched)
            continue
        kept = rules.setdefault(pattern.rule, [])
        if len(kept) < MAX_HITS_PER_RULE and hit not in kept:
            kept.append(hit)
        weights[pattern.rule] = pattern.weight
    score = 0.0
    for rule, hits in rules.items():
        in_title = any(h.field == "title" for h in hits)
        score += weights[rule] * (wl.title_weight if in_title else 1.0)
    all_hits = tuple(h for rule_hits in rules.values() for h in rule_hits)
    matched = bool(all_hits) and not excluded and score >= wl.threshold
    match = Match(wl.name, round(score, 3), all_hits, _snippet(body, all_hits))
    return Result(match, wl.threshold, matched, tuple(dict.fromkeys(excluded)))


def _snippet(body: str, hits: Sequence[Hit]) -> str:
    """About SNIPPET_CHARS of the body around its first hit, cut at spaces."""
    body_hits = [h for h in hits if h.field == "body"]
    if not body_hits:
        return body[:SNIPPET_CHARS].strip()
    first = min(body_hits, key=lambda h: h.offset)
    start = max(0, first.offset - SNIPPET_CHARS // 3)
    if start:
        space = body.find(" ", start)
        start = space + 1 if 0 <= space < first.offset else start
    end = min(len(body), start + SNIPPET_CHARS)
    space = body.rfind(" ", first.offset + len(first.matched), end)
    end = space if space > 0 and end < len(body) else end
    text = " ".join(body[start:end].split())
    return ("… " if start else "") + text + (" …" if end < len(body) else "")
