"""monitor on a Redis Cluster: every key under one hash tag, so each script's keys are
on one node, and the cluster client finds that node from any other."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from monitor.extract import extract_text
from monitor.settings import Settings
from monitor.store.connect import Connection, _HiredisPacking
from tests.daemon import Daemon, rss
from tests.servers import (
    ClusterServers,
    HTTPServer,
    RedisServer,
    Route,
    SMTPServer,
    wait_for,
)
from tests.test_daemon import env_for
from tests.test_dedup import SEED_TEXT, other_template

FEEDS = 20
COPIES = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterServers]:
    servers = ClusterServers(tmp_path_factory.mktemp("cluster")).start()
    yield servers
    servers.stop()


def flush(cluster: ClusterServers) -> None:
    for node in cluster.nodes:
        with redis.Redis(port=node.port) as client:
            client.flushall()


def keys_on(node: RedisServer) -> int:
    with redis.Redis(port=node.port) as client:
        return int(client.dbsize())


def write_config(tmp_path: Path, http_server: HTTPServer, copies: int) -> list[str]:
    """FEEDS feeds with an item on Haftar each, from the feed alone, and `copies` feeds
    with a copy of one story each, scraped from its own site; a watchlist on Haftar, and
    a webhook subscriber. Returns the feeds' paths."""
    seed = extract_text(SEED_TEXT)
    html = {"Content-Type": "text/html; charset=utf-8"}
    lines, paths = [], []
    for i in range(FEEDS):
        http_server.routes[f"/f{i}.xml"] = Route(200, rss([(f"g{i}", f"Haftar {i}", "")]))
        paths.append(f"/f{i}.xml")
        lines.append(f"  - {{url: {http_server.url(f'/f{i}.xml')!r}, interval: 1s, "
                     "scrape: false}\n")
    for n in range(copies):
        http_server.routes[f"/copy{n}"] = Route(200, other_template(seed.text, seed.title), html)
        http_server.routes[f"/c{n}.xml"] = Route(
            200, rss([(f"c{n}", seed.title, http_server.url(f"/copy{n}"))]))
        paths.append(f"/c{n}.xml")
        lines.append(f"  - {{url: {http_server.url(f'/c{n}.xml')!r}, interval: 1s}}\n")
    http_server.routes["/hook"] = Route(200, b"ok")
    config = tmp_path / "config"
    (config / "watchlists").mkdir(parents=True)
    (config / "feeds.yaml").write_text("feeds:\n" + "".join(lines), "utf-8")
    (config / "watchlists" / "libya.yaml").write_text(
        "name: libya\nthreshold: 2\nentities:\n"
        "  - {name: Haftar, aliases: [حفتر], weight: 2}\nsubscribers:\n"
        f"  - {{webhook: {http_server.url('/hook')!r}, secret: s3cret}}\n", "utf-8")
    return paths


def delivered_once(http_server: HTTPServer, count: int) -> list[dict[str, Any]]:
    """The webhooks received, having checked there are `count`, each alert once."""
    hooks = [json.loads(r.body) for r in http_server.received("/hook")]
    ids = Counter(h["id"] for h in hooks)
    assert len(ids) == count and set(ids.values()) == {1}, ids
    return hooks


