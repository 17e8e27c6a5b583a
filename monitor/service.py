"""Wires the stages into the daemon: Redis, APScheduler jobs, delivery, reloads, signals.

Jobs, on APScheduler's asyncio scheduler:
- `tick` claims due feeds from the Redis schedule (with a lease) and polls each in a task,
  never more at once than the HTTP concurrency allows, and none while `items_in_flight`
  new items of earlier polls are still being scraped and matched: those feeds stay due,
  for another instance or a free moment, instead of queueing their items behind these
  (with 64 polls at once and no such bound, items waited 1.7 s on average between their
  poll and their alert, against 0.6 s with it, at the same rate: bench/e2e.py).
- `reload` re-reads config/ when a file changed; an invalid edit is logged with its
  location and the last good config stays in force. The watchlists are compiled again
  only when they changed.
- `share_pauses` hands the hosts that asked this instance for a pause (HTTP 429) to the
  others through Redis, and holds those that asked another instance, every second.
The delivery worker runs beside them. SIGTERM/SIGINT stop new work, let polls and sends in
flight finish (an unfinished send stays pending in Redis and is retried), then exit.
A daemon started before its Redis (MONITOR_REDIS_URL) answers says so once and tries again,
REDIS_RETRY_FIRST seconds later and twice as long each time up to REDIS_RETRY_MAX, until it
does, as it waits out a later outage; `ready` is false meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import replace
from datetime import datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from redis.exceptions import RedisError

from monitor import logs, speedups
from monitor.circuits import RetryPolicy
from monitor.config import Config, fingerprint, load_config
from monitor.deliver import EmailSender, WebhookSender
from monitor.errors import ConfigError
from monitor.fetch import Fetcher
from monitor.poller import Poller, PollResult, Runtime
from monitor.settings import Settings
from monitor.store.connect import Connection
from monitor.urls import redact
from monitor.worker import DeliveryWorker, DrainReport

SHUTDOWN_GRACE = 30.0
# Schedules are kept by Redis's clock (Store.now); this machine's is measured against it
# this often, and a difference over CLOCK_WARN seconds is logged (NTP keeps it to ms).
CLOCK_SYNC_SECONDS = 60.0
CLOCK_WARN = 1.0
# This config's feeds are put back in the schedule this often if they left it (see
# check_schedule).
SCHEDULE_CHECK_SECONDS = 60.0
# Consumers of the delivery group that hold nothing and were idle this long (an instance
# that died; a running one reads every second) are removed, checked every CONSUMERS_SECONDS.
IDLE_CONSUMER_SECONDS = 3600.0
CONSUMERS_SECONDS = 600.0
# Hosts that asked an instance for a pause reach the others within this many seconds.
PAUSES_SECONDS = 1.0
# Connecting at start: the first retry after this many seconds, each next one after twice
# as long, never more than the last: a Redis that comes up is used within 30 s.
REDIS_RETRY_FIRST = 0.5
REDIS_RETRY_MAX = 30.0
log = logs.get("monitor.service")


class Service:
    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.env = os.environ if env is None else env
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stop_event = asyncio.Event()
        self._connection = Connection(settings)
        self._polls: set[asyncio.Task[PollResult | None]] = set()
        self._fingerprint: tuple[tuple[str, int, int], ...] = ()
        self._redis_down = False
        self._started = False  # Redis answered and the stages are built
        self._claiming = asyncio.Lock()
        self._backlog = False  # the last claim filled every slot: more feeds may be due
        self._refill: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[Any]] = set()  # scheduler jobs under way
        self._clock_warned = 0.0  # the clock offset last logged
        self._pauses_seen: set[str] = set()  # hosts paused at the last share_pauses
        self._pauses_version = -1  # of the shared pauses this instance read last
        self._claim_batch = max(1, settings.http_concurrency // 8)
        self._items_cap = settings.items_in_flight or 2 * settings.scrape_concurrency

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Started, and Redis answered the last time it was asked (for a readiness check)."""
        return self._started and not self._redis_down

    async def start(self, wait_for_redis: bool = False) -> bool:
        """Loads config (raising ConfigError if invalid), connects Redis, builds the stages.
        With `wait_for_redis`, an unreachable Redis is waited for (see the module's
        docstring); False when a stop came first."""
        s = self.settings
        self._fingerprint = fingerprint(s.config_dir)
        self.runtime = Runtime.build(load_config(s.config_dir, self.env))
        if not await self._connect(wait_for_redis and s.redis_url is not None):
            return False
        self.fetcher = Fetcher(timeout=s.http_timeout, connect_timeout=s.http_connect_timeout,
                               read_timeout=s.http_read_timeout, max_bytes=s.http_max_bytes,
                               concurrency=s.http_concurrency, per_host=s.http_per_host,
                               host_delay=s.http_host_delay,
                               allow_private=s.allow_private_urls)
        self.poller = Poller(self.store, self.fetcher, max_age=s.max_age_days * 86400,
                             scrape_concurrency=s.scrape_concurrency,
                             max_new_items=s.max_new_items,
                             dedup_window=s.dedup_window_hours * 3600,
                             dedup_threshold=s.dedup_threshold, cpu_threads=s.cpu_threads)
        self._hooks = WebhookSender(timeout=s.webhook_timeout,
                                    connect_timeout=s.http_connect_timeout)
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        policy = retry_policy(s)
        self.worker = DeliveryWorker(
            self.store, lambda: self.runtime, consumer=self.consumer,
            email=EmailSender(host=s.smtp_host, port=s.smtp_port, sender=s.smtp_from,
                              user=s.smtp_user, password=password, security=s.smtp_security,
                              timeout=s.smtp_timeout),
            webhook=self._hooks,
            policy=policy, concurrency=s.delivery_concurrency,
            per_endpoint=s.delivery_per_endpoint,
            probe_lease=max(s.webhook_timeout, s.smtp_timeout) + 30,
        )
        self._check_clock(self.store.clock_offset)
        _log_notes(self.runtime.config)
        self._started = True
        log.info("monitor started", speedups=speedups.describe(),
                 feeds=len(self.runtime.config.feeds),
                 watchlists=len(self.runtime.config.watchlists),
                 subscribers=len(self.runtime.config.subscribers),
                 redis="embedded" if self._connection.embedded
                 else "cluster" if self._connection.cluster else "external",
                 consumer=self.consumer, retry_hours=round(policy.window / 3600, 3),
                 attempts_alone=policy.attempts, probe_s=policy.probe)
        if "delivery_max_attempts" in s.model_fields_set:
            log.warning("MONITOR_DELIVERY_MAX_ATTEMPTS is deprecated: set "
                        "MONITOR_DELIVERY_RETRY_HOURS" + (
                            " (which is set, and wins)" if "delivery_retry_hours"
                            in s.model_fields_set else
                            f"; it stands for a window of {policy.window:g} s now"))
        return True

    async def _connect(self, wait: bool) -> bool:
        """Opens Redis and puts this config's feeds in its schedule; waiting, until Redis
        answers or a stop is asked for (False)."""
        delay, attempts = REDIS_RETRY_FIRST, 0
        while True:
            try:
                self.store = await self._connection.open()
                await self.store.sync_schedule(self.runtime.feeds)
                break
            except (RedisError, OSError) as exc:
                await self._connection.close()
                if not wait:
                    raise
                attempts += 1
                where = redact(self.settings.redis_url or "")
                if attempts == 1:
                    log.error("redis unreachable at start; waiting for it, retrying with "
                              "back-off", redis=where, error=str(exc), retry_in_s=delay)
                else:
                    log.debug("redis still unreachable", redis=where, error=str(exc),
                              attempts=attempts, retry_in_s=delay)
                with suppress(TimeoutError):
                    await asyncio.wait_for(self.stop_event.wait(), delay)
                if self.stop_event.is_set():
                    return False
                delay = min(delay * 2, REDIS_RETRY_MAX)
        if attempts:
            log.info("redis reachable; starting", attempts=attempts + 1)
        return True

    async def close(self) -> None:
        with suppress(Exception):
            self.poller.close()
        with suppress(Exception):
            await self.fetcher.close()
        with suppress(Exception):
            await self._hooks.close()
        with suppress(Exception):
            await self.worker.email.close()
        await self._connection.close()

    async def run(self, started: Callable[[], None] | None = None) -> None:
        """The daemon: polls on schedule and delivers until SIGTERM or SIGINT; `started`
        is called once the stages are built, before the first poll."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):  # also while waiting for Redis
            loop.add_signal_handler(sig, self.stop_event.set)
        try:
            up = await self.start(wait_for_redis=True)
        finally:
            if not self._started:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(sig)
        if not up:
            await self.close()
            log.info("monitor stopped before redis answered")
            return
        if started is not None:
            started()
        scheduler = AsyncIOScheduler(event_loop=loop)
        scheduler.add_job(self._job(self.tick), "interval", seconds=self.settings.tick_seconds,
                          max_instances=1, coalesce=True, id="tick", next_run_time=datetime.now())
        scheduler.add_job(self._job(self.reload), "interval",
                          seconds=self.settings.reload_seconds, max_instances=1, coalesce=True,
                          id="reload")
        scheduler.add_job(self._job(self.sync_clock), "interval", seconds=CLOCK_SYNC_SECONDS,
                          max_instances=1, coalesce=True, id="clock")
        scheduler.add_job(self._job(self.share_pauses), "interval", seconds=PAUSES_SECONDS,
                          max_instances=1, coalesce=True, id="pauses")
        scheduler.add_job(self._job(self.check_schedule), "interval",
                          seconds=SCHEDULE_CHECK_SECONDS, max_instances=1, coalesce=True,
                          id="schedule")
        scheduler.add_job(self._job(self.forget_consumers), "interval",
                          seconds=CONSUMERS_SECONDS, max_instances=1, coalesce=True,
                          id="consumers")
        scheduler.start()
        delivery = asyncio.create_task(self.worker.run(self.stop_event))
        try:
            await self.stop_event.wait()
            log.info("shutting down: finishing polls and sends in flight")
        finally:
            # A tick or reload under way finishes first: shutting the scheduler down
            # cancels its jobs, which logged a traceback, and a claim cancelled after
            # Redis ran it left its feeds leased, polled by no instance until the lease
            # ran out. (A claim once stopping starts no poll, and releases its feeds.)
            scheduler.pause()
            await asyncio.sleep(0)  # jobs submitted before the pause start, and register
            if self._jobs:
                await asyncio.wait(self._jobs, timeout=SHUTDOWN_GRACE)
            scheduler.shutdown(wait=False)
            await self._wait_polls()
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(delivery, SHUTDOWN_GRACE)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.close()
            log.info("monitor stopped")

    async def run_once(self) -> tuple[list[PollResult], DrainReport]:
        """Polls every feed once, delivers all it can (what this queued and what waited
        before), and returns the polls' results and what the delivery left."""
        await self.start()
        try:
            gate = asyncio.Semaphore(self.settings.http_concurrency)

            async def one(feed_id: str) -> PollResult:
                async with gate:
                    return await self.poller.poll(self.runtime.feeds[feed_id], self.runtime)

            await self.share_pauses()  # hosts that asked the daemon's instances for one
            # Alerts go as the polls queue them, as in the daemon; then the drain.
            polled = asyncio.Event()
            delivering = asyncio.create_task(self.worker.run(polled))
            try:
                results = await asyncio.gather(*(one(fid) for fid in self.runtime.feeds))
            finally:
                polled.set()
                await delivering
            await self.share_pauses()
            report = await self.worker.drain()
            await self.worker.leave()
            # What this run sent and dead-lettered, during the polls and the drain.
            return list(results), replace(report, sent=self.worker.sent, dead=self.worker.dead)
        finally:
            await self.close()

    async def _wait_polls(self) -> None:
        if self._refill is not None:  # a claim under way starts no poll once stopping
            await asyncio.gather(self._refill, return_exceptions=True)
        if not self._polls:
            return
        _, late = await asyncio.wait(self._polls, timeout=SHUTDOWN_GRACE)
        for task in late:
            task.cancel()  # nothing is lost: an uncommitted item is simply polled again

    # -- jobs -----------------------------------------------------------------------------

    def _job(self, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        """`job` as the scheduler runs it, its runs kept in `_jobs` while under way."""
        async def run() -> None:
            task = asyncio.current_task()
            assert task is not None
            self._jobs.add(task)
            try:
                await job()
            finally:
                self._jobs.discard(task)

        return run

    async def tick(self) -> None:
        """Claims due feeds for free poll slots, a small batch at a time. When a batch came
        back full, more feeds may be due: each finished poll claims again at once instead
        of waiting for the next tick, so a backlog (thousands of feeds due together) drains
        at the speed of the polls, not of the ticks. Small batches share a backlog between
        instances by how fast each finishes its polls (a poll ends when its new items are
        matched and queued): one claim of every free slot took 64 of 100 busy feeds for one
        instance and 36 for the other, which then sat idle (bench/e2e.py)."""
        async with self._claiming:
            await self._claim()

    async def _claim(self) -> None:
        if self.stop_event.is_set():
            return
        free = min(self.settings.http_concurrency - len(self._polls), self._claim_batch)
        if free <= 0:
            return
        if self.poller.items_in_flight >= self._items_cap:
            # Busy with items already: feeds claimed now would only queue theirs behind
            # them. They stay due, for another instance or for when a poll here finishes.
            self._backlog = True
            return
        lease = self.settings.poll_lease_seconds or self.settings.http_timeout * 3 + 30
        try:
            # Their states come with them, read in the same step: the lease keeps every
            # other poll of these feeds away until they are done.
            due = await self.store.claim_due(lease, free)
            self._backlog = len(due) == free
            if self._redis_down:
                log.info("redis reachable again; polling resumed")
                self._redis_down = False
        except RedisError as exc:
            if not self._redis_down:
                log.error("redis unreachable; polling paused", error=str(exc))
                self._redis_down = True
            return
        runtime = self.runtime
        released = []
        for feed_id, state in due:
            if feed_id not in runtime.feeds or self.stop_event.is_set():
                released.append(feed_id)
                continue
            task = asyncio.create_task(self._poll(feed_id, runtime, state))
            self._polls.add(task)
            task.add_done_callback(self._poll_done)
        if released:
            # Feeds of a config this instance has not loaded yet (another instance
            # reloaded first), or all of them when it is stopping: due again at once for
            # another instance, not left leased here until the lease ends.
            try:
                await self.store.release(released)
            except RedisError as exc:
                log.warning("redis error releasing claimed feeds", error=str(exc))

    def _poll_done(self, task: asyncio.Task[PollResult | None]) -> None:
        self._polls.discard(task)
        # Claim in small batches rather than one feed per finished poll: each claim is a
        # script run in Redis. One refill at a time: polls finishing together, before the
        # first refill ran, each started another, which then claimed the few slots left
        # (2,000 feeds took 943 claims of 2 feeds on average instead of 250 of 8).
        free = self.settings.http_concurrency - len(self._polls)
        if self._backlog and free >= self._claim_batch and not self._claiming.locked() \
                and (self._refill is None or self._refill.done()) \
                and not self.stop_event.is_set():
            self._refill = asyncio.create_task(self.tick())  # kept: tasks are weakly held

    async def _poll(self, feed_id: str, runtime: Runtime,
                    state: dict[str, str]) -> PollResult | None:
        feed = runtime.feeds[feed_id]
        try:
            return await self.poller.poll(feed, runtime, state)
        except RedisError as exc:
            log.error("redis error during poll; feed will be polled again", feed=feed.name,
                      error=str(exc))
        except Exception:  # one broken feed must never stop the daemon
            log.exception("poll crashed; feed will be polled again", feed=feed.name)
        return None

    async def sync_clock(self) -> None:
        """Measures this machine's clock against Redis's again; says so when they differ."""
        try:
            offset = await self.store.sync_clock()
        except RedisError as exc:
            log.warning("redis error measuring the clock", error=str(exc))
            return
        self._check_clock(offset)

    async def check_schedule(self) -> None:
        """Puts this config's feeds back in the schedule if they left it. An instance
        removes the feeds its config lacks when it starts or reloads; one that read
        another config (an older one, halfway through a deploy) removed feeds of this one,
        which nothing else would add back until this config changed."""
        try:
            added = await self.store.sync_schedule(self.runtime.feeds, remove=False)
        except RedisError as exc:
            log.warning("redis error checking the schedule", error=str(exc))
            return
        if added:
            log.warning("feeds of this config were missing from the schedule and are due "
                        "again; does another instance read another config?", feeds=added)

    async def share_pauses(self) -> None:
        """Shares the pauses hosts asked this instance for, and holds those they asked
        the others for (monitor.fetch rule 9)."""
        asked = self.fetcher.asked_pauses()
        try:
            version, paused = await self.store.share_host_pauses(asked, self._pauses_version)
        except RedisError as exc:
            # The pauses still hold here; the other instances learn of them from the host.
            log.debug("redis error sharing host pauses", error=str(exc), hosts=list(asked))
            return
        self._pauses_version = version
        if paused is None:
            return  # no pause added since this instance last read them
        for host, left in paused.items():
            if host not in asked:
                self.fetcher.pause(host, left)
        new = paused.keys() - asked.keys() - self._pauses_seen
        if new:
            log.info("hosts paused, as they asked another instance", hosts=sorted(new))
        self._pauses_seen = set(paused)

    async def forget_consumers(self) -> None:
        """Removes the delivery group's consumers of instances gone for an hour."""
        try:
            gone = await self.store.forget_consumers(min_idle=IDLE_CONSUMER_SECONDS,
                                                     keep=self.consumer)
        except RedisError as exc:
            log.warning("redis error removing idle consumers", error=str(exc))
            return
        if gone:
            log.info("idle consumers removed from the delivery group", consumers=gone)

    def _check_clock(self, offset: float) -> None:
        if abs(offset) > CLOCK_WARN and abs(offset - self._clock_warned) > CLOCK_WARN:
            log.warning("this machine's clock differs from Redis's; feeds are scheduled by "
                        "Redis's clock (check NTP)", offset_s=round(offset, 3))
            self._clock_warned = offset

    async def reload(self) -> Config | None:
        current = await asyncio.to_thread(fingerprint, self.settings.config_dir)
        if current == self._fingerprint:
            return None
        self._fingerprint = current
        try:
            config = await asyncio.to_thread(load_config, self.settings.config_dir, self.env)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config invalid; keeping the last good config", problem=problem)
            return None
        # In a thread: a large watchlist compiles for seconds, and the loop keeps polling.
        self.runtime = await asyncio.to_thread(Runtime.build, config, self.runtime)
        try:
            await self.store.sync_schedule(self.runtime.feeds)
        except RedisError as exc:
            log.error("redis error while syncing the schedule", error=str(exc))
        log.info("config reloaded", feeds=len(config.feeds), watchlists=len(config.watchlists),
                 subscribers=len(config.subscribers))
        _log_notes(config)
        return config


def retry_policy(s: Settings) -> RetryPolicy:
    """The delivery retry policy of these settings. MONITOR_DELIVERY_MAX_ATTEMPTS, from
    before retry windows, still means what it did (the time that many attempts took)
    unless MONITOR_DELIVERY_RETRY_HOURS is set too."""
    fields = {"base": s.delivery_backoff_base, "cap": s.delivery_backoff_max,
              "probe": s.delivery_probe_seconds,
              "visibility_timeout": s.delivery_visibility_timeout}
    if s.delivery_max_attempts is not None and "delivery_retry_hours" not in s.model_fields_set:
        return RetryPolicy.from_attempts(s.delivery_max_attempts, **fields)
    return RetryPolicy(window=s.delivery_retry_hours * 3600, **fields)


def _log_notes(config: Config) -> None:
    for note in config.notes:  # what `monitor validate` notes, such as duplicate names
        log.warning("config note", note=note)
