"""Runs real `monitor run` processes against bench/feedserver.py for the polling benchmarks."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.feedserver import NAMES, FeedServer  # noqa: E402
from monitor.config import FeedConfig  # noqa: E402
from tests.daemon import Daemon  # noqa: E402
from tests.servers import RedisServer  # noqa: E402

# Instances look for due feeds every 0.1 s instead of every second: a timed round makes
# every feed due at once while the instances sit idle, and each waited up to a tick (half
# a second on average) to notice, 10-20% of a round, an artefact of the rounds. A feed
# coming due on its own schedule waits the same tick, which delays its poll but costs no
# throughput; under load, finished polls claim the next feeds without waiting for it.
QUIET_ENV = {
    "MONITOR_LOG_LEVEL": "WARNING", "MONITOR_LOG_FORMAT": "json",
    "MONITOR_ALLOW_PRIVATE_URLS": "true",  # the feed server is on loopback
    "MONITOR_TICK_SECONDS": "0.1", "MONITOR_RELOAD_SECONDS": "5",
    "MONITOR_HTTP_TIMEOUT": "20",
}


def sentences() -> list[str]:
    """Real sentences from the corpus pages, for feed summaries and article text."""
    from bench.corpus import documents

    out: list[str] = []
    for _, body in documents():
        out.extend(s.strip() for s in re.split(r"(?<=[.!?؟])\s+", body) if 40 <= len(s) <= 300)
    random.Random(7).shuffle(out)
    return out[:5000]


def extra_terms(count: int, seed: int = 11) -> list[str]:
    """Made-up two-word names: watchlist terms that rarely occur, as most of a big list."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ra", "zu", "te", "no", "vi", "sa", "dor", "bel", "qan"]
    return [" ".join("".join(rng.choice(syllables) for _ in range(3)).title() for _ in range(2))
            for _ in range(count)]


def write_config(root: Path, server: FeedServer, feeds: int, *, scrape: bool,
                 channel: str, smtp_port: int = 0, terms: int = 0) -> list[str]:
    """config/ for `feeds` feeds of the server, one watchlist of the server's names (plus
    `terms` made-up ones) and one subscriber; returns the feeds' ids."""
    config = root / "config"
    (config / "watchlists").mkdir(parents=True, exist_ok=True)
    lines = ["feeds:"]
    for n in range(feeds):
        lines.append(f"  - {{url: '{server.url(n)}', interval: 1h, adaptive: false, "
                     f"scrape: {str(scrape).lower()}}}")
    (config / "feeds.yaml").write_text("\n".join(lines) + "\n", "utf-8")
    keywords = [*NAMES, *extra_terms(terms)]
    sub = (f"{{webhook: '{server.hook}', secret: bench-secret}}" if channel == "webhook"
           else "{email: desk@example.org}")
    (config / "watchlists" / "bench.yaml").write_text(
        "name: bench\nthreshold: 1\nkeywords:\n" + "".join(f"  - {k!r}\n" for k in keywords)
        + f"subscribers:\n  - {sub}\n", "utf-8")
    return [FeedConfig(url=server.url(n)).id for n in range(feeds)]


@contextmanager
def instances(root: Path, count: int, env: dict[str, str]) -> Iterator[list[Daemon]]:
    daemons = [Daemon(root, {**QUIET_ENV, **env}).start() for _ in range(count)]
    try:
        yield daemons
    finally:
        for d in daemons:
            if d.running():
                d.stop()


@contextmanager
def redis_server(root: Path) -> Iterator[tuple[RedisServer, redis.Redis]]:
    server = RedisServer(root / "redis").start()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


def make_due(client: redis.Redis, ids: list[str], prefix: str = "monitor") -> None:
    """Every feed due now, as if its interval had just passed."""
    client.zadd("{" + prefix + "}:schedule", dict.fromkeys(ids, time.time() - 1), xx=True)


def next_round(server: FeedServer, client: redis.Redis, ids: list[str],
               daemons: list[Daemon]) -> float:
    """Starts the server's next round, makes every feed due and waits until all were
    polled; returns the seconds that took."""
    server.control("_advance")
    requests = server.control("_stats").get("feed", 0)
    since = time.time()
    make_due(client, ids)
    return wait_polled(client, ids, since, daemons=daemons, server=server,
                       requests_before=requests)


def polled_since(client: redis.Redis, ids: list[str], since: float,
                 prefix: str = "monitor") -> int:
    pipe = client.pipeline(transaction=False)
    for fid in ids:
        pipe.hget("{" + prefix + "}:feed:" + fid, "last_poll")
    return sum(1 for v in pipe.execute() if v and float(v) >= since)


def cpu_seconds(daemon: Daemon | int) -> float:
    """User + system CPU time a daemon (or the process of a pid) has used so far."""
    if isinstance(daemon, Daemon):
        assert daemon.proc is not None
        daemon = daemon.proc.pid
    fields = Path(f"/proc/{daemon}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(daemon: Daemon, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling `daemon` until SIGINT; a flat top-functions report lands in `out`."""
    assert daemon.proc is not None
    spy = Path(sys.executable).with_name("py-spy")
    return subprocess.Popen([str(spy), "record", "-p", str(daemon.proc.pid), "-f", "raw",
                             "-o", str(out), "-r", "200", "--gil"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_polled(client: redis.Redis, ids: list[str], since: float, timeout: float = 600,
                daemons: list[Daemon] | None = None, server: FeedServer | None = None,
                requests_before: int = 0) -> float:
    """Seconds from `since` until every feed's last poll is after it. With `server`, waits
    on its request count first: reading 2,000 feed states every few milliseconds would
    load the Redis and the CPU being measured."""
    deadline = time.monotonic() + timeout

    def alive() -> None:
        for d in daemons or ():
            if not d.running():
                raise RuntimeError(f"monitor exited:\n{d.log[-3000:]}")

    while server is not None and time.monotonic() < deadline:
        if server.control("_stats").get("feed", 0) >= requests_before + len(ids):
            break
        alive()
        time.sleep(0.05)
    while time.monotonic() < deadline:
        if polled_since(client, ids, since) >= len(ids):
            return time.time() - since
        alive()
        time.sleep(0.02)
    raise TimeoutError(f"only {polled_since(client, ids, since)}/{len(ids)} feeds polled")
