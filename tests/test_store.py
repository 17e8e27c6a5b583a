"""The feed schedule in Redis: claims with a lease, and poll outcomes written in batches."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from monitor.store import FEED_TTL, Store
from tests.servers import calls


async def test_a_claim_leases_the_due_feeds_and_returns_their_states(
    aredis: aioredis.Redis,
) -> None:
    store = Store(aredis)
    now = time.time()
    await aredis.zadd(store.keys.schedule, {"a": now - 10, "b": now - 5, "c": now + 60})
    await store.set_feed_state("a", {"etag": '"v1"', "failures": 2})

    claimed = await store.claim_due(lease=30, limit=10, now=now)

    assert claimed == [("a", {"etag": '"v1"', "failures": "2"}), ("b", {})]
    assert await store.claim_due(lease=30, limit=10, now=now + 1) == []  # leased
    scores = dict(await aredis.zrange(store.keys.schedule, 0, -1, withscores=True))
    assert scores["a"] == pytest.approx(now + 30) and scores["b"] == pytest.approx(now + 30)
    # The lease ends (the instance that claimed them died): they are due again.
    assert [fid for fid, _ in await store.claim_due(30, 10, now=now + 31)] == ["a", "b"]


async def test_a_claim_takes_at_most_its_limit_oldest_first(aredis: aioredis.Redis) -> None:
    store = Store(aredis)
    now = time.time()
    await aredis.zadd(store.keys.schedule, {f"f{i}": now - 100 + i for i in range(5)})
    assert [fid for fid, _ in await store.claim_due(60, 2, now=now)] == ["f0", "f1"]
    assert [fid for fid, _ in await store.claim_due(60, 9, now=now)] == ["f2", "f3", "f4"]


async def test_polls_that_finish_together_are_written_in_one_call(
    aredis: aioredis.Redis,
) -> None:
    store = Store(aredis)
    now = time.time()
    ids = [f"feed{i}" for i in range(40)]
    await aredis.zadd(store.keys.schedule, dict.fromkeys(ids, now))
    for fid in ids:
        await store.set_feed_state(fid, {"etag": '"old"', "status": "200", "failures": 0})
        await aredis.set(store.keys.feed_known(fid), "d1:1")
    previous = {"etag": '"old"', "status": "200", "failures": "0"}
    stats = await aredis.info("commandstats")
    before = calls(stats, "evalsha") + calls(stats, "eval")

    async def finish(i: int, fid: str) -> None:
        known = [None, "", f"d{i}:{i}"][i % 3]  # left alone, deleted, replaced
        await store.finish_poll(fid, {"etag": '"old"', "status": "304", "last_poll": i,
                                      "failures": 0}, now + 600 + i, previous, known)

    await asyncio.gather(*(finish(i, fid) for i, fid in enumerate(ids)))

    stats = await aredis.info("commandstats")
    # The first poll's own call, then the 39 queued behind it.
    assert calls(stats, "evalsha") + calls(stats, "eval") - before <= 2
    for i, fid in enumerate(ids):
        state = await store.feed_state(fid)
        assert state == {"etag": '"old"', "status": "304", "failures": "0",
                         "last_poll": str(i)}
        assert await aredis.zscore(store.keys.schedule, fid) == pytest.approx(now + 600 + i)
        assert FEED_TTL - 5 < await aredis.ttl(store.keys.feed(fid)) <= FEED_TTL
        known = await aredis.get(store.keys.feed_known(fid))
        assert known == ["d1:1", None, f"d{i}:{i}"][i % 3]
    # A feed gone from the schedule (removed from the config meanwhile) is not put back.
    await aredis.zrem(store.keys.schedule, "feed0")
    await store.finish_poll("feed0", {"status": "304"}, now + 60)
    assert await aredis.zscore(store.keys.schedule, "feed0") is None


async def test_a_feed_whose_state_cannot_be_written_fails_alone(
    aredis: aioredis.Redis,
) -> None:
    store = Store(aredis)
    now = time.time()
    await aredis.zadd(store.keys.schedule, {"good": now, "broken": now})
    await aredis.set(store.keys.feed("broken"), "not a hash")  # WRONGTYPE for HSET

    results = await asyncio.gather(
        store.finish_poll("good", {"status": "304"}, now + 60),
        store.finish_poll("broken", {"status": "304"}, now + 60),
        return_exceptions=True)

    assert results[0] is None
    assert isinstance(results[1], ResponseError) and "WRONGTYPE" in str(results[1])
    assert await store.feed_state("good") == {"status": "304"}
    assert await aredis.zscore(store.keys.schedule, "good") == pytest.approx(now + 60)
    # The broken feed keeps its lease time: it is polled again, not lost.
    assert await aredis.zscore(store.keys.schedule, "broken") == pytest.approx(now)


async def test_every_poll_whose_write_failed_hears_of_it(
    aredis: aioredis.Redis,
) -> None:
    store = Store(aredis)
    await aredis.set(store.keys.schedule, "not a sorted set")  # every ZADD fails

    results = await asyncio.gather(
        *(store.finish_poll(f"f{i}", {"status": "304"}, time.time() + 60) for i in range(3)),
        return_exceptions=True)

    assert all(isinstance(r, ResponseError) for r in results)
    # The next poll's write goes through once the key is sound again.
    await aredis.delete(store.keys.schedule)
    await aredis.zadd(store.keys.schedule, {"f0": 0})
    await store.finish_poll("f0", {"status": "200"}, 1234.5)
    assert await store.feed_state("f0") == {"status": "200"}
    assert await aredis.zscore(store.keys.schedule, "f0") == 1234.5


async def test_a_released_feed_is_due_again_and_a_removed_one_stays_gone(
    aredis: aioredis.Redis,
) -> None:
    store = Store(aredis)
    now = time.time()
    await aredis.zadd(store.keys.schedule, {"known-elsewhere": now - 1, "removed": now - 1})
    assert len(await store.claim_due(lease=60, limit=10, now=now)) == 2
    await aredis.zrem(store.keys.schedule, "removed")  # another instance's config dropped it

    await store.release(["known-elsewhere", "removed"], now=now)

    assert await store.claim_due(lease=60, limit=10, now=now + 0.1) == [("known-elsewhere", {})]
    assert await aredis.zscore(store.keys.schedule, "removed") is None


async def test_instances_whose_clocks_differ_schedule_by_the_clock_of_redis(
    aredis: aioredis.Redis, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One machine's clock runs five minutes ahead. Measured against Redis's, it still sees
    # the feed that another instance leased as leased, not as due since minutes ago.
    right, ahead = Store(aredis), Store(aredis)
    local = time.time
    monkeypatch.setattr(time, "time", lambda: local() + 300)
    offset = await ahead.sync_clock()
    monkeypatch.undo()
    assert offset == pytest.approx(-300, abs=0.5)
    assert await right.sync_clock() == pytest.approx(0, abs=0.5)
    await right.sync_schedule(["a"])
    assert [fid for fid, _ in await right.claim_due(lease=60, limit=10)] == ["a"]

    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: local() + 300)
        assert ahead.now() == pytest.approx(local(), abs=0.5)
        assert await ahead.claim_due(lease=60, limit=10) == []  # leased for a minute more
        ahead.clock_offset = 0.0  # by its own clock, the lease ran out four minutes ago
        assert [fid for fid, _ in await ahead.claim_due(lease=60, limit=10)] == ["a"]


async def test_host_pauses_are_shared_the_later_end_wins_and_ended_ones_go(
    aredis: aioredis.Redis,
) -> None:
    one, two = Store(aredis), Store(aredis)
    v1, _ = await one.share_host_pauses({"news.example": 30.0, "slow.example:8080": 0.2})
    v2, paused = await two.share_host_pauses({})
    assert v2 == v1 and paused is not None
    assert paused.keys() == {"news.example", "slow.example:8080"}
    assert 29 < paused["news.example"] <= 30
    # Unchanged since: not read again.
    assert await two.share_host_pauses({}, v2) == (v2, None)
    # A shorter pause asked of another instance later does not cut the first one short,
    # and does not change the set.
    assert await two.share_host_pauses({"news.example": 5.0}, v2) == (v2, None)
    await asyncio.sleep(0.3)
    v3, paused = await one.share_host_pauses({})
    assert v3 == v2 and paused is not None and paused.keys() == {"news.example"}
    assert paused["news.example"] > 29  # the short one ended; the long one holds
    assert 29 <= await aredis.ttl(one.keys.host_pauses) <= 32  # the key ends with its last
    # A new pause is a new version, which the other instance reads.
    v4, _ = await one.share_host_pauses({"other.example": 10.0}, v3)
    v5, paused = await two.share_host_pauses({}, v3)
    assert v5 == v4 > v3 and paused is not None and "other.example" in paused
