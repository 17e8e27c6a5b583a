"""Scores an item's title and text against every watchlist with one compiled automaton.

Rules, in order:
1. Terms (entity names and aliases, keywords, phrases, words named in rules, exclusions)
   and text are folded by `monitor.text.fold`: case, accents, Arabic letter forms and
   harakat never matter, and punctuation separates words like a space.
2. All terms of all watchlists go into one Aho-Corasick automaton (the Rust aho-corasick
   crate, through ahocorasick-rs), built once per config,
   each followed by a space: the automaton itself finds only occurrences that end a word,
   and the cost of matching grows with the text, not with the number of terms.
3. The start of each candidate is checked: it must start a word, except that an Arabic
   term may carry proclitics (و ف ب ك ل ال and their combinations: بسرت is سرت) and a
   term starting with ال also matches after لل (للسراج is السراج). For a term of three
   letters or fewer, a proclitic reading loses when the whole word is a common word in
   its own right (بلد is not ب + لد): see data/arabic_common.txt. Scripts written without
   spaces (CJK, Thai) have no word boundaries: their terms match anywhere.
4. Score: each entity, keyword and phrase adds its weight once, times the watchlist's
   title weight when it hits the title; each rule (all_of / any_of / none_of / near,
   nestable) adds its weight when it holds. An exclusion hit or an unmet `require` vetoes
   the watchlist; otherwise it matches when the score reaches its threshold. Every point
   is explained in the breakdown.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import ahocorasick_rs

from monitor.config import Group, WatchlistConfig
from monitor.models import Contribution, Hit, Match
from monitor.text import Folded, fold_term, is_arabic, is_unspaced

# Proclitics that may stand before an Arabic name or noun, folded (أ is ا after folding).
ARABIC_PROCLITICS = frozenset(
    {"و", "ف", "ب", "ك", "ل", "ال", "وال", "فال", "بال", "كال", "وب", "فب", "ول", "فل", "وك",
     "فك", "وبال", "فبال", "وكال", "فكال", "لل", "ولل", "فلل"}
)
# Before a term whose article ال was absorbed: ل + ال is written لل.
ARABIC_LAM_PROCLITICS = frozenset({"لل", "ولل", "فلل"})
SHORT_TERM = 3
MAX_HITS_PER_TERM = 10
SNIPPET_CHARS = 240
_WORD = re.compile(r"\S+")
_HASH_AT = frozenset("#@")


@lru_cache(maxsize=1)
def arabic_common_words() -> frozenset[str]:
    text = resources.files("monitor").joinpath("data/arabic_common.txt").read_text("utf-8")
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


@dataclass(frozen=True, slots=True)
class _Atom:
    """Something that can hit: an entity (all its spellings), a keyword, a phrase, a term."""

    watchlist: int
    kind: str  # entity, keyword, phrase, term, exclude
    term: str
    weight: float


@dataclass(frozen=True, slots=True)
class _Pattern:
    atom: int
    alias: str
    lam_only: bool  # the key is the term without its leading ال


@dataclass(slots=True)
class _Entry:
    """One automaton key: a folded spelling and every atom that spells it so."""

    key: str
    arabic: bool
    unspaced_start: bool
    short_arabic: bool
    patterns: list[_Pattern] = field(default_factory=list)
    # (atom, lam_only) pairs already here: Erdoğan and Erdogan fold alike, and one atom
    # must have one pattern per key or each hit would count twice.
    owners: set[tuple[int, bool]] = field(default_factory=set)


# One candidate that passed the word checks: (atom, field, folded start, folded end, alias)
# where field is 0 for the title and 1 for the body. Plain tuples: the hot path makes many.
_Raw = tuple[int, int, int, int, str]
FIELDS = ("title", "body")


# A compiled condition: ("atom", id) | ("all_of"|"any_of"|"none_of", children) | ("near", ids, n)
_Tree = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Rule:
    label: str
    weight: float
    describe: str
    tree: _Tree


@dataclass(frozen=True, slots=True)
class _List:
    config: WatchlistConfig
    scored: frozenset[int]
    rules: tuple[_Rule, ...]
    require: _Tree | None


@dataclass(frozen=True, slots=True)
class Result:
    """A watchlist's verdict on one item, matched or not (the dry run shows both)."""

    match: Match
    threshold: float
    matched: bool
    excluded_by: tuple[str, ...] = ()
    required: bool = True


