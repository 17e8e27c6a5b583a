"""Delivers queued alerts: reads the stream's consumer group, sends, acknowledges, retries.

Rules, in order:
1. An entry is acknowledged (and deleted) only after its endpoint confirmed the send.
2. A retryable failure leaves the entry pending with its error recorded; it is tried again
   once it has been idle for the back-off of its attempt count (exponential, with jitter,
   at least the endpoint's Retry-After). Redis counts the attempts, so they survive restarts.
3. An entry pending without a recorded failure belongs to a worker that is sending it or
   died: any worker takes it over after the visibility timeout.
4. A permanent failure, or the last allowed attempt, moves the entry to the dead-letter
   stream with its error.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from monitor import logs
from monitor.config import SubscriberConfig
from monitor.deliver import EmailSender, WebhookSender
from monitor.errors import DeliveryError, PermanentDeliveryError
from monitor.models import Alert
from monitor.poller import Runtime
from monitor.store import Store

log = logs.get("monitor.worker")


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


class DeliveryWorker:
    def __init__(self, store: Store, runtime: Callable[[], Runtime], *, consumer: str,
                 email: EmailSender, webhook: WebhookSender, policy: RetryPolicy,
                 concurrency: int = 8, retry_scan_seconds: float = 1.0) -> None:
        self.store = store
        self.runtime = runtime
        self.consumer = consumer
        self.email = email
        self.webhook = webhook
        self.policy = policy
        self.retry_scan_seconds = retry_scan_seconds
        self.concurrency = concurrency
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight: set[str] = set()
        self.sent = 0

    async def run(self, stop: asyncio.Event) -> None:
        await self.store.ensure_group()
        last_scan = 0.0
        redis_down = False
        while not stop.is_set():
            try:
                if time.monotonic() - last_scan >= self.retry_scan_seconds:
                    last_scan = time.monotonic()
                    await self.retry_due()
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
        """Takes up to as many new entries as there are free send slots."""
        free = max(1, self.concurrency - len(self._tasks))
        entries = await self.store.read_new(self.consumer, free, block_ms)
        for entry_id, fields in entries:
            self._spawn(entry_id, fields, attempts=1)
        return len(entries)

    async def retry_due(self) -> None:
        for entry in await self.store.pending():
            if entry.id in self._inflight:
                continue
            failure = await self.store.last_error(entry.id)
            if failure and failure.get("attempts") == entry.deliveries:
                floor = failure.get("retry_after")
                wait = self.policy.backoff(entry.deliveries, float(floor) if floor else None)
            else:
                wait = self.policy.visibility_timeout
            if entry.idle_seconds < wait:
                continue
            for entry_id, fields in await self.store.claim(self.consumer, entry.id, wait):
                self._spawn(entry_id, fields, attempts=entry.deliveries + 1)

    def _spawn(self, entry_id: str, fields: dict[str, str], attempts: int) -> None:
        self._inflight.add(entry_id)
        task = asyncio.create_task(self._handle(entry_id, fields, attempts))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._inflight.discard(entry_id))

    async def _handle(self, entry_id: str, fields: dict[str, str], attempts: int) -> None:
        try:
            await self._deliver(entry_id, fields, attempts)
        except RedisError as exc:
            log.error("redis error during delivery; the alert stays queued", entry=entry_id,
                      error=str(exc))
        except Exception:  # a bug must not end the worker; the entry stays pending
            log.exception("delivery crashed; the alert stays queued", entry=entry_id)

    async def _deliver(self, entry_id: str, fields: dict[str, str], attempts: int) -> None:
        payload = fields.get("alert", "")
        async with self._slots:
            try:
                alert = Alert.from_dict(json.loads(payload))
            except (ValueError, KeyError, TypeError) as exc:
                await self.store.dead_letter(entry_id, payload, f"unreadable entry: {exc}", attempts)
                log.error("alert entry unreadable; dead-lettered", entry=entry_id, error=str(exc))
                return
            sub = self.runtime().config.subscriber(alert.subscriber)
            bound = log.bind(subscriber=alert.subscriber, item=alert.item.url or alert.item.id,
                             watchlist=[m.watchlist for m in alert.matches], attempt=attempts)
            started = time.monotonic()
            try:
                if sub is None:
                    raise PermanentDeliveryError("subscriber is no longer configured")
                await self._send(alert, sub)
            except DeliveryError as exc:
                await self._failed(entry_id, payload, attempts, exc, bound)
                return
            await self.store.done(entry_id)
            self.sent += 1
            bound.info("alert delivered", channel=sub.channel,
                       duration_ms=round((time.monotonic() - started) * 1000))

    async def _send(self, alert: Alert, sub: SubscriberConfig) -> None:
        if sub.email:
            await self.email.send(alert, sub.email)
        elif sub.webhook and sub.secret:
            await self.webhook.send(alert, sub.webhook, sub.secret.get_secret_value())

    async def _failed(self, entry_id: str, payload: str, attempts: int, exc: DeliveryError,
                      bound: Any) -> None:
        if not exc.retryable or attempts >= self.policy.max_attempts:
            await self.store.dead_letter(entry_id, payload, str(exc), attempts)
            bound.error("alert dead-lettered", error=str(exc))
            return
        await self.store.record_error(entry_id, attempts, str(exc), exc.delay)
        bound.warning("alert delivery failed; will retry", error=str(exc))
