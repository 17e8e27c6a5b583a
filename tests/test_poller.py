"""The poller in process, against a real Redis and a loopback HTTP server, on hostile feeds."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.config import Config, FeedConfig, SubscriberConfig, WatchlistConfig
from monitor.extract import extract as real_extract
from monitor.fetch import Fetcher
from monitor.models import Article
from monitor.poller import INLINE_MAX, Poller, Runtime, known_items
from monitor.store import Store
from monitor.store.keys import FEED_TTL
from tests.daemon import rss
from tests.servers import HTTPServer, Route

SEED_PAGE = Path(__file__).resolve().parent.parent / "seeds" / "libya-sirte.html"


def runtime(feed: FeedConfig) -> Runtime:
    wl = WatchlistConfig.model_validate({"name": "libya", "keywords": ["Haftar", "حفتر"]})
    sub = SubscriberConfig(name="desk", email="desk@example.org", watchlists=("libya",))
    return Runtime.build(Config(feeds=(feed,), watchlists=(wl,), subscribers=(sub,)))


@pytest.fixture
async def poller(aredis: aioredis.Redis) -> AsyncIterator[Poller]:
    fetcher = Fetcher(timeout=2.0, max_bytes=2 * 1024 * 1024, allow_private=True)
    yield Poller(Store(aredis), fetcher, max_age=7 * 86400, max_new_items=50)
    await fetcher.close()


async def queued(store: Store) -> list[dict]:  # type: ignore[type-arg]
    entries = await store.redis.xrange(store.keys.alerts)
    return [json.loads(fields["alert"]) for _, fields in entries]


def feed_at(server: HTTPServer, path: str = "/feed", scrape: bool = False) -> FeedConfig:
    return FeedConfig(url=server.url(path), interval=60, scrape=scrape)


async def test_duplicate_and_missing_guids(poller: Poller, http_server: HTTPServer) -> None:
    body = rss([("same", "Haftar one", "http://example.org/1"),
                ("same", "Haftar one again", "http://example.org/1b"),
                ("", "Haftar without guid", "http://example.org/2"),
                ("", "Haftar without guid", "http://example.org/2")])
    http_server.routes["/feed"] = Route(200, body)
    feed = feed_at(http_server)
    result = await poller.poll(feed, runtime(feed))
    assert (result.items, result.new, result.alerts) == (4, 2, 2)
    again = await poller.poll(feed, runtime(feed))
    assert (again.new, again.alerts) == (0, 0)


async def test_thousands_of_items_are_taken_a_batch_per_poll(poller: Poller,
                                                          http_server: HTTPServer) -> None:
    items = [(f"g{i}", f"Haftar item {i}", f"http://example.org/{i}") for i in range(3000)]
    http_server.routes["/feed"] = Route(200, rss(items))
    feed = feed_at(http_server)
    with capture_logs() as logs:
        first = await poller.poll(feed, runtime(feed))
    assert (first.items, first.new, first.alerts) == (3000, 50, 50)
    assert any(e["event"].startswith("feed has more new items") for e in logs)
    second = await poller.poll(feed, runtime(feed))
    assert second.alerts == 50
    assert len({a["item"]["id"] for a in await queued(poller.store)}) == 100


async def test_items_left_for_the_next_poll_are_parsed_again(poller: Poller,
                                                            http_server: HTTPServer) -> None:
    items = [(f"g{i}", f"Haftar item {i}", f"http://example.org/{i}") for i in range(120)]
    http_server.routes["/feed"] = Route(200, rss(items))
    feed = feed_at(http_server)
    taken = []
    for _ in range(3):
        with capture_logs() as logs:
            result = await poller.poll(feed, runtime(feed))
        (polled,) = [e for e in logs if e["event"] == "feed polled"]
        taken.append((polled["parsed"], result.new))
    # Items known from earlier polls are skipped; the ones left unread are not.
    assert taken == [(120, 50), (70, 50), (20, 20)]
    assert len({a["item"]["id"] for a in await queued(poller.store)}) == 120


async def test_huge_title_is_cut(poller: Poller, http_server: HTTPServer) -> None:
    http_server.routes["/feed"] = Route(200, rss([("g", "Haftar " + "x" * 1_500_000, "")]))
    feed = feed_at(http_server)
    assert (await poller.poll(feed, runtime(feed))).alerts == 1
    (alert,) = await queued(poller.store)
    assert len(alert["item"]["title"]) <= 1000


async def test_dates_old_future_and_unparsable(poller: Poller, http_server: HTTPServer) -> None:
    def item(guid: str, date: str) -> str:
        return (f"<item><guid>{guid}</guid><title>Haftar {guid}</title>"
                f"<pubDate>{date}</pubDate></item>")
    old = format_datetime(datetime.now(UTC) - timedelta(days=30), usegmt=True)
    future = format_datetime(datetime.now(UTC) + timedelta(days=3), usegmt=True)
    body = (f'<rss version="2.0"><channel><title>t</title>{item("old", old)}'
            f'{item("future", future)}{item("garbage", "not a date at all")}</channel></rss>')
    http_server.routes["/feed"] = Route(200, body.encode())
    feed = feed_at(http_server)
    assert (await poller.poll(feed, runtime(feed))).alerts == 2
    titles = {a["item"]["title"] for a in await queued(poller.store)}
    assert titles == {"Haftar future", "Haftar garbage"}


async def test_invalid_utf8_still_yields_items(poller: Poller, http_server: HTTPServer) -> None:
    body = rss([("g", "Haftar PLACEHOLDER", "")]).replace(b"PLACEHOLDER", b"\xff\xfe\xc3(")
    http_server.routes["/feed"] = Route(200, body)
    feed = feed_at(http_server)
    assert (await poller.poll(feed, runtime(feed))).alerts == 1


@pytest.mark.parametrize(
    "body",
    [b"<html><body>Moved. Click here.</body></html>", b"", b"\x00" * 1000,
     b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;'
     b'&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]><rss><channel><item>'
     b"<title>&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;</title></item></channel></rss>"],
    ids=["html", "empty", "nul-bytes", "entity-expansion"],
)
async def test_not_a_feed_is_a_failed_poll_with_backoff(poller: Poller, http_server: HTTPServer,
                                                        body: bytes) -> None:
    http_server.routes["/feed"] = Route(200, body)
    feed = feed_at(http_server)
    with capture_logs() as logs:
        result = await poller.poll(feed, runtime(feed))
        await poller.poll(feed, runtime(feed))
    state = await poller.store.feed_state(feed.id)
    if result.status == "ok":  # a parser may read the entity document; never expanded
        assert all(len(a["item"]["title"]) <= 1000 for a in await queued(poller.store))
        return
    assert result.status == "error" and state["status"] == "error"
    assert state["failures"] == "2" and state["error"].startswith("parser: no items")
    assert [e["event"] for e in logs].count("feed poll failed") == 2
    assert float(state["next_poll"]) > datetime.now(UTC).timestamp() + 100  # backed off


async def test_xml_external_entities_are_not_read(poller: Poller, http_server: HTTPServer,
                                                  tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    body = (f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
            f'<rss version="2.0"><channel><title>t</title><item><guid>1</guid>'
            f"<title>Haftar &x;</title></item></channel></rss>").encode()
    http_server.routes["/feed"] = Route(200, body)
    feed = FeedConfig(url=http_server.url("/feed"), name="hostile-feed", interval=60,
                      scrape=False)
    with capture_logs() as logs:
        await poller.poll(feed, runtime(feed))
    assert "TOP-SECRET" not in json.dumps(await queued(poller.store))
    # Refused, and said so, naming the feed: an XXE attempt leaves a trace.
    (warning,) = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"] == "feed has problems" and warning["feed"] == "hostile-feed"
    assert warning["error"].startswith("XML entities refused, not read or expanded (an XXE "
                                       f'attempt?): x (external: SYSTEM "file://{secret}")')


async def test_scrape_failure_falls_back_to_feed_text(poller: Poller,
                                                      http_server: HTTPServer) -> None:
    http_server.routes["/feed"] = Route(200, rss([("g", "Haftar visits", http_server.url("/gone"))]))
    feed = feed_at(http_server, scrape=True)
    with capture_logs() as logs:
        assert (await poller.poll(feed, runtime(feed))).alerts == 1
    (alert,) = await queued(poller.store)
    assert alert["scraped"] is False
    (event,) = [e for e in logs if e["event"].startswith("scrape failed")]
    assert "HTTP 404" in event["error"]


async def test_a_site_that_asks_for_a_pause_is_not_sent_the_rest_of_a_burst(
    poller: Poller, http_server: HTTPServer
) -> None:
    # Eight new items link to one site, which answers 429: after the requests already
    # under way (two at once per host), it is asked nothing more, and every item still
    # alerts, matched on its feed text.
    links = [(f"g{i}", f"Haftar {i}", http_server.url(f"/art{i}")) for i in range(8)]
    http_server.routes["/feed"] = Route(200, rss(links))
    for i in range(8):
        http_server.routes[f"/art{i}"] = Route(429, b"", {"Retry-After": "60"})
    feed = feed_at(http_server, scrape=True)
    with capture_logs() as logs:
        assert (await poller.poll(feed, runtime(feed))).alerts == 8
    articles = [r for r in http_server.requests if r.path.startswith("/art")]
    assert 1 <= len(articles) <= 2, [r.path for r in articles]
    assert all(a["scraped"] is False for a in await queued(poller.store))
    paused = [e for e in logs if e["event"].startswith("scrape failed")
              and "asked for a pause" in e["error"]]
    assert len(paused) == 8 - len(articles)


async def test_article_links_to_private_addresses_are_refused_by_default(
    aredis: aioredis.Redis, http_server: HTTPServer
) -> None:
    # The feed is the operator's (allowed); its item points at loopback: not fetched.
    http_server.routes["/feed"] = Route(200, rss([("g", "Haftar", http_server.url("/internal"))]))
    http_server.routes["/internal"] = Route(200, SEED_PAGE.read_bytes())
    fetcher = Fetcher(timeout=2.0)  # allow_private defaults to False
    try:
        poller = Poller(Store(aredis), fetcher, max_age=86400)
        feed = feed_at(http_server, scrape=True)
        with capture_logs() as logs:
            assert (await poller.poll(feed, runtime(feed))).alerts == 1
    finally:
        await fetcher.close()
    assert http_server.received("/internal", "GET") == []
    (event,) = [e for e in logs if e["event"].startswith("scrape failed")]
    assert "non-public address 127.0.0.1" in event["error"]


@pytest.mark.parametrize("threads", [0, 1])
async def test_small_inputs_are_worked_on_the_loop_and_large_ones_on_the_thread(
    aredis: aioredis.Redis, http_server: HTTPServer, monkeypatch: pytest.MonkeyPatch,
    threads: int,
) -> None:
    """Pages up to INLINE_MAX are extracted on the event loop; a larger one goes to the
    CPU thread, unless MONITOR_CPU_THREADS is 0. Both are scraped and matched alike."""
    where: dict[str, str] = {}

    def extract(html: str, url: str) -> Article:
        where[url.rsplit("/", 1)[1]] = threading.current_thread().name
        return real_extract(html, url)

    monkeypatch.setattr("monitor.poller.extract", extract)
    seed = SEED_PAGE.read_bytes()
    padded = seed.replace(b"</body>", b"<!-- " + b"x" * INLINE_MAX + b" --></body>")
    http_server.routes["/feed"] = Route(200, rss([("a", "Libya", http_server.url("/small")),
                                                  ("b", "Libya", http_server.url("/large"))]))
    http_server.routes["/small"] = Route(200, seed, {"Content-Type": "text/html"})
    http_server.routes["/large"] = Route(200, padded, {"Content-Type": "text/html"})
    fetcher = Fetcher(timeout=5.0, allow_private=True)
    poller = Poller(Store(aredis), fetcher, max_age=10 * 365 * 86400, cpu_threads=threads)
    try:
        feed = feed_at(http_server, scrape=True)
        await poller.poll(feed, runtime(feed))
    finally:
        poller.close()
        await fetcher.close()
    loop_thread = threading.current_thread().name
    assert where["small"] == loop_thread
    if threads:
        assert where["large"].startswith("monitor-cpu")
    else:
        assert where["large"] == loop_thread
    # The two pages are one story: it alerts once, from the scraped text.
    (alert,) = await queued(poller.store)
    assert alert["scraped"] is True
    assert {hit["matched"] for m in alert["matches"] for hit in m["hits"]} == {"حفتر"}


async def test_javascript_walls_are_counted_per_feed(poller: Poller,
                                                     http_server: HTTPServer) -> None:
    wall = (b"<html><body><noscript>Sorry, you need to enable JavaScript to visit this "
            b"website.</noscript><div id='root'></div></body></html>")
    http_server.routes["/wall"] = Route(200, wall, {"Content-Type": "text/html"})
    http_server.routes["/feed"] = Route(200, rss([
        ("a", "Haftar one", http_server.url("/wall")),
        ("b", "Haftar two", http_server.url("/wall?x=2"))]))
    feed = feed_at(http_server, scrape=True)
    assert (await poller.poll(feed, runtime(feed))).alerts == 2
    assert all(a["scraped"] is False for a in await queued(poller.store))
    assert (await poller.store.feed_state(feed.id))["no_article"] == "2"


async def test_unchanged_body_is_not_parsed_again(poller: Poller, http_server: HTTPServer) -> None:
    http_server.routes["/feed"] = Route(200, rss([("g", "Haftar", "")]))  # no ETag
    feed = feed_at(http_server)
    first = await poller.poll(feed, runtime(feed))
    second = await poller.poll(feed, runtime(feed))
    assert (first.status, first.items) == ("ok", 1)
    assert second.status == "not-modified"
    assert (await poller.store.feed_state(feed.id))["status"] == "unchanged"


async def test_items_read_before_are_not_parsed_again(poller: Poller,
                                                     http_server: HTTPServer) -> None:
    start = datetime.now(UTC) - timedelta(days=2)

    def document(build: str, items: int) -> bytes:
        body = "".join(
            f"<item><guid>g{i}</guid><title>Haftar {i}</title><pubDate>"
            f"{format_datetime(start + timedelta(hours=i), usegmt=True)}</pubDate></item>"
            for i in range(items))
        return (f'<rss version="2.0"><channel><title>t</title><lastBuildDate>{build}'
                f"</lastBuildDate>{body}</channel></rss>").encode()

    async def poll(body: bytes) -> tuple[int, int, int]:
        http_server.routes["/feed"] = Route(200, body)
        with capture_logs() as logs:
            result = await poller.poll(feed, runtime(feed))
        (polled,) = [e for e in logs if e["event"] == "feed polled"]
        assert polled["items"] == result.items
        return polled["parsed"], result.new, result.alerts

    feed = feed_at(http_server)
    assert await poll(document("Mon, 02 Mar 2026 10:00:00 GMT", 20)) == (20, 20, 20)
    assert len((await poller.store.feed_known(feed.id)).split()) == 20
    # One more item and a new build date: only the new item is parsed.
    assert await poll(document("Mon, 02 Mar 2026 10:05:00 GMT", 21)) == (1, 1, 1)
    # A new build date alone: nothing is parsed.
    assert await poll(document("Mon, 02 Mar 2026 10:10:00 GMT", 21)) == (0, 0, 0)
    state = await poller.store.feed_state(feed.id)
    assert state["items"] == "21"
    assert len((await poller.store.feed_known(feed.id)).split()) == 21
    # A shortcut that expires, so a feed removed from the config leaves nothing behind.
    assert 0 < await poller.store.redis.ttl(poller.store.keys.feed_known(feed.id)) <= FEED_TTL
    # Kept apart from the state hash, which stays in Redis's compact encoding.
    assert await poller.store.redis.object("encoding", poller.store.keys.feed(feed.id)) in (
        "listpack", "ziplist")
    # The cadence still counts every item, parsed or not.
    assert state["dated_n"] == "21"
    assert float(state["dated_oldest"]) == pytest.approx(start.timestamp(), abs=1)
    assert len(await queued(poller.store)) == 21
    # A document whose items cannot be told apart (an extension element named "item"):
    # parsed whole, and nothing is kept for the next poll.
    odd = document("Mon, 02 Mar 2026 10:15:00 GMT", 21).replace(
        b"<title>t</title>", b'<title>t</title><x:item xmlns:x="urn:x">ext</x:item>')
    assert await poll(odd) == (21, 0, 0)
    assert not await poller.store.redis.exists(poller.store.keys.feed_known(feed.id))


async def test_gone_feed_stops_being_polled(poller: Poller, http_server: HTTPServer) -> None:
    http_server.routes["/feed"] = Route(410)
    feed = feed_at(http_server)
    await poller.store.sync_schedule([feed.id])
    with capture_logs() as logs:
        result = await poller.poll(feed, runtime(feed))
    assert result.status == "gone"
    state = await poller.store.feed_state(feed.id)
    assert state["status"] == "gone"
    due = await poller.store.redis.zscore(poller.store.keys.schedule, feed.id)
    assert due > datetime.now(UTC).timestamp() + 300 * 86400
    assert any(e["event"].startswith("feed is gone (HTTP 410)") for e in logs)
    # Its state outlives the pause, so `monitor feeds` shows why it is not polled.
    assert await poller.store.redis.ttl(poller.store.keys.feed(feed.id)) > 3 * 300 * 86400


async def test_a_feed_no_longer_polled_leaves_its_state_to_expire(
    poller: Poller, http_server: HTTPServer
) -> None:
    """Every poll sets the expiry of the feed's state again: one removed from the config
    is polled no more, and its keys go within FEED_TTL."""
    http_server.routes["/feed"] = Route(200, rss([("g", "Haftar", "")]))
    feed = feed_at(http_server)
    await poller.poll(feed, runtime(feed))
    keys = [poller.store.keys.feed(feed.id), poller.store.keys.feed_known(feed.id)]
    for key in keys:
        assert FEED_TTL - 60 < await poller.store.redis.ttl(key) <= FEED_TTL
    await poller.store.redis.expire(keys[0], 60)  # as if a month had passed since
    http_server.routes["/feed"] = Route(304)
    await poller.poll(feed, runtime(feed))  # a 304 changes few fields, and still renews
    assert await poller.store.redis.ttl(keys[0]) > FEED_TTL - 60


async def test_permanent_redirect_moves_the_feed(poller: Poller, http_server: HTTPServer) -> None:
    http_server.routes["/old"] = Route(301, headers={"Location": "/new"})
    http_server.routes["/new"] = Route(200, rss([("g", "Haftar", "")]), {"ETag": '"1"'})
    feed = feed_at(http_server, "/old")
    with capture_logs() as logs:
        await poller.poll(feed, runtime(feed))
    assert (await poller.store.feed_state(feed.id))["moved_to"] == http_server.url("/new")
    assert any(e["event"].startswith("feed moved permanently") for e in logs)
    await poller.poll(feed, runtime(feed))
    assert len(http_server.received("/old", "GET")) == 1  # the second poll went straight there
    assert len(http_server.received("/new", "GET")) == 2


async def test_temporary_redirect_does_not_move_the_feed(poller: Poller,
                                                         http_server: HTTPServer) -> None:
    http_server.routes["/old"] = Route(302, headers={"Location": "/new"})
    http_server.routes["/new"] = Route(200, rss([("g", "Haftar", "")]))
    feed = feed_at(http_server, "/old")
    await poller.poll(feed, runtime(feed))
    assert (await poller.store.feed_state(feed.id))["moved_to"] == ""


def test_reloads_compile_the_watchlists_only_when_they_changed() -> None:
    feed = FeedConfig(url="https://example.org/feed", interval=60)
    first = runtime(feed)
    other_feed = FeedConfig(url="https://example.org/other", interval=60)
    same_lists = Runtime.build(replace(first.config, feeds=(feed, other_feed)),
                               first)
    assert same_lists.matcher is first.matcher
    assert set(same_lists.feeds) == {feed.id, other_feed.id}
    wl = WatchlistConfig.model_validate({"name": "libya", "keywords": ["Haftar", "سرت"]})
    new_lists = Runtime.build(replace(first.config, watchlists=(wl,)), first)
    assert new_lists.matcher is not first.matcher
    assert [m.watchlist for m in new_lists.matcher.matches("", "في سرت")] == ["libya"]


def test_known_items_that_do_not_read_are_parsed_again() -> None:
    assert known_items("a1:1764400000 b2: c3:garbage d4:12.5") == {
        "a1": 1764400000.0, "b2": None, "d4": 12.5}