class Matcher:
    """All watchlists of one config, compiled; `evaluate` is pure and thread-safe."""

    def __init__(self, watchlists: Sequence[WatchlistConfig]) -> None:
        self.watchlists = tuple(watchlists)
        self._atoms: list[_Atom] = []
        self._entries: dict[str, _Entry] = {}
        self._lists = tuple(self._compile(i, wl) for i, wl in enumerate(self.watchlists))
        self._entry_list = list(self._entries.values())
        # The trailing space makes the automaton check the end of the word itself.
        keys = [e.key if is_unspaced(e.key[-1]) else e.key + " " for e in self._entry_list]
        self._automaton = ahocorasick_rs.AhoCorasick(
            keys or [" "], matchkind=ahocorasick_rs.MATCHKIND_STANDARD, store_patterns=False)

    @property
    def term_count(self) -> int:
        return len(self._entries)

    # -- compiling ------------------------------------------------------------------------

    def _compile(self, index: int, wl: WatchlistConfig) -> _List:
        names: dict[str, int] = {}
        scored: list[int] = []
        for entity in wl.entities:
            atom = self._atom(index, "entity", entity.name, entity.weight)
            scored.append(atom)
            for spelling in entity.spellings:
                key = fold_term(spelling)
                names.setdefault(key, atom)
                self._spell(spelling, atom, key)
        for kind, terms in (("keyword", wl.keywords), ("phrase", wl.phrases)):
            for term in terms:
                atom = self._atom(index, kind, term.term, term.weight)
                scored.append(atom)
                key = fold_term(term.term)
                names.setdefault(key, atom)
                self._spell(term.term, atom, key)
        for term in wl.exclude:
            self._spell(term.term, self._atom(index, "exclude", term.term, 0.0))
        rules = tuple(
            _Rule(f"rule {group.name}" if group.name else "rule", group.weight, group.describe(),
                  self._tree(index, group, names))
            for group in wl.rules
        )
        require = self._tree(index, wl.require, names) if wl.require else None
        return _List(wl, frozenset(scored), rules, require)

    def _atom(self, watchlist: int, kind: str, term: str, weight: float) -> int:
        self._atoms.append(_Atom(watchlist, kind, term, weight))
        return len(self._atoms) - 1

    def _spell(self, spelling: str, atom: int, key: str | None = None) -> None:
        key = fold_term(spelling) if key is None else key
        if not key:
            return
        self._add(key, _Pattern(atom, spelling, False))
        if key.startswith("ال") and len(key) > 3:
            self._add(key[2:], _Pattern(atom, spelling, True))

    def _add(self, key: str, pattern: _Pattern) -> None:
        entry = self._entry(key)
        owner = (pattern.atom, pattern.lam_only)
        if owner not in entry.owners:
            entry.owners.add(owner)
            entry.patterns.append(pattern)

    def _entry(self, key: str) -> _Entry:
        entry = self._entries.get(key)
        if entry is None:
            arabic = is_arabic(key[0])
            short = arabic and len(key) <= SHORT_TERM and " " not in key
            entry = _Entry(key, arabic, is_unspaced(key[0]), short)
            self._entries[key] = entry
        return entry

    def _tree(self, watchlist: int, group: Group, names: dict[str, int]) -> _Tree:
        def ref(part: str) -> int:
            key = fold_term(part)
            if key not in names:
                names[key] = self._atom(watchlist, "term", part, 0.0)
                self._spell(part, names[key])
            return names[key]

        if group.kind == "near":
            return ("near", tuple(ref(p) for p in group.parts if isinstance(p, str)),
                    group.within)
        children = tuple(("atom", ref(p)) if isinstance(p, str) else self._tree(watchlist, p, names)
                         for p in group.parts)
        return (group.kind, children)

    # -- matching -------------------------------------------------------------------------

    def find(self, text: str, field: str = "body") -> list[Hit]:
        """Every whole-word occurrence of every term in `text` (for tests and the dry run)."""
        folded = Folded(text)
        return [self._hit(raw, folded, text, field)
                for raw in self._scan(folded, FIELDS.index(field))]

    def _scan(self, folded: Folded, field: int) -> list[_Raw]:
        """Candidates that pass the word checks, at most MAX_HITS_PER_TERM per atom."""
        if not self._entries or not folded.original:
            return []
        norm = folded.folded + " "
        common = arabic_common_words()
        entries = self._entry_list
        counts: dict[int, int] = {}
        kept: list[_Raw] = []
        for index, start, _ in self._automaton.find_matches_as_indexes(norm, overlapping=True):
            entry = entries[index]
            if start == 0 or norm[start - 1] == " ":
                prefix = ""
            else:
                found_prefix = _prefix(norm, start, entry)
                if found_prefix is None:
                    continue
                prefix = found_prefix
            lam = prefix in ARABIC_LAM_PROCLITICS
            if prefix and not lam and entry.short_arabic and prefix + entry.key in common:
                continue  # the whole word is a common word, not a proclitic + this term
            for pattern in entry.patterns:
                if pattern.lam_only and not lam:
                    continue
                if not pattern.lam_only and prefix and prefix not in ARABIC_PROCLITICS:
                    continue
                seen = counts.get(pattern.atom, 0)
                if seen < MAX_HITS_PER_TERM:
                    counts[pattern.atom] = seen + 1
                    kept.append((pattern.atom, field, start - len(prefix),
                                 start + len(entry.key), pattern.alias))
        return kept

    def _hit(self, raw: _Raw, folded: Folded, text: str, field: str) -> Hit:
        atom = self._atoms[raw[0]]
        a, b = folded.span(raw[2], raw[3])
        return Hit(atom.kind, atom.term, raw[4], text[a:b], field, a, atom.weight)

    def evaluate(self, title: str, body: str, *, only_matched: bool = False) -> list[Result]:
        """One Result per watchlist, in config order; with `only_matched`, only those that
        matched, whose hits and snippet alone are worked out (the daemon's fast path)."""
        folded = (Folded(title), Folded(body))
        per_list: dict[int, dict[int, list[_Raw]]] = {}
        for field_index in (0, 1):
            for raw in self._scan(folded[field_index], field_index):
                atoms = per_list.setdefault(self._atoms[raw[0]].watchlist, {})
                atoms.setdefault(raw[0], []).append(raw)
        words = _WordIndex(folded)
        results = []
        for index, compiled in enumerate(self._lists):
            by_atom = per_list.get(index)
            if by_atom is None:
                if not only_matched:
                    wl = compiled.config
                    results.append(Result(Match(wl.name, 0.0, ()), wl.threshold, False))
                continue
            verdict = self._verdict(compiled, by_atom, words)
            if verdict.matched or not only_matched:
                results.append(self._explain(compiled, by_atom, verdict, folded))
        return results

    def matches(self, title: str, body: str) -> list[Match]:
        return [r.match for r in self.evaluate(title, body, only_matched=True)]

    # -- scoring --------------------------------------------------------------------------

    def _verdict(self, compiled: _List, by_atom: dict[int, list[_Raw]],
                 words: _WordIndex) -> _Verdict:
        wl = compiled.config
        breakdown: list[Contribution] = []
        excluded: list[int] = []
        for atom_id in sorted(by_atom):  # atoms are numbered in config order
            atom = self._atoms[atom_id]
            if atom.kind == "exclude":
                excluded.append(atom_id)
            elif atom_id in compiled.scored:
                in_title = any(raw[1] == 0 for raw in by_atom[atom_id])
                factor = wl.title_weight if in_title else 1.0
                detail = f"weight {atom.weight:g}" + (
                    f" x title {wl.title_weight:g}" if in_title else "")
                breakdown.append(Contribution(f"{atom.kind} {atom.term}", atom.weight * factor,
                                              detail))
        for rule in compiled.rules:
            if _holds(rule.tree, by_atom, words):
                breakdown.append(Contribution(rule.label, rule.weight, rule.describe))
        required = compiled.require is None or _holds(compiled.require, by_atom, words)
        score = round(sum(c.points for c in breakdown), 3)
        matched = bool(breakdown) and score > 0 and score >= wl.threshold and required \
            and not excluded
        return _Verdict(score, tuple(breakdown), tuple(excluded), required, matched)

    def _explain(self, compiled: _List, by_atom: dict[int, list[_Raw]], verdict: _Verdict,
                 folded: tuple[Folded, Folded]) -> Result:
        wl = compiled.config
        hits = tuple(self._hit(raw, folded[raw[1]], folded[raw[1]].original, FIELDS[raw[1]])
                     for atom, raws in by_atom.items() if atom not in verdict.excluded
                     for raw in raws)
        excluded_by = tuple(dict.fromkeys(
            self._hit(raw, folded[raw[1]], folded[raw[1]].original, FIELDS[raw[1]]).matched
            for atom in verdict.excluded for raw in by_atom[atom]))
        match = Match(wl.name, verdict.score, hits, _snippet(folded[1].original, hits),
                      verdict.breakdown)
        return Result(match, wl.threshold, verdict.matched, excluded_by, verdict.required)


