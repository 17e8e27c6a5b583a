"""A page without article text: a wall in front of it (the site blocks scraping, counted
per feed for `monitor feeds`) or a page where the extractor found no article (logged as the
extractor's miss, not counted against the site). Real 2025 pages of tests/data/wcxb."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor import admin
from monitor.config import Config, FeedConfig, SubscriberConfig, WatchlistConfig
from monitor.extract import extract, wall
from monitor.fetch import Fetcher
from monitor.poller import Poller, Runtime
from monitor.store import Store
from tests.daemon import rss
from tests.servers import HTTPServer, Route
from tests.test_extract import wcxb_page


@pytest.mark.parametrize(("page_id", "kind"), [
    ("4577", "javascript"),  # express.com: "You need to enable JavaScript to run this app."
    ("4681", "javascript"),  # boardgamegeek.com: an app shell, no text without JavaScript
])
def test_real_walls_are_walls(page_id: str, kind: str) -> None:
    html, row = wcxb_page(page_id)
    assert extract(html, url=row["url"]).text == ""
    assert wall(html) == kind


@pytest.mark.parametrize("page_id", [
    "3008",  # thomann.de: a cookie prompt over 18,000 characters of a shop's page
    "4833",  # health.com: a 20,000-character guide, which once came out empty
    "0533",  # webhostingtalk.com: a thread of `<br>`-separated posts
])
def test_pages_of_text_are_not_walls_even_with_a_cookie_prompt(page_id: str) -> None:
    html, _ = wcxb_page(page_id)
    assert wall(html) == ""


@pytest.mark.parametrize(("html", "kind"), [
    ("<html><body><div class='consent'><h2>We use cookies</h2><p>We and our partners use "
     "cookies. Accept all cookies to continue.</p><button>Accept</button></div></body></html>",
     "consent"),
    ("<html><body><h1>Just a moment...</h1><p>Checking your browser before accessing "
     "example.org.</p></body></html>", "bot check or sign-in"),
    ("<html><head><meta http-equiv='refresh' content='0;url=/a'></head><body>"
     "<p>Redirecting…</p></body></html>", "redirect"),
    ("<html><head><script>window.location.href='/a?js=1'</script></head><body></body></html>",
     "redirect"),
])
def test_consent_bot_check_and_redirect_walls(html: str, kind: str) -> None:
    assert wall(html) == kind


# A photo page: its only text is the photos' captions, which are never article text.
FRONT = ("<html><head><title>In pictures</title></head><body>" + "".join(
    f"<figure><img src='/p/{n}.jpg'><figcaption>Envoys arrive in Sirte for round {n} of the "
    f"talks. Photo: Reuters</figcaption></figure>" for n in range(12)) + "</body></html>"
         ).encode()


def runtime(feed: FeedConfig) -> Runtime:
    wl = WatchlistConfig.model_validate({"name": "libya", "keywords": ["Haftar"]})
    sub = SubscriberConfig(name="desk", email="desk@example.org", watchlists=("libya",))
    return Runtime.build(Config(feeds=(feed,), watchlists=(wl,), subscribers=(sub,)))


@pytest.fixture
async def poller(aredis: aioredis.Redis) -> AsyncIterator[Poller]:
    fetcher = Fetcher(timeout=2.0, max_bytes=2 * 1024 * 1024, allow_private=True)
    yield Poller(Store(aredis), fetcher, max_age=7 * 86400, max_new_items=50)
    await fetcher.close()


async def test_the_poller_counts_walls_and_logs_extractor_misses_apart(
        poller: Poller, http_server: HTTPServer) -> None:
    walled, _ = wcxb_page("4577")
    assert extract(FRONT).text == "" and wall(FRONT) == ""
    http_server.routes["/wall"] = Route(200, walled.encode(), {"Content-Type": "text/html"})
    http_server.routes["/front"] = Route(200, FRONT, {"Content-Type": "text/html"})
    http_server.routes["/feed"] = Route(200, rss([
        ("a", "Haftar one", http_server.url("/wall")),
        ("b", "Haftar two", http_server.url("/front"))]))
    feed = FeedConfig(url=http_server.url("/feed"), interval=60, scrape=True)
    with capture_logs() as logs:
        assert (await poller.poll(feed, runtime(feed))).alerts == 2
    events = {e["item"]: e for e in logs if str(e["event"]).startswith("scrape found no")}
    assert "the page is a wall" in events[http_server.url("/wall")]["event"]
    assert events[http_server.url("/wall")]["wall"] == "javascript"
    missed = events[http_server.url("/front")]
    assert "extractor found none" in missed["event"] and "wall" not in missed
    assert "wall" not in missed["event"]
    # Only the wall counts against the site in `monitor feeds`.
    assert (await poller.store.feed_state(feed.id))["no_article"] == "1"
    (row,) = await admin.feeds_report(poller.store, runtime(feed).config)
    assert row["pages_without_article"] == 1
    assert "1 pages behind a wall (scraping blocked)" in admin.format_feeds([row])
