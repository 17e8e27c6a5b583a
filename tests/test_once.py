"""`monitor run --once` delivers everything deliverable before it exits, and its exit
status says when something was not delivered (issue 23, point 1)."""

from __future__ import annotations

import re
from pathlib import Path

import redis

from monitor.cli import ONCE_UNDELIVERED
from monitor.store import Keys
from tests import corpus_run
from tests.daemon import Daemon
from tests.servers import HTTPServer, Route


def once(tmp_path: Path, redis_url: str, **env: str) -> Daemon:
    return Daemon(tmp_path, {
        "MONITOR_REDIS_URL": redis_url, "MONITOR_CONFIG_DIR": str(tmp_path / "config"),
        "MONITOR_MAX_AGE_DAYS": "100000",  # the corpus feeds are years old
        "MONITOR_LOG_LEVEL": "INFO", **env}, ("run", "--once")).start()


def queued(redis_url: str) -> int:
    with redis.Redis.from_url(redis_url) as client:
        return int(client.xlen(Keys().alerts))


def alerts_queued(log: str) -> int:
    """The alerts the polls queued, from the command's lines per feed."""
    return sum(int(n) for n in re.findall(r", (\d+) alerts", log))


def test_the_corpus_feeds_are_delivered_whole(
    tmp_path: Path, redis_url: str, http_server: HTTPServer,
) -> None:
    corpus = corpus_run.write_config(tmp_path / "config", http_server)
    run = once(tmp_path, redis_url)
    assert run.wait(timeout=300) == 0, run.log[-3000:]

    delivered = corpus_run.deliveries(http_server)
    expected = alerts_queued(run.log)
    # Each item its feed's webhook and the shared one (less the copies of a story the
    # shared webhook had from another feed); each alert once.
    assert corpus.matching_items <= expected <= 2 * corpus.matching_items
    assert sum(delivered.values()) == len(delivered) == expected
    assert f"alerts: {expected} delivered, 0 dead-lettered, 0 left queued" in run.log
    assert queued(redis_url) == 0


def test_alerts_left_behind_make_the_exit_status_3_until_they_are_delivered(
    tmp_path: Path, redis_url: str, http_server: HTTPServer,
) -> None:
    corpus_run.write_config(tmp_path / "config", http_server, limit=3)
    http_server.routes["/hook/feed-001"] = Route(503)
    run = once(tmp_path, redis_url, MONITOR_DELIVERY_PROBE_SECONDS="0.2")
    assert run.wait(timeout=120) == ONCE_UNDELIVERED, run.log[-3000:]
    (left,) = re.findall(r"alerts: \d+ delivered, 0 dead-lettered, (\d+) left queued", run.log)
    assert int(left) == queued(redis_url) > 0
    assert re.search(r"endpoint down: webhook@127\.0\.0\.1:\d+#\w+ \(webhook:127\.0\.0\.1#\w+\):"
                     r" webhook: HTTP 503", run.log)
    sent = sum(n for (path, _), n in corpus_run.deliveries(http_server).items()
               if path != "/hook/feed-001")
    assert sent + int(left) == alerts_queued(run.log)

    corpus_run.hook_route(http_server, "/hook/feed-001")  # it is back
    again = once(tmp_path, redis_url)
    assert again.wait(timeout=120) == 0, again.log[-3000:]
    assert f"alerts: {left} delivered, 0 dead-lettered, 0 left queued" in again.log
    assert queued(redis_url) == 0
