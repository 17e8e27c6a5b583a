"""Opens the Redis that settings name: MONITOR_REDIS_URL, or the embedded server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis

from monitor.embedded import EmbeddedRedis
from monitor.settings import Settings
from monitor.store import Store


class Connection:
    """A Redis client and, in embedded mode, the server it runs; close() stops both."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedRedis | None = None
        self.redis: aioredis.Redis | None = None

    async def open(self) -> Store:
        url = self.settings.redis_url
        if url is None:
            self.embedded = await asyncio.to_thread(EmbeddedRedis, self.settings.data_dir)
            url = self.embedded.url
        # A blocking pool waits for a free connection instead of failing when every one is
        # busy (a poll of many new items commits them concurrently).
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, health_check_interval=30,
            max_connections=self.settings.redis_connections, timeout=30)
        self.redis = aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
        return Store(self.redis, self.settings.redis_prefix,
                     int(self.settings.seen_ttl_days * 86400))

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
            self.embedded = None


@asynccontextmanager
async def store_for(settings: Settings) -> AsyncIterator[Store]:
    connection = Connection(settings)
    try:
        yield await connection.open()
    finally:
        await connection.close()
