"""How often to poll a feed: its publishing cadence, its own hints, the operator's bounds.

Rules, in order:
1. Cadence from dates: the mean gap between a feed's items over the last CADENCE_WINDOW,
   counted from now back to the oldest dated item in that window, over the number of
   items in it. Counting from now (not from the newest item) lengthens the interval of a
   feed as it falls quiet. Items dated in the future, and feeds whose items all carry one
   date (the time the feed was generated), say nothing about cadence.
2. Cadence from polls, for feeds without usable dates: each poll that finds n new items
   adds a sample (time since the last poll that found any) / n to a moving average; the
   time since new items were last found raises the estimate while a feed is quiet.
3. The feed's own hints are a floor: RSS `<ttl>` (minutes) and `sy:updatePeriod` /
   `sy:updateFrequency` say how often polling is useful, and polling more often is not
   polite. A feed without cadence or hint keeps the configured `interval`.
4. The result is clamped to the feed's `[min_interval, max_interval]`; `adaptive: false`
   pins it to `interval`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

CADENCE_WINDOW = 7 * 86400.0
FUTURE_SLACK = 300.0  # clocks differ: a date this far ahead still counts as now
SMOOTHING = 0.5  # weight of the newest observed gap in the moving average (rule 2)
_PERIODS = {"hourly": 3600.0, "daily": 86400.0, "weekly": 7 * 86400.0,
            "monthly": 30 * 86400.0, "yearly": 365 * 86400.0}
_MAX_HINT = 7 * 86400.0


def feed_hint(ttl: object = None, period: object = None, frequency: object = None) -> float | None:
    """Seconds between useful polls that the feed itself asks for (rule 3), or None."""
    hints = []
    try:
        minutes = float(str(ttl).strip()) if ttl not in (None, "") else 0.0
    except ValueError:
        minutes = 0.0
    if minutes > 0:
        hints.append(minutes * 60)
    seconds = _PERIODS.get(str(period or "").strip().lower())
    if seconds is not None:
        try:
            times = float(str(frequency).strip()) if frequency not in (None, "") else 1.0
        except ValueError:
            times = 1.0
        hints.append(seconds / max(times, 1.0))
    return min(max(hints), _MAX_HINT) if hints else None


@dataclass(frozen=True, slots=True)
class Dated:
    """The dated items of a feed inside the cadence window (rule 1)."""

    count: int
    oldest: float  # unix time

    def gap(self, now: float) -> float:
        return max(now - self.oldest, 0.0) / self.count


def dated(published: Iterable[datetime | None], now: float) -> Dated | None:
    times = [t.timestamp() for t in published if t is not None]
    recent = [t for t in times if now - CADENCE_WINDOW <= t <= now + FUTURE_SLACK]
    if len(set(times)) < 2:  # no dates, or one date stamped on every item
        return None
    if not recent:  # dated, but nothing within the window: a quiet feed
        return Dated(1, now - CADENCE_WINDOW)
    return Dated(len(recent), min(recent))


@dataclass(frozen=True, slots=True)
class Observed:
    """Cadence learned from polls (rule 2), kept in the feed's state between polls."""

    last_new: float | None = None  # unix time of the last poll that found new items
    gap: float | None = None  # moving average of seconds per new item

    @classmethod
    def from_state(cls, state: Mapping[str, str]) -> Observed:
        def number(key: str) -> float | None:
            try:
                return float(state[key]) if state.get(key) else None
            except ValueError:
                return None
        return cls(number("last_new"), number("observed_gap"))

    def state(self) -> dict[str, str]:
        return {"last_new": "" if self.last_new is None else f"{self.last_new:.0f}",
                "observed_gap": "" if self.gap is None else f"{self.gap:.0f}"}

    def after_poll(self, new: int, now: float) -> Observed:
        if new <= 0:
            return self
        if self.last_new is None:  # first sight of the feed: no gap to measure yet
            return Observed(now, self.gap)
        sample = max(now - self.last_new, 0.0) / new
        gap = sample if self.gap is None else SMOOTHING * sample + (1 - SMOOTHING) * self.gap
        return Observed(now, gap)

    def estimate(self, now: float) -> float | None:
        if self.gap is None or self.last_new is None:
            return None
        return max(self.gap, now - self.last_new)


def next_interval(*, interval: float, low: float, high: float, adaptive: bool = True,
                  dates: Dated | None = None, observed: Observed | None = None,
                  hint: float | None = None, now: float) -> float:
    """Seconds until the feed's next poll, by the rules above."""
    if not adaptive:
        return interval
    cadence = dates.gap(now) if dates is not None else \
        observed.estimate(now) if observed is not None else None
    wanted = cadence if cadence is not None else interval
    if hint is not None:
        wanted = max(wanted, hint)
    return min(max(wanted, low), high)
