"""Delivers queued alerts: reads the stream's consumer group, sends, acknowledges, retries.

Rules, in order:
1. An entry is acknowledged (and deleted) only after its endpoint confirmed the send; the
   sends confirmed while one acknowledgement is on its way go together in the next one.
2. A retryable failure leaves the entry pending with its error recorded; it is tried again
   once it has been idle for the back-off of its attempt count (exponential, with jitter,
   at least the endpoint's Retry-After). Redis counts the attempts, so they survive restarts.
3. An entry pending without a recorded failure belongs to a worker that is sending it or
   died: any worker takes it over after the visibility timeout.
4. A permanent failure, or the last allowed attempt, moves the entry to the dead-letter
   stream with its error.
5. Endpoints are isolated: each webhook host gets `per_endpoint` sends at once (the SMTP
   server gets the whole `concurrency`) and its own local queue. Entries waiting here are
   kept fresh in Redis (XCLAIM JUSTID, which does not count as a delivery), so no other
   instance takes them over while they wait their turn. An endpoint that already holds
   ENDPOINT_QUEUE entries here gets further ones put back in Redis unsent (a deferral, not
   a failed attempt), so one slow or hung endpoint never holds what the others need.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redis.exceptions import RedisError

from monitor import logs
from monitor.config import SubscriberConfig
from monitor.deliver import EmailSender, WebhookSender
from monitor.errors import DeliveryError, RetryableDeliveryError
from monitor.models import Alert
from monitor.poller import Runtime
from monitor.store import Store

log = logs.get("monitor.worker")
RETRY_PAGE = 200
ENDPOINT_QUEUE = 256  # alerts one endpoint may hold here before further ones are deferred
READ_AHEAD = 64  # alerts held here in all, per send slot
ACK_BATCH = 500  # entries acknowledged in one script call at most
# Alerts arrive one by one, each item as its poll finishes: without a pause, every alert
# cost one XREADGROUP and one acknowledgement round trip, together a tenth of the
# daemon's CPU (bench/e2e.py --profile). After a read that found entries, the next waits
# READ_LINGER; a first confirmation waits ACK_LINGER for others to share its trip. Both
# are far below the delays a subscriber notices.
READ_LINGER = 0.01
ACK_LINGER = 0.02


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    base: float = 5.0
    cap: float = 3600.0
    visibility_timeout: float = 120.0

    def backoff(self, attempts: int, floor: float | None = None) -> float:
        delay = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        delay *= random.uniform(0.8, 1.2)
        return float(max(delay, floor or 0.0))


class _Acks:
    """Acknowledgements of confirmed sends, one Redis round trip for all the sends that
    were confirmed while the previous one was on its way (rule 1): at dozens of sends a
    second, one script call per alert cost more of the daemon's CPU than the sends."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._ids: list[str] = []
        self._batch: asyncio.Future[None] | None = None
        self._flushing = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def ack(self, entry_id: str) -> None:
        """Returns once the entry is acknowledged; raises what Redis raised if it was not."""
        self._ids.append(entry_id)
        if self._batch is None:
            self._batch = asyncio.get_running_loop().create_future()
            # Read here too, so that a batch whose senders were all cancelled logs nothing.
            self._batch.add_done_callback(lambda f: f.cancelled() or f.exception())
            task = asyncio.create_task(self._flush(self._batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        await asyncio.shield(self._batch)

    async def _flush(self, batch: asyncio.Future[None]) -> None:
        await asyncio.sleep(ACK_LINGER)  # confirmations arriving meanwhile join this batch
        async with self._flushing:  # the previous batch first; this one grows meanwhile
            ids, self._ids, self._batch = self._ids, [], None
            try:
                for start in range(0, len(ids), ACK_BATCH):
                    await self.store.done(ids[start:start + ACK_BATCH])
            except Exception as exc:  # every sender of the batch sees it
                batch.set_exception(exc)
            else:
                batch.set_result(None)


class DeliveryWorker:
    def __init__(self, store: Store, runtime: Callable[[], Runtime], *, consumer: str,
                 email: EmailSender, webhook: WebhookSender, policy: RetryPolicy,
                 concurrency: int = 8, per_endpoint: int = 4,
                 retry_scan_seconds: float = 1.0) -> None:
        self.store = store
        self.runtime = runtime
        self.consumer = consumer
        self.email = email
        self.webhook = webhook
        self.policy = policy
        self.retry_scan_seconds = retry_scan_seconds
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self._slots = asyncio.Semaphore(concurrency)
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._queued: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: set[str] = set()
        self._acks = _Acks(store)
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        await self.store.ensure_group()
        last_scan = last_touch = 0.0
        redis_down = False
        while not stop.is_set():
            try:
                now = time.monotonic()
                if now - last_scan >= self.retry_scan_seconds:
                    last_scan = now
                    await self.retry_due()
                if now - last_touch >= self.policy.visibility_timeout / 3:
                    last_touch = now
                    await self.store.touch(self.consumer, list(self._inflight))
                await self._read(block_ms=500)
                if redis_down:
                    log.info("redis reachable again; delivery resumed")
                    redis_down = False
            except RedisError as exc:
                if not redis_down:
                    log.error("redis unreachable; delivery paused", error=str(exc))
                    redis_down = True
                await asyncio.sleep(1.0)
        await self.wait_idle()
        await self.leave()

    async def leave(self) -> None:
        """Leaves the delivery group if this consumer holds nothing: each start of an
        instance (and each `monitor run --once`) is a new consumer, never used again."""
        try:
            await self.store.forget_consumers([self.consumer])
        except RedisError as exc:
            log.warning("redis error leaving the delivery group", error=str(exc))

    async def drain(self) -> None:
        """Sends everything queued now and waits for it (for `monitor run --once`)."""
        await self.store.ensure_group()
        await self.retry_due()
        while await self._read(block_ms=None):
            pass
        await self.wait_idle()

    async def wait_idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _read(self, block_ms: int | None) -> int:
        """Takes new entries while fewer than READ_AHEAD x concurrency are held here."""
        free = self.concurrency * READ_AHEAD - len(self._tasks)
        if free <= 0:
            await asyncio.sleep((block_ms or 0) / 1000)
            return 0
        entries = await self.store.read_new(self.consumer, free, block_ms)
        for entry_id, fields in entries:
            self._spawn(entry_id, fields, attempts=1, deferred=0)
        if entries and block_ms and len(entries) < free:
            await asyncio.sleep(READ_LINGER)  # a trickle: let the next read take several
        return len(entries)

    async def retry_due(self) -> None:
        """Claims pending entries whose back-off (or visibility timeout) has passed."""
        start = "-"
        min_idle = min(self.policy.base * 0.8, self.policy.visibility_timeout)
        while True:
            page = await self.store.pending(RETRY_PAGE, start, min_idle)
            failures = await self.store.last_errors([e.id for e in page])
            for entry, failure in zip(page, failures, strict=True):
                if entry.id not in self._inflight:
                    await self._retry(entry.id, entry.deliveries, entry.idle_seconds, failure)
            if len(page) < RETRY_PAGE:
                return
            start = "(" + page[-1].id

    async def _retry(self, entry_id: str, deliveries: int, idle: float,
                     failure: dict[str, Any] | None) -> None:
        deferred = int(failure.get("deferred", 0)) if failure else 0
        if failure and failure.get("attempts") == deliveries:
            # The last attempt here finished: wait out its back-off.
            if failure.get("deferral"):
                wait = self.policy.base
            else:
                floor = failure.get("retry_after")
                wait = self.policy.backoff(deliveries - deferred, float(floor) if floor else None)
        else:
            wait = self.policy.visibility_timeout  # a worker holds it, or died holding it
        if idle < wait:
            return
        for claimed_id, fields in await self.store.claim(self.consumer, entry_id, wait):
            self._spawn(claimed_id, fields, attempts=deliveries + 1, deferred=deferred)

    def _spawn(self, entry_id: str, fields: dict[str, str], attempts: int,
               deferred: int) -> None:
        self._inflight.add(entry_id)
        task = asyncio.create_task(self._handle(entry_id, fields, attempts, deferred))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._inflight.discard(entry_id))

    async def _handle(self, entry_id: str, fields: dict[str, str], attempts: int,
                      deferred: int) -> None:
        try:
            await self._deliver(entry_id, fields, attempts, deferred)
        except RedisError as exc:
            log.error("redis error during delivery; the alert stays queued", entry=entry_id,
                      error=str(exc))
        except Exception:  # a bug must not end the worker; the entry stays pending
            log.exception("delivery crashed; the alert stays queued", entry=entry_id)

    async def _deliver(self, entry_id: str, fields: dict[str, str], attempts: int,
                       deferred: int) -> None:
        payload = fields.get("alert", "")
        try:
            alert = Alert.from_json(payload)
        except (ValueError, KeyError, TypeError) as exc:
            await self.store.dead_letter(entry_id, payload, f"unreadable entry: {exc}", attempts)
            log.error("alert entry unreadable; dead-lettered", entry=entry_id, error=str(exc))
            return
        sub = self.runtime().config.subscriber(alert.subscriber)
        tries = attempts - deferred
        bound = log.bind(subscriber=alert.subscriber, item=alert.item.url or alert.item.id,
                         watchlist=[m.watchlist for m in alert.matches], attempt=tries)
        if sub is None:
            # Not in this instance's config: another instance's newer one (halfway through
            # a deploy) may have it, and takes the alert when it comes up for retry; if no
            # config has it any more, it ends with the dead letters after the attempts.
            error = RetryableDeliveryError("subscriber is not in this instance's config")
            await self._failed(entry_id, payload, tries, deferred, error, bound)
            return
        endpoint, limit = self._endpoint(sub)
        if self._queued.get(endpoint, 0) >= ENDPOINT_QUEUE:
            await self.store.record_error(entry_id, attempts, "deferred: endpoint busy",
                                          deferred=deferred + 1, deferral=True)
            bound.debug("endpoint busy; alert deferred", channel=sub.channel)
            return
        self._queued[endpoint] = self._queued.get(endpoint, 0) + 1
        gate = self._gates.setdefault(endpoint, asyncio.Semaphore(limit))
        started = time.monotonic()
        try:
            async with gate, self._slots:
                await self._send(alert, sub)
        except DeliveryError as exc:
            await self._failed(entry_id, payload, tries, deferred, exc, bound)
            return
        finally:
            self._queued[endpoint] -= 1
        await self._acks.ack(entry_id)
        self.sent += 1
        bound.info("alert delivered", channel=sub.channel,
                   duration_ms=round((time.monotonic() - started) * 1000))

    def _endpoint(self, sub: SubscriberConfig) -> tuple[str, int]:
        """Which endpoint a send goes to, and how many sends it takes at once."""
        if sub.webhook:
            return f"webhook:{urlsplit(sub.webhook).netloc}", self.per_endpoint
        return "smtp", self.concurrency

    async def _send(self, alert: Alert, sub: SubscriberConfig) -> None:
        if sub.email:
            await self.email.send(alert, sub.email)
        elif sub.webhook and sub.secret:
            await self.webhook.send(alert, sub.webhook, sub.secret.get_secret_value())

    async def _failed(self, entry_id: str, payload: str, tries: int, deferred: int,
                      exc: DeliveryError, bound: Any) -> None:
        if not exc.retryable or tries >= self.policy.max_attempts:
            await self.store.dead_letter(entry_id, payload, str(exc), tries)
            bound.error("alert dead-lettered", error=str(exc))
            return
        await self.store.record_error(entry_id, tries + deferred, str(exc), retry_after=exc.delay,
                                      deferred=deferred)
        bound.warning("alert delivery failed; will retry", error=str(exc))
