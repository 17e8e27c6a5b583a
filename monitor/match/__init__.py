"""Scores an item's title and text against every watchlist with one compiled automaton.

Rules, in order:
1. Terms (entity names and aliases, keywords, phrases, words named in rules, exclusions)
   and text are folded by `monitor.text`: case, accents, Arabic letter forms and harakat
   never matter. A term's words match in order whatever punctuation and spacing stand
   between them inside a sentence (commas, abbreviation dots, hyphens, apostrophes, the
   Arabic comma): the folded text marks sentence ends and block ends (line breaks)
   instead, and a term runs across a sentence end only where it has a full stop of its
   own (text.term_keys), never across a block end.
2. All terms of all watchlists are compiled once per config into one multi-pattern
   matcher, whose cost grows with the text, not with the number of terms: the C scanner
   (monitor/match/_scan.c), which looks the text up word by word in a hash table of the terms'
   word prefixes; or, where it was not built, one Aho-Corasick automaton (the Rust
   aho-corasick crate, through ahocorasick-rs) of the terms each followed by a space, so
   that it finds only occurrences that end a word. Both find the same hits.
3. The start of each candidate is checked (monitor.match.words): it must start a word, except
   that an Arabic term may carry proclitics (و ف ب ك ل ال and their combinations: بسرت
   is سرت) and a term starting with ال also matches after لل (للسراج is السراج). For a
   term of three letters or fewer, a proclitic reading loses when a reading of the word
   as a common word, with or without its own proclitics, is likelier (بلد is not ب + لد,
   وبحث is not وب + حث; بمصر is ب + مصر): words.proclitic_blocked. Scripts written without spaces
   (CJK, Thai) have no word boundaries: their terms match anywhere.
4. Score: each entity, keyword and phrase adds its weight once, times the watchlist's
   title weight when it hits the title; each rule (all_of / any_of / none_of / near,
   nestable) adds its weight when it holds. An exclusion hit or an unmet `require` vetoes
   the watchlist; otherwise it matches when the score reaches its threshold. Every point
   is explained in the breakdown.
"""

from __future__ import annotations

import gc
import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple

import ahocorasick_rs

from monitor import speedups
from monitor.config import Group, WatchlistConfig
from monitor.match.words import (
    ARABIC_LAM_PROCLITICS,
    ARABIC_PROCLITICS,
    SHORT_ARABIC,
    SHORT_TERM,
    WordIndex,
    key_flags,
    proclitic_blocked,
    word_prefix,
)
from monitor.models import Contribution, Hit, Match
from monitor.text import (
    BLOCK_MARK,
    SENTENCE_MARK,
    Folded,
    fold_term,
    fold_term_stop,
    is_unspaced,
    same_case,
    term_keys,
)

if TYPE_CHECKING:
    from monitor.match._scan import Scanner

MAX_HITS_PER_TERM = 10
SNIPPET_CHARS = 240


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Compiling 100k terms makes about a million small objects, none of them garbage;
    the collector's passes over them took a fifth of the build (bench/match.py)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_Pair = tuple[int, str]  # (atom, alias): what a candidate hits


# One candidate that passed the word checks: (atom, field, folded start, folded end, alias)
# where field is 0 for the title and 1 for the body. Plain tuples: the hot path makes many.
_Raw = tuple[int, int, int, int, str]
_ByAtom = dict[int, list[_Raw]]  # one watchlist's hits, by atom
FIELDS = ("title", "body")


# A compiled condition: ("atom", id) | ("all_of"|"any_of"|"none_of", children) | ("near", ids, n)
_Tree = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class _Rule:
    line: Contribution  # its breakdown line: label, weight, what it says
    tree: _Tree


