"""How long and how often delivery is retried, and the endpoints that are down (circuits).

Rules, in order:
1. An alert is retried for `window` seconds after it was queued (MONITOR_DELIVERY_RETRY_HOURS,
   24 h by default); one that still fails then goes to the dead letters.
2. A failure is the endpoint's, its host's or the alert's own (`DeliveryError.scope`). An
   alert's own failure (a recipient's mailbox refusing for now, a subscriber this instance
   does not know yet) is retried alone after base x 2^(attempt-1) seconds, +-20 %, capped
   at `cap` (at most an hour), and at least the Retry-After it was given.
3. A failure of a host or endpoint opens its circuit: from then its alerts are not sent but
   wait, in Redis, and one of them at a time is sent as a probe, every `probe` seconds (or
   after the Retry-After it was given, up to `cap`), in turn, so that one alert the
   endpoint refuses does not hold the others. A probe that the endpoint answers, or any
   send to it that succeeds, closes the circuit: the waiting alerts go at once, at the
   endpoint's concurrency limit.
4. Circuits live in Redis, shared by every instance: an endpoint that is down is down for
   all, one probe at a time is sent among them all (the prober holds a lease, so another
   one probes if it dies), and a circuit closed by one instance releases the waiting
   alerts to all within a scan (a second). Each instance reads the circuits once a scan:
   one HGETALL of a hash that holds only the endpoints down.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from monitor.store import Store, Waiting

DAY = 86400.0


@dataclass(frozen=True)
class RetryPolicy:
    window: float = DAY  # seconds an alert is retried after it was queued (rule 1)
    base: float = 5.0  # first back-off of an alert that fails alone (rule 2)
    cap: float = 3600.0  # longest back-off, and longest Retry-After honoured
    probe: float = 5.0  # seconds between probes of an endpoint that is down (rule 3)
    visibility_timeout: float = 120.0  # an alert held this long by a silent worker is retaken

    @classmethod
    def from_attempts(cls, attempts: int, **fields: float) -> RetryPolicy:
        """The policy whose window is what `attempts` tries took before retry windows:
        the back-offs between them (MONITOR_DELIVERY_MAX_ATTEMPTS, deprecated)."""
        shape = cls(**fields)
        window = sum(min(shape.cap, shape.base * 2 ** k) for k in range(max(0, attempts - 1)))
        return cls(**{**fields, "window": max(window, shape.base)})

    @property
    def attempts(self) -> int:
        """How many tries an alert failing alone gets within the window (rule 2)."""
        tries, elapsed = 1, 0.0
        while elapsed + (delay := min(self.cap, self.base * 2 ** (tries - 1))) <= self.window:
            elapsed += delay
            tries += 1
        return tries

    def backoff(self, attempts: int, floor: float | None = None) -> float:
        delay = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        delay *= random.uniform(0.8, 1.2)
        return float(max(delay, min(floor or 0.0, self.cap)))

    def probe_delay(self, retry_after: float | None = None) -> float:
        return float(max(self.probe, min(retry_after or 0.0, self.cap)))


@dataclass(frozen=True, slots=True)
class Circuit:
    """An endpoint that is down, as Redis holds it."""

    id: str
    since: float  # when it failed first
    next_probe: float
    probes: int  # probes that failed
    error: str  # the last failure's
    label: str  # the subscriber of the last failure, for people
    lease: float  # a probe is under way until then
    last: float  # when it failed last

    @classmethod
    def from_json(cls, circuit_id: str, raw: str) -> Circuit:
        data: dict[str, Any] = json.loads(raw)
        since = float(data.get("since", 0))
        return cls(circuit_id, since, float(data.get("next", 0)),
                   int(data.get("probes", 0)), str(data.get("error", "")),
                   str(data.get("label", "")), float(data.get("lease", 0) or 0),
                   float(data.get("last", since)))


class Circuits:
    """This instance's view of the shared circuits, and the steps that change them."""

    def __init__(self, store: Store, policy: RetryPolicy, consumer: str,
                 clock: Callable[[], float], probe_lease: float = 60.0) -> None:
        self.store = store
        self.policy = policy
        self.consumer = consumer
        self.clock = clock
        self.probe_lease = probe_lease
        self.open: dict[str, Circuit] = {}

    async def refresh(self) -> None:
        raw = await self.store.circuits()
        self.open = {cid: Circuit.from_json(cid, value) for cid, value in raw.items()}

    def blocking(self, circuits: tuple[str, ...], probing: str | None = None) -> str | None:
        """The first of a send's circuits (outermost first) that is open, but the one the
        send probes."""
        return next((c for c in circuits if c != probing and c in self.open), None)

    def idle(self, waiting: dict[str, int]) -> list[str]:
        """Open circuits that nothing waits for and that failed last over `cap` ago: an
        endpoint no alert went to for that long (one that left the config) is not known
        to be down any more; the next alert for it finds out."""
        now = self.clock()
        return [c.id for c in self.open.values()
                if not waiting.get(c.id) and now - c.last > self.policy.cap]

    def due(self, force: frozenset[str] = frozenset()) -> list[str]:
        """Open circuits whose next probe is due (or that `force` names) and that no
        instance probes now, by what this instance read last."""
        now = self.clock()
        return [c.id for c in self.open.values()
                if (c.next_probe <= now or c.id in force) and c.lease <= now]

    def suspect(self, circuit: str | None, error: str) -> None:
        """Holds `circuit` open here at once, on a failure not yet recorded in Redis."""
        if circuit is not None and circuit not in self.open:
            now = self.clock()
            self.open[circuit] = Circuit(circuit, now, now + self.policy.probe, 0, error, "", 0.0,
                                         now)

    async def failed(self, circuit: str, error: str, label: str, retry_after: float | None,
                     probe: bool) -> bool:
        """Records a failure of `circuit` (its probe's, when `probe`); True if that opened it."""
        now = self.clock()
        opened, raw = await self.store.circuit_failed(
            circuit, now=now, error=error, label=label,
            next_probe=now + self.policy.probe_delay(retry_after),
            prober=self.consumer if probe else "", push=retry_after is not None)
        self.open[circuit] = Circuit.from_json(circuit, raw)
        return opened

    async def closed(self, circuit: str) -> Circuit | None:
        """Closes `circuit`; the circuit as it was if this call closed it."""
        self.open.pop(circuit, None)
        raw = await self.store.circuit_closed(circuit)
        return Circuit.from_json(circuit, raw) if raw else None

    async def probe(self, circuit: str, force: bool = False) -> Waiting | None:
        """One waiting alert of `circuit`, taken to be sent as its probe, if this instance
        won the probe (rule 4) and an alert waits."""
        now = self.clock()
        return await self.store.take_probe(circuit, self.consumer, now=now,
                                           lease_until=now + self.probe_lease, force=force)
