"""Items of one feed are not merged as one story on the text the feed repeats in them (its
template) or on a likeness two feeds' copies would show (monitor.dedup rules 4 and 5)."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor import admin, dedup
from monitor.config import Config, FeedConfig, SubscriberConfig, WatchlistConfig
from monitor.feeds import parse_feed
from monitor.fetch import Fetcher
from monitor.models import Item
from monitor.poller import Poller, Runtime
from monitor.store import Store
from tests import made_feeds
from tests.servers import HTTPServer, Route

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"
DAY = 20_000  # days since the epoch


def items_of(doc: bytes, feed: str = "f") -> list[Item]:
    return list(parse_feed(doc, feed, "f", "https://example.org/").items)


def template_of(items: list[Item], today: int = DAY) -> dedup.Template:
    return dedup.EMPTY_TEMPLATE.learn([dedup.shingles(i.summary) for i in items], today)


def containments(items: list[Item], template: dedup.Template | None) -> list[float]:
    sigs = [s for s in (dedup.signature(i.summary, template) for i in items) if s is not None]
    return [dedup.similarity(a, b) for a, b in itertools.combinations(sigs, 2)]


@pytest.mark.parametrize(("doc", "before"), [
    (made_feeds.podcast_with_sponsors(), 0.7),  # notes mostly one sponsor list
    (made_feeds.comparison_teasers(), 0.6),  # "X vs. Elasticsearch", "X vs. Graphite"
    (made_feeds.leaked_widget(), 0.9),  # mostly a widget's leaked script
])
def test_a_feeds_template_is_no_evidence(doc: bytes, before: float) -> None:
    items = items_of(doc)
    alike = containments(items, None)
    assert np.median(alike) >= before  # one story, to the signatures of before
    template = template_of(items)
    assert len(template.excluded) > 50
    assert all(c < 0.3 for c in containments(items, template))


def test_the_template_is_what_the_items_repeat_not_what_each_says() -> None:
    items = items_of(made_feeds.podcast_with_sponsors())
    template = template_of(items)
    sponsors = dedup.shingles(made_feeds.SPONSORS)
    assert np.isin(sponsors, template.excluded).mean() > 0.9
    own = np.setdiff1d(dedup.shingles(items[0].summary), sponsors)
    assert np.isin(own, template.excluded).mean() < 0.1
    # Two items telling one story are no template: copies must still be found.
    twice = dedup.EMPTY_TEMPLATE.learn([sponsors, sponsors], DAY)
    assert len(twice.excluded) == 0


def test_a_text_that_is_mostly_template_gets_no_signature() -> None:
    items = items_of(made_feeds.leaked_widget())
    template = template_of(items)
    assert all(dedup.signature(i.summary) is not None for i in items)
    assert all(dedup.signature(i.summary, template) is None for i in items)


def test_the_template_lasts_while_items_show_it() -> None:
    items = items_of(made_feeds.podcast_with_sponsors())
    template = template_of(items)
    sponsors = dedup.shingles(made_feeds.SPONSORS)
    later = DAY + dedup.TEMPLATE_DAYS + 1
    # A poll of one new episode, a month on, with the sponsor list: kept, and dated then.
    shown = template.learn([dedup.shingles(items[0].summary)], later)
    assert np.isin(sponsors, shown.excluded).mean() > 0.9
    assert set(shown.days[np.isin(shown.excluded, sponsors)]) == {later}
    # Without it: what no item showed for TEMPLATE_DAYS is gone.
    other = dedup.shingles(items_of(made_feeds.comparison_teasers())[0].summary)
    assert not np.isin(sponsors, template.learn([other], later).excluded).any()
    assert template.learn([other], DAY + 1).excluded.size == template.excluded.size


def test_the_template_is_kept_compact() -> None:
    many = [np.arange(i * 100, i * 100 + 3000, dtype=np.uint32) for i in range(3)]
    template = dedup.EMPTY_TEMPLATE.learn(many, DAY)
    assert len(template.excluded) == dedup.TEMPLATE_MAX
    again = dedup.Template.from_text(template.to_text())
    assert again == template and len(template.to_text()) <= 8 * dedup.TEMPLATE_MAX
    assert dedup.Template.from_text("not base64 at all!") == dedup.EMPTY_TEMPLATE
    assert dedup.Template.from_text("AAAA") == dedup.EMPTY_TEMPLATE


@pytest.mark.parametrize(("name", "titles"), [
    # Two posts of one series whose summaries are its standing intro, word for word.
    ("feedjira__FeedBurnerXHTML.xml", ("RotoAuthority League Update: The Early Leader",
                                       "RotoAuthority League Update: Early Trades")),
    # One quote posted twice, as two numbered items.
    ("miniflux__encoding_WINDOWS-1251.xml", ("Цитата #17703", "Цитата #17715")),
])
def test_distinct_items_of_one_feed_with_one_text_stay_apart(name: str,
                                                               titles: tuple[str, str]) -> None:
    items = items_of((FEEDS / name).read_bytes())
    a, b = (next(i for i in items if i.title == t) for t in titles)
    sig_a, sig_b = dedup.signature(a.summary), dedup.signature(b.summary)
    assert sig_a is not None and sig_b is not None
    assert dedup.similarity(sig_a, sig_b) >= 0.95  # two feeds' copies, to containment
    assert not dedup.same_feed_story(a.title, b.title, sig_a, sig_b, same_url=False)
    assert dedup.same_feed_story(a.title, a.title, sig_a, sig_a, same_url=False)  # relisted


def test_one_page_of_one_feed_is_one_story_while_its_title_holds() -> None:
    # Republished under a new GUID, its headline reworded as the story develops.
    assert dedup.same_feed_story("Haftar forces enter Sirte",
                                 "Haftar forces enter Sirte, residents flee", None, None,
                                 same_url=True)
    # A podcast that links every episode to its home page.
    assert not dedup.same_feed_story("Taverncast 62 - Temporal Anomaly",
                                     "Taverncast 61 - Life in the Middle Ages", None, None,
                                     same_url=True)


# -- through the poller, against a real Redis --------------------------------------------

COMMON = ["squarespace", "observability", "twttr", "the", "a", "and", "of", "to", "in"]


def catch_all(feeds: list[FeedConfig]) -> Runtime:
    """A watchlist that every item of these tests matches, and one subscriber."""
    wl = WatchlistConfig.model_validate({"name": "all", "threshold": 1, "keywords": COMMON})
    sub = SubscriberConfig(name="desk", email="desk@example.org", watchlists=("all",))
    return Runtime.build(Config(feeds=tuple(feeds), watchlists=(wl,), subscribers=(sub,)))


@pytest.fixture
async def poller(aredis: aioredis.Redis) -> AsyncIterator[Poller]:
    fetcher = Fetcher(timeout=5.0, allow_private=True)
    # The corpus feeds' items are years old: a max age of 30 years keeps them new.
    yield Poller(Store(aredis), fetcher, max_age=30 * 365 * 86400.0, max_new_items=1000)
    await fetcher.close()


def serve(http_server: HTTPServer, path: str, doc: bytes) -> FeedConfig:
    http_server.routes[path] = Route(200, doc, {"Content-Type": "application/rss+xml"})
    return FeedConfig(url=http_server.url(path), interval=60, scrape=False)


async def alerted_ids(store: Store) -> list[str]:
    return [json.loads(f["alert"])["item"]["id"]
            for _, f in await store.redis.xrange(store.keys.alerts)]


@pytest.mark.parametrize("doc", [made_feeds.podcast_with_sponsors(),
                                 made_feeds.comparison_teasers(), made_feeds.leaked_widget(),
                                 made_feeds.anchor_posts()[0]],
                         ids=["sponsors", "teasers", "widget", "anchors"])
async def test_every_item_of_a_templated_feed_alerts_once(poller: Poller,
                                                          http_server: HTTPServer,
                                                          doc: bytes) -> None:
    feed = serve(http_server, "/feed.xml", doc)
    with capture_logs() as logs:
        result = await poller.poll(feed, catch_all([feed]))
    ids = {i.id for i in items_of(doc, feed.id)}
    assert (result.new, result.alerts, result.bad) == (len(ids), len(ids), 0)
    assert sorted(await alerted_ids(poller.store)) == sorted(ids)
    assert not [e for e in logs if e["event"] == "copy of a known story"]


async def test_a_podcast_that_links_every_episode_to_its_home_page(
    poller: Poller, http_server: HTTPServer,
) -> None:
    # Taverncast: 131 episodes, 124 of them linked to http://taverncast.com/ (or www.):
    # before, one story URL, and 124 items merged into one story.
    doc = (FEEDS / "rss-parser__itunes-missing-image.rss").read_bytes()
    feed = serve(http_server, "/podcast.xml", doc)
    with capture_logs() as logs:
        result = await poller.poll(feed, catch_all([feed]))
    ids = {i.id for i in items_of(doc, feed.id)}
    copies = [e for e in logs if e["event"] == "copy of a known story"]
    assert (result.new, result.bad) == (len(ids), 0) and not copies
    assert await poller.store.unseen(sorted(ids)) == []
    # Next week's episode, at the same home page, in the poll after: its own story too.
    episode = made_feeds.rss([{"guid": "http://taverncast.com/shows/taverncast-63.mp3",
                               "title": "Taverncast 63 - The Next One",
                               "link": "http://taverncast.com/",
                               "description": "The cast talks about the next one at last."}])
    http_server.routes["/podcast.xml"] = Route(200, episode)
    with capture_logs() as logs:
        assert (await poller.poll(feed, catch_all([feed]))).new == 1
    assert not [e for e in logs if e["event"] == "copy of a known story"]


async def test_an_item_relisted_by_its_feed_is_still_one_story(poller: Poller,
                                                                http_server: HTTPServer) -> None:
    real = items_of((FEEDS / "rss-parser__guardian.rss").read_bytes())[:3]
    entries = [{"guid": i.url, "title": i.title, "link": i.url, "description": i.summary}
               for i in real]
    relisted = {**entries[0], "guid": entries[0]["guid"] + "?v=2",
                "link": entries[0]["link"] + "-2"}  # a new GUID and link, same title and text
    feed = serve(http_server, "/feed.xml", made_feeds.rss([*entries, relisted]))
    result = await poller.poll(feed, catch_all([feed]))
    assert (result.new, result.alerts) == (4, 3)


async def test_the_template_learned_in_one_poll_serves_the_next(poller: Poller,
                                                                http_server: HTTPServer,
                                                                aredis: aioredis.Redis) -> None:
    doc = made_feeds.podcast_with_sponsors(12)
    feed = serve(http_server, "/feed.xml", doc)
    await poller.poll(feed, catch_all([feed]))
    stored = dedup.Template.from_text(str(await aredis.get(poller.store.keys.feed_template(
        feed.id))))
    assert np.isin(dedup.shingles(made_feeds.SPONSORS), stored.excluded).mean() > 0.9
    # The next episode comes alone: nothing to learn from in its poll, so the template
    # it is signed without is the one kept from the first poll.
    notes = ("This week we look back at every game of the year and pick the ones that "
             "stayed with us, from tiny puzzle boxes to sprawling open worlds and back.")
    new = [{"guid": "ep-next", "title": "Giant Bombcast 604: Next",
            "link": "https://www.giantbomb.com/shows/604-next/",
            "description": f"<p>{notes}</p><p>{made_feeds.SPONSORS}</p>"}]
    http_server.routes["/feed.xml"] = Route(200, made_feeds.rss(new) + b" ")
    assert (await poller.poll(feed, catch_all([feed]))).alerts == 1
    (item,) = items_of(made_feeds.rss(new), feed.id)
    sig = dedup.from_bytes(base64.b64decode(await aredis.hget(poller.store.keys.story(item.id),
                                                              "sig")))
    own = dedup.signature(item.summary, stored)
    assert own is not None and sig[dedup.NUM_PERM] == own[dedup.NUM_PERM]
    assert sig[dedup.NUM_PERM] < len(dedup.shingles(item.summary))  # the sponsors left out


async def test_the_story_of_an_anchor_post_is_found_by_its_link(poller: Poller,
                                                                 http_server: HTTPServer) -> None:
    doc, _ = made_feeds.anchor_posts()
    feed = serve(http_server, "/feed.xml", doc)
    await poller.poll(feed, catch_all([feed]))
    second = items_of(doc, feed.id)[1]
    info = await admin.story_report(poller.store, second.url)
    assert info is not None and info["url"] == second.url and info["id"] == second.id
    assert await admin.story_report(poller.store, second.url.split("#")[0]) is None