@dataclass(frozen=True, slots=True)
class _List:
    config: WatchlistConfig
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
    """All watchlists of one config, compiled; `evaluate` is pure and thread-safe.

    `native=False` leaves the C extensions aside (the scan by the automaton, hits and
    explanations in Python): the definitions the C code is tested against, and what an
    install without a compiler runs."""

    def __init__(self, watchlists: Sequence[WatchlistConfig], *, native: bool = True) -> None:
        self.watchlists = tuple(watchlists)
        self._native = native
        # Per atom (something that can hit: an entity with all its spellings, a keyword, a
        # phrase, a word named only in rules, an exclusion), in columns: its watchlist,
        # kind (entity, keyword, phrase, term, exclude), term and weight. Columns of str
        # and numbers hold no objects the garbage collector must walk; 100k tuples did,
        # for 80 ms at the first collection after a build.
        self._list_of: list[int] = []
        self._kind: list[str] = []
        self._term: list[str] = []
        self._weight: list[float] = []
        # Per key, in the order first spelled: the (atom, alias) pairs that hit where it
        # starts a word; and, for keys that are a term without its leading ال, those that
        # hit only after لل (للسراج is السراج).
        self._spelled: dict[str, list[_Pair]] = {}
        self._lam_only: dict[str, list[_Pair]] = {}
        # The (atom, alias) pairs whose letters must match in the case written (`case:
        # sensitive`), and their atoms: the scan keeps all their hits, to be checked.
        self._sensitive: set[_Pair] = set()
        self._cased_atoms: set[int] = set()
        # Keys of 3 letters or fewer that start with an Arabic letter, by their index in
        # _spelled: those monitor.match.words rule 3 may apply to.
        self._short: dict[str, int] = {}
        with _gc_paused():
            self._lists = tuple(self._compile(i, wl) for i, wl in enumerate(self.watchlists))
            self._build()
            # Built: the pairs live on in the scanner (or in _plain, for the automaton).
            # Freed here, the collector never walks them (a few hundred thousand lists and
            # tuples at 100k terms).
            self._spelled.clear()
            self._lam_only.clear()

    def _build(self) -> None:
        """The hot path's flat tables, one entry per key or atom, and the C scanner (or,
        where it was not built, the automaton and the tables its candidates need)."""
        keys = self._keys = list(self._spelled)
        self._plain = [tuple(pairs) for pairs in self._spelled.values()]
        # Per key, what else hits after لل; and all that hits there (the automaton's).
        lam_only: list[tuple[_Pair, ...]] = [()] * len(keys)
        if self._lam_only:
            for index, key in enumerate(keys):
                if key in self._lam_only:
                    lam_only[index] = tuple(self._lam_only[key])
        self._role = bytes(_ROLES.get(kind, _TERM) for kind in self._kind)
        # Each breakdown line is the same whenever its atom scores: made once, on first
        # use; per field (title, body) and atom.
        self._lines: tuple[list[Contribution | None], list[Contribution | None]] = (
            [None] * len(self._kind), [None] * len(self._kind))
        # What an atom adds to its watchlist's score from its first hit, in the title and
        # in the body: its weight (times the title's), -inf for an exclusion, 0 for a
        # word named only in rules.
        factors = [wl.title_weight for wl in self.watchlists]
        roles = list(zip(self._weight, self._role, self._list_of, strict=True))
        self._points = (
            [w * factors[wl] if r == _SCORED else _VETO if r == _EXCLUDE else 0.0
             for w, r, wl in roles],
            [w if r == _SCORED else _VETO if r == _EXCLUDE else 0.0 for w, r, _ in roles])
        # The score below which a watchlist cannot match (-inf: its rules can add any).
        self._hopeless = [float("-inf") if compiled.rules else compiled.config.threshold
                          for compiled in self._lists]
        uncapped = bytearray(len(self._kind))  # the atoms of case-sensitive spellings
        for atom in self._cased_atoms:
            uncapped[atom] = 1
        self._scanner = _scanner(keys, self._plain, lam_only, self._list_of, self._points,
                                 self._hopeless, bytes(uncapped), self._short) \
            if self._native else None
        self._c_hits = _c_hits if self._native else None
        self._c_matches = _c_matches if self._native else None
        # What monitor.match._explain.matches needs of this config (see monitor/match/_explain.pyi).
        self._plan = (
            self._kind, self._term, self._weight, self._role, *self._points, *self._lines,
            self._cached_line, [wl.name for wl in self.watchlists],
            [float(wl.threshold) for wl in self.watchlists],
            bytes(not compiled.rules and compiled.require is None for compiled in self._lists),
            Hit, Match, FIELDS, SNIPPET_CHARS)
        if self._scanner is not None:
            self._plain = []  # the automaton's alone
        else:
            self._key_len = [len(key) for key in keys]
            self._flags = bytes(key_flags(key) if key[0] >= "\u0600" else 0 for key in keys)
            self._after_lam = [(*plain, *extra) if extra else plain
                               for plain, extra in zip(self._plain, lam_only, strict=True)]
            # The trailing space makes the automaton check the end of the word itself.
            self._automaton = ahocorasick_rs.AhoCorasick(
                [key if key[-1] >= "\u0e00" and is_unspaced(key[-1]) else key + " "
                 for key in keys] or [" "],
                matchkind=ahocorasick_rs.MATCHKIND_STANDARD, store_patterns=False)

    @property
    def term_count(self) -> int:
        return len(self._keys)

    # -- compiling ------------------------------------------------------------------------

    def _compile(self, index: int, wl: WatchlistConfig) -> _List:
        names: dict[str, int] = {}
        for entity in wl.entities:
            atom = self._atom(index, "entity", entity.name, entity.weight)
            cased = entity.case == "sensitive"
            for alias in (entity.name, *entity.aliases):  # Entity.cased_spellings, inlined
                spelling, sensitive = (alias, cased) if isinstance(alias, str) else \
                    (alias.alias, alias.case == "sensitive")
                key, stop = fold_term_stop(spelling)
                names.setdefault(key, atom)
                self._spell(spelling, atom, sensitive, key, stop)
        for kind, terms in (("keyword", wl.keywords), ("phrase", wl.phrases)):
            for term in terms:
                atom = self._atom(index, kind, term.term, term.weight)
                key, stop = fold_term_stop(term.term)
                names.setdefault(key, atom)
                self._spell(term.term, atom, term.case == "sensitive", key, stop)
        for term in wl.exclude:
            self._spell(term.term, self._atom(index, "exclude", term.term, 0.0),
                        term.case == "sensitive")
        rules = tuple(
            _Rule(Contribution(f"rule {group.name}" if group.name else "rule", group.weight,
                               group.describe()), self._tree(index, group, names))
            for group in wl.rules
        )
        require = self._tree(index, wl.require, names) if wl.require else None
        return _List(wl, rules, require)

    def _atom(self, watchlist: int, kind: str, term: str, weight: float) -> int:
        self._list_of.append(watchlist)
        self._kind.append(kind)
        self._term.append(term)
        self._weight.append(weight)
        return len(self._kind) - 1

    def _spell(self, spelling: str, atom: int, sensitive: bool = False,
               folded: str | None = None, stop: bool = True) -> None:
        """Adds the (atom, alias) pair to its keys (text.term_keys: the term folded, and
        with a sentence end where it has a full stop of its own). Atoms are numbered as
        they are compiled and spelled one after the other, so an atom spelled twice alike
        (Erdoğan, Erdogan) is the last pair of its key: it is kept once, or each hit would
        count twice; once in any case if either spelling is (UN and un)."""
        spelled, cased = self._spelled, self._sensitive
        if sensitive:
            cased.add((atom, spelling))
            self._cased_atoms.add(atom)
        if folded is None:
            folded, stop = fold_term_stop(spelling)
        # Most terms have no stop of their own: their one key, without term_keys' look.
        for key in term_keys(spelling, folded) if stop else (folded,):
            if not key:
                continue
            pairs = spelled.get(key)
            if pairs is None:
                if len(key) <= SHORT_TERM and key[0] >= "\u0600":
                    self._short[key] = len(spelled)  # its index in the scanner's keys
                spelled[key] = [(atom, spelling)]
            elif not pairs or pairs[-1][0] != atom:
                pairs.append((atom, spelling))
            elif cased and not sensitive and pairs[-1] in cased:
                pairs[-1] = (atom, spelling)  # UN (sensitive) and un: once, in any case
            if key.startswith("ال") and len(key) > 3 and key[2] != " ":
                # Only an article glued to its word is absorbed by ل (للسراج); a term whose
                # first word is ال alone ("ال @") has no such spelling.
                stripped = key[2:]
                if stripped not in spelled:  # an automaton key, hitting only after لل
                    if len(stripped) <= SHORT_TERM:
                        self._short[stripped] = len(spelled)
                    spelled[stripped] = []
                _add_pair(self._lam_only, stripped, atom, spelling)

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
        empty = Folded("")
        fields = (folded, empty) if field == "title" else (empty, folded)
        return list(self._hits([self._scan(fields)], fields)[0])

    def _scan(self, fields: tuple[Folded, Folded]) -> list[_Raw]:
        """Candidates in the title and the body that pass the word checks, at most
        MAX_HITS_PER_TERM per atom and field, title first, each in text order (by start,
        then end): by the C scanner where it was built, else by `_scan_python`."""
        if not self._keys or not (fields[0].original or fields[1].original):
            return []
        if self._scanner is not None:
            raws = self._scanner.scan(*_joined(fields), MAX_HITS_PER_TERM)
        else:
            raws = self._scan_python(fields)
        return self._in_case(raws, fields) if self._cased_atoms else raws

    def _by_list(self, fields: tuple[Folded, Folded], quick: bool) -> dict[int, _ByAtom]:
        """`_scan`'s hits by watchlist and atom (each atom's in `_scan`'s order); with
        `quick`, only the watchlists that can match: those with rules, which may add any
        score, and those without whose score reaches the threshold, an exclusion hit
        scoring -inf (with room for the score's rounding to 3 decimals: ten times 0.1 is
        0.9999999999999999)."""
        if not self._keys or not (fields[0].original or fields[1].original):
            return {}
        if self._scanner is not None and not self._cased_atoms:
            return self._scanner.lists(*_joined(fields), MAX_HITS_PER_TERM, quick)
        # Case-sensitive spellings' hits are checked in the text order of `_scan`, then
        # grouped here: the scanner would group them before the check.
        per_list: dict[int, _ByAtom] = {}
        for raw in self._scan(fields):
            per_list.setdefault(self._list_of[raw[0]], {}).setdefault(raw[0], []).append(raw)
        if quick:
            for index, by_atom in list(per_list.items()):
                score = sum(self._points[hits[0][1]][atom] for atom, hits in by_atom.items())
                if score + 0.001 < self._hopeless[index]:
                    del per_list[index]
        return per_list

    def _scan_python(self, fields: tuple[Folded, Folded]) -> list[_Raw]:
        """`_scan` by the automaton, the definition of the C scanner (monitor/match/_scan.c), over
        the fields' text with each run of separators made one space, or a mark between
        spaces (_collapsed), so that a key finds its words however they are separated;
        hits are mapped back to the folded text."""
        title, body = (_collapsed(f.folded) for f in fields)
        norm, body_at = f"{title} \n {body} ", len(title) + 3
        candidates = self._automaton.find_matches_as_indexes(norm, overlapping=True)
        if not candidates:
            return []  # most documents, against most watchlists
        maps: list[tuple[list[int], list[int]] | None] = [None, None]  # made on a first hit
        candidates.sort(key=_start)  # by end, from the automaton: by start, then end
        plain, key_len, cased = self._plain, self._key_len, self._cased_atoms
        counts: dict[int, int] = {}
        kept: list[_Raw] = []
        for index, start, _ in candidates:
            if start == 0 or norm[start - 1] == " ":
                pairs, prefix = plain[index], 0
            else:
                found = self._with_prefix(norm, start, index)
                if found is None:
                    continue
                pairs, prefix = found
            field = 0 if start < body_at else 1
            base = body_at if field else 0
            if (found_map := maps[field]) is None:
                found_map = maps[field] = _collapsed_map(fields[field].folded)
            ends, shifts = found_map
            a = _uncollapsed(start - prefix - base, ends, shifts)
            b = _uncollapsed(start + key_len[index] - base, ends, shifts)
            for atom, alias in pairs:
                count_key = atom + atom + field
                seen = counts.get(count_key, 0)
                if seen < MAX_HITS_PER_TERM or atom in cased:
                    counts[count_key] = seen + 1
                    kept.append((atom, field, a, b, alias))
        return kept

    def _in_case(self, raws: list[_Raw], fields: tuple[Folded, Folded]) -> list[_Raw]:
        """`raws` without the hits of case-sensitive spellings whose letters are not in the
        case written (text.same_case), the atoms of such spellings then kept to their
        first MAX_HITS_PER_TERM per field (the scan keeps all their hits, so that "us"
        ten times does not hide a later "US")."""
        kept = []
        counts: dict[tuple[int, int], int] = {}
        for raw in raws:
            atom, field, start, end, alias = raw
            if atom in self._cased_atoms:
                if (atom, alias) in self._sensitive and not same_case(
                        alias, fields[field].original_text(start, end)):
                    continue
                seen = counts.get((atom, field), 0)
                if seen == MAX_HITS_PER_TERM:
                    continue
                counts[atom, field] = seen + 1
            kept.append(raw)
        return kept

    def _with_prefix(self, norm: str, start: int,
                     index: int) -> tuple[tuple[_Pair, ...], int] | None:
        """The patterns that hit where the candidate does not start a word, and the length
        of the proclitic before it; None when nothing explains the letters before it."""
        flags = self._flags[index]
        prefix = word_prefix(norm, start, flags)
        if prefix is None:
            return None
        if not prefix:
            return self._plain[index], 0
        if prefix in ARABIC_LAM_PROCLITICS:  # لل + السراج: a term with or without its ال
            return self._after_lam[index], len(prefix)
        if flags & SHORT_ARABIC and proclitic_blocked(prefix, self._keys[index]):
            return None  # the word is likelier a common word than a proclitic + this term
        return self._plain[index], len(prefix)

    def _hits(self, groups: Iterable[list[_Raw]], folded: tuple[Folded, Folded]
              ) -> tuple[tuple[Hit, ...], Hit | None]:
        """A Hit per raw hit, the groups' in order, pointing at the original text; and the
        body's first by offset (the snippet's), or None."""
        if self._c_hits is not None:
            return self._c_hits(groups, folded, self._kind, self._term, self._weight, Hit,
                                FIELDS)
        kinds, terms, weights = self._kind, self._term, self._weight
        out = []
        first: Hit | None = None
        for raws in groups:
            for atom_id, field, start, end, alias in raws:
                text = folded[field]
                a, b = text.span(start, end)
                hit = Hit(kinds[atom_id], terms[atom_id], alias, text.original[a:b],
                          FIELDS[field], a, weights[atom_id])
                out.append(hit)
                if field and (first is None or a < first.offset):
                    first = hit
        return tuple(out), first

    def evaluate(self, title: str, body: str) -> list[Result]:
        """One Result per watchlist, in config order, matched or not (the dry run)."""
        folded = (Folded(title), Folded(body))
        per_list = self._by_list(folded, quick=False)
        words = WordIndex(folded)
        results = []
        for index, compiled in enumerate(self._lists):
            wl = compiled.config
            by_atom = per_list.get(index)
            if by_atom is None:
                results.append(Result(Match(wl.name, 0.0, ()), wl.threshold, False))
                continue
            verdict = self._verdict(index, by_atom, words)
            excluded = verdict.excluded
            excluded_by = tuple(dict.fromkeys(hit.matched for hit in self._hits(
                [by_atom[atom] for atom in excluded], folded)[0])) if excluded else ()
            results.append(Result(self._explain(compiled, by_atom, verdict, folded),
                                  wl.threshold, verdict.matched, excluded_by, verdict.required))
        return results

    def matches(self, title: str, body: str) -> list[Match]:
        """The watchlists that match, in config order: the daemon's fast path, which works
        out hits, snippet and breakdown for those alone (in C for watchlists without rules
        or `require`, where monitor/match/_explain.c was built)."""
        folded = (Folded(title), Folded(body))
        per_list = self._by_list(folded, quick=True)
        if not per_list:
            return []
        words = WordIndex(folded)
        if self._c_matches is not None:
            return self._c_matches(per_list, folded, self._plan, lambda index, by_atom:
                                   self._match(index, by_atom, folded, words))
        out = []
        for index in sorted(per_list):
            match = self._match(index, per_list[index], folded, words)
            if match is not None:
                out.append(match)
        return out

    def _match(self, index: int, by_atom: _ByAtom, folded: tuple[Folded, Folded],
               words: WordIndex) -> Match | None:
        verdict = self._verdict(index, by_atom, words)
        if not verdict.matched:
            return None
        return self._explain(self._lists[index], by_atom, verdict, folded)

    # -- scoring --------------------------------------------------------------------------

    def _verdict(self, index: int, by_atom: _ByAtom, words: WordIndex) -> _Verdict:
        """Watchlist `index`'s score, its breakdown and whether it matches."""
        compiled = self._lists[index]
        wl = compiled.config
        lines: list[Contribution] = []  # the atoms' in config order, then the rules'
        score = 0.0
        excluded: list[int] = []
        role, points = self._role, self._points
        cached = self._lines
        for atom_id in sorted(by_atom):  # atoms are numbered in config order
            kind = role[atom_id]
            if kind == _SCORED:
                field = by_atom[atom_id][0][1]  # title hits come first (_scan)
                line = cached[field][atom_id]
                lines.append(line if line is not None else
                             self._cached_line(index, atom_id, field))
                score += points[field][atom_id]
            elif kind == _EXCLUDE:
                excluded.append(atom_id)
        for rule in compiled.rules:
            if _holds(rule.tree, by_atom, words):
                lines.append(rule.line)
                score += rule.line.points
        score = round(score, 3)
        required = compiled.require is None or _holds(compiled.require, by_atom, words)
        matched = bool(lines) and score > 0 and score >= wl.threshold and not excluded and \
            required
        return _Verdict(score, tuple(lines), tuple(excluded), required, matched)

    def _cached_line(self, index: int, atom: int, field: int) -> Contribution:
        """The breakdown line of the atom of watchlist `index` scoring in `field`."""
        line = self._lines[field][atom]
        if line is None:
            line = self._lines[field][atom] = self._line(self._lists[index].config, atom,
                                                         field == 0)
        return line

    def _line(self, wl: WatchlistConfig, ref: int, in_title: bool) -> Contribution:
        weight = self._weight[ref]
        factor = wl.title_weight if in_title else 1.0
        detail = f"weight {weight:g}" + (f" x title {wl.title_weight:g}" if in_title else "")
        return Contribution(f"{self._kind[ref]} {self._term[ref]}", weight * factor, detail)

    def _explain(self, compiled: _List, by_atom: _ByAtom, verdict: _Verdict,
                 folded: tuple[Folded, Folded]) -> Match:
        """The Match with the hits of all but the excluded atoms, snippet and breakdown."""
        excluded = verdict.excluded
        hits, first = self._hits(
            (raws for atom, raws in by_atom.items() if atom not in excluded) if excluded
            else by_atom.values(), folded)
        cut = _snippet if self._native else _snippet_python
        return Match(compiled.config.name, verdict.score, hits, cut(folded[1].original, first),
                     verdict.lines)


