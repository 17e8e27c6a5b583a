"""Polls per second over 2,000 feeds on loopback: monitor (one process, then two on one
Redis) beside rss2email 3.14 and a naive requests + feedparser loop, all measured in this
run against the same server; one table per server latency (default: none, and 50 ms).

The server (bench/feedserver.py, its own process) spreads the feeds over 200 loopback
hosts; 90% of them answer a conditional GET with 304, every tenth has 2 new items per
round. Each client first polls every feed once (which learns the ETags and the items
already listed; nothing is sent), then the server starts a new round and the timed round
polls every feed again:
- monitor: `monitor run` processes with their own Redis, feeds with `scrape: false`, one
  watchlist that every new item matches and an email subscriber on a loopback SMTP
  server. The timed round starts when every feed is made due in Redis (as if their
  interval had passed) and ends when every feed's state records a poll after that (the
  emails of the round may still be on their way; they are counted once all arrived).
- rss2email 3.14 (`r2e run`, from PyPI), sending each new item to the same SMTP server.
- naive: one requests.Session, feedparser on each body, ETags and seen ids in dicts, no
  sending.
Latency matters because rss2email and the naive loop poll one feed after another, while
monitor keeps `MONITOR_HTTP_CONCURRENCY` requests in flight; with no latency every client
is bound by its CPU alone.

Run: pip install -e '.[bench]' && python bench/poll.py [--feeds 2000 --latency 0,0.05]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness  # noqa: E402
from bench.feedserver import FeedServer  # noqa: E402
from tests.servers import SMTPServer  # noqa: E402

PROFILE = False
# Settings an operator with thousands of feeds would raise from their defaults.
MONITOR_ENV = {"MONITOR_HTTP_CONCURRENCY": "64", "MONITOR_DELIVERY_CONCURRENCY": "16"}
EXTRA_ENV = dict(kv.split("=", 1) for kv in os.environ.get("BENCH_MONITOR_ENV", "").split() if kv)
PROFILE_OUT = Path(tempfile.gettempdir()) / "monitor-poll-profile.txt"


def bench_monitor(server: FeedServer, feeds: int, root: Path, smtp: SMTPServer,
                  env: dict[str, str], count: int = 1) -> dict[str, float]:
    ids = harness.write_config(root, server, feeds, scrape=False, channel="email",
                               smtp_port=smtp.port)
    with harness.redis_server(root) as (redis_server, client):
        env = {"MONITOR_REDIS_URL": redis_server.url, "MONITOR_SMTP_HOST": "127.0.0.1",
               "MONITOR_SMTP_PORT": str(smtp.port), **env}
        with harness.instances(root, count, env) as daemons:
            start = time.time()
            warm = harness.wait_polled(client, ids, start - 5, daemons=daemons, server=server)
            sent_before = len(smtp.messages)
            since = time.time()
            profiler = harness.profile(daemons[0], PROFILE_OUT) if PROFILE else None
            took = harness.next_round(server, client, ids, daemons)
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)
                profiler.wait(30)
            expected = sent_before + feeds // 10 * server.new
            deadline = time.monotonic() + 120
            while len(smtp.messages) < expected and time.monotonic() < deadline:
                time.sleep(0.02)
            delivered = time.time() - since
            sent = len(smtp.messages) - sent_before
    return {"warm": warm, "seconds": took, "delivered_s": delivered, "sent": sent}


def bench_rss2email(server: FeedServer, feeds: int, root: Path,
                    smtp: SMTPServer) -> dict[str, float]:
    r2e = Path(sys.executable).with_name("r2e")
    cfg, data = root / "r2e.cfg", root / "r2e.json"
    lines = ["[DEFAULT]", "to = desk@example.org", "from = r2e@example.org",
             "email-protocol = smtp", f"smtp-server = 127.0.0.1:{smtp.port}",
             "smtp-auth = False", "smtp-ssl = False", ""]
    for n in range(feeds):
        lines += [f"[feed.f{n}]", f"url = {server.url(n)}", ""]
    cfg.write_text("\n".join(lines), "utf-8")
    base = [str(r2e), "-c", str(cfg), "-d", str(data)]
    started = time.time()
    subprocess.run([*base, "run", "--no-send"], check=True, capture_output=True)
    warm = time.time() - started
    server.control("_advance")
    sent_before = len(smtp.messages)
    started = time.time()
    run = subprocess.run([*base, "run"], capture_output=True, text=True)
    took = time.time() - started
    if run.returncode != 0:
        print(f"  r2e run exited {run.returncode}: {run.stderr[-500:]}")
    return {"warm": warm, "seconds": took, "sent": len(smtp.messages) - sent_before}


def bench_naive(server: FeedServer, feeds: int) -> dict[str, float]:
    import feedparser
    import requests

    session = requests.Session()
    etags: dict[int, str] = {}
    seen: set[str] = set()

    def poll_all() -> int:
        new = 0
        for n in range(feeds):
            headers = {"If-None-Match": etags[n]} if n in etags else {}
            resp = session.get(server.url(n), headers=headers, timeout=20)
            if resp.status_code == 304:
                continue
            etags[n] = resp.headers.get("ETag", "")
            for entry in feedparser.parse(resp.content).entries:
                if entry.id not in seen:
                    seen.add(entry.id)
                    new += 1
        return new

    started = time.time()
    poll_all()
    warm = time.time() - started
    server.control("_advance")
    started = time.time()
    new = poll_all()
    return {"warm": warm, "seconds": time.time() - started, "new": new}


def bench_all(feeds: int, latency: float, args: argparse.Namespace, sentences: list[str],
              smtp: SMTPServer, tmp: Path) -> list[tuple[str, dict[str, float]]]:
    rows: list[tuple[str, dict[str, float]]] = []

    def server() -> FeedServer:
        return FeedServer(feeds, sentences=sentences, latency=latency)

    for count in (1, 2):
        with server() as s:
            name = f"monitor, {count} process" + ("es" if count > 1 else "")
            rows.append((name, bench_monitor(s, feeds, tmp / f"m{latency}-{count}", smtp,
                                             {**MONITOR_ENV, **EXTRA_ENV}, count)))
    if args.only_monitor:
        return rows
    with server() as s:
        rows.append(("naive requests+feedparser", bench_naive(s, feeds)))
    if not args.skip_rss2email:
        (tmp / f"r{latency}").mkdir()
        with server() as s:
            rows.append(("rss2email 3.14", bench_rss2email(s, feeds, tmp / f"r{latency}", smtp)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--latency", default="0,0.05",
                        help="comma-separated server latencies in seconds, one table each")
    parser.add_argument("--skip-rss2email", action="store_true")
    parser.add_argument("--only-monitor", action="store_true")
    parser.add_argument("--profile", action="store_true",
                        help="py-spy the monitor process in the timed round (needs py-spy)")
    args = parser.parse_args()
    global PROFILE
    PROFILE = args.profile
    feeds = args.feeds
    sentences = harness.sentences()
    smtp = SMTPServer().start()
    tables = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for latency in (float(x) for x in args.latency.split(",")):
                tables.append((latency, bench_all(feeds, latency, args, sentences, smtp,
                                                  Path(tmp))))
    finally:
        smtp.stop()
    print(f"\n{feeds} feeds on 200 loopback hosts, 90% answering 304, {feeds // 10} with "
          f"2 new items each, every new item emailed; timed round after a warm-up round; "
          f"monitor with {' '.join(f'{k}={v}' for k, v in MONITOR_ENV.items())}")
    for latency, rows in tables:
        baseline = dict(rows).get("rss2email 3.14")  # without it, no ratio is printed
        print(f"\nserver latency {latency * 1000:.0f} ms per answer")
        print(f"{'client':28} {'first round s':>13} {'round s':>8} {'polls/s':>8} "
              f"{'vs rss2email':>13} {'emails':>7}")
        for name, r in rows:
            ratio = f"{baseline['seconds'] / r['seconds']:12.1f}x" if baseline else f"{'-':>13}"
            sent = f"{r['sent']:7.0f}" if "sent" in r else f"{'-':>7}"
            print(f"{name:28} {r['warm']:13.2f} {r['seconds']:8.2f} {feeds / r['seconds']:8.0f} "
                  f"{ratio} {sent}")


if __name__ == "__main__":
    main()
