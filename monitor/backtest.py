"""Backtests: watchlists run over the archived items, and the difference two configs make.

Rules:
1. Each archived item (monitor.store.archive) is matched as `monitor check` matches a
   page: `Matcher.evaluate` over its title and the text the daemon matched, so a backtest
   lists exactly the items a check of each one would call a MATCH.
2. A feed's `watchlists:` limit holds as in the daemon: an item of a feed in the config
   is matched only against the watchlists the feed allows (an item of a feed no longer in
   the config, against all).
3. `compare` runs two configs over the same items: an item a watchlist matches under one
   and not under the other is gained (matched now) or lost, with the rule that made the
   difference: a veto, the `require` condition, the threshold, or the breakdown lines one
   verdict has and the other lacks.
4. Nothing is written and nothing is queued: this module only reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monitor.config import Config, WatchlistConfig
from monitor.match import Matcher, Result
from monitor.store.archive import ArchivedItem

_SINCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(value: str) -> float:
    """Seconds from `7d`, `12h`, `30m`, `2w` or `90s`."""
    found = _SINCE.match(value)
    if not found or float(found.group(1)) <= 0:
        raise ValueError(f"expected a span such as 7d, 12h or 30m, got {value!r}")
    return float(found.group(1)) * _UNITS[found.group(2)]


@dataclass(frozen=True, slots=True)
class Hit:
    """One item a watchlist matched."""

    item: ArchivedItem
    result: Result


@dataclass(slots=True)
class Report:
    items: int = 0
    watchlists: dict[str, list[Hit]] = field(default_factory=dict)


def selected(config: Config, names: Sequence[str]) -> tuple[WatchlistConfig, ...]:
    """The config's watchlists named (all without names); raises KeyError on an unknown one."""
    if not names:
        return config.watchlists
    known = {wl.name: wl for wl in config.watchlists}
    missing = [n for n in names if n not in known]
    if missing:
        raise KeyError(", ".join(missing))
    return tuple(known[n] for n in names)


class Backtest:
    """One config's watchlists, compiled once, judging archived items (rules 1, 2)."""

    def __init__(self, config: Config, names: Sequence[str] = ()) -> None:
        self.watchlists = selected(config, names) if names else config.watchlists
        self.matcher = Matcher(self.watchlists)
        self._allowed = {f.id: f.watchlists for f in config.feeds}

    def evaluate(self, item: ArchivedItem) -> dict[str, Result]:
        """Every watchlist's verdict on `item`, by name, that the item's feed allows."""
        allowed = self._allowed.get(item.feed_id)
        return {r.match.watchlist: r for r in self.matcher.evaluate(item.title, item.text)
                if allowed is None or r.match.watchlist in allowed}


def run(config: Config, items: Iterable[ArchivedItem], names: Sequence[str] = ()) -> Report:
    test = Backtest(config, names)
    report = Report(watchlists={wl.name: [] for wl in test.watchlists})
    for item in items:
        report.items += 1
        for name, result in test.evaluate(item).items():
            if result.matched:
                report.watchlists[name].append(Hit(item, result))
    return report


@dataclass(frozen=True, slots=True)
class Change:
    """An item a watchlist matches under one config and not under the other."""

    watchlist: str
    item: ArchivedItem
    now: Result | None  # the verdict under the config tried (None: no such watchlist)
    before: Result | None  # under the config compared with
    reason: str


@dataclass(slots=True)
class Comparison:
    items: int = 0
    gained: list[Change] = field(default_factory=list)
    lost: list[Change] = field(default_factory=list)


def compare(config: Config, other: Config, items: Iterable[ArchivedItem],
            names: Sequence[str] = ()) -> Comparison:
    """What `config` matches that `other` did not (gained), and the reverse (lost)."""
    wanted = set(names)
    now, before = Backtest(config), Backtest(other)
    out = Comparison()
    for item in items:
        out.items += 1
        a, b = now.evaluate(item), before.evaluate(item)
        for name in dict.fromkeys([*a, *b]):
            if wanted and name not in wanted:
                continue
            ra, rb = a.get(name), b.get(name)
            matched_a, matched_b = bool(ra and ra.matched), bool(rb and rb.matched)
            if matched_a != matched_b:
                change = Change(name, item, ra, rb, difference(ra, rb))
                (out.gained if matched_a else out.lost).append(change)
    return out


def _blocked(r: Result) -> str:
    """Why a verdict is no match, in a few words."""
    if r.excluded_by:
        return f"vetoed by exclude {', '.join(map(repr, r.excluded_by))}"
    if not r.required:
        return "its require condition not met"
    return f"score {r.match.score:g} below threshold {r.threshold:g}"


def difference(now: Result | None, before: Result | None) -> str:
    """The rule that turned one verdict into the other (rule 3)."""
    if now is None or before is None:
        return "watchlist added" if before is None else "watchlist removed"
    matched, missed = (now, before) if now.matched else (before, now)
    parts = []
    if missed.excluded_by and not matched.excluded_by:
        parts.append(f"exclude {', '.join(map(repr, missed.excluded_by))} "
                     + ("no longer vetoes" if now.matched else "now vetoes"))
    if not missed.required and matched.required:
        parts.append("require condition " + ("now met" if now.matched else "no longer met"))
    if now.threshold != before.threshold:
        parts.append(f"threshold {before.threshold:g} -> {now.threshold:g}")
    lines_now = {(c.rule, c.points) for c in now.match.breakdown}
    lines_before = {(c.rule, c.points) for c in before.match.breakdown}
    for rule, points in sorted(lines_now - lines_before):
        parts.append(f"+{points:g} {rule} (new)")
    for rule, points in sorted(lines_before - lines_now):
        parts.append(f"+{points:g} {rule} (gone)")
    if now.match.score != before.match.score:
        parts.append(f"score {before.match.score:g} -> {now.match.score:g}")
    if not parts:
        parts.append(_blocked(missed))
    return "; ".join(parts)


def when(item: ArchivedItem) -> str:
    """The item's publication time, else when it was archived, in UTC."""
    at = item.published if item.published is not None else item.archived
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M") + "Z"
