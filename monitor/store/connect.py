"""Opens the Redis that settings name: MONITOR_REDIS_URL, or the embedded server.

A URL naming a node of a Redis (or Valkey) Cluster gets redis-py's cluster client, which
finds the node that serves monitor's keys and follows them when slots move or a replica
takes over. Every key shares one hash tag (monitor.store.keys), so they all live in one
slot and each script's keys are on one node.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import hiredis  # from redis[hiredis]
import redis.asyncio as aioredis
from redis.asyncio import connection as rc
from redis.asyncio.cluster import ClusterPipeline, RedisCluster
from redis.exceptions import DataError, ResponseError

from monitor.settings import Settings
from monitor.store import Store
from monitor.store.embedded import EmbeddedRedis


class _HiredisPacking:
    """Commands packed by hiredis in C, as redis-py's own sync client packs them. Its
    asyncio connections pack in Python and copy the buffer again for every argument: a
    FINISH_POLLS call for 50 polls (600 arguments) cost 1.5-1.8 ms of the daemon's CPU
    that way and 0.4-0.65 ms this way."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # "CONFIG GET" and the like: one argument per word
            args = (*args[0].encode().split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc


class _PackedTCP(_HiredisPacking, rc.Connection):
    pass


class _PackedSSL(_HiredisPacking, rc.SSLConnection):
    pass


class _PackedUnix(_HiredisPacking, rc.UnixDomainSocketConnection):
    pass


_PACKED: dict[type[rc.AbstractConnection], type[rc.AbstractConnection]] = {
    rc.Connection: _PackedTCP, rc.SSLConnection: _PackedSSL,
    rc.UnixDomainSocketConnection: _PackedUnix}


class _WaitingCluster(RedisCluster):
    """A cluster client that waits for a free connection when `max_connections` commands
    are in flight, as the single server's BlockingConnectionPool does, where redis-py's
    cluster nodes raise MaxConnectionsError (a poll of many new items commits them
    concurrently)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.free = asyncio.Semaphore(kwargs.get("max_connections", 100))
        # Commands packed by hiredis, as on a single server: the nodes found later are
        # made with these keyword arguments, the first ones already were.
        packed = _PACKED.get(self.connection_kwargs["connection_class"])
        if packed is not None and issubclass(packed, rc.Connection):  # TCP or TLS
            self.connection_kwargs["connection_class"] = packed
            for node in self.startup_nodes:
                node.connection_class = packed

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self.free:
            return await super().execute_command(*args, **kwargs)

    def pipeline(self, transaction: Any | None = None,
                 shard_hint: Any | None = None) -> ClusterPipeline:
        # mypy takes an attribute that redis-py's mixins only annotate for abstract.
        return _WaitingPipeline(self, transaction)  # type: ignore[abstract]


class _WaitingPipeline(ClusterPipeline):
    async def execute(self, raise_on_error: bool = True,
                      allow_redirections: bool = True) -> list[Any]:
        client = self.cluster_client
        assert isinstance(client, _WaitingCluster)
        async with client.free:
            return await super().execute(raise_on_error, allow_redirections)


async def is_cluster(url: str) -> bool:
    """Whether `url` names a node of a Redis Cluster (its INFO says cluster_enabled)."""
    if url.startswith("unix:"):
        return False
    probe = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        info = await probe.info("cluster")
    except ResponseError:  # INFO refused (a restricted user, a proxy): a single server
        return False
    finally:
        await probe.aclose()
    return bool(info.get("cluster_enabled"))


class Connection:
    """A Redis client and, in embedded mode, the server it runs; close() stops both."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedded: EmbeddedRedis | None = None
        self.redis: aioredis.Redis | RedisCluster | None = None
        self.cluster = False

    async def open(self) -> Store:
        url = self.settings.redis_url
        if url is None:
            self.embedded = await asyncio.to_thread(EmbeddedRedis, self.settings.data_dir)
            url = self.embedded.url
        self.cluster = await is_cluster(url)
        if self.cluster:
            self.redis = _WaitingCluster.from_url(
                url, decode_responses=True, health_check_interval=30,
                max_connections=self.settings.redis_connections)
        else:
            # A blocking pool waits for a free connection instead of failing when every one
            # is busy (a poll of many new items commits them concurrently).
            pool = aioredis.BlockingConnectionPool.from_url(
                url, decode_responses=True, health_check_interval=30,
                max_connections=self.settings.redis_connections, timeout=30,
                client_name=self.embedded.client_name if self.embedded else None)
            pool.connection_class = _PACKED.get(pool.connection_class, pool.connection_class)
            self.redis = aioredis.Redis.from_pool(pool)  # owns the pool: aclose() closes it
        store = Store(self.redis, self.settings.redis_prefix,
                      int(self.settings.seen_ttl_days * 86400),
                      archive_ttl=int(self.settings.archive_days * 86400),
                      archive_max_bytes=int(self.settings.archive_max_mb * 1024 * 1024))
        await store.sync_clock()
        return store

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
