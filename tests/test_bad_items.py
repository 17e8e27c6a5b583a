"""A bad item never costs another one, never stalls its feed (monitor.poller rule 8), and
a poll says what it skipped (rule 7): real Redis, a loopback HTTP server, the real poller."""

from __future__ import annotations

import asyncio
import json
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor import admin, dedup
from monitor import poller as poller_module
from monitor.config import Config, FeedConfig, SubscriberConfig, WatchlistConfig
from monitor.fetch import Fetcher
from monitor.models import Alert
from monitor.poller import Poller, Runtime
from monitor.store import Store
from tests import made_feeds
from tests.daemon import Daemon
from tests.servers import HTTPServer, Route

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
SEED_TEXT = (Path(__file__).resolve().parent.parent / "seeds" /
             "000_5789ac1c2e1f81f5.txt").read_text("utf-8")


def runtime(feeds: list[FeedConfig]) -> Runtime:
    wl = WatchlistConfig.model_validate({"name": "libya", "keywords": ["Haftar", "حفتر"]})
    sub = SubscriberConfig(name="desk", email="desk@example.org", watchlists=("libya",))
    return Runtime.build(Config(feeds=tuple(feeds), watchlists=(wl,), subscribers=(sub,)))


@pytest.fixture
async def poller(aredis: aioredis.Redis) -> AsyncIterator[Poller]:
    fetcher = Fetcher(timeout=2.0, max_bytes=2 * 1024 * 1024, allow_private=True)
    yield Poller(Store(aredis), fetcher, max_age=7 * 86400, max_new_items=50)
    await fetcher.close()


def serve(server: HTTPServer, path: str, body: bytes, scrape: bool = False,
          content_type: str = "application/rss+xml") -> FeedConfig:
    server.routes[path] = Route(200, body, {"Content-Type": content_type})
    return FeedConfig(url=server.url(path), interval=60, scrape=scrape)


async def queued(store: Store) -> list[Alert]:
    return [Alert.from_json(f["alert"]) for _, f in await store.redis.xrange(store.keys.alerts)]


def clean_rss(n: int = 5) -> bytes:
    return made_feeds.rss([{"guid": f"clean-{i}", "title": f"Haftar clean {i}",
                            "link": f"https://clean.example/{i}",
                            "description": f"Haftar item {i} of the clean feed."}
                           for i in range(n)])


# The JSON Feed of issue 23: a lone surrogate escape ("\ud800") that json.loads accepts
# and orjson, Redis and the signature's CRC do not; an IPv6-literal link; odd fields.
BAD_JSON = made_feeds.json_feed([
    {"id": "s1", "title": "Haftar \ud800 in Sirte", "url": "https://bad.example/1",
     "content_text": "Haftar \udfff " + SEED_TEXT[:2000]},
    {"id": "s2", "title": "Haftar at [::1]", "url": "http://[::1]:8080/a"},
    {"id": 3, "title": ["Haftar"], "url": {"x": 1}, "content_html": "<p>Haftar\x00</p>"},
    {"id": "s4\ud800", "title": "Haftar \u202eetriS\u202c", "url": "http://[::1/broken"},
])


async def test_a_bad_feed_costs_the_clean_feed_beside_it_nothing(poller: Poller,
                                                                 http_server: HTTPServer,
                                                                 ) -> None:
    # Before: orjson raised on the surrogate, the whole commit batch (other feeds'
    # items included) failed, and the clean feed lost its poll.
    bad = serve(http_server, "/bad.json", BAD_JSON, content_type="application/feed+json")
    clean = serve(http_server, "/clean.xml", clean_rss())
    rt = runtime([bad, clean])
    results = await asyncio.gather(poller.poll(bad, rt), poller.poll(clean, rt))
    assert [(r.status, r.new, r.alerts, r.bad) for r in results] == [("ok", 4, 4, 0),
                                                                     ("ok", 5, 5, 0)]
    alerts = await queued(poller.store)
    titles = {a.item.title for a in alerts}
    assert {"Haftar \ufffd in Sirte", "Haftar at [::1]", "Haftar clean 0"} <= titles
    assert {a.item.url for a in alerts} >= {"http://[::1]:8080/a", "https://bad.example/1"}
    # Polled again: nothing new, and the feed's state moved on (no crash loop).
    first_poll = float((await poller.store.feed_state(bad.id))["last_poll"])
    again = await poller.poll(bad, rt)
    state = await poller.store.feed_state(bad.id)
    assert (again.status, state["status"], state["error"]) == ("not-modified", "unchanged", "")
    assert float(state["last_poll"]) > first_poll


async def test_an_ipv6_literal_link_is_scraped_and_keyed_with_its_brackets(
    poller: Poller, http_server: HTTPServer,
) -> None:
    # Its brackets lost, then story_url raised ValueError: the feed's poll crashed every
    # interval and its state never moved on. Here nothing listens at [::1]:9: the scrape
    # fails, and the feed's own text is matched.
    doc = made_feeds.rss([{"guid": "v6", "title": "Haftar over IPv6", "link": "http://[::1]:9/a"}])
    feed = serve(http_server, "/feed.xml", doc, scrape=True)
    result = await poller.poll(feed, runtime([feed]))
    assert (result.status, result.alerts) == ("ok", 1)
    (alert,) = await queued(poller.store)
    assert alert.item.url == "http://[::1]:9/a" and not alert.scraped
    assert await poller.store.story_by_url(dedup.url_key("http://[::1]:9/a")) == alert.story


