"""The service in process: how an instance claims due feeds from the shared schedule."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.service import Service
from monitor.settings import Settings
from monitor.store import DELIVERY_GROUP, Store
from tests.daemon import rss
from tests.servers import HTTPServer, Route, calls

# Every feed of these tests is on one loopback host: per-host politeness off, 64 slots.
ONE_HOST: dict[str, Any] = {"http_concurrency": 64, "http_per_host": 64, "http_host_delay": 0}


def write_feeds(config: Path, urls: Iterable[str], fields: str) -> Path:
    """`config`/feeds.yaml listing `urls`, each with the same YAML `fields`."""
    config.mkdir(parents=True, exist_ok=True)
    (config / "feeds.yaml").write_text("feeds:\n" + "".join(
        f"  - {{url: {url!r}, {fields}}}\n" for url in urls), "utf-8")
    return config


def service_at(redis_url: str, config: Path, **settings: Any) -> Service:
    """A service on the test Redis and `config`, allowed to fetch from loopback."""
    return Service(Settings(redis_url=redis_url, config_dir=config, allow_private_urls=True,
                            **settings), env={})


async def test_a_backlog_is_claimed_a_small_batch_at_a_time(
    tmp_path: Path, redis_url: str, aredis: aioredis.Redis, http_server: HTTPServer,
) -> None:
    # Feeds that answer slowly, so that the polls a claim starts are still in flight.
    def slow(request: object) -> Route:
        time.sleep(0.5)
        return Route(304)

    for i in range(100):
        http_server.routes[f"/slow{i}"] = slow
    config = write_feeds(tmp_path / "config",
                         [http_server.url(f"/slow{i}") for i in range(100)], "interval: 60")
    service = service_at(redis_url, config, **ONE_HOST)
    await service.start()
    try:
        await service.tick()
        # An eighth of the 64 slots: another instance claiming now gets its share of the
        # backlog, and this one claims more as its polls finish.
        assert len(service._polls) == 8
        due = await aredis.zcount(service.store.keys.schedule, "-inf", service.store.now())
        assert due == 92
        polls = set(service._polls)
        await asyncio.wait(polls, timeout=10)
        async with asyncio.timeout(10):  # each finished poll claimed again: a refill
            while await aredis.zcount(service.store.keys.schedule, "-inf", service.store.now()) > 84:
                await asyncio.sleep(0.05)
    finally:
        service.stop_event.set()
        await service._wait_polls()
        await service.close()


async def test_no_feed_is_claimed_while_enough_items_are_under_way(
    tmp_path: Path, redis_url: str, aredis: aioredis.Redis, http_server: HTTPServer,
) -> None:
    # 20 feeds of three new items each, whose article pages answer slowly: the items of
    # the first polls are still being scraped when the next claim comes.
    page = b"<html><body><article><p>" + b"Haftar visited Sirte today. " * 20 + \
        b"</p></article></body></html>"
    for i in range(20):
        links = [(f"{i}-{j}", f"Item {j}", http_server.url(f"/page{i}-{j}")) for j in range(3)]
        http_server.routes[f"/feed{i}"] = Route(200, rss(links))
        for j in range(3):
            http_server.routes[f"/page{i}-{j}"] = Route(
                200, page, {"Content-Type": "text/html; charset=utf-8"}, delay=0.15)
    config = write_feeds(tmp_path / "config", [http_server.url(f"/feed{i}") for i in range(20)],
                         "interval: 600, scrape: true")
    service = service_at(redis_url, config, **ONE_HOST, scrape_concurrency=2, items_in_flight=4)
    await service.start()
    schedule = service.store.keys.schedule

    async def due() -> int:
        return int(await aredis.zcount(schedule, "-inf", service.store.now()))

    try:
        await service.tick()
        assert len(service._polls) == 8 and await due() == 12
        async with asyncio.timeout(10):  # their feeds read: 24 items under way
            while service.poller.items_in_flight < 4:
                await asyncio.sleep(0.01)
        await service.tick()  # slots are free, but the items are enough
        assert await due() == 12
        async with asyncio.timeout(30):  # as the items are done, the others are polled
            while await due() > 0 or service._polls:
                await service.tick()
                await asyncio.sleep(0.05)
        assert service.poller.items_in_flight == 0
        assert len(http_server.received("/page19-2", "GET")) == 1
    finally:
        service.stop_event.set()
        await service._wait_polls()
        await service.close()


async def test_polls_finishing_together_refill_with_full_batches(
    tmp_path: Path, redis_url: str, aredis: aioredis.Redis, http_server: HTTPServer,
) -> None:
    # 400 feeds that answer 304 at once: dozens of polls finish in one turn of the loop,
    # and each may find slots free; one refill claims them, not one refill each.
    for i in range(400):
        http_server.routes[f"/quick{i}"] = Route(304)
    config = write_feeds(tmp_path / "config",
                         [http_server.url(f"/quick{i}") for i in range(400)], "interval: 600")
    service = service_at(redis_url, config, **ONE_HOST)
    await service.start()
    await aredis.config_resetstat()
    try:
        await service.tick()  # the only tick: every later claim is a refill
        async with asyncio.timeout(30):
            while await aredis.zcount(service.store.keys.schedule, "-inf", service.store.now()) > 0 \
                    or service._polls:
                await asyncio.sleep(0.05)
        claims = calls(await aredis.info("commandstats"), "zrangebyscore")
        assert all(len(http_server.received(f"/quick{i}", "GET")) == 1 for i in range(400))
        # 50 claims of 8 feeds, and a last one that finds none left.
        assert claims <= 400 // 8 + 2
    finally:
        service.stop_event.set()
        await service._wait_polls()
        await service.close()


async def test_a_stop_during_a_claim_lets_it_finish_and_releases_its_feeds(
    tmp_path: Path, redis_url: str, aredis: aioredis.Redis, http_server: HTTPServer,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    # SIGTERM arrives while a tick's claim is in Redis. The claim finishes (cancelling
    # it logged a traceback and left the feeds it had leased unpolled until the lease
    # ran out), starts no poll, and hands the feeds back: due at once for another
    # instance.
    config = write_feeds(tmp_path / "config", [http_server.url(f"/f{i}") for i in range(8)],
                         "interval: 600")
    claimed, proceed = asyncio.Event(), asyncio.Event()
    claim_due = Store.claim_due

    async def held_claim(store: Store, *args: Any, **kwargs: Any) -> Any:
        due = await claim_due(store, *args, **kwargs)
        claimed.set()
        await proceed.wait()
        return due

    monkeypatch.setattr(Store, "claim_due", held_claim)
    service = service_at(redis_url, config, http_concurrency=64)  # claims 64 / 8 at a time
    run = asyncio.create_task(service.run())
    async with asyncio.timeout(10):
        await claimed.wait()
    schedule = service.store.keys.schedule
    assert await aredis.zcount(schedule, "-inf", service.store.now()) == 0  # all eight leased
    service.stop_event.set()
    await asyncio.sleep(0.2)  # the stop is under way while the claim is held
    proceed.set()
    async with asyncio.timeout(30):
        await run
    assert await aredis.zcount(schedule, "-inf", service.store.now()) == 8
    assert not http_server.requests
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_clock_off_the_clock_of_redis_is_logged_when_the_difference_changes() -> None:
    service = Service(Settings(), env={})
    with capture_logs() as logs:
        for offset in (0.3, -300.0, -300.4, -120.0, 0.2):
            service._check_clock(offset)
    assert [(e["event"].split(";")[0], e["offset_s"]) for e in logs] == [
        ("this machine's clock differs from Redis's", -300.0),
        ("this machine's clock differs from Redis's", -120.0)]


async def test_feeds_that_an_instance_on_another_config_removed_come_back(
    tmp_path: Path, redis_url: str, aredis: aioredis.Redis, http_server: HTTPServer,
) -> None:
    # Halfway through a deploy: an instance still on the old config starts after one on
    # the new config added a feed, and its start removes that feed from the schedule.
    # The new instance's periodic check puts it back, and says why it had to.
    configs = {"new": ["/x", "/y"], "old": ["/y"]}
    services = {}
    for name, paths in configs.items():
        config = write_feeds(tmp_path / name, map(http_server.url, paths), "interval: 600")
        services[name] = service_at(redis_url, config)
    try:
        for service in services.values():
            await service.start()
        new, old = services["new"], services["old"]
        schedule = new.store.keys.schedule
        assert set(await aredis.zrange(schedule, 0, -1)) == set(old.runtime.feeds)
        with capture_logs() as logs:
            await old.check_schedule()  # its own feed is there: nothing to say
            await new.check_schedule()
        assert set(await aredis.zrange(schedule, 0, -1)) == set(new.runtime.feeds)
        assert [(e["log_level"], e["feeds"]) for e in logs] == [("warning", 1)]
    finally:
        for service in services.values():
            await service.close()


async def test_a_run_once_leaves_the_delivery_group(
    tmp_path: Path, redis_url: str, aredis: aioredis.Redis, http_server: HTTPServer,
) -> None:
    # `monitor run --once` from cron is a new consumer every run: it delivers, then leaves.
    http_server.routes["/feed"] = Route(200, rss([("g1", "Haftar", "")]))
    http_server.routes["/hook"] = Route(204)
    config = write_feeds(tmp_path / "config", [http_server.url("/feed")], "scrape: false")
    (config / "watchlists").mkdir()
    (config / "watchlists" / "w.yaml").write_text(
        "name: libya\nkeywords: [Haftar]\nsubscribers:\n"
        f"  - {{webhook: {http_server.url('/hook')!r}, secret: s3cret}}\n", "utf-8")
    service = service_at(redis_url, config)
    (result,), report = await service.run_once()
    assert result.alerts == 1 and len(http_server.received("/hook")) == 1
    assert (report.sent, report.left) == (1, 0)
    assert await aredis.xinfo_consumers(service.store.keys.alerts, DELIVERY_GROUP) == []


async def test_a_host_that_asked_one_instance_for_a_pause_is_paused_for_the_other(
    tmp_path: Path, redis_url: str, http_server: HTTPServer,
) -> None:
    http_server.routes["/busy"] = Route(429, b"", {"Retry-After": "60"})
    http_server.routes["/quiet"] = Route(200, rss([("q1", "Quiet", "http://x.test/q1")]))
    urls = [http_server.url("/busy"), http_server.url("/quiet")]
    config = write_feeds(tmp_path / "config", urls, "interval: 60")
    one, two = service_at(redis_url, config, **ONE_HOST), service_at(redis_url, config, **ONE_HOST)
    await one.start()
    await two.start()
    try:
        feeds = {f.url: f for f in one.runtime.feeds.values()}
        busy = await one.poller.poll(feeds[urls[0]], one.runtime)
        assert busy.error is not None and "HTTP 429" in busy.error
        await one.share_pauses()
        with capture_logs() as logs:
            await two.share_pauses()
        # The other feed on that host, polled by the other instance, is not requested.
        quiet = await two.poller.poll(two.runtime.feeds[feeds[urls[1]].id], two.runtime)
        assert quiet.error is not None and "asked for a pause" in quiet.error
        assert not http_server.received("/quiet", "GET")
        assert len(http_server.received("/busy", "GET")) == 1
        assert [e["hosts"] for e in logs if e["event"].startswith("hosts paused")] == \
            [[f"127.0.0.1:{http_server.port}"]]
    finally:
        await one.close()
        await two.close()