def _joined(fields: tuple[Folded, Folded]) -> tuple[str, int]:
    """The folded title and body as one text to scan, joined by a line break that no
    key holds (a token of its own, between block ends), so no phrase spans them; and
    where the body starts in it."""
    title = fields[0].folded
    return f"{title} \n {fields[1].folded} ", len(title) + 3


# Runs of separators that the automaton reads otherwise than as they stand: a mark
# (text.SENTENCE_MARK, BLOCK_MARK: always a run's first separator) and the spaces after
# it, or two spaces or more; how it reads each.
_RUN = re.compile(f"[{SENTENCE_MARK}{BLOCK_MARK}] *| {{2,}}")
_RUN_KINDS = ((BLOCK_MARK, re.compile(f"{BLOCK_MARK} *"), f" {BLOCK_MARK} "),
              (SENTENCE_MARK, re.compile(f"{SENTENCE_MARK} *"), f" {SENTENCE_MARK} "),
              ("  ", re.compile(" {2,}"), " "))


def _collapsed(folded: str) -> str:
    """The matcher's text as the automaton reads it: each run of separators one space, or
    its mark between spaces (" \x1e "): a key then finds a word before and after it, and
    only a key with that mark runs across it."""
    for present, pattern, kept in _RUN_KINDS:
        if present in folded:
            folded = pattern.sub(kept, folded)
    return folded


