"""One story, one alert: story URLs, MinHash signatures, and the poller across feeds."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from monitor import dedup, speedups
from monitor.config import Config, FeedConfig, SubscriberConfig, WatchlistConfig
from monitor.extract import extract, extract_text
from monitor.fetch import Fetcher
from monitor.poller import Poller, Runtime, new_story
from monitor.store import Store, StoryLookup
from monitor.urls import canonical_url
from tests.daemon import rss
from tests.servers import HTTPServer, Route

ROOT = Path(__file__).resolve().parent.parent
SEED_TEXT = (ROOT / "seeds" / "000_5789ac1c2e1f81f5.txt").read_text("utf-8")
SEED_PAGE = (ROOT / "seeds" / "libya-sirte.html").read_bytes()
SYRIA = (ROOT / "tests" / "data" / "pages_expected" /
         "newspaper__arabic_article__expected.txt").read_text("utf-8")
OTHER_SIRTE = "وفي ليبيا، قال متحدث باسم قوات حفتر إن الوضع في سرت هادئ.\n" + SYRIA


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://www.site.org/libya/sirte", "https://site.org/libya/sirte/"),
        ("https://site.org/libya/sirte/amp/", "https://amp.site.org/libya/sirte"),
        ("https://m.site.org/libya/sirte?amp=1", "https://site.org/libya/sirte"),
        ("https://site.org/libya/sirte.amp.html", "https://site.org/libya/sirte.html"),
        ("https://site.org/a?id=3&outputType=amp", "https://site.org/a?id=3"),
    ],
)
def test_story_urls_agree_across_variants(a: str, b: str) -> None:
    assert dedup.story_url(a) == dedup.story_url(b)
    assert dedup.url_key(a) == dedup.url_key(b)


@pytest.mark.parametrize(("a", "b"), [("https://site.org/a?id=3", "https://site.org/a?id=4"),
                                      ("https://site.org/a", "https://other.org/a")])
def test_different_pages_keep_different_story_urls(a: str, b: str) -> None:
    assert dedup.url_key(a) != dedup.url_key(b)


def test_google_alerts_redirect_links_resolve_to_their_target() -> None:
    link = ("https://www.google.com/url?rct=j&sa=t&url=https://www.site.org/libya/sirte"
            "%3Futm_source%3Dalerts&ct=ga&cd=CAIy&usg=AOvVaw")
    assert canonical_url(link) == "https://www.site.org/libya/sirte"


def test_signatures_find_copies_and_keep_stories_apart() -> None:
    page_text = extract(SEED_PAGE).text  # the article as one site's template gives it
    raw = dedup.signature(SEED_TEXT)
    assert raw is not None and dedup.similarity(raw, dedup.signature(SEED_TEXT)) == 1.0
    assert dedup.similarity(raw, dedup.signature(page_text)) >= 0.9
    trimmed = "\n".join(SEED_TEXT.splitlines()[:9])  # a regional edition cut short
    assert dedup.similarity(raw, dedup.signature(trimmed)) >= 0.5
    assert dedup.similarity(raw, dedup.signature(OTHER_SIRTE)) < 0.1
    assert dedup.jaccard(raw, dedup.signature(trimmed)) < 0.5  # Jaccard alone would miss it
    assert dedup.signature("حفتر في سرت") is None  # too short to judge
    assert len(dedup.band_keys(raw)) == dedup.BANDS


def test_signatures_are_stable_across_processes() -> None:
    import subprocess
    import sys

    code = ("from monitor import dedup; import sys; "
            "print(dedup.band_keys(dedup.signature(sys.stdin.read()))[0])")
    runs = {subprocess.run([sys.executable, "-c", code], input=SEED_TEXT, text=True,
                           capture_output=True, env={"PYTHONHASHSEED": seed}).stdout
            for seed in ("1", "2")}
    assert len(runs) == 1 and next(iter(runs)).strip()


needs_c = pytest.mark.skipif(not speedups.in_use("monitor.dedup._minhash"),
                             reason="the C extension was not built")
# Few distinct words, so that shingles repeat; "plumless" and "buckeroo" share a CRC-32, so
# shingles that differ only there share it too and must still count as two.
signed_words = st.lists(st.sampled_from(["plumless", "buckeroo", "سرت", "حفتر", "a", "ß",
                                         "日本", "x" * 40, "\U0001f600"]) | st.text(min_size=1)
                        .map(lambda t: "".join(t.split()) or "w"), min_size=3, max_size=200)


@needs_c
@given(signed_words)
def test_the_c_signature_is_the_numpy_one(words: list[str]) -> None:
    assert dedup._c_signature is not None
    raw = dedup._c_signature(words, dedup._A_BYTES, dedup._B_BYTES)
    assert np.array_equal(np.frombuffer(raw, dtype=np.uint32), dedup.signature_numpy(words))


@needs_c
@given(signed_words, st.lists(st.integers(0, 2**32 - 1), max_size=20), st.data())
def test_the_c_signature_without_a_template_is_the_numpy_one(
    words: list[str], others: list[int], data: st.DataObject,
) -> None:
    assert dedup._c_signature is not None and dedup._c_shingles is not None
    own = np.frombuffer(dedup._c_shingles(words), dtype=np.uint32)
    assert np.array_equal(np.unique(own), dedup.shingles_numpy(words))
    # Left out: some of the text's own shingles and some others, as a template holds them.
    chosen = data.draw(st.lists(st.sampled_from(own.tolist()), max_size=len(own))) if len(own) \
        else []
    excluded = np.unique(np.array(chosen + others, dtype=np.uint32))
    raw = dedup._c_signature(words, dedup._A_BYTES, dedup._B_BYTES, excluded.tobytes())
    assert np.array_equal(np.frombuffer(raw, dtype=np.uint32),
                          dedup.signature_numpy(words, excluded))


@needs_c
def test_words_with_lone_surrogates_sign_as_in_python() -> None:
    # The C signature raised UnicodeEncodeError on such a word; both now hash its bytes
    # as Python's surrogatepass writes them.
    assert dedup._c_signature is not None and dedup._c_shingles is not None
    words = ["haftar", "\ud800", "sirte", "x\udfffy", "ليبيا"]
    raw = dedup._c_signature(words, dedup._A_BYTES, dedup._B_BYTES)
    assert np.array_equal(np.frombuffer(raw, dtype=np.uint32), dedup.signature_numpy(words))
    assert set(np.frombuffer(dedup._c_shingles(words), dtype=np.uint32)) == \
        set(dedup.shingles_numpy(words))


@pytest.mark.parametrize("url", [
    "http://[::1]:8080/a", "http://[::1/a", "http://::1:8080/a", "http://a.org:99999/x",
    "https://bücher.example/x", "http://x\ud800.org/", "https://xn--/", "http://[v1.x]/",
])
def test_story_urls_of_odd_links_never_raise(url: str) -> None:
    assert dedup.story_url(url) and dedup.url_key(url)


def test_story_urls_keep_a_kept_fragment_and_the_port() -> None:
    # monitor.feeds keeps a fragment only where it tells items apart: then it is a story.
    assert dedup.url_key("http://scripting.com/2017/06/26.html#a080605") != \
        dedup.url_key("http://scripting.com/2017/06/26.html#a090605")
    assert dedup.url_key("http://[::1]:8080/a") != dedup.url_key("http://[::1]:8081/a")
    assert dedup.story_url("https://www.bücher.example/a/") == \
        dedup.story_url("https://xn--bcher-kva.example/a")


@needs_c
def test_shingles_of_one_crc_count_apart_in_c() -> None:
    words = ["x", "plumless", "y", "x", "buckeroo", "y", "x", "plumless", "y"]
    signature = dedup.signature(" ".join(words * 5))
    assert signature is not None
    # Six distinct shingles (x plumless y, plumless y x, y x buckeroo, ...) in three pairs
    # that share a CRC: counted by their words.
    assert signature[-1] == dedup.signature_numpy(words * 5)[-1] == 6


# -- the poller: one story from three feeds --------------------------------------------------

def other_template(text: str, title: str) -> bytes:
    """The same article as another site sets it: different markup, furniture, headline."""
    paragraphs = "".join(f"<div class='para'><p>{line}</p></div>" for line in text.splitlines()
                         if line.strip())
    return (f"<html lang='ar'><body><div class='topbar'><a href='/'>الرئيسية</a></div>"
            f"<div class='content'><h1>{title}</h1><section class='body'>{paragraphs}"
            f"</section></div><div class='footer'><p>جميع الحقوق محفوظة</p></div>"
            f"</body></html>").encode()


def copy_feeds(http_server: HTTPServer, count: int) -> list[FeedConfig]:
    """`count` feeds of one item each: a copy of the seed story on a page of its own."""
    html = {"Content-Type": "text/html; charset=utf-8"}
    seed = extract_text(SEED_TEXT)
    feeds = []
    for n in range(count):
        http_server.routes[f"/copy{n}"] = Route(200, other_template(seed.text, seed.title), html)
        http_server.routes[f"/f{n}.xml"] = Route(
            200, rss([(f"g{n}", seed.title, http_server.url(f"/copy{n}"))]))
        feeds.append(FeedConfig(url=http_server.url(f"/f{n}.xml"), interval=60, scrape=True))
    return feeds


def runtime(feeds: list[FeedConfig], analyst_min: float = 0.0) -> Runtime:
    wl = WatchlistConfig.model_validate({"name": "libya", "threshold": 3, "entities": [
        {"name": "Haftar", "aliases": ["حفتر"], "weight": 2},
        {"name": "Sirte", "aliases": ["سرت"], "weight": 2}]})
    subs = (SubscriberConfig(name="desk", email="desk@example.org", watchlists=("libya",)),
            SubscriberConfig(name="analyst", email="a@example.org", watchlists=("libya",),
                             min_score=analyst_min))
    return Runtime.build(Config(feeds=tuple(feeds), watchlists=(wl,), subscribers=subs))


@pytest.fixture
async def poller(aredis: aioredis.Redis) -> AsyncIterator[Poller]:
    fetcher = Fetcher(timeout=2.0, allow_private=True)
    yield Poller(Store(aredis), fetcher, max_age=7 * 86400)
    await fetcher.close()


async def queued(store: Store) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(f["alert"]) for _, f in await store.redis.xrange(store.keys.alerts)]


async def test_one_story_in_three_feeds_alerts_once_per_subscriber(
    poller: Poller, http_server: HTTPServer
) -> None:
    html = {"Content-Type": "text/html; charset=utf-8"}
    seed = extract_text(SEED_TEXT)
    trimmed = "\n".join(seed.text.splitlines()[:10])
    http_server.routes["/libya/sirte"] = Route(200, SEED_PAGE, html)
    http_server.routes["/libya/sirte/amp/"] = Route(200, other_template(seed.text, seed.title),
                                                    html)
    http_server.routes["/world/123"] = Route(200, other_template(trimmed, "حفتر يصد هجوما"), html)
    http_server.routes["/libya/other"] = Route(200, other_template(OTHER_SIRTE, "سوريا"), html)
    feeds = {
        "/a.xml": [("a1", seed.title, http_server.url("/libya/sirte"))],
        # The AMP copy with tracking, under a new GUID, in a second feed.
        "/b.xml": [("b7", seed.title, http_server.url("/libya/sirte/amp/?utm_source=rss"))],
        # A wire copy, re-titled and cut short, under another site's URL.
        "/c.xml": [("c9", "حفتر يصد هجوما على سرت", http_server.url("/world/123")),
                   ("c10", "وضع سرت هادئ", http_server.url("/libya/other"))],
    }
    configs = []
    for path, items in feeds.items():
        http_server.routes[path] = Route(200, rss(items))
        configs.append(FeedConfig(url=http_server.url(path), interval=60, scrape=True))
    rt = runtime(configs)
    for feed in configs:
        await poller.poll(feed, rt)

    alerts = await queued(poller.store)
    per_story = Counter((a["story"], a["subscriber"]) for a in alerts)
    assert len(per_story) == 4 and set(per_story.values()) == {1}, per_story
    stories = {a["story"] for a in alerts}
    assert len(stories) == 2  # the seed story, and the other Sirte story
    seed_story = next(a["story"] for a in alerts if a["item"]["title"] == seed.title)
    sources = await poller.store.redis.lrange(poller.store.keys.story_sources(seed_story), 0, -1)
    assert [json.loads(s)["url"].split("/", 3)[3] for s in sources] == \
        ["libya/sirte", "libya/sirte/amp/", "world/123"]


async def test_a_later_copy_still_alerts_a_subscriber_the_first_did_not_match(
    poller: Poller, http_server: HTTPServer
) -> None:
    # The first copy (feed text only: Haftar in the title, score 4) reaches the desk but
    # not the analyst (minimum 5); the full article, the same story by URL, scores more:
    # it alerts the analyst, and not the desk again.
    http_server.routes["/full"] = Route(200, SEED_PAGE, {"Content-Type": "text/html"})
    http_server.routes["/short.xml"] = Route(200, rss([("s1", "حفتر", http_server.url("/full"))]))
    http_server.routes["/full.xml"] = Route(200, rss([("f1", "سرت", http_server.url("/full"))]))
    feeds = [FeedConfig(url=http_server.url("/short.xml"), interval=60, scrape=False),
             FeedConfig(url=http_server.url("/full.xml"), interval=60, scrape=True)]
    rt = runtime(feeds, analyst_min=5)
    assert (await poller.poll(feeds[0], rt)).alerts == 1
    assert (await poller.poll(feeds[1], rt)).alerts == 1
    assert [a["subscriber"] for a in await queued(poller.store)] == ["desk", "analyst"]


async def test_instances_reading_one_story_at_once_register_it_once(
    aredis: aioredis.Redis, http_server: HTTPServer
) -> None:
    # Four instances (a Poller and Store each, as four `monitor run` processes have) poll
    # four feeds at once, each with a copy of one story under its own URL. Looking the
    # story up and registering it are one step in Redis, so one copy registers it and
    # alerts; the others find it and are its sources.
    feeds = copy_feeds(http_server, 4)
    rt = runtime(feeds)
    fetcher = Fetcher(timeout=2.0, allow_private=True)
    try:
        pollers = [Poller(Store(aredis), fetcher, max_age=7 * 86400) for _ in feeds]
        results = await asyncio.gather(*(p.poll(f, rt) for p, f in zip(pollers, feeds,
                                                                          strict=True)))
    finally:
        await fetcher.close()
    assert [r.new for r in results] == [1, 1, 1, 1]
    alerts = await queued(pollers[0].store)
    assert sorted(a["subscriber"] for a in alerts) == ["analyst", "desk"]
    (story,) = {a["story"] for a in alerts}
    sources = await aredis.lrange(pollers[0].store.keys.story_sources(story), 0, -1)
    assert sorted(json.loads(s)["url"].rsplit("/", 1)[1] for s in sources) == \
        ["copy0", "copy1", "copy2", "copy3"]


async def test_copies_polled_at_once_by_one_instance_alert_once(
    poller: Poller, http_server: HTTPServer
) -> None:
    # One instance polls four feeds at once, each with a copy of one story: their items
    # reach the commit together (monitor.store.commits), and the copies after the first are
    # judged, not registered as stories of their own.
    feeds = copy_feeds(http_server, 4)
    rt = runtime(feeds)
    results = await asyncio.gather(*(poller.poll(f, rt) for f in feeds))
    assert [r.new for r in results] == [1, 1, 1, 1]
    alerts = await queued(poller.store)
    assert sorted(a["subscriber"] for a in alerts) == ["analyst", "desk"]
    (story,) = {a["story"] for a in alerts}
    assert await poller.store.redis.llen(poller.store.keys.story_sources(story)) == 4


async def test_copies_on_four_instances_alert_a_subscriber_the_story_missed_once(
    aredis: aioredis.Redis, http_server: HTTPServer
) -> None:
    # The story alerted the desk from a feed's text alone (the analyst wants more). Four
    # instances then read the full article at once from four feeds: each decides the
    # analyst is due an alert, and the commit lets only the first one through.
    http_server.routes["/full"] = Route(200, SEED_PAGE, {"Content-Type": "text/html"})
    http_server.routes["/short.xml"] = Route(200, rss([("s1", "حفتر", http_server.url("/full"))]))
    short = FeedConfig(url=http_server.url("/short.xml"), interval=60, scrape=False)
    feeds = []
    for n in range(4):
        http_server.routes[f"/full{n}.xml"] = Route(
            200, rss([(f"f{n}", "سرت", http_server.url("/full"))]))
        feeds.append(FeedConfig(url=http_server.url(f"/full{n}.xml"), interval=60, scrape=True))
    rt = runtime([short, *feeds], analyst_min=5)
    fetchers = [Fetcher(timeout=2.0, allow_private=True) for _ in feeds]
    try:
        pollers = [Poller(Store(aredis), f, max_age=7 * 86400) for f in fetchers]
        assert (await pollers[0].poll(short, rt)).alerts == 1
        results = await asyncio.gather(*(p.poll(f, rt) for p, f in zip(pollers, feeds,
                                                                          strict=True)))
    finally:
        for fetcher in fetchers:
            await fetcher.close()
    assert sum(r.alerts for r in results) == 1
    assert [a["subscriber"] for a in await queued(pollers[0].store)] == ["desk", "analyst"]


async def test_a_known_story_is_left_to_judge_and_nothing_is_written(
    aredis: aioredis.Redis,
) -> None:
    store = Store(aredis)
    sig = dedup.signature(SEED_TEXT)
    first = new_story("a", "https://site.org/libya/sirte", sig, {"url": "u1"})
    assert first.new is not None
    assert await store.commit_new_story("a", [], first.new) == 0
    assert await store.story_by_url(first.new.url_key) == "a"
    # The same page under another URL form (known by URL), the same text elsewhere
    # (known by its bands): the lookup comes back, and neither item is marked seen.
    same_page = new_story("b", "https://www.site.org/libya/sirte/", None, {"url": "u2"})
    same_text = new_story("c", "https://other.org/x", sig, {"url": "u3"})
    assert same_page.new is not None and same_text.new is not None
    assert await store.commit_new_story("b", [], same_page.new) == StoryLookup("a", set())
    assert await store.commit_new_story("c", [], same_text.new) == StoryLookup(None, {"a"})
    assert await store.unseen(["a", "b", "c"]) == ["b", "c"]
    assert await aredis.llen(store.keys.story_sources("a")) == 1
    assert await store.commit_new_story("a", [], first.new) == -1  # seen: nothing looked up


def test_daemon_end_to_end_one_alert_per_story(tmp_path: Path, redis_url: str,
                                               http_server: HTTPServer) -> None:
    from tests.daemon import Daemon
    from tests.servers import SMTPServer, wait_for
    from tests.test_daemon import env_for

    smtp = SMTPServer().start()
    try:
        html = {"Content-Type": "text/html; charset=utf-8"}
        seed = extract_text(SEED_TEXT)
        trimmed = "\n".join(seed.text.splitlines()[:10])
        http_server.routes["/libya/sirte"] = Route(200, SEED_PAGE, html)
        http_server.routes["/libya/sirte/amp/"] = Route(
            200, other_template(seed.text, seed.title), html)
        http_server.routes["/world/123"] = Route(200, other_template(trimmed, "حفتر"), html)
        http_server.routes["/libya/other"] = Route(200, other_template(OTHER_SIRTE, "سوريا"),
                                                   html)
        http_server.routes["/hook"] = Route(200, b"ok")
        feeds = {
            "/a.xml": [("a1", seed.title, http_server.url("/libya/sirte"))],
            "/b.xml": [("b7", seed.title, http_server.url("/libya/sirte/amp/?utm_source=x"))],
            "/c.xml": [("c9", "حفتر يصد هجوما على سرت", http_server.url("/world/123")),
                       ("c10", "وضع سرت هادئ", http_server.url("/libya/other"))],
        }
        for path, items in feeds.items():
            http_server.routes[path] = Route(200, rss(items))
        config = tmp_path / "config"
        (config / "watchlists").mkdir(parents=True)
        (config / "feeds.yaml").write_text("feeds:\n" + "".join(
            f"  - {{url: {http_server.url(p)!r}, interval: 1s}}\n" for p in feeds), "utf-8")
        (config / "watchlists" / "libya.yaml").write_text(
            "name: libya\nthreshold: 3\nentities:\n"
            "  - {name: Haftar, aliases: [حفتر], weight: 2}\n"
            "  - {name: Sirte, aliases: [سرت], weight: 2}\nsubscribers:\n"
            f"  - {{webhook: {http_server.url('/hook')!r}, secret: s3cret}}\n"
            "  - {email: desk@example.org}\n", "utf-8")
        daemon = Daemon(tmp_path, env_for(tmp_path, redis_url, smtp)).start()
        try:
            wait_for(lambda: all(len(http_server.received(p, "GET")) >= 3 for p in feeds)
                     and len(http_server.received("/hook")) >= 2 and len(smtp.messages) >= 2,
                     timeout=40)
        finally:
            assert daemon.stop() == 0, daemon.log
        hooks = [json.loads(r.body) for r in http_server.received("/hook")]
        assert len(hooks) == 2 and len(smtp.messages) == 2, daemon.log
        assert len({h["story"]["id"] for h in hooks}) == 2
        assert daemon.log.count('"copy of a known story"') == 2
    finally:
        smtp.stop()


async def test_story_keys_expire_with_the_window(poller: Poller, http_server: HTTPServer) -> None:
    http_server.routes["/p"] = Route(200, SEED_PAGE, {"Content-Type": "text/html"})
    http_server.routes["/f.xml"] = Route(200, rss([("g", "x", http_server.url("/p"))]))
    feed = FeedConfig(url=http_server.url("/f.xml"), interval=60, scrape=True)
    await poller.poll(feed, runtime([feed]))
    store = poller.store
    keys = [k async for k in store.redis.scan_iter(store.keys.story("*"))]
    kinds = {k.split(":story:")[1].split(":")[0] for k in keys}
    assert {"bands", "url"} <= kinds and len(keys) >= 4  # + the story and its sources
    (bands,) = [k for k in keys if ":story:bands:" in k]
    assert await store.redis.hlen(bands) == dedup.BANDS
    for key in keys:
        ttl = await store.redis.ttl(key)
        assert 0 < ttl <= poller.dedup_window * 3 // 2, (key, ttl)


def runtime_with(feeds: list[FeedConfig], **options: object) -> Runtime:
    wl = WatchlistConfig.model_validate({"name": "libya", "threshold": 3, "entities": [
        {"name": "Haftar", "aliases": ["حفتر"], "weight": 2},
        {"name": "Sirte", "aliases": ["سرت"], "weight": 2}]})
    subs = (SubscriberConfig(name="plain", email="p@example.org", watchlists=("libya",)),
            SubscriberConfig.model_validate({"name": "follows", "email": "f@example.org",
                                             "watchlists": ["libya"], **options}))
    return Runtime.build(Config(feeds=tuple(feeds), watchlists=(wl,), subscribers=subs))


async def test_update_when_a_story_is_picked_up_by_more_sources(
    poller: Poller, http_server: HTTPServer
) -> None:
    feeds = copy_feeds(http_server, 3)
    rt = runtime_with(feeds, update_sources=2)
    for feed in feeds:
        await poller.poll(feed, rt)
    alerts = [(a["subscriber"], a["kind"], len(a["sources"])) for a in await queued(poller.store)]
    # The first copy alerts both; the second (2 sources) nothing; the third (3 = 1 + 2)
    # sends "follows" an update listing every source.
    assert alerts == [("plain", "alert", 1), ("follows", "alert", 1), ("follows", "update", 3)]


async def test_update_when_the_same_page_changes_substantially(
    poller: Poller, http_server: HTTPServer
) -> None:
    html = {"Content-Type": "text/html; charset=utf-8"}
    seed = extract_text(SEED_TEXT)
    http_server.routes["/live"] = Route(200, SEED_PAGE, html)
    http_server.routes["/f.xml"] = Route(200, rss([("v1", seed.title, http_server.url("/live"))]))
    feed = FeedConfig(url=http_server.url("/f.xml"), interval=60, scrape=True)
    rt = runtime_with([feed], update_on_change=True)
    await poller.poll(feed, rt)
    # Republished under a new GUID with a rewritten text: a developing story.
    http_server.routes["/live"] = Route(200, other_template(OTHER_SIRTE, seed.title), html)
    http_server.routes["/f.xml"] = Route(200, rss([("v2", seed.title, http_server.url("/live"))]))
    await poller.poll(feed, rt)
    alerts = [(a["subscriber"], a["kind"]) for a in await queued(poller.store)]
    assert alerts == [("plain", "alert"), ("follows", "alert"), ("follows", "update")]


async def test_story_command_lists_sources_and_alerted(
    poller: Poller, http_server: HTTPServer, redis_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import asyncio

    from monitor.cli import main

    await test_one_story_in_three_feeds_alerts_once_per_subscriber(poller, http_server)
    capsys.readouterr()  # the polls' log lines
    monkeypatch.setenv("MONITOR_REDIS_URL", redis_url)
    args = ["--config-dir", str(ROOT / "config"), "story", "--json",
            http_server.url("/libya/sirte/amp/?utm_source=newsletter")]
    assert await asyncio.to_thread(main, args) == 0
    info = json.loads(capsys.readouterr().out)
    assert len(info["sources"]) == 3 and set(info["alerted"]) == {"desk", "analyst"}
    assert info["url"] == http_server.url("/libya/sirte")
    missing = ["--config-dir", str(ROOT / "config"), "story", http_server.url("/nothing")]
    assert await asyncio.to_thread(main, missing) == 1
    assert "no story known" in capsys.readouterr().err
