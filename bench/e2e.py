"""End to end: new items per second from poll to webhook delivered, with article scraping
and matching on, and the delay from the poll that saw an item to its delivery; one
`monitor run` process, then two on the same Redis.

The server (bench/feedserver.py) serves `--feeds` feeds over 200 loopback hosts, each
with `--new` new items per round, whose links lead to article pages of real corpus
sentences (no two alike, so every item is its own story) that the watchlist matches;
the subscriber is a signed webhook on the same server. After a warm-up poll of every
feed (its old items alert nothing), `--rounds` rounds each make every feed due; the
rate is the new items delivered over the time from the first round's start to the last
delivery. The delay of an item runs from the moment the server first listed it in a
feed response to the moment its webhook arrived. The CPU the feed server and Redis spend
per item is printed too: they share this machine's cores with the instances, and the
"ceiling" is the rate at which every core would be busy at the measured CPU per item.

Run: pip install -e '.[bench]' && python bench/e2e.py [--feeds 100 --new 5 --rounds 4]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from bench.feedserver import FeedServer  # noqa: E402

# Politeness stays on (2 requests at once per host, 0.25 s apart); the scraping and
# delivery concurrency are raised from their defaults so that one instance can use its
# core: each is a setting an operator with many feeds would raise the same way. (The
# instances' tick is 0.1 s: see bench/harness.py.)
ENV = {**dict(kv.split("=", 1) for kv in os.environ.get("BENCH_MONITOR_ENV", "").split()),
       "MONITOR_SCRAPE_CONCURRENCY": "32", "MONITOR_DELIVERY_CONCURRENCY": "32",
       "MONITOR_DELIVERY_PER_ENDPOINT": "32", "MONITOR_HTTP_CONCURRENCY": "64"}


def run(instances: int, args: argparse.Namespace, sentences: list[str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, \
            FeedServer(args.feeds, new=args.new, sentences=sentences, busy_every=1) as server:
        root = Path(tmp)
        ids = harness.write_config(root, server, args.feeds, scrape=True, channel="webhook",
                                   terms=args.terms)
        with harness.redis_server(root) as (redis_server, client):
            env = {"MONITOR_REDIS_URL": redis_server.url, **ENV}
            with harness.instances(root, instances, env) as daemons:
                harness.wait_polled(client, ids, time.time() - 5, daemons=daemons, server=server)
                profiler = harness.profile(daemons[0], Path(tempfile.gettempdir())
                                           / "monitor-e2e-profile.txt") if args.profile else None
                client.config_resetstat()  # commands counted from the first round on
                started = time.time()
                cpu = [harness.cpu_seconds(d) for d in daemons]
                assert redis_server.proc is not None
                others = [server.pid, redis_server.proc.pid]  # what shares the machine
                cpu_others = [harness.cpu_seconds(pid) for pid in others]
                for _ in range(args.rounds):
                    harness.next_round(server, client, ids, daemons)
                expected = args.feeds * args.new * args.rounds
                deadline = time.monotonic() + 600
                while server.control("_stats").get("hooked_items", 0) < expected:
                    if time.monotonic() > deadline:
                        raise TimeoutError("not every item was delivered")
                    time.sleep(0.05)
                elapsed = time.time() - started
                cpu_used = sum(harness.cpu_seconds(d) - c for d, c in zip(daemons, cpu, strict=True))
                server_cpu, redis_cpu = (harness.cpu_seconds(pid) - c
                                         for pid, c in zip(others, cpu_others, strict=True))
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    profiler.wait(30)
                stats = server.control("_stats")
                delays = sorted(server.control("_hooks"))
                if args.commands:
                    print_commands(client, stats["hooked_items"], instances)
    return {"items": stats["hooked_items"], "hooks": stats["hooks"], "seconds": elapsed,
            "rate": stats["hooked_items"] / elapsed,
            "p50": statistics.median(delays), "p99": delays[int(len(delays) * 0.99) - 1],
            "max": delays[-1], "articles": stats.get("article", 0),
            "cpu_ms_per_item": cpu_used * 1000 / stats["hooked_items"],
            "cpu_share": cpu_used / elapsed / instances,
            "server_ms_per_item": server_cpu * 1000 / stats["hooked_items"],
            "redis_ms_per_item": redis_cpu * 1000 / stats["hooked_items"]}


def print_commands(client: redis.Redis, items: int, instances: int) -> None:
    """Redis commands per delivered item, most frequent first (INFO commandstats): each is
    a round trip, and a script call runs its commands inside one."""
    rows = sorted(((name.removeprefix("cmdstat_"), row["calls"], row["usec"])
                   for name, row in client.info("commandstats").items()),
                  key=lambda r: -r[1])
    print(f"\nRedis commands per item, {instances} instance(s), {items} items")
    print(f"{'command':>18} {'calls/item':>11} {'server us/item':>15}")
    for name, calls, usec in rows:
        if calls >= items / 100:
            print(f"{name:>18} {calls / items:11.2f} {usec / items:15.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--new", type=int, default=5, help="new items per feed per round")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--terms", type=int, default=1000, help="extra watchlist terms")
    parser.add_argument("--one", action="store_true", help="one instance only")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the first instance during the rounds (needs py-spy)")
    parser.add_argument("--commands", action="store_true",
                        help="print the Redis commands per item of each run")
    args = parser.parse_args()
    sentences = harness.sentences()
    one = run(1, args, sentences)
    runs = [(1, one)] if args.one else [(1, one), (2, run(2, args, sentences))]
    print(f"\n{args.feeds} feeds x {args.new} new items x {args.rounds} rounds, scraped, "
          f"matched against {args.terms + 5} terms, delivered as signed webhooks")
    print(f"{'instances':>9} {'items':>6} {'seconds':>8} {'items/s':>8} {'p50 s':>6} "
          f"{'p99 s':>6} {'max s':>6} {'repeats':>8} {'CPU ms/item':>12} {'CPU busy':>9} "
          f"{'server+redis ms/item':>21} {'ceiling items/s':>16}")
    cores = os.cpu_count() or 1
    ceilings = []
    for count, r in runs:
        shared = r["server_ms_per_item"] + r["redis_ms_per_item"]
        # What this machine's cores could deliver, at this CPU per item, all of them busy.
        ceiling = cores * 1000 / (r["cpu_ms_per_item"] + shared)
        ceilings.append(ceiling)
        print(f"{count:>9} {r['items']:>6} {r['seconds']:8.2f} {r['rate']:8.1f} {r['p50']:6.2f} "
              f"{r['p99']:6.2f} {r['max']:6.2f} {r['hooks'] - r['items']:>8} "
              f"{r['cpu_ms_per_item']:12.1f} {r['cpu_share']:8.0%} "
              f"{r['server_ms_per_item']:>9.1f} + {r['redis_ms_per_item']:<9.1f} {ceiling:>16.0f}")
    if not args.one:
        # The instances share the cores with the feed server and Redis: two can deliver
        # no more than the machine's ceiling at their CPU per item, whatever they do.
        print(f"two instances: {runs[1][1]['rate'] / one['rate']:.2f}x one; with every "
              f"core busy at the two's CPU per item, at most {ceilings[1] / one['rate']:.2f}x")


if __name__ == "__main__":
    main()
