"""Delivers queued alerts: reads the stream's consumer group, sends, acknowledges, retries.

Rules, in order:
1. An entry is acknowledged (and deleted) only after its endpoint confirmed the send; the
   sends confirmed while one acknowledgement is on its way go together in the next one.
2. Every send passes its route's circuits (monitor.circuits). An alert for an open
   circuit is not sent: it waits in Redis, pending for the circuit's waiting consumer,
   until a probe closes the circuit; a failure of the host or the endpoint opens its
   circuit, and the alert waits likewise. An alert's own failure leaves it pending here
   with its error recorded, to be tried again after the back-off of its attempts.
3. An entry pending without a recorded failure (or with one older than its last
   delivery) belongs to a worker that is sending it or died: any worker takes it over
   after the visibility timeout. Alerts waiting for a circuit are never taken that way.
4. A permanent failure, or a failure of an alert queued longer ago than the retry window,
   moves the entry to the dead-letter stream with its error; so does a failed probe for
   the alerts waiting for its circuit since before the window.
5. Endpoints are isolated: each host gets `per_endpoint` sends at once (the SMTP server
   the whole `concurrency`) and a local queue of at most ENDPOINT_QUEUE alerts. Further
   alerts for it wait in Redis as for an open circuit, and are taken back (by this
   instance or any other) as its queue empties, so one slow or hung endpoint never holds
   what the others need.
6. `drain` (`monitor run --once`) delivers all it can, then returns: every new entry,
   every alert waiting for a closed circuit, one retry of each alert that failed alone
   before it, and one probe of each open circuit (at once for those open when it
   started; when due, within DRAIN_PATIENCE, for those that open during it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import RedisError

from monitor import logs
from monitor.circuits import Circuit, Circuits, RetryPolicy
from monitor.config import SubscriberConfig
from monitor.deliver import EmailSender, Route, WebhookSender, gate_of
from monitor.errors import DeliveryError, RetryableDeliveryError
from monitor.models import Alert
from monitor.poller import Runtime
from monitor.store import WAITING_CONSUMER, Pending, Store

__all__ = ["DeliveryWorker", "DrainReport", "RetryPolicy"]

log = logs.get("monitor.worker")
RETRY_PAGE = 200
ENDPOINT_QUEUE = 256  # alerts one host may hold here; further ones wait in Redis
READ_AHEAD = 64  # alerts held here in all, per send slot
ACK_BATCH = 500  # entries acknowledged in one script call at most
# Alerts arrive one by one, each item as its poll finishes: without a pause, every alert
# cost one XREADGROUP and one acknowledgement round trip, together a tenth of the
# daemon's CPU (bench/e2e.py --profile). After a read that found entries, the next waits
# READ_LINGER; a first confirmation waits ACK_LINGER for others to share its trip. Both
# are far below the delays a subscriber notices.
READ_LINGER = 0.01
ACK_LINGER = 0.02
# `drain` waits this long at most for the first probe of a circuit that opened during
# it: a blip (one 503) costs a run a few seconds, not its alerts until the next run.
DRAIN_PATIENCE = 30.0
DRAIN_SCAN_SECONDS = 0.25  # how often `drain` looks at circuits and retries while sending


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


@dataclass(slots=True)
class _Job:
    """An entry this worker took, to send."""

    entry_id: str
    fields: dict[str, str]
    deliveries: int  # Redis's count of the entry's deliveries, this one included
    failure: dict[str, Any] | None  # its last failed attempt
    probe: str | None = None  # the circuit this send probes
    reserved: str | None = None  # the gate whose queue counts it already


@dataclass(frozen=True, slots=True)
class DrainReport:
    sent: int
    dead: int  # dead-lettered during the drain
    left: int  # alerts still queued after it: waiting, held elsewhere, or failed alone
    down: tuple[Circuit, ...]  # circuits open after it


@dataclass
class _Drain:
    deadline: float  # by the worker's clock: no probe is waited for past it
    force: frozenset[str]  # circuits open at the start: probed at once
    probed: set[str] = field(default_factory=set)
    tried: set[str] = field(default_factory=set)  # entries sent (or parked) during it


def _queued_at(entry_id: str) -> float:
    """When an entry was queued (unix time by Redis's clock), from its stream id."""
    return int(entry_id.split("-")[0]) / 1000


class DeliveryWorker:
    def __init__(self, store: Store, runtime: Callable[[], Runtime], *, consumer: str,
                 email: EmailSender, webhook: WebhookSender, policy: RetryPolicy,
                 concurrency: int = 8, per_endpoint: int = 4,
                 retry_scan_seconds: float = 1.0, clock: Callable[[], float] | None = None,
                 probe_lease: float = 60.0) -> None:
        self.store = store
        self.runtime = runtime
        self.consumer = consumer
        self.email = email
        self.webhook = webhook
        self.policy = policy
        self.retry_scan_seconds = retry_scan_seconds
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.clock = clock or store.now  # circuits and retry windows are timed by it
        self.circuits = Circuits(store, policy, consumer, self.clock, probe_lease)
        self._slots = asyncio.Semaphore(concurrency)
        self._gates: dict[str, asyncio.Semaphore] = {}
        self._queued: dict[str, int] = {}  # gate -> sends held here for it
        self._waiting: dict[str, int] = {}  # circuit -> alerts waiting in Redis, as last seen
        self._pumping: set[str] = set()  # gates whose waiting alerts are being taken back
        self._tasks: set[asyncio.Task[None]] = set()  # one per entry held
        self._side: set[asyncio.Task[None]] = set()  # taking back waiting alerts
        self._inflight: set[str] = set()
        self._acks = _Acks(store)
        self._drain: _Drain | None = None
        self.sent = 0
        self.dead = 0

    async def run(self, stop: asyncio.Event) -> None:
        await self.store.ensure_group()
        last_scan = last_touch = 0.0
        block_ms = max(1, min(500, int(self.retry_scan_seconds * 1000)))
        redis_down = False
        while not stop.is_set():
            try:
                now = time.monotonic()
                if now - last_scan >= self.retry_scan_seconds:
                    last_scan = now
                    await self.scan()
                if now - last_touch >= self.policy.visibility_timeout / 3:
                    last_touch = now
                    await self._touch()
                await self._read(block_ms=block_ms)
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

    async def drain(self, patience: float = DRAIN_PATIENCE) -> DrainReport:
        """Delivers everything it can now (rule 6) and waits for it; for `run --once`."""
        await self.store.ensure_group()
        await self.circuits.refresh()
        sent, dead = self.sent, self.dead
        self._drain = _Drain(self.clock() + patience, frozenset(self.circuits.open))
        last_scan = last_touch = 0.0
        try:
            while True:
                now = time.monotonic()
                busy = bool(self._tasks or self._side)
                taken = 0
                # While sending, a look now and then; once idle, a fresh one before each
                # decision to stop.
                if not busy or now - last_scan >= DRAIN_SCAN_SECONDS:
                    last_scan = now
                    taken = await self.scan()
                if now - last_touch >= self.policy.visibility_timeout / 3:
                    last_touch = now
                    await self._touch()
                taken += await self._read(block_ms=None)
                if self._tasks or self._side:
                    await asyncio.wait({*self._tasks, *self._side}, timeout=0.05)
                elif taken:
                    continue
                elif (wait := self._drain_wait()) is not None:
                    await asyncio.sleep(wait)
                else:
                    break
        finally:
            self._drain = None
        summary = await self.store.summary()
        return DrainReport(self.sent - sent, self.dead - dead, summary.queued,
                           tuple(self.circuits.open.values()))

    def _drain_wait(self) -> float | None:
        """Seconds until an open circuit not probed yet in this drain can be, if before
        the drain's deadline and an alert waits for it."""
        assert self._drain is not None
        now, drain = self.clock(), self._drain
        due = [max(c.next_probe, c.lease) for c in self.circuits.open.values()
               if c.id not in drain.probed and self._waiting.get(c.id)]
        due = [at for at in due if at <= drain.deadline]
        return max(0.01, min(min(due) - now, DRAIN_SCAN_SECONDS)) if due else None

    async def wait_idle(self) -> None:
        while self._tasks or self._side:
            await asyncio.gather(*self._tasks, *self._side, return_exceptions=True)

    def _room(self) -> int:
        return self.concurrency * READ_AHEAD - len(self._tasks)

    async def _read(self, block_ms: int | None) -> int:
        """Takes new entries while fewer than READ_AHEAD x concurrency are held here."""
        free = self._room()
        if free <= 0:
            await asyncio.sleep((block_ms or 0) / 1000)
            return 0
        entries = await self.store.read_new(self.consumer, free, block_ms)
        for entry_id, fields in entries:
            self._spawn(_Job(entry_id, fields, 1, None))
        if entries and block_ms and len(entries) < free:
            await asyncio.sleep(READ_LINGER)  # a trickle: let the next read take several
        return len(entries)

    async def _touch(self) -> None:
        """Keeps the entries sending here from being taken over (rule 3). Only those held
        a while: one just left to wait for a circuit must not be taken back from it."""
        await self.store.touch(self.consumer, list(self._inflight),
                               min_idle=self.policy.visibility_timeout / 12)

    async def scan(self) -> int:
        """Reads the circuits, probes those due, takes back the alerts waiting for closed
        ones, and retries those due (rules 2 and 3); returns how many it took."""
        await self.circuits.refresh()
        counts = await self.store.pending_counts()
        self._waiting = {name[len(WAITING_CONSUMER):]: n for name, n in counts.items()
                         if name.startswith(WAITING_CONSUMER)}
        for circuit in self.circuits.idle(self._waiting):
            await self.circuits.closed(circuit)
        taken = await self._probe()
        for circuit in list(self._waiting):
            taken += await self._unpark(circuit)
        return taken + await self.retry_due(
            [name for name in counts if not name.startswith(WAITING_CONSUMER)])

    async def _probe(self) -> int:
        drain = self._drain
        force = drain.force - drain.probed if drain else frozenset()
        taken = 0
        for circuit in self.circuits.due(force):
            if not self._waiting.get(circuit) or (drain and circuit in drain.probed):
                continue
            job = await self.circuits.probe(circuit, force=circuit in force)
            if drain:
                drain.probed.add(circuit)
            if job is not None:
                self._waiting[circuit] -= 1
                self._spawn(_Job(job.id, job.fields, job.deliveries, job.failure, probe=circuit))
                taken += 1
        return taken

    async def _unpark(self, circuit: str) -> int:
        """Takes back alerts waiting for `circuit` if it is closed, as many as its host's
        queue here has room for (rule 5)."""
        gate = gate_of(circuit)
        if not self._waiting.get(circuit) or self.circuits.blocking((gate, circuit)):
            return 0
        room = min(ENDPOINT_QUEUE - self._queued.get(gate, 0), self._room())
        if room <= 0:
            return 0
        taken = await self.store.unpark(circuit, self.consumer, room)
        self._waiting[circuit] = self._waiting.get(circuit, 0) - len(taken) \
            if len(taken) == room else 0
        for w in taken:
            self._queued[gate] = self._queued.get(gate, 0) + 1  # held for it from now
            self._spawn(_Job(w.id, w.fields, w.deliveries, w.failure, reserved=gate))
        return len(taken)

    def _refill(self, gate: str, *, now: bool = False) -> None:
        """Takes back the alerts waiting for the circuits of `gate` once its queue here is
        half empty (or `now`, when one of them closed), in a task of its own."""
        if gate in self._pumping or (not now and self._queued.get(gate, 0) >= ENDPOINT_QUEUE // 2):
            return
        circuits = [c for c, n in self._waiting.items() if n > 0 and gate_of(c) == gate]
        if not circuits:
            return
        self._pumping.add(gate)

        async def pump() -> None:
            try:
                for circuit in circuits:
                    await self._unpark(circuit)
            except RedisError as exc:  # the next scan takes them back
                log.warning("redis error taking back waiting alerts", error=str(exc))
            finally:
                self._pumping.discard(gate)

        task = asyncio.create_task(pump())
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    async def retry_due(self, consumers: Iterable[str] | None = None) -> int:
        """Claims pending entries whose back-off (or visibility timeout) has passed."""
        if consumers is None:
            consumers = [name for name in await self.store.pending_counts()
                         if not name.startswith(WAITING_CONSUMER)]
        min_idle = 0.0 if self._drain else min(self.policy.base * 0.8,
                                                 self.policy.visibility_timeout)
        taken = 0
        for consumer in consumers:
            start = "-"
            while True:
                page = await self.store.pending(RETRY_PAGE, start, min_idle, consumer=consumer)
                failures = await self.store.last_errors([e.id for e in page])
                for entry, failure in zip(page, failures, strict=True):
                    if entry.id not in self._inflight:
                        taken += await self._retry(entry, failure)
                if len(page) < RETRY_PAGE:
                    break
                start = "(" + page[-1].id
        return taken

    async def _retry(self, entry: Pending, failure: dict[str, Any] | None) -> int:
        finished = failure is not None and \
            failure.get("deliveries", failure.get("attempts")) == entry.deliveries
        if not finished:
            wait = self.policy.visibility_timeout  # a worker holds it, or died holding it
        elif self._drain is not None:
            if entry.id in self._drain.tried:
                return 0  # failed during this drain: once is enough
            wait = 0.0  # failed before it: `--once` is the retry
        else:
            assert failure is not None
            floor = failure.get("retry_after")
            wait = self.policy.backoff(int(failure.get("attempts", 1)),
                                       float(floor) if floor else None)
        if entry.idle_seconds < wait:
            return 0
        # At least most of the idle time seen: if another worker claimed it meanwhile
        # (which resets it), this claim fails, and one worker sends it.
        claimed = await self.store.claim(self.consumer, entry.id,
                                         max(wait, entry.idle_seconds / 2))
        for claimed_id, fields in claimed:
            self._spawn(_Job(claimed_id, fields, entry.deliveries + 1, failure))
        return len(claimed)

    def _spawn(self, job: _Job) -> None:
        self._inflight.add(job.entry_id)
        if self._drain is not None:
            self._drain.tried.add(job.entry_id)
        task = asyncio.create_task(self._handle(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._inflight.discard(job.entry_id))

    async def _handle(self, job: _Job) -> None:
        try:
            await self._deliver(job)
        except RedisError as exc:
            log.error("redis error during delivery; the alert stays queued", entry=job.entry_id,
                      error=str(exc))
        except Exception:  # a bug must not end the worker; the entry stays pending
            log.exception("delivery crashed; the alert stays queued", entry=job.entry_id)

    async def _deliver(self, job: _Job) -> None:
        if job.reserved:  # from here on it is counted as any other send
            self._queued[job.reserved] -= 1
        payload = job.fields.get("alert", "")
        try:
            alert = Alert.from_json(payload)
        except (ValueError, KeyError, TypeError) as exc:
            await self._dead_letter(job, f"unreadable entry: {exc}", 0)
            log.error("alert entry unreadable; dead-lettered", entry=job.entry_id, error=str(exc))
            return
        sub = self.runtime().config.subscriber(alert.subscriber)
        bound = log.bind(subscriber=alert.subscriber, item=alert.item.url or alert.item.id,
                         watchlist=[m.watchlist for m in alert.matches])
        if sub is None:
            # Not in this instance's config: another instance's newer one (halfway through
            # a deploy) may have it, and takes the alert when it comes up for retry; if no
            # config has it any more, it ends with the dead letters after the window.
            error = RetryableDeliveryError("subscriber is not in this instance's config",
                                           scope="alert")
            await self._failed(job, alert, None, error, bound)
            return
        route = self._route(sub)
        waits_for = self.circuits.blocking(route.circuits, job.probe)
        if waits_for is None and job.probe is None and \
                self._queued.get(route.gate, 0) >= ENDPOINT_QUEUE:
            waits_for = route.circuits[-1]  # its host's queue here is full (rule 5)
        if waits_for is not None:
            await self._park(job, waits_for)
            return
        await self._send_job(job, alert, sub, route, bound)

    async def _send_job(self, job: _Job, alert: Alert, sub: SubscriberConfig, route: Route,
                        bound: Any) -> None:
        limit = self.per_endpoint if route.channel == "webhook" else self.concurrency
        gate = self._gates.setdefault(route.gate, asyncio.Semaphore(limit))
        self._queued[route.gate] = self._queued.get(route.gate, 0) + 1
        started = time.monotonic()
        failure: DeliveryError | None = None
        try:
            async with gate, self._slots:
                # Sends queue here for their turn: one whose circuit opened meanwhile (a
                # send before it failed) waits for the probe instead.
                waits_for = self.circuits.blocking(route.circuits, job.probe)
                if waits_for is None:
                    try:
                        await self._send(alert, sub)
                    except DeliveryError as exc:
                        failure = exc
                        if exc.retryable:  # before the next send of the queue goes
                            self.circuits.suspect(route.circuit(exc.scope), str(exc))
        finally:
            self._queued[route.gate] -= 1
            self._refill(route.gate)
        if failure is not None:
            await self._failed(job, alert, route, failure, bound)
            return
        if waits_for is not None:
            await self._park(job, waits_for)
            return
        await self._acks.ack(job.entry_id)
        self.sent += 1
        bound.info("alert delivered", channel=sub.channel,
                   duration_ms=round((time.monotonic() - started) * 1000))
        for circuit in route.circuits:
            if circuit == job.probe or circuit in self.circuits.open:
                await self._close(circuit)
        if job.probe is not None and job.probe not in route.circuits:
            await self._close(job.probe)  # the subscriber's address changed meanwhile

    def _route(self, sub: SubscriberConfig) -> Route:
        if sub.webhook:
            return self.webhook.route(sub.recipient[1])
        return self.email.route(sub.email or "")

    async def _send(self, alert: Alert, sub: SubscriberConfig) -> None:
        if sub.email:
            await self.email.send(alert, sub.email)
        elif sub.webhook and sub.secret:
            await self.webhook.send(alert, sub.webhook, sub.secret.get_secret_value())

    async def _park(self, job: _Job, circuit: str) -> None:
        await self.store.park(circuit, [job.entry_id])
        self._waiting[circuit] = self._waiting.get(circuit, 0) + 1

    async def _close(self, circuit: str) -> None:
        """Closes a circuit a send got through, and takes back what waits for it."""
        was = await self.circuits.closed(circuit)
        if was is not None:
            log.info("endpoint back; its waiting alerts go now", endpoint=circuit,
                     subscriber=was.label, down_s=round(self.clock() - was.since, 1),
                     probes_failed=was.probes, waiting=self._waiting.get(circuit, 0))
        self._refill(gate_of(circuit), now=True)

    async def _dead_letter(self, job: _Job, error: str, attempts: int) -> None:
        await self.store.dead_letter(job.entry_id, job.fields.get("alert", ""), error, attempts)
        self.dead += 1

    async def _failed(self, job: _Job, alert: Alert, route: Route | None, exc: DeliveryError,
                      bound: Any) -> None:
        attempts = int((job.failure or {}).get("attempts", 0)) + 1
        circuit = route.circuit(exc.scope) if route else None
        if job.probe is not None and route is not None and \
                (job.probe != circuit or not exc.retryable):
            await self._close(job.probe)  # it was answered, or got further than the circuit
        expired = self.clock() - _queued_at(job.entry_id) >= self.policy.window
        if not exc.retryable or expired:
            error = str(exc) if not expired else f"{exc} (retried for {self._window()})"
            await self._dead_letter(job, error, attempts)
            bound.error("alert dead-lettered", error=error, attempt=attempts)
        elif circuit is None:
            await self.store.record_error(job.entry_id, attempts, str(exc),
                                          deliveries=job.deliveries, retry_after=exc.delay)
            bound.warning("alert delivery failed; will retry", error=str(exc), attempt=attempts)
        if circuit is None or not exc.retryable:
            return
        probe = job.probe == circuit
        if await self.circuits.failed(circuit, str(exc), alert.subscriber, exc.delay, probe):
            bound.warning("endpoint down; its alerts wait for a probe", endpoint=circuit,
                          error=str(exc))
        elif probe:
            bound.debug("probe failed; endpoint still down", endpoint=circuit, error=str(exc))
        if not expired:
            await self.store.record_error(job.entry_id, attempts, str(exc),
                                          deliveries=job.deliveries, retry_after=exc.delay)
            await self._park(job, circuit)
        if probe:
            await self._expire(circuit, str(exc))

    async def _expire(self, circuit: str, error: str) -> None:
        """Dead-letters the alerts that waited for `circuit` for the whole window (rule 4)."""
        before = self.clock() - self.policy.window
        count = await self.store.expire_waiting(circuit, before,
                                                f"{error} (retried for {self._window()})")
        if count:
            self.dead += count
            self._waiting[circuit] = max(0, self._waiting.get(circuit, 0) - count)
            log.error("alerts dead-lettered: their endpoint was down for the whole retry "
                      "window", endpoint=circuit, alerts=count, error=error)

    def _window(self) -> str:
        hours = self.policy.window / 3600
        return f"{hours:g} h" if hours >= 1 else f"{self.policy.window:g} s"