@dataclass(frozen=True, slots=True)
class _Verdict:
    score: float
    breakdown: tuple[Contribution, ...]
    excluded: tuple[int, ...]
    required: bool
    matched: bool


def _prefix(norm: str, start: int, entry: _Entry) -> str | None:
    """What stands between the word's start and the candidate ('' for nothing), or None
    when the candidate does not start a word and no proclitic explains the difference."""
    if start == 0:
        return ""
    before = norm[start - 1]
    if before == " " or entry.unspaced_start or is_unspaced(before):
        return ""
    word_start = norm.rfind(" ", 0, start) + 1
    prefix = norm[word_start:start]
    if _HASH_AT.issuperset(prefix):
        return ""  # #Libya, @Haftar
    if entry.arabic and (prefix in ARABIC_PROCLITICS or prefix in ARABIC_LAM_PROCLITICS):
        return prefix
    return None


class _WordIndex:
    """Word numbers of folded offsets per field, computed only when a `near` rule asks."""

    def __init__(self, fields: tuple[Folded, Folded]) -> None:
        self._fields = fields
        self._starts: dict[int, list[int]] = {}

    def word(self, field: int, offset: int) -> int:
        starts = self._starts.get(field)
        if starts is None:
            text = self._fields[field].folded
            starts = self._starts[field] = [m.start() for m in _WORD.finditer(text)]
        return bisect_right(starts, offset) - 1


