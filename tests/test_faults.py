"""Fault scenarios on the real daemon: kill -9 at random moments, Redis going away.

Each test prints its outcome (sent, lost, repeated) so a CI log documents it.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from pathlib import Path

from monitor.deliver import verify_signature
from monitor.poller import alert_key
from tests.daemon import Daemon, rss
from tests.servers import HTTPServer, RedisServer, Route, SMTPServer, free_port, wait_for
from tests.test_daemon import SECRET, env_for

HOOKS = ("/h1", "/h2", "/h3")


def write_config(config: Path, feed_url: str, hook_urls: list[str]) -> None:
    (config / "watchlists").mkdir(parents=True, exist_ok=True)
    (config / "feeds.yaml").write_text(
        f"feeds:\n  - {{url: {feed_url!r}, interval: 1s, scrape: false}}\n", "utf-8")
    hooks = "\n".join(f'  - {{webhook: "{u}", secret: "${{HOOK_SECRET}}"}}' for u in hook_urls)
    (config / "watchlists" / "w.yaml").write_text(
        f"name: libya\nkeywords: [Haftar]\nsubscribers:\n{hooks}\n", "utf-8")


def deliveries(server: HTTPServer) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    out = []
    for path in HOOKS:
        for request in server.received(path):
            assert verify_signature(SECRET, request.headers["X-Monitor-Timestamp"], request.body,
                                    request.headers["X-Monitor-Signature"])
            payload = json.loads(request.body)
            assert request.headers["Idempotency-Key"] == payload["id"]
            out.append((path, payload))
    return out


def test_kill_9_at_random_moments_loses_no_alert(
    tmp_path: Path, redis_url: str, http_server: HTTPServer, smtp_server: SMTPServer
) -> None:
    items = [(f"story-{i}", f"Haftar report {i}", f"http://example.org/{i}") for i in range(100)]
    for path in HOOKS:
        http_server.routes[path] = Route(200, b"ok", delay=0.02)
    write_config(tmp_path / "config", http_server.url("/feed"),
                 [http_server.url(p) for p in HOOKS])
    # A killed daemon may die holding the feed's lease: a short one lets the next run
    # poll it soon (in production the default is 3 x the HTTP timeout + 30 s).
    env = {**env_for(tmp_path, redis_url, smtp_server),
           "MONITOR_DELIVERY_VISIBILITY_TIMEOUT": "1.5", "MONITOR_LOG_LEVEL": "INFO",
           "MONITOR_POLL_LEASE_SECONDS": "3"}
    rng = random.Random(20261128)
    kills = 0
    for k in range(5):
        # Each run finds 20 more items, so every run both polls and delivers when killed.
        http_server.routes["/feed"] = Route(200, rss(items[: 20 * (k + 1)]))
        polls = len(http_server.received("/feed", "GET"))
        daemon = Daemon(tmp_path, env).start()
        wait_for(lambda polls=polls: len(http_server.received("/feed", "GET")) > polls,
                 timeout=30)
        time.sleep(rng.uniform(0.0, 0.8))
        daemon.stop(signal.SIGKILL)
        kills += 1
    before_final = len(deliveries(http_server))
    assert before_final > 0, "the kills landed while work was under way"
    http_server.routes["/feed"] = Route(200, rss(items))
    daemon = Daemon(tmp_path, env).start()
    try:
        wait_for(lambda: len({(p, d["id"]) for p, d in deliveries(http_server)}) >= 300,
                 timeout=90)
    finally:
        assert daemon.stop() == 0, daemon.log

    received = deliveries(http_server)
    by_key = Counter(d["id"] for _, d in received)
    expected = {alert_key(d["item"]["id"], d["subscriber"])
                for _, d in received}
    assert all(d["id"] == alert_key(d["item"]["id"], d["subscriber"]) for _, d in received)
    assert len(expected) == 300, "every (item, subscriber) alert arrived"
    assert len({d["item"]["id"] for _, d in received}) == 100
    repeated = sum(n - 1 for n in by_key.values())
    print(f"\nkill -9 x{kills}: {len(by_key)} of 300 alerts sent, 0 lost, {repeated} repeated "
          f"(same idempotency key); {before_final} requests before the last start")


def test_redis_outage_and_recovery(tmp_path: Path, http_server: HTTPServer,
                                   smtp_server: SMTPServer) -> None:
    port = free_port()
    server = RedisServer(tmp_path / "redis", port).start()
    first = [("one", "Haftar one", "http://example.org/1")]
    http_server.routes["/feed"] = Route(200, rss(first))
    http_server.routes["/h1"] = Route(200, b"ok")
    write_config(tmp_path / "config", http_server.url("/feed"), [http_server.url("/h1")])
    daemon = Daemon(tmp_path, env_for(tmp_path, server.url, smtp_server)).start()
    try:
        wait_for(lambda: len(http_server.received("/h1")) == 1, timeout=30)
        server.stop()
        http_server.routes["/feed"] = Route(200, rss(
            [*first, ("two", "Haftar two", "http://example.org/2")]))
        wait_for(lambda: "redis unreachable; polling paused" in daemon.log, timeout=10)
        time.sleep(2)  # many ticks against a dead Redis
        assert daemon.running()
        server = RedisServer(tmp_path / "redis", port).start()
        wait_for(lambda: len(http_server.received("/h1")) == 2, timeout=30)
        time.sleep(1.5)  # more polls: the first item must not come again
    finally:
        assert daemon.stop() == 0, daemon.log
        server.stop()
    titles = [json.loads(r.body)["item"]["title"] for r in http_server.received("/h1")]
    assert titles == ["Haftar one", "Haftar two"]
    log = daemon.log
    assert log.count("redis unreachable; polling paused") == 1, "logged once, not per attempt"
    assert log.count("redis unreachable; delivery paused") <= 1
    assert "redis reachable again; polling resumed" in log
    print("\nredis outage: 2 of 2 alerts sent, 0 lost, 0 repeated")


def test_the_daemon_started_before_redis_runs_once_redis_comes_up(
    tmp_path: Path, http_server: HTTPServer, smtp_server: SMTPServer
) -> None:
    port = free_port()
    url = f"redis://:redis-pass@127.0.0.1:{port}/0"
    http_server.routes["/feed"] = Route(200, rss([("one", "Haftar one", "http://example.org/1")]))
    http_server.routes["/h1"] = Route(200, b"ok")
    write_config(tmp_path / "config", http_server.url("/feed"), [http_server.url("/h1")])
    daemon = Daemon(tmp_path, env_for(tmp_path, url, smtp_server)).start()
    server: RedisServer | None = None
    try:
        wait_for(lambda: "redis unreachable at start" in daemon.log, timeout=30)
        time.sleep(2)  # retries against nothing: still waiting, polling nothing
        assert daemon.running() and not http_server.received("/feed", "GET")
        server = RedisServer(tmp_path / "redis", port, ("--requirepass", "redis-pass")).start()
        came_up = time.monotonic()
        wait_for(lambda: len(http_server.received("/h1")) == 1, timeout=60)
        print(f"\nredis up late: first alert {time.monotonic() - came_up:.1f}s after it came up")
    finally:
        assert daemon.stop() == 0, daemon.log
        if server is not None:
            server.stop()
    log = daemon.log
    (waiting,) = [json.loads(line) for line in log.splitlines()
                  if "redis unreachable at start" in line]
    assert waiting["level"] == "error" and waiting["redis"] == f"redis://:***@127.0.0.1:{port}/0"
    assert "redis-pass" not in log and "Traceback" not in log
    assert "redis reachable; starting" in log and '"monitor started"' in log


def test_a_daemon_waiting_for_redis_stops_at_sigterm(tmp_path: Path, http_server: HTTPServer,
                                                     smtp_server: SMTPServer) -> None:
    write_config(tmp_path / "config", http_server.url("/feed"), [http_server.url("/h1")])
    env = env_for(tmp_path, f"redis://127.0.0.1:{free_port()}/0", smtp_server)
    daemon = Daemon(tmp_path, env).start()
    wait_for(lambda: "redis unreachable at start" in daemon.log, timeout=30)
    assert daemon.stop(timeout=10) == 0, daemon.log
    assert "monitor stopped before redis answered" in daemon.log
    assert "Traceback" not in daemon.log


def test_one_off_commands_say_redis_is_not_there(tmp_path: Path, smtp_server: SMTPServer) -> None:
    write_config(tmp_path / "config", "http://127.0.0.1:9/feed", ["http://127.0.0.1:9/h"])
    port = free_port()
    env = env_for(tmp_path, f"redis://:redis-pass@127.0.0.1:{port}/0", smtp_server)
    for args in (("feeds",), ("alerts",), ("run", "--once")):
        run = Daemon(tmp_path, env, args).start()
        assert run.wait() == 1, run.log
        assert f"redis: cannot use redis://:***@127.0.0.1:{port}/0: " in run.log, run.log
        assert "Traceback" not in run.log and "redis-pass" not in run.log
