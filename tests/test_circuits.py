"""Long outages: a retry window of a day, and per-endpoint circuits that hold an endpoint's
alerts on one probe and release them within seconds of its recovery (issue 29, point 2)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError
from structlog.testing import capture_logs

from monitor import admin
from monitor.circuits import DAY, RetryPolicy
from monitor.config import Config, SubscriberConfig, WatchlistConfig
from monitor.deliver import EmailSender, WebhookSender
from monitor.match import Matcher
from monitor.poller import Runtime, alert_key
from monitor.service import Service, retry_policy
from monitor.settings import Settings
from monitor.store import Store
from monitor.worker import DeliveryWorker
from tests.servers import HTTPServer, Request, Route, SMTPServer, free_port
from tests.test_worker import FAST, SECRET, make_alert, run_until

OUTAGE = 30 * 60.0
STEP = 2.0  # simulated seconds the clock moves per turn of the outage


class TimedSender(WebhookSender):
    """A real webhook sender that notes, on the workers' clock, when each send that
    failed began: what the probe rule governs. (The sink's own clock readings lag the
    sends by however many turns of the test's fast clock a request takes under load.)"""

    def __init__(self, clock: Clock) -> None:
        super().__init__(timeout=5)
        self.clock = clock
        self.failed: list[float] = []

    async def send(self, alert: Any, url: str, secret: str) -> None:
        began = self.clock()
        try:
            await super().send(alert, url, secret)
        except Exception:
            self.failed.append(began)
            raise


class Clock:
    """The workers' clock: real time, plus what the test moves it on by."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def hooks(*urls: tuple[str, str], emails: tuple[str, ...] = ()) -> Runtime:
    """A runtime whose subscribers are these (name, URL) webhooks and email addresses."""
    wl = WatchlistConfig(name="libya", keywords=["Haftar"])  # type: ignore[list-item]
    subs = tuple(SubscriberConfig(name=name, webhook=url, secret=SECRET,  # type: ignore[arg-type]
                                  watchlists=("libya",)) for name, url in urls)
    subs += tuple(SubscriberConfig(name=a, email=a, watchlists=("libya",)) for a in emails)
    config = Config(watchlists=(wl,), subscribers=subs)
    return Runtime(config, Matcher(config.watchlists))


def worker(store: Store, rt: Runtime, client: WebhookSender, smtp_port: int, *,
           consumer: str = "w", policy: RetryPolicy = FAST, **options: object) -> DeliveryWorker:
    return DeliveryWorker(
        store, lambda: rt, consumer=consumer, policy=policy, webhook=client,
        email=EmailSender(host="127.0.0.1", port=smtp_port, sender="m@example.org", timeout=5),
        retry_scan_seconds=0.01, **options)  # type: ignore[arg-type]


async def queue(store: Store, subscriber: str, first: int, count: int) -> set[str]:
    """Commits `count` items with an alert for `subscriber`; returns their keys."""
    keys = set()
    for n in range(first, first + count):
        await store.commit_item(f"item-{n}", [make_alert(subscriber, f"item-{n}")])
        keys.add(alert_key(f"item-{n}", subscriber))
    return keys


@pytest.fixture
async def client() -> AsyncIterator[WebhookSender]:
    sender = WebhookSender(timeout=5)
    yield sender
    await sender.close()


@pytest.mark.parametrize("instances", [1, 2])
async def test_a_30_minute_outage_loses_nothing_and_ends_within_seconds_of_recovery(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    instances: int,
) -> None:
    clock = Clock()
    client = TimedSender(clock)
    down = True
    answers: list[tuple[float, str, int]] = []  # (clock, idempotency key, status)

    def hook(request: Request) -> Route:
        status = 503 if down else 204
        answers.append((clock(), request.headers["Idempotency-Key"], status))
        return Route(status)

    http_server.routes["/hook"] = hook
    store = Store(aredis)
    rt = hooks(("hook", http_server.url("/hook")))
    # The defaults (a day's window, a probe every 5 s), but on the test's clock.
    policy = RetryPolicy()
    workers = [worker(store, rt, client, smtp_server.port, consumer=f"w{i}", policy=policy,
                      clock=clock) for i in range(instances)]
    await store.ensure_group()
    keys = await queue(store, "hook", 0, 40)
    start = clock()
    report: dict[str, Any] | None = None  # `monitor alerts`, halfway
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        async with asyncio.timeout(180):
            while clock() < start + OUTAGE:  # alerts keep coming during the outage
                await asyncio.sleep(0.01)
                clock.offset += STEP
                if len(keys) < 40 + 10 * int((clock() - start) // 300):
                    keys |= await queue(store, "hook", len(keys), 10)
                if report is None and clock() - start >= OUTAGE / 2:
                    report = await admin.alerts_report(store)
            down = False
            recovered = clock()  # from now the clock runs as real time does
            delivered: Counter[str] = Counter()
            while set(delivered) != keys:
                await asyncio.sleep(0.02)
                delivered = Counter(k for _, k, status in answers if status == 204)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await client.close()

    assert len(keys) >= 40 + 50 and set(delivered.values()) == {1}, "each alert once"
    assert await store.dead_letters() == [] and await store.queue_length() == 0
    last = max(at for at, _, status in answers if status == 204)
    assert last - recovered <= 10, f"delivered {last - recovered:.1f} s after recovery"
    # During the outage, past the sends under way when it began (four at once to a host,
    # per instance), the alerts waited on one probe at a time among all instances: one
    # request every 5 s at most (the test's clock runs faster than its probes can go:
    # they come every 10-20 s of it), not one per alert and retry.
    failed = sorted(client.failed)
    assert len(failed) == sum(1 for _, _, status in answers if status == 503)
    probes = failed[4 * instances:]
    assert len(probes) <= OUTAGE / 5, len(probes)
    assert {int((at - start) // 300) for at in probes} >= set(range(6)), "probed throughout"
    assert all(b - a >= 5 - 0.1 for a, b in zip(probes, probes[1:], strict=False))
    # `monitor alerts`, halfway: the endpoint that is down, since when, and what waits.
    assert report is not None
    (row,) = report["endpoints_down"]
    assert row["endpoint"] == workers[0].webhook.route(http_server.url("/hook")).circuits[-1]
    assert start <= row["since"] <= start + 2 * STEP and row["subscriber"] == "hook"
    assert row["waiting"] >= 40 and row["last_error"] == "webhook: HTTP 503"


async def test_a_host_that_cannot_be_reached_holds_its_webhooks_on_one_circuit(
    aredis: aioredis.Redis, smtp_server: SMTPServer, client: WebhookSender,
) -> None:
    port = free_port()  # nothing listens there: connections are refused
    rt = hooks(("a", f"http://127.0.0.1:{port}/a"), ("b", f"http://127.0.0.1:{port}/b"))
    store = Store(aredis)
    w = worker(store, rt, client, smtp_server.port)
    await store.ensure_group()
    keys = await queue(store, "a", 0, 5) | await queue(store, "b", 5, 5)
    report = await w.drain()
    assert (report.sent, report.dead, report.left) == (0, 0, 10)
    (circuit,) = report.down
    assert circuit.id == f"webhook@127.0.0.1:{port}" and "cannot connect" in circuit.error
    assert (await admin.alerts_report(store))["endpoints_down"][0]["waiting"] >= 6

    up = HTTPServer(port=port).start()
    try:
        up.routes["/a"] = up.routes["/b"] = Route(204)
        await run_until(w, lambda: len(up.received("/a")) + len(up.received("/b")) == 10)
    finally:
        up.stop()
    assert {r.headers["Idempotency-Key"] for r in up.requests} == keys
    assert await store.circuits() == {} and await store.queue_length() == 0


async def test_probes_take_turns_so_one_refused_alert_does_not_hold_the_rest(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender,
) -> None:
    bad = alert_key("item-0", "hook")
    http_server.routes["/hook"] = lambda request: Route(
        500 if request.headers["Idempotency-Key"] == bad else 204)
    rt = hooks(("hook", http_server.url("/hook")))
    store = Store(aredis)
    w = worker(store, rt, client, smtp_server.port)
    await store.ensure_group()
    await queue(store, "hook", 0, 1)
    assert (await w.drain()).left == 1  # the endpoint refused it: its circuit is open
    good = await queue(store, "hook", 1, 20)  # these wait for the circuit
    await run_until(w, lambda: {r.headers["Idempotency-Key"] for r in
                                http_server.received("/hook")} >= good)
    tries = Counter(r.headers["Idempotency-Key"] for r in http_server.received("/hook"))
    assert all(tries[k] == 1 for k in good)
    assert await store.queue_length() == 1 and await store.dead_letters() == []


async def test_a_recipient_refused_for_now_waits_alone_and_the_server_goes_on(
    aredis: aioredis.Redis, smtp_server: SMTPServer, client: WebhookSender,
) -> None:
    smtp_server.mailbox.refuse["desk@example.org"] = "450 4.2.1 mailbox busy, try later"
    rt = hooks(emails=("desk@example.org", "night@example.org"))
    store = Store(aredis)
    w = worker(store, rt, client, smtp_server.port)
    await store.ensure_group()
    for n in range(3):
        await store.commit_item(f"item-{n}", [make_alert("desk@example.org", f"item-{n}"),
                                             make_alert("night@example.org", f"item-{n}")])
    report = await w.drain()
    assert report.sent == 3 and report.left == 3 and report.down == ()
    assert [m[1] for m in smtp_server.messages] == [["night@example.org"]] * 3
    failing = (await admin.alerts_report(store))["failing"]
    assert len(failing) == 3 and all("450" in f["last_error"] for f in failing)

    del smtp_server.mailbox.refuse["desk@example.org"]
    await run_until(w, lambda: len(smtp_server.messages) == 6)
    assert await store.queue_length() == 0


def test_the_retry_window_is_a_day_and_the_attempts_follow_from_it() -> None:
    policy = retry_policy(Settings(_env_file=None))  # type: ignore[call-arg]
    assert policy.window == DAY and policy.probe == 5 and policy.cap == 3600
    delays = [min(policy.cap, policy.base * 2 ** k) for k in range(policy.attempts)]
    # The attempts of an alert failing alone span the window, an hour apart at most.
    assert sum(delays[:-1]) <= policy.window < sum(delays)
    assert policy.backoff(50) <= 3600 * 1.2 and policy.probe_delay(7200) == 3600
    with pytest.raises(ValidationError):
        Settings(_env_file=None, delivery_backoff_max=7200)  # type: ignore[call-arg]


def test_max_attempts_still_means_what_it_did_and_retry_hours_wins() -> None:
    old = retry_policy(Settings(_env_file=None, delivery_max_attempts=8))  # type: ignore[call-arg]
    assert old.window == sum(5 * 2 ** k for k in range(7))  # 5 + 10 + ... + 320 s
    both = retry_policy(Settings(_env_file=None, delivery_max_attempts=8,  # type: ignore[call-arg]
                                 delivery_retry_hours=2))
    assert both.window == 7200


async def test_max_attempts_is_logged_as_deprecated(tmp_path: Path, redis_url: str) -> None:
    (tmp_path / "feeds.yaml").write_text("feeds: []\n", "utf-8")
    service = Service(Settings(_env_file=None, redis_url=redis_url,  # type: ignore[call-arg]
                               config_dir=tmp_path, delivery_max_attempts=8), env={})
    with capture_logs() as logs:
        await service.start()
    await service.close()
    (warning,) = [e for e in logs if "DEPRECATED" in e["event"].upper()]
    assert "MONITOR_DELIVERY_RETRY_HOURS" in warning["event"] and "635 s" in warning["event"]


async def test_a_circuit_nothing_waits_for_is_forgotten_after_an_hour(
    aredis: aioredis.Redis, smtp_server: SMTPServer, client: WebhookSender,
) -> None:
    # An endpoint that left the config: no alert goes to it any more, so after an hour
    # without a failure it is not shown as down for ever; one that alerts wait for stays.
    clock = Clock()
    store = Store(aredis)
    w = worker(store, hooks(), client, smtp_server.port, clock=clock,
               policy=dataclasses.replace(FAST, cap=3600))
    await store.ensure_group()
    for circuit in ("webhook@gone.example.org:443#1", "webhook@down.example.org:443#2"):
        await store.circuit_failed(circuit, now=clock(), error="webhook: HTTP 503", label="x",
                                   next_probe=clock() + 3600, prober="", push=False)
    await store.commit_item("i1", [make_alert("hook", "i1")])
    ((entry_id, _),) = await store.read_new("w", 10, None)
    await store.park("webhook@down.example.org:443#2", [entry_id])
    await w.scan()
    assert len(await store.circuits()) == 2
    clock.offset = 3601
    await w.scan()
    assert list(await store.circuits()) == ["webhook@down.example.org:443#2"]