def _collapsed_map(folded: str) -> tuple[list[int], list[int]]:
    """Where `_collapsed(folded)` changed a run: per run, where it ends in the collapsed
    text, and the shift (folded minus collapsed offset) after it."""
    spans = [found.span() for found in _RUN.finditer(folded)]
    shifts = list(accumulate(b - a - (1 if folded[a] == " " else 3) for a, b in spans))
    return [b - shift for (_, b), shift in zip(spans, shifts, strict=True)], shifts


def _uncollapsed(at: int, ends: list[int], shifts: list[int]) -> int:
    """The folded offset of a word's start or end at `at` of `_collapsed`'s text."""
    k = bisect_right(ends, at) - 1
    return at + shifts[k] if k >= 0 else at


def _start(candidate: tuple[int, int, int]) -> int:
    return candidate[1]


def _scanner(keys: list[str], plain: list[tuple[_Pair, ...]], lam_only: list[tuple[_Pair, ...]],
             list_of: list[int], points: tuple[list[float], list[float]],
             hopeless: list[float], uncapped: bytes, short: dict[str, int]) -> Scanner | None:
    """The C scanner of these keys (monitor/match/_scan.c), or None where it was not built or
    two keys share its hash (then the automaton scans). `short`: the keys of 3 letters
    or fewer that start with an Arabic letter, by index."""
    if _CScanner is None:
        return None
    proclitics = tuple(sorted(ARABIC_PROCLITICS | ARABIC_LAM_PROCLITICS, key=len))
    blocked = [0] * len(keys)  # per key, bit j: proclitic j before it loses (rule 3)
    for key, k in short.items():  # the short keys, by index
        if key_flags(key) & SHORT_ARABIC:
            blocked[k] = sum(1 << j for j, proclitic in enumerate(proclitics)
                             if proclitic_blocked(proclitic, key))
    try:
        return _CScanner(keys, plain, lam_only, proclitics, ARABIC_LAM_PROCLITICS, blocked,
                         list_of, *points, hopeless, uncapped)
    except HashCollision:  # pragma: no cover - a 64-bit hash shared by two terms
        return None