def _holds(tree: _Tree, by_atom: dict[int, list[_Raw]], words: _WordIndex) -> bool:
    kind = tree[0]
    if kind == "atom":
        return tree[1] in by_atom
    if kind == "all_of":
        return all(_holds(child, by_atom, words) for child in tree[1])
    if kind == "any_of":
        return any(_holds(child, by_atom, words) for child in tree[1])
    if kind == "none_of":
        return not any(_holds(child, by_atom, words) for child in tree[1])
    return _near(tree[1], tree[2], by_atom, words)


def _near(atoms: tuple[int, ...], within: int, by_atom: dict[int, list[_Raw]],
          words: _WordIndex) -> bool:
    """Some occurrence of the first term has every other term within `within` words."""
    if not all(a in by_atom for a in atoms):
        return False
    first, *others = atoms
    for anchor in by_atom[first]:
        here = words.word(anchor[1], anchor[2])
        if all(any(o[1] == anchor[1] and abs(words.word(o[1], o[2]) - here) <= within
                   for o in by_atom[other]) for other in others):
            return True
    return False


def _snippet(body: str, hits: Sequence[Hit]) -> str:
    """About SNIPPET_CHARS of the body around its first hit, cut at spaces."""
    body_hits = [h for h in hits if h.field == "body"]
    if not body_hits:
        return " ".join(body[:SNIPPET_CHARS].split())
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
