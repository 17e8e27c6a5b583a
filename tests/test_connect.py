"""The daemon's Redis connections: commands packed by hiredis, byte for byte as redis-py
packs them, over TCP and over the embedded server's Unix socket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio.connection import Connection as PythonPacking
from redis.exceptions import DataError

from monitor.connect import Connection, _HiredisPacking, _PackedTCP
from monitor.settings import Settings

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