# The C scanner and explainer where built and MONITOR_SPEEDUPS allows (monitor.speedups);
# None: the automaton and Python, to the same results.
_c_scan = speedups.load("monitor.match._scan")
class _NoCollision(Exception):
    """Never raised: HashCollision where the C scanner is not loaded."""


_CScanner: type[Scanner] | None = None if _c_scan is None else _c_scan.Scanner
HashCollision: type[Exception] = (
    _NoCollision if _c_scan is None else _c_scan.HashCollision)

_c_explain = speedups.load("monitor.match._explain")
_c_hits: Callable[..., tuple[tuple[Hit, ...], Hit | None]] | None = (
    None if _c_explain is None else _c_explain.hits)
_c_snippet: Callable[[str, int, int, int], str] | None = (
    None if _c_explain is None else _c_explain.snippet)
_c_matches: Callable[..., list[Match]] | None = (
    None if _c_explain is None else _c_explain.matches)


def _add_pair(table: dict[str, list[_Pair]], key: str, atom: int, spelling: str) -> None:
    """Adds (atom, spelling) to the key's pairs unless that atom is already its last."""
    pairs = table.setdefault(key, [])
    if not pairs or pairs[-1][0] != atom:
        pairs.append((atom, spelling))


class _Verdict(NamedTuple):
    """The matcher's own, made per watchlist hit: a tuple costs a fifth of a frozen
    dataclass to make."""

    score: float
    lines: tuple[Contribution, ...]  # the breakdown
    excluded: tuple[int, ...]
    required: bool
    matched: bool