def test_two_instances_share_a_redis_cluster(tmp_path: Path, cluster: ClusterServers,
                                             http_server: HTTPServer,
                                             smtp_server: SMTPServer) -> None:
    # The URL names a node that does not serve monitor's slot: every command, script and
    # transaction must be redirected to the one that does.
    owner = cluster.owner("{monitor}")
    entry = next(node for node in cluster.nodes if node is not owner)
    flush(cluster)
    paths = write_config(tmp_path, http_server, COPIES)
    env = {**env_for(tmp_path, f"redis://127.0.0.1:{entry.port}", smtp_server),
           "MONITOR_LOG_LEVEL": "INFO"}
    daemons = [Daemon(tmp_path, env).start() for _ in range(2)]
    try:
        wait_for(lambda: all(len(http_server.received(p, "GET")) >= 3 for p in paths)
                 and len(http_server.received("/hook")) >= FEEDS + 1, timeout=60)
        time.sleep(1.5)  # a repeat would arrive by now
        assert all(d.running() for d in daemons), daemons[0].log[-3000:]
        report = subprocess.run([sys.executable, "-m", "monitor", "feeds", "--json"],
                                cwd=tmp_path, env={**daemons[0].env}, capture_output=True,
                                text=True, timeout=60, check=True)
    finally:
        for d in daemons:
            if d.running():
                assert d.stop() == 0, d.log[-3000:]
    hooks = delivered_once(http_server, FEEDS + 1)
    (story,) = [h for h in hooks if h["item"]["title"] == extract_text(SEED_TEXT).title]
    assert len(story["story"]["sources"]) == 1  # the first copy alerted; two followed it
    for d in daemons:  # (which of the two polls what feeds is up to their claims)
        assert '"redis": "cluster"' in d.log and "Error" not in d.log, d.log[-3000:]
    rows = json.loads(report.stdout)
    assert len(rows) == FEEDS + COPIES, rows
    assert all(r["status"] in ("200", "unchanged") and r["failures"] == 0 for r in rows), rows
    # Every key of monitor is on the node that serves its hash tag's slot.
    assert [keys_on(node) > 0 for node in cluster.nodes] == \
        [node is owner for node in cluster.nodes]
    with redis.Redis(port=owner.port) as client:
        # A story per item: the three copies' one has three sources.
        sources = client.keys("{monitor}:story:*:sources")
        assert Counter(client.llen(k) for k in sources) == {1: FEEDS, COPIES: 1}


def test_instances_follow_monitors_slot_to_another_node(tmp_path: Path, cluster: ClusterServers,
                                                        http_server: HTTPServer,
                                                        smtp_server: SMTPServer) -> None:
    # An operator reshards the cluster while two instances run: monitor's slot and its
    # keys move to another node. The instances follow, and every item published after
    # the move is alerted once.
    flush(cluster)
    write_config(tmp_path, http_server, copies=0)
    env = {**env_for(tmp_path, f"redis://127.0.0.1:{cluster.nodes[0].port}", smtp_server),
           "MONITOR_LOG_LEVEL": "INFO"}
    daemons = [Daemon(tmp_path, env).start() for _ in range(2)]
    try:
        wait_for(lambda: len(http_server.received("/hook")) >= FEEDS, timeout=60)
        before = cluster.owner("{monitor}")
        after = next(node for node in cluster.nodes if node is not before)
        assert cluster.move_slot("{monitor}", after) > FEEDS  # the seen items at least
        assert cluster.owner("{monitor}") is after and keys_on(before) == 0
        for i in range(FEEDS):
            http_server.routes[f"/f{i}.xml"] = Route(200, rss([(f"g{i}", f"Haftar {i}", ""),
                                                               (f"h{i}", f"Haftar, {i}", "")]))
        wait_for(lambda: len(http_server.received("/hook")) >= 2 * FEEDS, timeout=60)
        time.sleep(1.5)
        assert all(d.running() for d in daemons), daemons[0].log[-3000:]
    finally:
        for d in daemons:
            if d.running():
                assert d.stop() == 0, d.log[-3000:]
    delivered_once(http_server, 2 * FEEDS)
    assert keys_on(before) == 0 and keys_on(after) > 0


async def test_commands_beyond_the_connection_limit_wait_for_one(
    tmp_path: Path, cluster: ClusterServers,
) -> None:
    # Two connections, sixty commands and pipelines at once: the cluster client's nodes
    # would raise MaxConnectionsError; monitor's waits, as its single-server pool does.
    settings = Settings(redis_url=f"redis://127.0.0.1:{cluster.nodes[0].port}",
                        data_dir=tmp_path, redis_connections=2)
    connection = Connection(settings)
    store = await connection.open()
    try:
        assert connection.cluster
        key = store.keys.seen("counted")
        await store.redis.delete(key)

        async def pipelined() -> None:
            async with store.redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, 60)
                await pipe.execute()

        await asyncio.gather(*(store.redis.incr(key) for _ in range(30)),
                             *(pipelined() for _ in range(30)))
        assert int(await store.redis.get(key)) == 60
        used = [c for node in store.redis.get_nodes() for c in node._connections]
        assert used and all(isinstance(c, _HiredisPacking) for c in used)  # as on one server
    finally:
        await connection.close()
