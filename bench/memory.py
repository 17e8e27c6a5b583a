"""Memory: the daemon's RSS with 10,000 feeds and 10,000 watchlist terms, and Redis bytes
per seen item, each beside a baseline measured in the same run.

1. Daemon RSS: one `monitor run` against bench/feedserver.py with `--feeds` feeds (20
   items each; every tenth gains 2 new items per round, alerted as webhooks) and a
   watchlist of `--terms` terms. RSS (VmRSS) and peak (VmHWM) are read from /proc after a
   first poll of every feed and after one round of new items. Baseline: the same daemon
   with 10 feeds and 10 terms. Also printed: the Redis bytes of a feed's state.
2. Redis bytes per seen item: `--items` items committed through Store.commit_item (the
   daemon's own path: one key per item, with its TTL) into an empty Redis; bytes are the
   growth of INFO used_memory over the count, and MEMORY USAGE of one key. Baseline: the
   same ids as members of one Redis set (no expiry possible per member).

Run: python bench/memory.py [--feeds 10000 --terms 10000 --items 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis.asyncio as aioredis  # noqa: E402

from bench import harness  # noqa: E402
from bench.feedserver import FeedServer  # noqa: E402
from monitor.store import Store  # noqa: E402
from tests.daemon import Daemon  # noqa: E402


def proc_kb(daemon: Daemon, field: str) -> int:
    assert daemon.proc is not None
    for line in Path(f"/proc/{daemon.proc.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def daemon_memory(feeds: int, terms: int, sentences: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, \
            FeedServer(feeds, sentences=sentences) as server:
        root = Path(tmp)
        ids = harness.write_config(root, server, feeds, scrape=False, channel="webhook",
                                   terms=terms)
        with harness.redis_server(root) as (redis_server, client):
            env = {"MONITOR_REDIS_URL": redis_server.url, "MONITOR_HTTP_CONCURRENCY": "64"}
            with harness.instances(root, 1, env) as daemons:
                harness.wait_polled(client, ids, time.time() - 5, daemons=daemons, server=server)
                first = proc_kb(daemons[0], "VmRSS")
                harness.next_round(server, client, ids, daemons)
                expected = len(range(0, feeds, 10)) * server.new
                deadline = time.monotonic() + 300
                while server.control("_stats").get("hooked_items", 0) < expected \
                        and time.monotonic() < deadline:
                    time.sleep(0.1)
                time.sleep(1.0)
                # A feed's state (validators, cadence) and, beside it, the digests and
                # dates of the 20 items it lists (so a changed feed parses only new items).
                sample = ids[::max(1, len(ids) // 100)]
                state = sum((client.memory_usage("{monitor}:feed:" + fid) or 0)
                            + (client.memory_usage("{monitor}:feed:" + fid + ":known") or 0)
                            for fid in sample) / len(sample)
                return {"after_first": first / 1024, "rss": proc_kb(daemons[0], "VmRSS") / 1024,
                        "peak": proc_kb(daemons[0], "VmHWM") / 1024,
                        "alerts": server.control("_stats").get("hooked_items", 0),
                        "state": state}


async def redis_per_item(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, harness.redis_server(Path(tmp)) as (server, _):
        client = aioredis.Redis.from_url(server.url, decode_responses=True)
        store = Store(client)
        ids = [hashlib.sha256(f"guid\0feed\0{n}".encode()).hexdigest()[:32] for n in range(count)]

        async def used() -> int:
            return int((await client.info("memory"))["used_memory"])

        before = await used()
        batch = 50  # one connection per concurrent commit
        for start in range(0, count, batch):
            await asyncio.gather(*(store.commit_item(i, []) for i in ids[start:start + batch]))
        seen = (await used() - before) / count
        usage = await client.memory_usage(store.keys.seen(ids[0]))
        await client.flushall()
        before = await used()
        for start in range(0, count, 10_000):
            await client.sadd("baseline:seen", *ids[start:start + 10_000])
        baseline = (await used() - before) / count
        await client.aclose()
    return {"seen": seen, "memory_usage": float(usage or 0), "set": baseline}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=10_000)
    parser.add_argument("--terms", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=200_000)
    args = parser.parse_args()
    sentences = harness.sentences()
    base = daemon_memory(10, 10, sentences)
    big = daemon_memory(args.feeds, args.terms, sentences)
    per_item = asyncio.run(redis_per_item(args.items))
    print(f"\n{'daemon':32} {'RSS after 1st poll':>18} {'RSS after new items':>20} "
          f"{'peak':>8} {'alerts':>7}")
    for name, r in (("10 feeds, 10 terms (baseline)", base),
                    (f"{args.feeds} feeds, {args.terms} terms", big)):
        print(f"{name:32} {r['after_first']:15.1f} MB {r['rss']:17.1f} MB {r['peak']:5.1f} MB "
              f"{r['alerts']:7.0f}")
    print(f"ratio: {big['rss'] / base['rss']:.2f}x the baseline's RSS")
    print(f"Redis per feed state (20 items listed): {big['state']:.0f} bytes (MEMORY USAGE, "
          f"mean of {min(100, args.feeds)} feeds)")
    print(f"\nRedis, {args.items} seen items: {per_item['seen']:.1f} bytes per item "
          f"(INFO used_memory), MEMORY USAGE of one seen key {per_item['memory_usage']:.0f}; "
          f"baseline one set of the same ids: {per_item['set']:.1f} bytes per item "
          f"({per_item['seen'] / per_item['set']:.2f}x)")


if __name__ == "__main__":
    main()
