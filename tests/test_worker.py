from __future__ import annotations

import asyncio
import dataclasses
import email
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.policy import default as default_policy
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from structlog.testing import capture_logs

from monitor.circuits import RetryPolicy
from monitor.config import Config, SubscriberConfig, WatchlistConfig
from monitor.deliver import EmailSender, WebhookSender, verify_signature
from monitor.match import Matcher
from monitor.models import Alert, Hit, Item, Match
from monitor.poller import Runtime, alert_key
from monitor.store import DELIVERY_GROUP, Store
from monitor.worker import DeliveryWorker
from tests.servers import HTTPServer, Route, SMTPServer, calls

SECRET = "hook-secret"
FAST = RetryPolicy(window=60.0, base=0.05, cap=0.2, probe=0.05, visibility_timeout=5.0)


def runtime(http_server: HTTPServer) -> Runtime:
    wl = WatchlistConfig(name="libya", keywords=["Haftar"])  # type: ignore[list-item]
    subs = (
        SubscriberConfig(name="hook", webhook=http_server.url("/hook"), secret=SECRET,
                         watchlists=("libya",)),  # type: ignore[arg-type]
        SubscriberConfig(name="desk", email="desk@example.org", watchlists=("libya",)),
    )
    config = Config(watchlists=(wl,), subscribers=subs)
    return Runtime(config, Matcher(config.watchlists))


def make_alert(subscriber: str, item_id: str = "item-1") -> Alert:
    item = Item(item_id, "f", "Feed", "Haftar advances", "https://example.org/a", "summary")
    hit = Hit("keyword", "Haftar", "Haftar", "Haftar", "title", 0, 1.0)
    return Alert(alert_key(item_id, subscriber), subscriber, item,
                 (Match("libya", 2.0, (hit,), "Haftar advances"),), datetime.now(UTC))


async def worker_for(aredis: aioredis.Redis, http_server: HTTPServer, smtp_port: int,
                     client: WebhookSender) -> tuple[Store, DeliveryWorker]:
    store = Store(aredis)
    rt = runtime(http_server)
    worker = DeliveryWorker(
        store, lambda: rt, consumer="test-worker",
        email=EmailSender(host="127.0.0.1", port=smtp_port, sender="monitor@example.org",
                          timeout=5),
        webhook=client, policy=FAST, retry_scan_seconds=0.02,
    )
    await store.ensure_group()
    return store, worker


@pytest.fixture
async def client() -> AsyncIterator[WebhookSender]:
    sender = WebhookSender(timeout=5)
    yield sender
    await sender.close()


@pytest.fixture
async def hooked(aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
                 client: WebhookSender) -> tuple[Store, DeliveryWorker]:
    """A store and worker whose webhook subscriber's endpoint answers 204."""
    http_server.routes["/hook"] = Route(204)
    return await worker_for(aredis, http_server, smtp_server.port, client)