async def test_an_item_that_fails_is_logged_and_skipped(poller: Poller, http_server: HTTPServer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # A failure no input reaches today (the parser repairs what no encoder takes): made
    # here, in the signature, for one item of the batch.
    real = dedup.signature

    def signature(text: str, template: Any = None) -> Any:
        if "poison" in text:
            raise ValueError("signature: cannot sign this text")
        return real(text, template)

    monkeypatch.setattr(dedup, "signature", signature)
    items = [{"guid": f"g{i}", "title": f"Haftar {i}", "link": f"https://x.example/{i}",
              "description": "poison" if i == 2 else f"text {i}"} for i in range(5)]
    feed = serve(http_server, "/feed.xml", made_feeds.rss(items))
    with capture_logs() as logs:
        result = await poller.poll(feed, runtime([feed]))
    assert (result.status, result.new, result.alerts, result.bad) == ("ok", 5, 4, 1)
    (failed,) = [e for e in logs if e["event"] == "item failed; skipped"]
    assert failed["item"] == "https://x.example/2" and failed["log_level"] == "error"
    assert sorted(a.item.title for a in await queued(poller.store)) == \
        ["Haftar 0", "Haftar 1", "Haftar 3", "Haftar 4"]
    state = await poller.store.feed_state(feed.id)
    assert (state["status"], state["read"]) == ("200", "5 0 0 1")  # new, old, seen, bad


async def test_a_parser_failure_is_a_failed_poll_not_a_crash(poller: Poller,
                                                              http_server: HTTPServer,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              ) -> None:
    def parse_feed(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a parser bug")

    monkeypatch.setattr(poller_module, "parse_feed", parse_feed)
    feed = serve(http_server, "/feed.xml", clean_rss())
    result = await poller.poll(feed, runtime([feed]))
    state = await poller.store.feed_state(feed.id)
    assert result.status == "error" and state["error"] == "parser: RuntimeError: a parser bug"
    assert state["failures"] == "1" and float(state["next_poll"]) > poller.store.now() + 30


async def test_a_poll_says_what_it_skipped(poller: Poller, http_server: HTTPServer) -> None:
    # "0 new" said nothing: were the items too old, or seen before?
    recent = format_datetime(datetime.now(UTC), usegmt=True)
    items = [{"guid": f"new{i}", "title": f"Haftar new {i}", "pubDate": recent}
             for i in range(2)]
    items += [{"guid": f"old{i}", "title": f"Haftar old {i}",
               "pubDate": "Mon, 01 Jan 2018 00:00:00 GMT"} for i in range(3)]
    doc = made_feeds.rss(items)
    feed = serve(http_server, "/feed.xml", doc)
    with capture_logs() as logs:
        first = await poller.poll(feed, runtime([feed]))
    assert (first.items, first.new, first.old, first.seen) == (5, 2, 3, 0)
    (polled,) = [e for e in logs if e["event"] == "feed polled"]
    assert (polled["new"], polled["old"], polled["seen"]) == (2, 3, 0)
    # One more item: the two read before are seen (and not parsed again), the old stay old.
    http_server.routes["/feed.xml"] = Route(200, made_feeds.rss(
        [{"guid": "new9", "title": "Haftar new 9"}, *items]))
    with capture_logs() as logs:
        second = await poller.poll(feed, runtime([feed]))
    assert (second.items, second.new, second.old, second.seen) == (6, 1, 3, 2)
    (polled,) = [e for e in logs if e["event"] == "feed polled"]
    assert (polled["parsed"], polled["old"], polled["seen"]) == (1, 3, 2)
    rows = await admin.feeds_report(poller.store, runtime([feed]).config)
    assert (rows[0]["new"], rows[0]["old"], rows[0]["seen"]) == (1, 3, 2)
    assert "6 items (1 new, 3 older than the max age, 2 seen before)" in \
        admin.format_feeds(rows)


def test_run_once_on_a_bad_feed_exits_0_and_delivers_the_rest(tmp_path: Path, redis_url: str,
                                                              http_server: HTTPServer) -> None:
    # Before: a traceback, exit status 1, nothing delivered.
    http_server.routes["/bad.json"] = Route(200, BAD_JSON, {"Content-Type": "application/json"})
    http_server.routes["/clean.xml"] = Route(200, clean_rss(3))
    http_server.routes["/hook"] = Route(200, b"ok")
    config = tmp_path / "config"
    (config / "watchlists").mkdir(parents=True)
    (config / "feeds.yaml").write_text(textwrap.dedent(f"""\
        feeds:
          - {{url: "{http_server.url('/bad.json')}", scrape: false}}
          - {{url: "{http_server.url('/clean.xml')}", scrape: false}}
    """), "utf-8")
    (config / "watchlists" / "libya.yaml").write_text(textwrap.dedent(f"""\
        name: libya
        keywords: [Haftar]
        subscribers:
          - {{webhook: "{http_server.url('/hook')}", secret: "s3cret"}}
    """), "utf-8")
    env = {"MONITOR_CONFIG_DIR": str(config), "MONITOR_DATA_DIR": str(tmp_path / "data"),
           "MONITOR_REDIS_URL": redis_url}
    daemon = Daemon(tmp_path, env, ("run", "--once")).start()
    assert daemon.wait() == 0, daemon.log
    assert "Traceback" not in daemon.log
    delivered = [json.loads(r.body) for r in http_server.received("/hook")]
    assert len({d["item"]["id"] for d in delivered}) == 7
    assert "4 new, 4 alerts" in daemon.log and "3 new, 3 alerts" in daemon.log
