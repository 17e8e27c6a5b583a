"""Items committed in turn, many to a round trip: monitor.store.commits and its script."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from monitor import dedup
from monitor.poller import Story, new_story, resolve_story
from monitor.store import DEFAULT_STORY_WINDOW, NewStory, Store, StoryCard, StoryLookup
from monitor.store.commits import Commits
from tests.servers import free_port
from tests.test_worker import make_alert

ROOT = Path(__file__).resolve().parent.parent
SEED_TEXT = (ROOT / "seeds" / "000_5789ac1c2e1f81f5.txt").read_text("utf-8")
SYRIA = (ROOT / "tests" / "data" / "pages_expected" /
         "newspaper__arabic_article__expected.txt").read_text("utf-8")
# Ten lines of the seed story before another article: its signature shares a band with
# the seed's (so Redis names the seed as a candidate) but is only 0.40 alike, below the
# 0.5 that makes a copy: a story of its own, once judged.
NEAR_SEED = "\n".join(SEED_TEXT.splitlines()[:10]) + "\n" + SYRIA


async def no_story(known: StoryLookup) -> int:
    """The judge of an item whose story Redis must not know."""
    raise AssertionError("no story is known")


def story(item_id: str, url: str, text: str) -> Story:
    return new_story(item_id, url, dedup.signature(text), {"url": url})


async def test_a_batch_stops_at_the_first_known_story_and_leaves_the_rest_untried(
    aredis: aioredis.Redis,
) -> None:
    store = Store(aredis)
    first = story("a", "https://site.org/a", SEED_TEXT)
    same_page = story("b", "https://www.site.org/a/", SYRIA)
    other = story("c", "https://site.org/c", SYRIA)
    assert first.new and same_page.new and other.new
    replies = await store.commit_new_stories([("a", [make_alert("hook", "a")], first.new),
                                              ("b", [], same_page.new), ("c", [], other.new)])
    assert replies == [1, StoryLookup("a", set())]
    assert await store.unseen(["a", "b", "c"]) == ["b", "c"]
    assert await store.story_by_url(other.new.url_key) is None  # c: nothing written
    # Tried again, an item seen meanwhile answers -1 and does not stop the batch.
    assert await store.commit_new_stories([("a", [], first.new), ("c", [], other.new)]) == \
        [-1, 0]


async def test_an_item_is_judged_before_the_items_after_it_are_committed(
    aredis: aioredis.Redis,
) -> None:
    # The seed story is known. Item b shares a band with it but is another story; item
    # c, in the same batch, is a copy of b. Were c looked up before b was judged and
    # registered, it would find only the seed, be judged a story of its own, and alert
    # again.
    store = Store(aredis)
    seed = story("seed", "https://site.org/seed", SEED_TEXT)
    assert seed.new is not None
    assert await store.commit_new_story("seed", [], seed.new) == 0
    commits: Commits[tuple[int, Story]] = Commits(store, DEFAULT_STORY_WINDOW)
    judged: list[str] = []

    async def commit(item_id: str, url: str, text: str) -> int | tuple[int, Story]:
        own = story(item_id, url, text)
        assert own.new is not None

        async def judge(known: StoryLookup) -> tuple[int, Story]:
            judged.append(item_id)
            found = await resolve_story(store, item_id, url, dedup.signature(text),
                                        {"url": url}, window=DEFAULT_STORY_WINDOW,
                                        threshold=0.5, own=own, known=known)
            alerts = [] if found.copy else [make_alert("hook", item_id)]
            return await store.commit_item(item_id, alerts, found.id, DEFAULT_STORY_WINDOW,
                                           len(found.sources), found.new), found

        return await commits.commit(item_id, [make_alert("hook", item_id)], own.new, judge)

    b, c, d = await asyncio.gather(commit("b", "https://one.org/b", NEAR_SEED),
                                   commit("c", "https://two.org/c", NEAR_SEED),
                                   commit("d", "https://three.org/d", SYRIA[:400]))
    assert judged == ["b", "c"]
    assert isinstance(b, tuple) and b[0] == 1 and not b[1].copy and b[1].id == "b"
    assert isinstance(c, tuple) and c[0] == 0 and c[1].copy and c[1].id == "b"
    assert d == 1  # a story of its own, committed in the batch after c's judging
    assert await store.unseen(["b", "c", "d"]) == []


async def test_a_failed_judgement_fails_its_item_only(aredis: aioredis.Redis) -> None:
    store = Store(aredis)
    first = story("a", "https://site.org/a", SEED_TEXT)
    assert first.new is not None
    await store.commit_new_story("a", [], first.new)
    commits: Commits[int] = Commits(store, DEFAULT_STORY_WINDOW)

    async def broken(known: StoryLookup) -> int:
        raise RuntimeError("judge failed")

    async def unused(known: StoryLookup) -> int:
        raise AssertionError("a story of its own is not judged")

    copy, own = story("b", "https://www.site.org/a", SYRIA), story("c", "https://x.org/c", SYRIA)
    assert copy.new and own.new
    results = await asyncio.gather(commits.commit("b", [], copy.new, broken),
                                   commits.commit("c", [make_alert("hook", "c")], own.new, unused),
                                   return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1] == 1
    assert await store.unseen(["b", "c"]) == ["b"]  # b is polled again, c alerted once


async def test_an_item_whose_keys_redis_refuses_fails_alone(aredis: aioredis.Redis) -> None:
    store = Store(aredis)
    await aredis.set(store.keys.story_sources("b"), "a string, not a list")  # RPUSH fails
    commits: Commits[int] = Commits(store, DEFAULT_STORY_WINDOW)

    b = story("b", "https://other.org/b", SEED_TEXT)
    c = story("c", "https://other.org/c", SYRIA)
    assert b.new and c.new
    results = await asyncio.gather(commits.commit("b", [], b.new, no_story),
                                   commits.commit("c", [make_alert("hook", "c")], c.new, no_story),
                                   return_exceptions=True)
    assert isinstance(results[0], aioredis.ResponseError) and "WRONGTYPE" in str(results[0])
    assert results[1] == 1  # c, after b in the same call, is committed all the same
    assert await aredis.xlen(store.keys.alerts) == 1


async def test_a_failed_batch_fails_each_of_its_items() -> None:
    client = aioredis.Redis(port=free_port(), decode_responses=True,  # nothing listens
                            retry=Retry(NoBackoff(), 0))
    commits: Commits[int] = Commits(Store(client), DEFAULT_STORY_WINDOW)

    b, c = story("b", "https://x.org/b", SEED_TEXT), story("c", "https://x.org/c", SYRIA)
    assert b.new and c.new
    results = await asyncio.gather(commits.commit("b", [], b.new, no_story),
                                   commits.commit("c", [], c.new, no_story),
                                   return_exceptions=True)
    assert all(isinstance(r, aioredis.ConnectionError) for r in results), results
    # The turn-taking goes on: a later item gets its own batch (and its own error).
    with pytest.raises(aioredis.ConnectionError):
        await asyncio.wait_for(commits.commit("b", [], b.new, no_story), 10)
    await client.aclose()


async def test_an_item_whose_poll_went_away_before_its_batch_is_not_committed(
    aredis: aioredis.Redis,
) -> None:
    store = Store(aredis)
    commits: Commits[int] = Commits(store, DEFAULT_STORY_WINDOW)

    a, b = story("a", "https://x.org/a", SEED_TEXT), story("b", "https://x.org/b", SYRIA)
    assert a.new and b.new
    gone = asyncio.ensure_future(commits.commit("a", [], a.new, no_story))
    kept = asyncio.ensure_future(commits.commit("b", [], b.new, no_story))
    await asyncio.sleep(0)  # both queued; the batch is sent on the loop's next turn
    gone.cancel()
    assert await kept == 0
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await store.unseen(["a", "b"]) == ["a"]


async def test_an_item_whose_alerts_cannot_be_written_fails_alone(
    aredis: aioredis.Redis,
) -> None:
    # An item that reached its commit with a lone surrogate (the parser repairs those, a
    # bug could let one through): orjson cannot write its alerts. Before, the error was
    # raised while the batch's call was built, and every item of the batch, other feeds'
    # included, failed with it.
    store = Store(aredis)
    commits: Commits[int] = Commits(store, DEFAULT_STORY_WINDOW)

    bad_alert = make_alert("hook", "b")
    bad_alert = replace(bad_alert, item=replace(bad_alert.item, title="Haftar \ud800"))
    with pytest.raises(TypeError):
        bad_alert.to_json()
    a, b, c = (story(i, f"https://x.org/{i}", text)
               for i, text in (("a", SEED_TEXT), ("b", SYRIA), ("c", SYRIA[:500])))
    assert a.new and b.new and c.new
    results = await asyncio.gather(
        commits.commit("a", [make_alert("hook", "a")], a.new, no_story),
        commits.commit("b", [bad_alert], b.new, no_story),
        commits.commit("c", [make_alert("hook", "c")], c.new, no_story), return_exceptions=True)
    assert results[0] == 1 and isinstance(results[1], TypeError) and results[2] == 1
    assert await store.unseen(["a", "b", "c"]) == ["b"]  # b is taken again by a later poll
    assert await aredis.xlen(store.keys.alerts) == 2


async def test_a_story_keeps_its_feed_for_its_judges(aredis: aioredis.Redis) -> None:
    store = Store(aredis)
    sig = dedup.signature(SEED_TEXT)
    assert sig is not None
    own = NewStory(dedup.url_key("https://x.org/a"), tuple(dedup.band_keys(sig)),
                   dedup.to_bytes(sig), {"url": "https://x.org/a", "title": "Haftar in Sirte"},
                   "feed-1")
    untitled = story("b", "https://x.org/b", "too short").new
    assert untitled is not None
    assert await store.commit_new_stories([("a", [], own), ("b", [], untitled)]) == [0, 0]
    cards = await store.story_cards(["a", "b", "gone"])
    assert cards["a"] == StoryCard(own.sig, "feed-1", "Haftar in Sirte")
    assert cards["b"] == StoryCard(None, "", "")
    assert "gone" not in cards
    assert await store.story_signatures(["a", "b"]) == {"a": own.sig}