async def run_until(worker: DeliveryWorker, condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await task


async def test_delivers_signed_webhook_and_email_then_acknowledges(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender,
) -> None:
    http_server.routes["/hook"] = Route(204)
    store, worker = await worker_for(aredis, http_server, smtp_server.port, client)
    assert await store.commit_item("item-1", [make_alert("hook"), make_alert("desk")]) == 2
    await worker.drain()

    (request,) = http_server.received("/hook")
    assert verify_signature(SECRET, request.headers["X-Monitor-Timestamp"], request.body,
                            request.headers["X-Monitor-Signature"])
    assert request.headers["Idempotency-Key"] == alert_key("item-1", "hook")
    (mail,) = smtp_server.messages
    message = email.message_from_bytes(mail[2], policy=default_policy)
    assert mail[1] == ["desk@example.org"]
    assert message["Subject"] == "[libya] Haftar advances"
    assert await store.queue_length() == 0
    assert await store.pending() == []


async def test_item_is_committed_once(aredis: aioredis.Redis) -> None:
    store = Store(aredis)
    assert await store.commit_item("item-1", [make_alert("hook")]) == 1
    assert await store.commit_item("item-1", [make_alert("hook")]) == -1
    assert await store.queue_length() == 1
    assert await store.unseen(["item-1", "item-2"]) == ["item-2"]


async def test_500_is_retried_with_the_same_idempotency_key(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender,
) -> None:
    answers = iter([Route(500), Route(503, headers={"Retry-After": "0"}), Route(200)])
    http_server.routes["/hook"] = lambda request: next(answers)
    store, worker = await worker_for(aredis, http_server, smtp_server.port, client)
    await store.commit_item("item-1", [make_alert("hook")])
    await run_until(worker, lambda: worker.sent == 1)

    keys = [r.headers["Idempotency-Key"] for r in http_server.received("/hook")]
    assert keys == [alert_key("item-1", "hook")] * 3
    assert await store.pending() == [] and await store.dead_letters() == []


async def test_404_is_permanent_and_goes_to_dead_letters(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender,
) -> None:
    http_server.routes["/hook"] = Route(404)
    store, worker = await worker_for(aredis, http_server, smtp_server.port, client)
    await store.commit_item("item-1", [make_alert("hook")])
    await worker.drain()

    assert len(http_server.received("/hook")) == 1
    (dead,) = await store.dead_letters()
    assert dead[1]["error"] == "webhook: HTTP 404"
    assert await store.pending() == [] and await store.queue_length() == 0


async def test_an_alert_failing_for_the_whole_retry_window_is_dead_lettered(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender,
) -> None:
    http_server.routes["/hook"] = Route(502)
    store, worker = await worker_for(aredis, http_server, smtp_server.port, client)
    worker.policy = dataclasses.replace(FAST, window=0.5)
    worker.circuits.policy = worker.policy
    await store.commit_item("item-1", [make_alert("hook")])

    async def dead() -> int:
        return len(await store.dead_letters())

    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    async with asyncio.timeout(10):
        while not await dead():
            await asyncio.sleep(0.02)
    stop.set()
    await task
    tries = len(http_server.received("/hook"))
    # Probed every 0.05 s for 0.5 s (the scan runs every 0.02 s), then given up.
    assert 3 <= tries <= 0.5 / 0.05 + 2
    (entry,) = await store.dead_letters()
    assert entry[1]["attempts"] == str(tries)
    assert entry[1]["error"] == "webhook: HTTP 502 (retried for 0.5 s)"
    assert await store.pending() == [] and await store.queue_length() == 0


async def test_smtp_4xx_is_retried_until_accepted(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender,
) -> None:
    smtp_server.mailbox.reply = "451 4.3.0 try again later"
    store, worker = await worker_for(aredis, http_server, smtp_server.port, client)
    await store.commit_item("item-1", [make_alert("desk")])
    await worker.drain()
    assert smtp_server.messages == [] and len(await store.pending()) == 1
    error = await store.last_error((await store.pending())[0].id)
    assert error is not None and "451" in error["error"]

    smtp_server.mailbox.reply = None
    await run_until(worker, lambda: len(smtp_server.messages) == 1)
    assert await store.pending() == []


async def test_smtp_server_down_then_up(
    aredis: aioredis.Redis, http_server: HTTPServer, client: WebhookSender, tmp_path: Path,
) -> None:
    down = SMTPServer()
    down.stop()  # never started: nothing listens on its port
    store, worker = await worker_for(aredis, http_server, down.port, client)
    await store.commit_item("item-1", [make_alert("desk")])
    await worker.drain()
    assert len(await store.pending()) == 1
    up = SMTPServer(port=down.port).start()
    try:
        await run_until(worker, lambda: len(up.messages) == 1)
    finally:
        up.stop()
    assert await store.pending() == []


async def test_hanging_webhook_times_out_and_is_retried(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
) -> None:
    answers = iter([Route(200, delay=2.0), Route(200)])
    http_server.routes["/hook"] = lambda request: next(answers)
    short = WebhookSender(timeout=0.5)
    try:
        store, worker = await worker_for(aredis, http_server, smtp_server.port, short)
        await store.commit_item("item-1", [make_alert("hook")])
        await run_until(worker, lambda: worker.sent == 1)
    finally:
        await short.close()
    assert len(http_server.received("/hook")) == 2
    assert await store.pending() == []


async def test_a_hung_endpoint_does_not_delay_the_others(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
) -> None:
    slow = HTTPServer().start()
    try:
        slow.routes["/hook"] = Route(200, delay=1.0)
        http_server.routes["/hook"] = Route(200)
        wl = WatchlistConfig(name="libya", keywords=["Haftar"])  # type: ignore[list-item]
        subs = tuple(
            SubscriberConfig(name=name, webhook=server.url("/hook"), secret=SECRET,
                             watchlists=("libya",))  # type: ignore[arg-type]
            for name, server in (("slow", slow), ("fast", http_server)))
        rt = Runtime(Config(watchlists=(wl,), subscribers=subs), Matcher((wl,)))
        store = Store(aredis)
        async with WebhookSender(timeout=10) as client:
            worker = DeliveryWorker(
                store, lambda: rt, consumer="w", policy=FAST, concurrency=4, per_endpoint=2,
                email=EmailSender(host="127.0.0.1", port=smtp_server.port, sender="m@x.org"),
                webhook=client, retry_scan_seconds=0.05)
            await store.ensure_group()
            for i in range(20):  # the slow endpoint's alerts come first in the stream
                await store.commit_item(f"s{i}", [make_alert("slow", f"s{i}")])
            for i in range(5):
                await store.commit_item(f"f{i}", [make_alert("fast", f"f{i}")])
            clock = asyncio.get_running_loop().time
            started, done_at = clock(), []

            def fast_done() -> bool:
                if len(http_server.received("/hook")) == 5 and not done_at:
                    done_at.append(clock())
                return bool(done_at)

            await run_until(worker, fast_done)  # shutting down waits for the slow sends
        # All five before even the first slow send (1 s) finished.
        assert done_at[0] - started < 0.9, "fast endpoint waited for the hung one"
        # The slow endpoint got no more than its share at once; the rest were deferred,
        # not failed: nothing was dead-lettered.
        assert await store.dead_letters() == []
    finally:
        slow.stop()


async def test_smtp_5xx_is_permanent(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender,
) -> None:
    smtp_server.mailbox.reply = "554 5.7.1 message rejected"
    store, worker = await worker_for(aredis, http_server, smtp_server.port, client)
    await store.commit_item("item-1", [make_alert("desk")])
    await worker.drain()
    (dead,) = await store.dead_letters()
    assert "554" in dead[1]["error"] and dead[1]["attempts"] == "1"
    assert await store.pending() == []


async def test_a_burst_of_email_shares_one_connection(smtp_server: SMTPServer) -> None:
    sender = EmailSender(host="127.0.0.1", port=smtp_server.port, sender="m@example.org")
    try:
        for n in range(5):
            await sender.send(make_alert("desk", f"item-{n}"), "desk@example.org")
    finally:
        await sender.close()
    assert len(smtp_server.messages) == 5
    assert smtp_server.mailbox.greetings == 1


async def test_a_kept_connection_the_server_dropped_is_replaced() -> None:
    first = SMTPServer().start()
    sender = EmailSender(host="127.0.0.1", port=first.port, sender="m@example.org")
    try:
        await sender.send(make_alert("desk", "item-1"), "desk@example.org")
        first.stop()  # the kept connection dies with it
        second = SMTPServer(port=first.port).start()
        try:
            await sender.send(make_alert("desk", "item-2"), "desk@example.org")
            assert len(second.messages) == 1 and second.mailbox.greetings == 1
        finally:
            await sender.close()
            second.stop()
    finally:
        if getattr(first, "_started", False):
            first.stop()
    assert len(first.messages) == 1


async def test_sends_confirmed_together_are_acknowledged_together(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender,
) -> None:
    http_server.routes["/hook"] = Route(204)
    store, worker = await worker_for(aredis, http_server, smtp_server.port, client)
    for i in range(60):
        await store.commit_item(f"item-{i}", [make_alert("hook", f"item-{i}")])
    first_id = (await aredis.xrange(store.keys.alerts, count=1))[0][0]
    await store.record_error(first_id, 1, "a failure an earlier attempt left")
    acks_before = calls(await aredis.info("commandstats"), "xack")
    await worker.drain()

    assert len(http_server.received("/hook")) == 60 and worker.sent == 60
    assert await store.queue_length() == 0
    assert await store.pending() == []
    acks = calls(await aredis.info("commandstats"), "xack") - acks_before
    assert 1 <= acks <= 30  # four sends at once to this host: confirmations share trips
    assert await store.last_error(first_id) is None


async def test_an_acknowledgement_lost_to_redis_leaves_the_alert_pending(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender, monkeypatch: pytest.MonkeyPatch,
) -> None:
    http_server.routes["/hook"] = Route(204)
    store, worker = await worker_for(aredis, http_server, smtp_server.port, client)
    await store.commit_item("item-1", [make_alert("hook")])

    async def redis_down(entry_ids: list[str]) -> None:
        raise aioredis.ConnectionError("connection refused")

    monkeypatch.setattr(store, "done", redis_down)
    await worker.drain()
    assert len(http_server.received("/hook")) == 1 and worker.sent == 0
    # Sent but not acknowledged: it stays pending, and is sent again (same idempotency
    # key, which receivers use to drop the repeat) once Redis answers.
    (pending,) = await store.pending()
    assert pending.deliveries == 1


async def test_alerts_arriving_one_by_one_share_reads_and_acknowledgements(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Items finish one at a time, so their alerts reach the stream one at a time; the
    worker still reads and acknowledges several per round trip (monitor.worker rule 1)."""
    monkeypatch.setattr("monitor.worker.READ_LINGER", 0.05)
    monkeypatch.setattr("monitor.worker.ACK_LINGER", 0.05)
    http_server.routes["/hook"] = Route(204)
    store, worker = await worker_for(aredis, http_server, smtp_server.port, client)

    before = await aredis.info("commandstats")

    async def trickle() -> None:
        for i in range(40):
            await store.commit_item(f"item-{i}", [make_alert("hook", f"item-{i}")])
            await asyncio.sleep(0.005)

    feeding = asyncio.create_task(trickle())
    await run_until(worker, lambda: worker.sent == 40)
    await feeding
    after = await aredis.info("commandstats")

    assert len(http_server.received("/hook")) == 40
    assert await store.queue_length() == 0 and await store.pending() == []
    # One read and one acknowledgement per alert without the pauses; the bounds leave
    # room for a slow machine, whose commits come further apart.
    assert calls(after, "xreadgroup") - calls(before, "xreadgroup") <= 20
    assert calls(after, "xack") - calls(before, "xack") <= 20


async def test_an_alert_for_a_subscriber_this_config_lacks_waits_for_one_that_has_it(
    hooked: tuple[Store, DeliveryWorker], http_server: HTTPServer, client: WebhookSender,
) -> None:
    # Halfway through a deploy: an instance on the new config queued an alert for a
    # subscriber it added, and one still on the old config reads it first. It fails
    # the try, and is not dead-lettered: the new instance delivers it on retry.
    store, new = hooked
    full = runtime(http_server).config
    without_hook = Config(watchlists=full.watchlists, subscribers=full.subscribers[1:])
    older = Runtime(without_hook, Matcher(without_hook.watchlists))
    old = DeliveryWorker(store, lambda: older, consumer="old-config",
                         email=new.email, webhook=client, policy=FAST,
                         retry_scan_seconds=0.02)
    await store.commit_item("item-1", [make_alert("hook")])
    with capture_logs() as logs:
        await old.drain()
    (pending,) = await store.pending()
    assert pending.consumer == "old-config" and await store.dead_letters() == []
    assert "not in this instance's config" in logs[-1]["error"]
    await run_until(new, lambda: new.sent == 1)
    assert len(http_server.received("/hook")) == 1
    assert await store.pending() == [] and await store.dead_letters() == []


async def test_consumers_that_hold_nothing_leave_the_group(
    hooked: tuple[Store, DeliveryWorker], aredis: aioredis.Redis,
) -> None:
    # Every start of an instance is a new consumer. One that stops leaves the group; one
    # that died is removed once idle, unless it still holds an alert, which another
    # consumer must be able to claim.
    store, worker = hooked
    await store.commit_item("held", [make_alert("hook", "held")])
    await store.read_new("died-holding", 10, None)
    await aredis.xgroup_createconsumer(store.keys.alerts, DELIVERY_GROUP, "died-empty")
    await store.commit_item("sent", [make_alert("hook", "sent")])
    await run_until(worker, lambda: worker.sent == 1)  # then it stops, and leaves

    def names(rows: list[dict[str, object]]) -> set[object]:
        return {r["name"] for r in rows}

    consumers = await aredis.xinfo_consumers(store.keys.alerts, DELIVERY_GROUP)
    assert names(consumers) == {"died-holding", "died-empty"}
    assert await store.forget_consumers(min_idle=3600) == []  # not idle long enough
    assert await store.forget_consumers(min_idle=0, keep="alive") == ["died-empty"]
    consumers = await aredis.xinfo_consumers(store.keys.alerts, DELIVERY_GROUP)
    assert names(consumers) == {"died-holding"}
    assert [p.consumer for p in await store.pending()] == ["died-holding"]


async def test_drain_delivers_more_than_it_may_hold_and_an_endpoint_may_queue(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
    client: WebhookSender, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # `run --once` left alerts behind (issue 23): its drain ended when a read found
    # nothing, which happened while the worker held all it may (READ_AHEAD per slot) and
    # once alerts of an endpoint holding ENDPOINT_QUEUE were put back. Both made small.
    monkeypatch.setattr("monitor.worker.ENDPOINT_QUEUE", 16)
    monkeypatch.setattr("monitor.worker.READ_AHEAD", 8)  # two slots: 16 held at once
    http_server.routes["/hook"] = http_server.routes["/other"] = Route(204)
    wl = WatchlistConfig(name="libya", keywords=["Haftar"])  # type: ignore[list-item]
    subs = tuple(SubscriberConfig(name=name, webhook=http_server.url(f"/{name}"), secret=SECRET,
                                  watchlists=("libya",))  # type: ignore[arg-type]
                 for name in ("hook", "other"))
    rt = Runtime(Config(watchlists=(wl,), subscribers=subs), Matcher((wl,)))
    store = Store(aredis)
    worker = DeliveryWorker(store, lambda: rt, consumer="w", policy=FAST, concurrency=2,
                            email=EmailSender(host="127.0.0.1", port=smtp_server.port,
                                              sender="m@example.org"), webhook=client)
    for i in range(150):
        await store.commit_item(f"i{i}", [make_alert("hook", f"i{i}"), make_alert("other", f"i{i}")])

    report = await worker.drain()
    assert (report.sent, report.dead, report.left) == (300, 0, 0)
    keys = [r.headers["Idempotency-Key"] for r in http_server.requests]
    assert len(keys) == len(set(keys)) == 300
    assert await store.pending() == []


async def test_drain_probes_an_endpoint_that_is_down_once_and_says_what_it_left(
    hooked: tuple[Store, DeliveryWorker], http_server: HTTPServer,
) -> None:
    store, worker = hooked
    http_server.routes["/hook"] = Route(503)
    for i in range(10):
        await store.commit_item(f"i{i}", [make_alert("hook", f"i{i}")])
    report = await worker.drain()
    # The sends under way when it failed (four at once to a host), then one probe.
    assert len(http_server.received("/hook")) == 4 + 1
    assert (report.sent, report.dead, report.left) == (0, 0, 10)
    (down,) = report.down
    assert down.error == "webhook: HTTP 503" and down.label == "hook"

    # The next run probes it at once, once; the one after, with the endpoint back,
    # delivers everything that waited.
    report = await worker.drain()
    assert len(http_server.received("/hook")) == 6 and report.left == 10
    http_server.routes["/hook"] = Route(204)
    report = await worker.drain()
    assert (report.sent, report.left, report.down) == (10, 0, ())
    assert len({r.headers["Idempotency-Key"] for r in http_server.received("/hook")}) == 10
