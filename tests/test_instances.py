"""Several `monitor run` processes on one Redis: each feed polled once per interval, each
alert delivered once, and a killed instance's feeds still polled."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

from tests.daemon import Daemon, rss
from tests.servers import HTTPServer, Route, SMTPServer, wait_for
from tests.test_daemon import env_for

FEEDS = 300
INTERVAL = 2.0


def polls(server: HTTPServer) -> Counter[str]:
    return Counter(r.path for r in server.requests if r.method == "GET")


def test_three_instances_share_the_work(tmp_path: Path, redis_url: str,
                                        http_server: HTTPServer, smtp_server: SMTPServer) -> None:
    paths = [f"/f{i}.xml" for i in range(FEEDS)]
    for i, path in enumerate(paths):
        http_server.routes[path] = Route(200, rss([(f"g{i}", f"Haftar {i}", "")]))
    http_server.routes["/hook"] = Route(200, b"ok")
    config = tmp_path / "config"
    (config / "watchlists").mkdir(parents=True)
    (config / "feeds.yaml").write_text("feeds:\n" + "".join(
        f"  - {{url: {http_server.url(p)!r}, interval: {INTERVAL}, scrape: false}}\n"
        for p in paths), "utf-8")
    (config / "watchlists" / "w.yaml").write_text(
        "name: libya\nkeywords: [Haftar]\nsubscribers:\n"
        f"  - {{webhook: {http_server.url('/hook')!r}, secret: s3cret}}\n", "utf-8")
    env = {**env_for(tmp_path, redis_url, smtp_server), "MONITOR_HTTP_PER_HOST": "8",
           "MONITOR_POLL_LEASE_SECONDS": "3", "MONITOR_LOG_LEVEL": "INFO"}
    daemons = [Daemon(tmp_path, env).start() for _ in range(3)]
    try:
        wait_for(lambda: len(http_server.received("/hook")) >= FEEDS, timeout=60)
        time.sleep(1.0)
        start, t0 = polls(http_server), time.monotonic()
        time.sleep(8.0)
        end, t1 = polls(http_server), time.monotonic()
        expected = (t1 - t0) / INTERVAL
        deltas = [end[p] - start[p] for p in paths]
        # Each feed about once per interval across all three (a double claim would show
        # as two or three times that).
        assert max(deltas) <= expected + 2, (max(deltas), expected)
        assert min(deltas) >= expected - 2, (min(deltas), expected)
        assert sum(deltas) <= FEEDS * (expected + 1)

        daemons[0].stop(signal.SIGKILL)  # its leases run out; the others take its feeds
        time.sleep(3.5)
        before = polls(http_server)
        time.sleep(6.0)
        after = polls(http_server)
        assert all(after[p] > before[p] for p in paths), "a dead instance's feeds went quiet"
        assert all(d.running() for d in daemons[1:])
    finally:
        for d in daemons:
            if d.running():
                assert d.stop() == 0, d.log
    keys = Counter(json.loads(r.body)["id"] for r in http_server.received("/hook"))
    assert len(keys) == FEEDS and set(keys.values()) == {1}, "each alert delivered once"
    logs = [d.log for d in daemons]
    assert all('"feed polled"' in log for log in logs), "all three instances polled"
    print(f"\n3 instances, {FEEDS} feeds every {INTERVAL:g}s: polls per feed in "
          f"{t1 - t0:.1f}s: min {min(deltas)}, max {max(deltas)} (expected {expected:.1f}); "
          f"{len(keys)} alerts, each delivered once")


def test_a_config_edit_reaches_every_instance(tmp_path: Path, redis_url: str,
                                              http_server: HTTPServer,
                                              smtp_server: SMTPServer) -> None:
    # Two instances on one config directory (one machine, or a volume every machine
    # mounts). An edit adds a feed and a keyword and removes a feed; both instances
    # reload it, the new feed is polled and its match alerted once, the removed feed
    # is polled by neither.
    http_server.routes["/old.xml"] = Route(200, rss([("o1", "Haftar in Sirte", "")]))
    http_server.routes["/new.xml"] = Route(200, rss([("n1", "Misrata port reopens", "")]))
    http_server.routes["/hook"] = Route(200, b"ok")
    config = tmp_path / "config"
    (config / "watchlists").mkdir(parents=True)
    feeds = config / "feeds.yaml"
    feeds.write_text(f"feeds:\n  - {{url: {http_server.url('/old.xml')!r}, interval: 1, "
                     "adaptive: false}\n", "utf-8")
    watchlist = config / "watchlists" / "w.yaml"
    hook = f"subscribers:\n  - {{webhook: {http_server.url('/hook')!r}, secret: s3cret}}\n"
    watchlist.write_text("name: libya\nkeywords: [Haftar]\n" + hook, "utf-8")
    env = {**env_for(tmp_path, redis_url, smtp_server), "MONITOR_LOG_LEVEL": "INFO"}
    daemons = [Daemon(tmp_path, env).start() for _ in range(2)]
    try:
        wait_for(lambda: len(http_server.received("/hook")) >= 1, timeout=30)
        wait_for(lambda: all('"monitor started"' in d.log for d in daemons), timeout=30)
        # The keyword first: an instance reloading between the two writes must not poll
        # the new feed before it knows the keyword (its item would be seen, unmatched).
        watchlist.write_text("name: libya\nkeywords: [Haftar, Misrata]\n" + hook, "utf-8")
        wait_for(lambda: all(d.log.count('"config reloaded"') >= 1 for d in daemons),
                 timeout=30)
        feeds.write_text(f"feeds:\n  - {{url: {http_server.url('/new.xml')!r}, "
                         "interval: 1, adaptive: false}\n", "utf-8")
        wait_for(lambda: all(d.log.count('"config reloaded"') >= 2 for d in daemons),
                 timeout=30)
        wait_for(lambda: len(http_server.received("/hook")) >= 2, timeout=30)
        time.sleep(1.0)  # both instances reloaded: the old feed is due for neither
        before = polls(http_server)
        time.sleep(3.0)
        after = polls(http_server)
        assert after["/old.xml"] == before["/old.xml"], "a removed feed is still polled"
        assert after["/new.xml"] >= before["/new.xml"] + 2, "the new feed is not polled"
        assert all(d.running() for d in daemons)
    finally:
        for d in daemons:
            if d.running():
                assert d.stop() == 0, d.log
    titles = Counter(json.loads(r.body)["item"]["title"] for r in http_server.received("/hook"))
    assert titles == {"Haftar in Sirte": 1, "Misrata port reopens": 1}
