from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from monitor.cli import main
from monitor.store import Store
from tests.test_worker import make_alert

ROOT = Path(__file__).resolve().parent.parent


async def cli(args: list[str]) -> int:
    """The real command, in a thread: it runs its own event loop."""
    return await asyncio.to_thread(main, args)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    monkeypatch.setenv("MONITOR_REDIS_URL", redis_url)


async def dead_letters(store: Store) -> None:
    await store.ensure_group()
    await store.commit_item("i1", [make_alert("hook", "i1"), make_alert("desk", "i1")])
    await store.commit_item("i2", [make_alert("hook", "i2")])
    entries = await store.read_new("c", 10, None)
    for entry_id, fields in entries[:2]:
        await store.dead_letter(entry_id, fields["alert"], "webhook: HTTP 404", 1)
    await store.record_error(entries[2][0], 1, "webhook: HTTP 503")


async def test_alerts_report_and_replay(env: None, aredis: aioredis.Redis,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(aredis)
    await dead_letters(store)
    assert await cli(["--config-dir", str(ROOT / "config"), "alerts", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["queued"], report["pending"], report["dead"]) == (1, 1, 2)
    assert report["oldest_age"] is not None and report["oldest_age"] >= 0
    assert [d["error"] for d in report["dead_letters"]] == ["webhook: HTTP 404"] * 2
    assert {d["subscriber"] for d in report["dead_letters"]} == {"hook", "desk"}
    assert report["failing"][0]["last_error"] == "webhook: HTTP 503"

    assert await cli(["--config-dir", str(ROOT / "config"), "alerts"]) == 0
    text = capsys.readouterr().out
    assert "dead:   2" in text and "webhook: HTTP 404" in text

    assert await cli(["--config-dir", str(ROOT / "config"), "alerts", "replay"]) == 2
    assert await cli(["--config-dir", str(ROOT / "config"), "alerts", "replay",
                 "--subscriber", "desk"]) == 0
    assert "re-queued 1 dead letters" in capsys.readouterr().out
    summary = await store.summary()
    assert (summary.queued, summary.dead) == (2, 1)
    # The replayed alert keeps its idempotency key.
    new = await store.read_new("c", 10, None)
    assert json.loads(new[-1][1]["alert"])["key"] == make_alert("desk", "i1").key

    assert await cli(["--config-dir", str(ROOT / "config"), "alerts", "replay", "--all"]) == 0
    assert (await store.summary()).dead == 0


async def test_feeds_command_shows_state(env: None, aredis: aioredis.Redis,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from monitor.config import load_config

    config = load_config(ROOT / "config", {})
    store = Store(aredis)
    feed = config.feeds[0]
    await store.set_feed_state(feed.id, {"status": "error", "failures": 3,
                                         "error": "fetch: timed out", "last_poll": 1.0})
    assert await cli(["--config-dir", str(ROOT / "config"), "feeds", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == feed.name and rows[0]["failures"] == 3
    assert rows[0]["error"] == "fetch: timed out"
    assert rows[1]["status"] == "never polled"
    assert rows[0]["interval_s"] == feed.interval  # nothing learned yet

    await store.set_feed_state(feed.id, {"status": "304", "failures": 0, "error": "",
                                         "interval": 5400.0, "hint": "3600"})
    assert await cli(["--config-dir", str(ROOT / "config"), "feeds"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"{feed.name}: 304,") and first.endswith("every 90m (feed asks 1h)")


async def test_alerts_report_shows_endpoints_down_and_since_when(
        env: None, aredis: aioredis.Redis, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(aredis)
    await store.ensure_group()
    await store.commit_item("i1", [make_alert("hook", "i1")])
    await store.commit_item("i2", [make_alert("hook", "i2")])
    circuit = "webhook@hooks.example.org:443#1a2b3c4d"
    since = store.now() - 3 * 3600
    await store.circuit_failed(circuit, now=since, error="webhook: HTTP 503", label="hook",
                               next_probe=store.now() + 4, prober="", push=False)
    entries = await store.read_new("c", 10, None)
    await store.park(circuit, [entries[0][0]])
    await store.park("webhook@busy.example.org:443#5e6f7a8b", [entries[1][0]])

    assert await cli(["--config-dir", str(ROOT / "config"), "alerts", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (down,) = report["endpoints_down"]
    assert (down["endpoint"], down["subscriber"], down["waiting"]) == (circuit, "hook", 1)
    assert down["since"] == pytest.approx(since) and down["down_s"] >= 3 * 3600
    assert down["last_error"] == "webhook: HTTP 503" and 0 < down["next_probe_in_s"] <= 4
    assert report["waiting_for_room"] == 1 and report["failing"] == []

    assert await cli(["--config-dir", str(ROOT / "config"), "alerts"]) == 0
    text = capsys.readouterr().out
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(since))
    assert f"{circuit} (hook): down since {when}Z (3h), 1 waiting" in text
    assert "waiting for a busy endpoint: 1" in text
