"""Adaptive poll intervals: cadence from item dates or from polls, feed hints, bounds."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import redis.asyncio as aioredis

from monitor.config import Config, FeedConfig, load_config
from monitor.errors import ConfigError
from monitor.feeds import cadence, parse_feed
from monitor.fetch import Fetcher
from monitor.match import Matcher
from monitor.poller import Poller, Runtime
from monitor.store import Store
from tests.servers import HTTPServer, Route

DATA = Path(__file__).resolve().parent / "data" / "feeds"
NOW = 1_800_000_000.0


def at(seconds_ago: float) -> datetime:
    return datetime.fromtimestamp(NOW - seconds_ago, UTC)


def dated_rss(ages: list[float | None], extra: str = "", now: float | None = None) -> bytes:
    """RSS whose items were published `ages` seconds before `now` (None: no date)."""
    base = time.time() if now is None else now
    items = []
    for n, age in enumerate(ages):
        date = "" if age is None else \
            f"<pubDate>{format_datetime(datetime.fromtimestamp(base - age, UTC))}</pubDate>"
        items.append(f"<item><guid>g{n}-{age}</guid><title>{escape(f'Item {n}')}</title>{date}"
                     "</item>")
    return ('<?xml version="1.0"?><rss version="2.0" '
            'xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel><title>t</title>'
            f"{extra}{''.join(items)}</channel></rss>").encode()


# -- pure rules -----------------------------------------------------------------------------

def test_busy_feed_gap_is_window_over_items() -> None:
    dates = cadence.dated([at(60 * k) for k in range(1, 21)], NOW)  # one a minute, 20 minutes
    assert dates is not None and dates.count == 20
    assert dates.gap(NOW) == pytest.approx(60.0)


def test_gap_grows_while_a_feed_is_quiet() -> None:
    dates = cadence.dated([at(3600 * k) for k in range(1, 5)], NOW)
    assert dates is not None
    assert dates.gap(NOW) == pytest.approx(3600.0)
    assert dates.gap(NOW + 4 * 3600) == pytest.approx(7200.0)  # nothing new for 4 more hours


def test_dates_that_say_nothing_about_cadence() -> None:
    assert cadence.dated([None, None], NOW) is None
    assert cadence.dated([at(10)] * 30, NOW) is None  # every item stamped with one date
    future = cadence.dated([at(-86400), at(-90000), at(600)], NOW)  # two dated tomorrow
    assert future is not None and future.count == 1
    stale = cadence.dated([at(30 * 86400), at(40 * 86400)], NOW)  # nothing within a week
    assert stale is not None and stale.gap(NOW) == pytest.approx(cadence.CADENCE_WINDOW)


@pytest.mark.parametrize(("ttl", "period", "frequency", "hint"), [
    ("60", None, None, 3600.0),
    (None, "hourly", "1", 3600.0),
    (None, "daily", "4", 21600.0),
    (None, "weekly", None, 7 * 86400.0),
    ("10", "daily", "2", 43200.0),  # two hints: the feed asks for the slower
    ("ten", "fortnightly", "x", None),
    ("0", None, None, None),
    ("-5", None, None, None),
    ("100000", None, None, 7 * 86400.0),  # capped at a week
])
def test_feed_hints(ttl: str | None, period: str | None, frequency: str | None,
                    hint: float | None) -> None:
    assert cadence.feed_hint(ttl, period, frequency) == hint


def test_next_interval_clamps_and_honours_hints() -> None:
    busy = cadence.Dated(20, NOW - 1200)  # 60 s between items
    quiet = cadence.Dated(2, NOW - 2 * 86400)  # a day between items
    common = {"interval": 900.0, "low": 300.0, "high": 3600.0, "now": NOW}
    assert cadence.next_interval(**common, dates=busy) == 300.0
    assert cadence.next_interval(**common, dates=quiet) == 3600.0
    assert cadence.next_interval(**common, dates=cadence.Dated(3, NOW - 3600)) == 1200.0
    assert cadence.next_interval(**common, dates=busy, hint=1800.0) == 1800.0
    assert cadence.next_interval(**common, dates=busy, hint=86400.0) == 3600.0
    assert cadence.next_interval(**common) == 900.0  # nothing known: the configured interval
    assert cadence.next_interval(**common, hint=1200.0) == 1200.0
    assert cadence.next_interval(**common, dates=busy, adaptive=False, hint=1800.0) == 900.0


def test_observed_cadence_for_undated_feeds() -> None:
    seen = cadence.Observed().after_poll(new=10, now=NOW)
    assert seen.last_new == NOW and seen.estimate(NOW) is None  # a first poll measures nothing
    seen = seen.after_poll(new=0, now=NOW + 600)
    seen = seen.after_poll(new=2, now=NOW + 1200)
    assert seen.gap == pytest.approx(600.0)
    seen = seen.after_poll(new=1, now=NOW + 1500)
    assert seen.gap == pytest.approx(0.5 * 300 + 0.5 * 600)
    assert seen.estimate(NOW + 1500) == pytest.approx(450.0)
    assert seen.estimate(NOW + 1500 + 7200) == pytest.approx(7200.0)  # quiet since
    assert cadence.Observed.from_state(seen.state()) == cadence.Observed(NOW + 1500, 450.0)
    assert cadence.Observed.from_state({"last_new": "x", "observed_gap": ""}) == cadence.Observed()


def test_default_bounds_follow_the_interval() -> None:
    assert FeedConfig(url="https://x.org/f", interval=900).bounds == (300.0, 3600.0)
    assert FeedConfig(url="https://x.org/f", interval=90).bounds == (60.0, 360.0)
    assert FeedConfig(url="https://x.org/f", interval=30).bounds == (30.0, 120.0)
    assert FeedConfig(url="https://x.org/f", interval=86400 * 2).bounds == (57600.0, 172800.0)
    assert FeedConfig(url="https://x.org/f", interval="15m", min_interval="2m",
                      max_interval="6h").bounds == (120.0, 21600.0)


def test_bounds_in_the_wrong_order_are_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "feeds.yaml").write_text(
        "feeds:\n  - url: https://x.org/f\n    min_interval: 2h\n    max_interval: 10m\n", "utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert "feeds.yaml:2" in str(caught.value)
    assert "min_interval (7200s) is above max_interval (600s)" in str(caught.value)


def test_hints_read_from_real_feeds() -> None:
    def hint(name: str) -> float | None:
        return parse_feed((DATA / name).read_bytes(), "f", "f", "https://example.org/").hint
    assert hint("feedjira__TechCrunch.xml") == 3600.0  # sy:updatePeriod hourly
    hinted = [p.name for p in sorted(DATA.glob("*.xml")) if b"<ttl>" in p.read_bytes()]
    assert hinted, "the corpus has feeds with <ttl>"
    for name in hinted:
        value = hint(name)
        assert value is not None and value >= 600, (name, value)


# -- in the poller, against a real Redis and a loopback server -------------------------------

@pytest.fixture
async def poller(aredis: aioredis.Redis) -> AsyncIterator[Poller]:
    fetcher = Fetcher(timeout=2.0, allow_private=True)
    yield Poller(Store(aredis), fetcher, max_age=30 * 86400)
    await fetcher.close()


async def next_poll_in(poller: Poller, feed: FeedConfig) -> float:
    due = await poller.store.redis.zscore(poller.store.keys.schedule, feed.id)
    return float(due) - time.time()


async def poll(poller: Poller, feed: FeedConfig) -> float:
    await poller.store.sync_schedule([feed.id])
    await poller.poll(feed, Runtime(Config(feeds=(feed,)), Matcher(()), {feed.id: feed}))
    return await next_poll_in(poller, feed)


async def test_busy_feed_is_polled_at_its_minimum(poller: Poller, http_server: HTTPServer) -> None:
    http_server.routes["/busy"] = Route(200, dated_rss([120 * k for k in range(1, 31)]),
                                        headers={"ETag": '"v1"'})
    feed = FeedConfig(url=http_server.url("/busy"), interval=900)
    assert await poll(poller, feed) == pytest.approx(300, abs=5)
    # 304 keeps what was learned (and a busy feed stays at its minimum).
    http_server.routes["/busy"] = Route(304, b"")
    assert await poll(poller, feed) == pytest.approx(300, abs=5)
    state = await poller.store.feed_state(feed.id)
    assert (state["status"], state["interval"], state["dated_n"]) == ("304", "300.0", "30")


async def test_quiet_feed_is_polled_at_its_maximum(poller: Poller, http_server: HTTPServer) -> None:
    http_server.routes["/quiet"] = Route(200, dated_rss([86400 * k for k in range(1, 6)]))
    feed = FeedConfig(url=http_server.url("/quiet"), interval=900, max_interval=7200)
    assert await poll(poller, feed) == pytest.approx(7200, abs=5)


async def test_cadence_between_bounds(poller: Poller, http_server: HTTPServer) -> None:
    http_server.routes["/f"] = Route(200, dated_rss([1000, 2000, 3000, 4000]))  # ~1000 s
    feed = FeedConfig(url=http_server.url("/f"), interval=600)
    assert await poll(poller, feed) == pytest.approx(1000, abs=5)


async def test_feed_ttl_is_a_floor(poller: Poller, http_server: HTTPServer) -> None:
    http_server.routes["/ttl"] = Route(200, dated_rss([60 * k for k in range(1, 31)],
                                                      extra="<ttl>30</ttl>"))
    feed = FeedConfig(url=http_server.url("/ttl"), interval=900)
    assert await poll(poller, feed) == pytest.approx(1800, abs=5)
    assert (await poller.store.feed_state(feed.id))["hint"] == "1800"


async def test_update_period_is_a_floor(poller: Poller, http_server: HTTPServer) -> None:
    extra = "<sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>"
    http_server.routes["/sy"] = Route(200, dated_rss([60 * k for k in range(1, 31)], extra=extra))
    feed = FeedConfig(url=http_server.url("/sy"), interval=900)
    assert await poll(poller, feed) == pytest.approx(1800, abs=5)


async def test_fixed_interval_when_not_adaptive(poller: Poller, http_server: HTTPServer) -> None:
    http_server.routes["/fixed"] = Route(200, dated_rss([60 * k for k in range(1, 31)],
                                                        extra="<ttl>120</ttl>"))
    feed = FeedConfig(url=http_server.url("/fixed"), interval=900, adaptive=False)
    assert await poll(poller, feed) == pytest.approx(900, abs=5)


async def test_undated_feed_learns_from_its_polls(poller: Poller,
                                                  http_server: HTTPServer) -> None:
    feed = FeedConfig(url=http_server.url("/undated"), interval=900, min_interval=60)
    http_server.routes["/undated"] = Route(200, dated_rss([None] * 5))
    assert await poll(poller, feed) == pytest.approx(900, abs=5)  # nothing learned yet
    # Pretend the first poll was 20 minutes ago; this poll finds 4 new items: 5 min each.
    await poller.store.set_feed_state(feed.id, {"last_new": time.time() - 1200})
    http_server.routes["/undated"] = Route(200, dated_rss([None] * 9))
    assert await poll(poller, feed) == pytest.approx(300, abs=5)
