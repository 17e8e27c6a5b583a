"""The service in process: how an instance claims due feeds from the shared schedule."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis.asyncio as aioredis

from monitor.service import Service
from monitor.settings import Settings
from tests.servers import HTTPServer, Route


async def test_a_backlog_is_claimed_a_small_batch_at_a_time(
    tmp_path: Path, redis_url: str, aredis: aioredis.Redis, http_server: HTTPServer,
) -> None:
    # Feeds that answer slowly, so that the polls a claim starts are still in flight.
    def slow(request: object) -> Route:
        time.sleep(0.5)
        return Route(304)

    for i in range(100):
        http_server.routes[f"/slow{i}"] = slow
    config = tmp_path / "config"
    config.mkdir()
    (config / "feeds.yaml").write_text("feeds:\n" + "".join(
        f"  - {{url: {http_server.url(f'/slow{i}')!r}, interval: 60}}\n" for i in range(100)),
        "utf-8")
    service = Service(Settings(redis_url=redis_url, config_dir=config, http_concurrency=64,
                               http_per_host=64, http_host_delay=0,
                               allow_private_urls=True), env={})
    await service.start()
    try:
        await service.tick()
        # An eighth of the 64 slots: another instance claiming now gets its share of the
        # backlog, and this one claims more as its polls finish.
        assert len(service._polls) == 8
        due = await aredis.zcount(service.store.keys.schedule, "-inf", time.time())
        assert due == 92
        polls = set(service._polls)
        await asyncio.wait(polls, timeout=10)
        async with asyncio.timeout(10):  # each finished poll claimed again: a refill
            while await aredis.zcount(service.store.keys.schedule, "-inf", time.time()) > 84:
                await asyncio.sleep(0.05)
    finally:
        service.stop_event.set()
        await service._wait_polls()
        await service.close()
