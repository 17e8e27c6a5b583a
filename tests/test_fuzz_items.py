"""Random hostile items through parse -> item -> story -> commit -> alert: no exception
escapes a poll, and every other item of the batch is still committed (issue 23).

Text draws on lone surrogates, NUL and other controls, bidi controls, combining marks,
markup and character references to no character; links on IPv6 literals (with and
without brackets), ports in and out of range, userinfo, IDNs, fragments, other schemes
and relative links; fields on the wrong JSON types and unparsable dates. Each document is
served on loopback, as RSS (its bytes UTF-8 with surrogates passed through, so not
quite UTF-8) or as a JSON Feed (surrogates as \\u escapes), and polled by the real poller
beside a clean feed that shares its commit batches."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import dedup, feeds
from monitor.config import Config, FeedConfig, SubscriberConfig, WatchlistConfig
from monitor.fetch import Fetcher
from monitor.models import Alert
from monitor.poller import Poller, Runtime
from monitor.store import Store
from tests.servers import HTTPServer, Route

SPECIAL = ["\ud800", "\udfff", "\udbff\udc00", "\x00", "\x07", "\x1b", "\x7f", "\u202e",
           "\u202c", "\u200f", "\u2066", "\u0301", "\u0651", "e\u0301\u0302", "\ufeff",
           "\ufffe", "\U0010ffff", "&", "&amp;", "&#xD800;", "&#0;", "&#x110000;",
           "&#99999999999;", "&nbsp;", "<br/>", "</p><p>", "<script>var x=1;</script>",
           "<", ">", "]]>", "حفتر", "سرت", "日本", " ", "\n", "\t"]
WORDS = ["Haftar", "Sirte", "ceasefire", "Libya", "talks", "the", "forces", "city"]
text = st.lists(st.one_of(st.sampled_from(SPECIAL), st.sampled_from(WORDS),
                          st.text(max_size=6)), max_size=40).map(" ".join)

hosts = st.sampled_from(["example.org", "EXAMPLE.org", "bücher.example", "xn--bcher-kva.example",
                         "[::1]", "[2001:db8::1]", "::1", "[::1", "[fe80::1%25eth0]",
                         "127.0.0.1", "user:pw@example.org", "@example.org", "",
                         "exa mple.org", "ex\ud800ample.org", "münchen.de."])
ports = st.sampled_from(["", ":80", ":8080", ":0", ":65535", ":65536", ":99999", ":abc", ":"])
paths = st.sampled_from(["", "/", "/a", "/2017/06/26.html", "/a b", "/%zz", "/ü", "/\x00"])
queries = st.sampled_from(["", "?utm_source=rss", "?id=3&fbclid=x", "?a=%ff", "?\ud800"])
fragments = st.sampled_from(["", "#a080605", "#comments", "#:~:text=x", "#\udfff", "#"])
absolute = st.builds(lambda s, h, p, pa, q, f: f"{s}{h}{p}{pa}{q}{f}",
                     st.sampled_from(["http://", "https://", "HTTP://", "javascript:",
                                      "mailto:", "ftp://", "//", ""]),
                     hosts, ports, paths, queries, fragments)
relative = st.sampled_from(["/news/1", "../b", "?q=1", "#top", "", " ", "./", "a/b#c"])
urls = st.one_of(absolute, relative, text)
json_values = st.one_of(text, st.integers(), st.floats(allow_nan=True), st.none(),
                        st.booleans(), st.lists(text, max_size=2),
                        st.dictionaries(st.text(max_size=3), text, max_size=2))
dates = st.one_of(st.none(), text, st.sampled_from([
    "2026-12-01T10:00:00Z", "Mon, 01 Jan 2018 00:00:00 GMT", "0000-00-00", "99999-01-01",
    "Tue, 31 Feb 2026 25:61:61 +9999", "yesterday"]))


@st.composite
def items(draw: st.DrawFn) -> dict[str, Any]:
    return {"id": draw(st.one_of(text, json_values)), "title": draw(text) + " Haftar",
            "url": draw(urls), "summary": draw(st.one_of(text, json_values)),
            "date": draw(dates)}


def rss(entries: list[dict[str, Any]]) -> bytes:
    """RSS with the fields as drawn: text escaped as markup (or not, for the character
    references), encoded as UTF-8 with any surrogate passed through."""
    def field(tag: str, value: Any) -> str:
        if not isinstance(value, str):
            return ""
        return f"<{tag}>{value.replace('<', '&lt;') if tag != 'description' else value}</{tag}>"
    body = "".join("<item>" + field("guid", e["id"]) + field("title", e["title"])
                   + field("link", e["url"]) + field("description", e["summary"])
                   + field("pubDate", e["date"]) + "</item>" for e in entries)
    doc = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>f</title>'
    return (doc + body + "</channel></rss>").encode("utf-8", "surrogatepass")


def json_feed(entries: list[dict[str, Any]]) -> bytes:
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "f",
                       "items": [{"id": e["id"], "title": e["title"], "url": e["url"],
                                  "external_url": e["url"], "content_html": e["summary"],
                                  "date_published": e["date"]} for e in entries]}).encode()


def runtime(feed_list: list[FeedConfig]) -> Runtime:
    wl = WatchlistConfig.model_validate({"name": "libya", "keywords": ["Haftar"]})
    sub = SubscriberConfig(name="desk", email="desk@example.org", watchlists=("libya",))
    return Runtime.build(Config(feeds=tuple(feed_list), watchlists=(wl,), subscribers=(sub,)))


CLEAN = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>c</title>'
         + "".join(f"<item><guid>clean-{i}</guid><title>Haftar clean {i}</title><link>"
                   f"https://clean.example/{i}</link><pubDate>"
                   f"{format_datetime(datetime.now(UTC), usegmt=True)}</pubDate></item>"
                   for i in range(3)) + "</channel></rss>").encode()


async def poll_one(redis_url: str, server: HTTPServer, doc: bytes, kind: str,
                   n: int) -> None:
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.flushall()
    fetcher = Fetcher(timeout=5.0, allow_private=True)
    poller = Poller(Store(client), fetcher, max_age=400 * 86400.0, max_new_items=100)
    try:
        server.routes[f"/odd{n}"] = Route(200, doc, {"Content-Type": kind})
        server.routes[f"/clean{n}"] = Route(200, CLEAN, {"Content-Type": "application/rss+xml"})
        odd = FeedConfig(url=server.url(f"/odd{n}"), interval=60, scrape=False)
        clean = FeedConfig(url=server.url(f"/clean{n}"), interval=60, scrape=False)
        rt = runtime([odd, clean])
        results = await asyncio.gather(poller.poll(odd, rt), poller.poll(clean, rt))
        store = poller.store
        # The clean feed beside it lost nothing.
        assert (results[1].status, results[1].new, results[1].alerts) == ("ok", 3, 3)
        parsed = feeds.parse_feed(doc, odd.id, odd.name, odd.url, kind)
        if results[0].status == "ok":
            assert results[0].bad == 0, results[0]
            oldest = store.now() - poller.max_age
            due = [i.id for i in parsed.items
                   if i.published is None or i.published.timestamp() >= oldest]
            assert await store.unseen(due) == []
        else:  # a document that is no feed: a failed poll, backed off, never a crash
            assert results[0].status == "error" and not parsed.items
        for state in (await store.feed_state(odd.id), await store.feed_state(clean.id)):
            assert state["last_poll"] and state["next_poll"]
        for _, fields in await client.xrange(store.keys.alerts):
            alert = Alert.from_json(fields["alert"])
            alert.to_json()
            assert dedup.url_key(alert.item.url) or not alert.item.url
    finally:
        poller.close()
        await fetcher.close()
        await client.aclose()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(items(), min_size=1, max_size=6), st.booleans())
def test_hostile_items_cost_no_other_item(redis_url: str, http_server: HTTPServer,
                                          entries: list[dict[str, Any]], as_json: bool) -> None:
    doc, kind = (json_feed(entries), "application/feed+json") if as_json else \
        (rss(entries), "application/rss+xml")
    asyncio.run(poll_one(redis_url, http_server, doc, kind, len(http_server.routes)))


@settings(max_examples=400, deadline=None)
@given(urls, text)
def test_links_and_text_never_raise_in_the_pure_stages(url: str, words: str) -> None:
    canonical = feeds.canonical_url(url, base="https://feed.example/rss")
    assert canonical == "" or canonical.startswith(("http://", "https://"))
    canonical.encode()  # UTF-8 all through: what Redis, orjson and HTTP take
    for candidate in (canonical, url):
        dedup.story_url(candidate)
        dedup.url_key(candidate)
    (found,) = feeds.item_urls([url], [url], "https://feed.example/rss")
    found.encode()
    body = feeds.plain_text(words)
    body.encode()
    assert "\x00" not in body
    dedup.signature(words * 10)
    dedup.signature(body * 10, dedup.EMPTY_TEMPLATE.learn([dedup.shingles(body)] * 3, 1))