# What an atom does to its watchlist's score: adds its weight, vetoes it, or neither (a
# word named only inside a rule).
_TERM, _SCORED, _EXCLUDE = 0, 1, 2
_ROLES = {"entity": _SCORED, "keyword": _SCORED, "phrase": _SCORED, "exclude": _EXCLUDE}
_VETO = float("-inf")  # an exclusion's points: no score makes up for it


def _holds(tree: _Tree, by_atom: _ByAtom, words: WordIndex) -> bool:
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


def _near(atoms: tuple[int, ...], within: int, by_atom: _ByAtom,
          words: WordIndex) -> bool:
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


def _snippet(body: str, first: Hit | None) -> str:
    """About SNIPPET_CHARS of the body around its first hit, cut at spaces: by
    monitor/match/_explain.c where it was built, else by `_snippet_python`."""
    if _c_snippet is None:
        return _snippet_python(body, first)
    if first is None:
        return _c_snippet(body, -1, 0, SNIPPET_CHARS)
    return _c_snippet(body, first.offset, len(first.matched), SNIPPET_CHARS)


def _snippet_python(body: str, first: Hit | None) -> str:
    """`_snippet`'s definition."""
    if first is None:
        return " ".join(body[:SNIPPET_CHARS].split())
    start = max(0, first.offset - SNIPPET_CHARS // 3)
    if start:
        space = body.find(" ", start)
        start = space + 1 if 0 <= space < first.offset else start
    end = min(len(body), start + SNIPPET_CHARS)
    space = body.rfind(" ", first.offset + len(first.matched), end)
    end = space if space > 0 and end < len(body) else end
    text = " ".join(body[start:end].split())
    return ("… " if start else "") + text + (" …" if end < len(body) else "")
