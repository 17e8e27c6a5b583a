"""Redis access for every stage: dedup, feed schedule and state, stories, alert streams.

Key names and TTLs are in `monitor.store.keys`, scripts in `monitor.store.scripts`; this
module is the thin async wrapper the stages call.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from monitor.models import Alert
from monitor.store.archive import Archive
from monitor.store.keys import (
    DEFAULT_ARCHIVE_MAX_BYTES,
    DEFAULT_ARCHIVE_TTL,
    DEFAULT_SEEN_TTL,
    DEFAULT_STORY_WINDOW,
    DELIVERY_GROUP,
    FEED_TTL,
    STORY_BUCKETS_PER_WINDOW,
    WAITING_CONSUMER,
    Keys,
    waiting_consumer,
)
from monitor.store.scripts import (
    CIRCUIT_FAILED,
    CLAIM_DUE,
    COMMIT_ITEM,
    COMMIT_NEW_STORIES,
    DEAD,
    DONE,
    EXPIRE_WAITING,
    FINISH_POLLS,
    FORGET_CONSUMER,
    HOST_PAUSES,
    REPLAY,
    STORY_LOOKUP,
    TAKE_PROBE,
    UNPARK,
)

__all__ = ["DEFAULT_SEEN_TTL", "DEFAULT_STORY_WINDOW", "DELIVERY_GROUP",
           "STORY_BUCKETS_PER_WINDOW", "WAITING_CONSUMER", "Keys", "NewStory", "Pending",
           "QueueSummary", "Store", "StoryCard", "StoryLookup", "Waiting", "waiting_consumer"]


def _band_fields(bands: Sequence[str]) -> str:
    """A signature's bands as the fields of a bucket hash ("index:value"), one argument."""
    return " ".join(f"{index}:{value}" for index, value in enumerate(bands))


def _bucket_size(window: int) -> int:
    """Seconds of one band bucket: STORY_BUCKETS_PER_WINDOW of them span the window."""
    return max(1, window // STORY_BUCKETS_PER_WINDOW)


def _as_strings(fields: dict[str, Any]) -> dict[str, str]:
    """Hash fields as Redis stores them; None becomes the empty string."""
    return {k: "" if v is None else str(v) for k, v in fields.items()}


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    """A hash from the flat field-value list that HGETALL returns inside a script."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


@dataclass(frozen=True, slots=True)
class _Finish:
    feed_id: str
    due: str
    ttl: int
    known_action: str  # "set", "del", or "" to leave the known items as they are
    known: str
    fields: dict[str, str]


class _Finishes:
    """Writes the outcomes of the polls that finish together in one script call.

    `add` queues an outcome and returns once it is written. The first one queued starts
    a flush on the next turn of the event loop; outcomes queued while a flush is in
    Redis go in the next one, so under load the batches grow by themselves, and alone a
    poll waits no longer than its own write. A feed whose write fails gets the error, and
    if the call fails, every feed of its batch does (each is polled again when its lease
    ends)."""

    MAX_BATCH = 256  # polls per script call: bounds how long one call holds Redis

    def __init__(self, script: Any, keys: Keys) -> None:
        self._script = script
        self._keys = keys
        self._queue: list[tuple[_Finish, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def add(self, finish: _Finish) -> None:
        done = asyncio.get_running_loop().create_future()
        self._queue.append((finish, done))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self.MAX_BATCH]
                del self._queue[: self.MAX_BATCH]
                try:
                    errors = await self._script(*self._call([f for f, _ in batch]))
                except asyncio.CancelledError:  # the loop is going away: so are the polls
                    for _, done in [*batch, *self._queue]:
                        done.cancel()
                    self._queue.clear()
                    raise
                except Exception as exc:
                    errors = [exc] * len(batch)
                for (_, done), error in zip(batch, errors, strict=True):
                    if done.done():
                        pass
                    elif error:
                        done.set_exception(error if isinstance(error, Exception)
                                           else ResponseError(error))
                    else:
                        done.set_result(None)
        finally:
            self._flushing = None

    def _call(self, finishes: Sequence[_Finish]) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of FINISH_POLLS for `finishes`."""
        keys: list[str] = [self._keys.schedule]
        args: list[Any] = []
        for f in finishes:
            keys += [self._keys.feed(f.feed_id), self._keys.feed_known(f.feed_id)]
            args += [f.feed_id, f.due, f.ttl, f.known_action, f.known, len(f.fields)]
            for item in f.fields.items():
                args += item
        return keys, args


@dataclass(frozen=True, slots=True)
class NewStory:
    """A story first seen with this item, registered when the item is committed: its
    story URL key, the bands and bytes of its text's signature, its first source, and the
    id of the feed it came from (stories of one feed are judged apart: monitor.dedup)."""

    url_key: str
    bands: tuple[str, ...]
    sig: bytes | None
    source: dict[str, Any]
    feed: str = ""


class StoryCard(NamedTuple):
    """What a story's judge reads of it: its signature (None without text), the feed it
    was first seen in ("" if unknown), and its first title."""

    sig: bytes | None
    feed: str
    title: str


class StoryLookup(NamedTuple):
    """What Redis knows of an item's story: the story by its URL, and the stories whose
    text shares a band with it (candidates, to be compared)."""

    by_url: str | None
    candidates: set[str]


@dataclass(frozen=True, slots=True)
class Pending:
    id: str
    consumer: str
    idle_seconds: float
    deliveries: int


@dataclass(frozen=True, slots=True)
class Waiting:
    """An alert taken back from a circuit's waiting room (a probe, or released): its entry,
    Redis's count of its deliveries with this one, and its last failed attempt."""

    id: str
    fields: dict[str, str]
    deliveries: int
    failure: dict[str, Any] | None


def _waiting(row: Sequence[Any]) -> Waiting:
    """A TAKE_PROBE or UNPARK reply's entry."""
    return Waiting(str(row[0]), _pairs(row[1]), int(row[2]),
                   json.loads(row[3]) if row[3] else None)


class Store:
    """Thin async wrapper over the scripts and commands above."""

    def __init__(self, client: aioredis.Redis | RedisCluster, prefix: str = "monitor",
                 seen_ttl: int = DEFAULT_SEEN_TTL, *, archive_ttl: int = DEFAULT_ARCHIVE_TTL,
                 archive_max_bytes: int = DEFAULT_ARCHIVE_MAX_BYTES) -> None:
        # redis-py's annotations cannot express decode_responses=True (replies are str).
        self.redis: Any = client
        self.keys = Keys(prefix)
        self.seen_ttl = seen_ttl
        self.archive = Archive(client, self.keys, ttl=archive_ttl, max_bytes=archive_max_bytes)
        self.clock_offset = 0.0  # Redis's clock minus this machine's (sync_clock)
        self._claim = client.register_script(CLAIM_DUE)
        self._finishes = _Finishes(client.register_script(FINISH_POLLS), self.keys)
        self._commit = client.register_script(COMMIT_ITEM)
        self._commit_new_stories = client.register_script(COMMIT_NEW_STORIES)
        self._done = client.register_script(DONE)
        self._dead = client.register_script(DEAD)
        self._replay = client.register_script(REPLAY)
        self._forget_consumer = client.register_script(FORGET_CONSUMER)
        self._circuit_failed = client.register_script(CIRCUIT_FAILED)
        self._take_probe = client.register_script(TAKE_PROBE)
        self._unpark = client.register_script(UNPARK)
        self._expire_waiting = client.register_script(EXPIRE_WAITING)
        self._host_pauses = client.register_script(HOST_PAUSES)
        self._story_lookup = client.register_script(STORY_LOOKUP)

    # -- clock ----------------------------------------------------------------------------

    def now(self) -> float:
        """Unix time by Redis's clock. Due times, leases and story buckets are written and
        compared by it, so the instances on several machines share one clock: one whose
        own clock runs ahead would otherwise claim feeds that another still holds, and
        set due times in the others' future or past."""
        return time.time() + self.clock_offset

    async def sync_clock(self) -> float:
        """Measures Redis's clock against this machine's (TIME, read halfway through the
        round trip) and keeps the difference for `now`; returns it in seconds."""
        before = time.time()
        seconds, micros = await self.redis.time()
        after = time.time()
        self.clock_offset = int(seconds) + int(micros) / 1_000_000 - (before + after) / 2
        return self.clock_offset

    # -- schedule -------------------------------------------------------------------------

    async def sync_schedule(self, feed_ids: Iterable[str], now: float | None = None, *,
                            remove: bool = True) -> int:
        """New feeds come due now; with `remove`, feeds gone from the config leave the
        schedule. Returns the number of feeds added."""
        now = self.now() if now is None else now
        wanted = set(feed_ids)
        known = set(await self.redis.zrange(self.keys.schedule, 0, -1)) if remove else set()
        async with self.redis.pipeline(transaction=True) as pipe:
            if wanted:
                pipe.zadd(self.keys.schedule, {fid: now for fid in wanted}, nx=True)
            for gone in known - wanted:
                pipe.zrem(self.keys.schedule, gone)
            replies = await pipe.execute()
        return int(replies[0]) if wanted else 0

    async def claim_due(self, lease: float, limit: int,
                        now: float | None = None) -> list[tuple[str, dict[str, str]]]:
        """Up to `limit` due feeds, leased for `lease` seconds, each with its state."""
        now = self.now() if now is None else now
        flat = await self._claim(keys=[self.keys.schedule],
                                 args=[now, lease, limit, self.keys.feed("")])
        return [(str(flat[i]), _pairs(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def release(self, feed_ids: Sequence[str], now: float | None = None) -> None:
        """Claimed feeds this instance will not poll, due again now (if still scheduled)."""
        now = self.now() if now is None else now
        await self.redis.zadd(self.keys.schedule, dict.fromkeys(feed_ids, now), xx=True)

    async def share_host_pauses(self, asked: Mapping[str, float], version: int = -1,
                                ) -> tuple[int, dict[str, float] | None]:
        """Hosts paused for every instance (monitor.fetch rule 9), after adding `asked`,
        this instance's new pauses (host -> seconds left): the version of that set, and
        the set (host -> seconds left) unless it is still at `version`, the one the
        caller read last."""
        now = self.now()
        args: list[str | float] = [now, version]
        for host, left in asked.items():
            args += [host, now + left]
        reply = await self._host_pauses(keys=[self.keys.host_pauses,
                                              self.keys.host_pauses_version], args=args)
        if len(reply) == 1:
            return int(reply[0]), None
        flat = reply[1]
        return int(reply[0]), {str(flat[i]): float(flat[i + 1]) - now
                               for i in range(0, len(flat), 2)}

    # -- feed state -----------------------------------------------------------------------

    async def feed_state(self, feed_id: str) -> dict[str, str]:
        return dict(await self.redis.hgetall(self.keys.feed(feed_id)))

    async def set_feed_state(self, feed_id: str, fields: dict[str, Any]) -> None:
        await self.redis.hset(self.keys.feed(feed_id), mapping=_as_strings(fields))

    async def finish_poll(self, feed_id: str, fields: dict[str, Any], due: float,
                          previous: Mapping[str, str] | None = None,
                          known: str | None = None) -> None:
        """A poll's outcome in the feed's state and its next due time, atomically; with the
        `previous` state (as read before the poll), only the fields that changed are sent.
        `known`: the items the poll read (see `feed_known`), when it read any. Both expire
        after FEED_TTL, or three times the wait for the next poll. Polls that finish
        together are written together (`_Finishes`)."""
        changed = _as_strings(fields)
        if previous:
            changed = {k: v for k, v in changed.items() if previous.get(k) != v}
        ttl = max(FEED_TTL, int(3 * (due - self.now())))
        action = "" if known is None else "set" if known else "del"
        await self._finishes.add(_Finish(feed_id, repr(due), ttl, action, known or "", changed))

    async def feed_known(self, feed_id: str) -> str:
        """The digests and dates of the items the feed's last poll read ("" if none)."""
        return str(await self.redis.get(self.keys.feed_known(feed_id)) or "")

    async def feed_memory(self, feed_id: str) -> tuple[str, str]:
        """What the feed's last polls left for this one, in one round trip: the items
        they read (`feed_known`) and the feed's template (monitor.dedup rule 4); "" for
        none."""
        known, template = await self.redis.mget([self.keys.feed_known(feed_id),
                                                  self.keys.feed_template(feed_id)])
        return str(known or ""), str(template or "")

    async def set_feed_template(self, feed_id: str, template: str) -> None:
        """Keeps the feed's template ("" removes it) as long as the feed's state."""
        if template:
            await self.redis.set(self.keys.feed_template(feed_id), template, ex=FEED_TTL)
        else:
            await self.redis.delete(self.keys.feed_template(feed_id))

    async def count_no_article(self, feed_id: str) -> None:
        await self.redis.hincrby(self.keys.feed(feed_id), "no_article", 1)

    # -- dedup and queue ------------------------------------------------------------------

    async def unseen(self, item_ids: Sequence[str]) -> list[str]:
        """The ids among `item_ids` that were never committed."""
        if not item_ids:
            return []
        # One MGET, not an EXISTS each: a command in a pipeline costs ~50 us of CPU.
        flags = await self.redis.mget([self.keys.seen(item_id) for item_id in item_ids])
        return [item_id for item_id, flag in zip(item_ids, flags, strict=True) if flag is None]

    async def commit_item(self, item_id: str, alerts: Sequence[Alert], story_id: str = "",
                          window: int = DEFAULT_STORY_WINDOW, sources: int = 1,
                          new_story: NewStory | None = None,
                          alerted: Mapping[str, int] | None = None) -> int:
        """Marks the item seen, queues its alerts, notes them on its story and registers
        `new_story` under `story_id`, atomically; -1 if the item was already seen, else
        the alerts queued. `alerted`: the story's record as read (`story_alerted`) when
        the alerts were decided; an alert whose subscriber's record changed since (another
        copy alerted it) is not queued."""
        keys, args = self._commit_call(item_id, alerts, story_id or item_id, window, sources,
                                       new_story, self.now(), alerted or {})
        return int(await self._commit(keys=keys, args=args))

    async def commit_new_story(self, item_id: str, alerts: Sequence[Alert], new_story: NewStory,
                               window: int = DEFAULT_STORY_WINDOW) -> int | StoryLookup:
        """`commit_item` for an item that is a story of its own (under its id), unless a
        story is known by its URL or shares a band with it: then nothing is written and
        the answer of `story_candidates` comes back, for `resolve_story` to judge."""
        (reply,) = await self.commit_new_stories([(item_id, alerts, new_story)], window)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def commit_new_stories(self, items: Sequence[tuple[str, Sequence[Alert], NewStory]],
                                 window: int = DEFAULT_STORY_WINDOW,
                                 ) -> list[int | StoryLookup | Exception]:
        """`commit_new_story` for each of `items` (id, alerts, new story) in turn, in one
        script call, up to the first item whose story Redis knows: the list ends with
        its lookup, and the items after it are left untried, with nothing written, for
        the caller to commit once that item is judged. An item that Redis refused a
        command has its error in the list, and the items after it are still tried; so
        has an item whose alerts cannot be written (text no encoder takes), with nothing
        sent for it."""
        now = self.now()
        keys = [self.keys.story_bands(b) for b in self._buckets(window, now)[1:]]
        args: list[Any] = [len(keys)]
        unwritable: dict[int, Exception] = {}
        for i, (item_id, alerts, new_story) in enumerate(items):
            try:
                item_keys, item_args = self._commit_call(item_id, alerts, item_id, window, 1,
                                                         new_story, now, {})
            except Exception as exc:  # this item's data: the others go on
                unwritable[i] = exc
                continue
            keys += item_keys
            args += item_args
        replies = iter(await self._commit_new_stories(keys=keys, args=args)
                       if len(items) > len(unwritable) else [])
        out: list[int | StoryLookup | Exception] = []
        for i in range(len(items)):
            if i in unwritable:
                out.append(unwritable[i])
                continue
            reply = next(replies, None)
            if reply is None:  # untried: an item before it needs judging
                break
            out.append(StoryLookup(reply[0] or None, set(reply[1])) if isinstance(reply, list)
                       else ResponseError(reply) if isinstance(reply, str) else int(reply))
            if isinstance(out[-1], StoryLookup):
                break
        return out

    def _commit_call(self, item_id: str, alerts: Sequence[Alert], story_id: str, window: int,
                     sources: int, new_story: NewStory | None, now: float,
                     alerted: Mapping[str, int]) -> tuple[list[str], list[Any]]:
        """COMMIT_ITEM's keys and arguments."""
        payloads = [a.to_json() for a in alerts]
        keys = [self.keys.seen(item_id), self.keys.alerts, self.keys.story_alerted(story_id)]
        args: list[Any] = [self.seen_ttl, window, sources, len(alerts),
                           *(a.subscriber for a in alerts), *payloads,
                           *(str(alerted.get(a.subscriber, "")) for a in alerts)]
        if new_story is not None:
            bucket = self._buckets(window, now)[0]
            source = new_story.source
            keys += [self.keys.story_url(new_story.url_key), self.keys.story_bands(bucket),
                     self.keys.story(story_id), self.keys.story_sources(story_id)]
            expire_at = int((bucket + 1) * _bucket_size(window) + window)
            args += [story_id, expire_at, _band_fields(new_story.bands),
                     base64.b64encode(new_story.sig).decode() if new_story.sig else "",
                     source.get("title", ""), source.get("url", ""), now,
                     json.dumps(source, ensure_ascii=False), 1 if new_story.url_key else 0,
                     new_story.feed]
        return keys, args

    # -- stories (cross-feed dedup) -------------------------------------------------------

    def _buckets(self, window: int, now: float) -> list[int]:
        """The band buckets that can hold stories of the last `window` seconds."""
        current = int(now // _bucket_size(window))
        return [current - i for i in range(STORY_BUCKETS_PER_WINDOW + 1)]

    async def story_candidates(self, url_key: str, bands: Sequence[str],
                               window: int = DEFAULT_STORY_WINDOW) -> StoryLookup:
        """The story already known by this URL, and the stories sharing a band with it."""
        buckets = [self.keys.story_bands(b) for b in self._buckets(window, self.now())]
        by_url, found = await self._story_lookup(
            keys=[self.keys.story_url(url_key), *buckets],  # "" never set: no URL, no story
            args=[_band_fields(bands)])
        return StoryLookup(by_url or None, set(found))

    async def story_signatures(self, story_ids: Sequence[str]) -> dict[str, bytes]:
        return {sid: card.sig for sid, card in (await self.story_cards(story_ids)).items()
                if card.sig}

    async def story_cards(self, story_ids: Sequence[str]) -> dict[str, StoryCard]:
        """The signature, feed and first title of each of the stories still known."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for story_id in story_ids:
                pipe.hmget(self.keys.story(story_id), ["sig", "feed", "title"])
            found = await pipe.execute()
        return {sid: StoryCard(base64.b64decode(sig) if sig else None, feed or "", title or "")
                for sid, (sig, feed, title) in zip(story_ids, found, strict=True)
                if sig is not None or feed is not None or title is not None}

    async def add_source(self, story_id: str, url_key: str, source: dict[str, Any],
                         window: int) -> list[dict[str, Any]]:
        """Adds a copy's source to its story; returns every source so far."""
        async with self.redis.pipeline(transaction=True) as pipe:
            if url_key:
                pipe.set(self.keys.story_url(url_key), story_id, ex=window, nx=True)
            pipe.rpush(self.keys.story_sources(story_id), json.dumps(source, ensure_ascii=False))
            pipe.lrange(self.keys.story_sources(story_id), 0, -1)
            *_, sources = await pipe.execute()
        return [json.loads(s) for s in sources]

    async def story_by_url(self, url_key: str) -> str | None:
        return await self.redis.get(self.keys.story_url(url_key)) if url_key else None

    async def story_info(self, story_id: str) -> dict[str, Any]:
        """A story's first title and URL, when it was first seen, and its sources."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(self.keys.story(story_id), ["title", "url", "first_seen"])
            pipe.lrange(self.keys.story_sources(story_id), 0, -1)
            (title, url, first_seen), sources = await pipe.execute()
        return {"id": story_id, "title": title or "", "url": url or "",
                "first_seen": float(first_seen) if first_seen else None,
                "sources": [json.loads(s) for s in sources]}

    async def story_alerted(self, story_id: str) -> dict[str, int]:
        """Subscribers the story alerted, with its source count at their last alert."""
        raw = await self.redis.hgetall(self.keys.story_alerted(story_id))
        return {sub: int(count) for sub, count in raw.items()}

    # -- delivery -------------------------------------------------------------------------

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.keys.alerts, DELIVERY_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read_new(self, consumer: str, count: int,
                       block_ms: int | None) -> list[tuple[str, dict[str, str]]]:
        """New entries for this consumer; block_ms None returns at once (0 would wait forever)."""
        reply = await self.redis.xreadgroup(DELIVERY_GROUP, consumer, {self.keys.alerts: ">"},
                                            count=count, block=block_ms)
        return [(entry_id, fields) for _, entries in reply or [] for entry_id, fields in entries]

    async def forget_consumers(self, names: Sequence[str] | None = None, *,
                               min_idle: float = 0.0, keep: str = "") -> list[str]:
        """Removes consumers that hold no entry from the delivery group: `names`, or every
        consumer idle at least `min_idle` seconds but `keep`. Each start of an instance is
        a new consumer, so those of instances that stopped or died would pile up. Returns
        the names removed."""
        if names is None:
            try:
                rows = await self.redis.xinfo_consumers(self.keys.alerts, DELIVERY_GROUP)
            except ResponseError:  # no stream or no group yet
                return []
            names = [str(r["name"]) for r in rows if str(r["name"]) != keep
                     and int(r["pending"]) == 0 and int(r["idle"]) >= min_idle * 1000]
        removed = []
        for name in names:
            if await self._forget_consumer(keys=[self.keys.alerts], args=[DELIVERY_GROUP, name]):
                removed.append(name)
        return removed

    async def pending(self, count: int = 100, start: str = "-", min_idle: float = 0.0,
                      consumer: str | None = None) -> list[Pending]:
        """Pending entries from `start` (prefix "(" to exclude it) idle at least `min_idle` s
        (of `consumer` only, if given)."""
        rows = await self.redis.xpending_range(self.keys.alerts, DELIVERY_GROUP, start, "+", count,
                                               consumername=consumer,
                                               idle=int(min_idle * 1000) or None)
        return [Pending(str(r["message_id"]), str(r["consumer"]),
                        r["time_since_delivered"] / 1000, int(r["times_delivered"])) for r in rows]

    async def claim(self, consumer: str, entry_id: str,
                    min_idle: float) -> list[tuple[str, dict[str, str]]]:
        """Takes over one pending entry if it has been idle that long (atomic: one winner)."""
        rows = await self.redis.xclaim(self.keys.alerts, DELIVERY_GROUP, consumer,
                                       int(min_idle * 1000), [entry_id])
        return [(str(i), f) for i, f in rows if f is not None]

    async def touch(self, consumer: str, entry_ids: Sequence[str], min_idle: float = 0.0) -> None:
        """Resets the idle time of entries this consumer still holds, without counting a
        delivery (XCLAIM JUSTID), so no other worker takes them over meanwhile; only of
        those idle `min_idle` seconds at least (an entry just handed to another consumer
        is not)."""
        if entry_ids:
            await self.redis.xclaim(self.keys.alerts, DELIVERY_GROUP, consumer,
                                    int(min_idle * 1000), list(entry_ids), justid=True)

    async def last_error(self, entry_id: str) -> dict[str, Any] | None:
        return (await self.last_errors([entry_id]))[0]

    async def last_errors(self, entry_ids: Sequence[str]) -> list[dict[str, Any] | None]:
        if not entry_ids:
            return []
        raw = await self.redis.hmget(self.keys.errors, list(entry_ids))
        return [json.loads(r) if r else None for r in raw]

    async def record_error(self, entry_id: str, attempts: int, error: str, *,
                           deliveries: int | None = None,
                           retry_after: float | None = None) -> None:
        """The outcome of a delivery attempt that did not succeed, for retries and the CLI:
        the attempts made so far, and Redis's count of the entry's deliveries with the one
        that failed (a later delivery means a worker took it again)."""
        payload = json.dumps({"attempts": attempts, "error": error, "at": time.time(),
                              "deliveries": attempts if deliveries is None else deliveries,
                              "retry_after": retry_after})
        await self.redis.hset(self.keys.errors, entry_id, payload)

    async def pending_counts(self) -> dict[str, int]:
        """Consumer -> entries it holds, for every consumer that holds any."""
        try:
            info = await self.redis.xpending(self.keys.alerts, DELIVERY_GROUP)
        except ResponseError:  # no group yet
            return {}
        return {str(c["name"]): int(c["pending"]) for c in info.get("consumers") or ()}

    async def park(self, circuit: str, entry_ids: Sequence[str]) -> None:
        """Entries this consumer holds, left to wait for `circuit` (XCLAIM JUSTID, which
        counts no delivery)."""
        if entry_ids:
            await self.redis.xclaim(self.keys.alerts, DELIVERY_GROUP, waiting_consumer(circuit),
                                    0, list(entry_ids), justid=True)

    async def unpark(self, circuit: str, consumer: str, count: int) -> list[Waiting]:
        """Up to `count` entries waiting for `circuit`, taken by `consumer` to send."""
        rows = await self._unpark(keys=[self.keys.alerts, self.keys.errors],
                                  args=[DELIVERY_GROUP, waiting_consumer(circuit), consumer, count])
        return [_waiting(row) for row in rows]

    async def circuits(self) -> dict[str, str]:
        """Circuit id -> its state (JSON), for every circuit open."""
        return dict(await self.redis.hgetall(self.keys.circuits))

    async def circuit_failed(self, circuit: str, *, now: float, error: str, label: str,
                             next_probe: float, prober: str, push: bool) -> tuple[bool, str]:
        """Records a failed send to `circuit`: whether that opened it, and its state."""
        opened, raw = await self._circuit_failed(
            keys=[self.keys.circuits],
            args=[circuit, now, error, next_probe, label, prober, "1" if push else ""])
        return bool(opened), str(raw)

    async def circuit_closed(self, circuit: str) -> str | None:
        """Closes `circuit`; its state if it was open."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(self.keys.circuits, circuit)
            pipe.hdel(self.keys.circuits, circuit)
            raw, removed = await pipe.execute()
        return str(raw) if removed else None

    async def take_probe(self, circuit: str, consumer: str, *, now: float, lease_until: float,
                         force: bool = False) -> Waiting | None:
        """The probe of `circuit`, if it is due (or `force`d) and no other prober holds it:
        one entry waiting for it, claimed by `consumer` (see TAKE_PROBE)."""
        reply = await self._take_probe(
            keys=[self.keys.circuits, self.keys.alerts, self.keys.errors],
            args=[circuit, now, lease_until, consumer, DELIVERY_GROUP,
                  waiting_consumer(circuit), "1" if force else ""])
        return _waiting(reply) if reply else None

    async def expire_waiting(self, circuit: str, queued_before: float, error: str,
                             count: int = 200) -> int:
        """Dead-letters the entries waiting for `circuit` queued before that (unix) time."""
        last = f"{max(0, int(queued_before * 1000) - 1)}-{2**64 - 1}"
        return int(await self._expire_waiting(
            keys=[self.keys.alerts, self.keys.dead, self.keys.errors],
            args=[DELIVERY_GROUP, waiting_consumer(circuit), last, count, int(time.time()),
                  error]))

    async def done(self, entry_ids: Sequence[str]) -> None:
        """Confirmed sends: acknowledged and deleted, in one round trip."""
        if entry_ids:
            await self._done(keys=[self.keys.alerts, self.keys.errors],
                             args=[DELIVERY_GROUP, *entry_ids])

    async def dead_letter(self, entry_id: str, payload: str, error: str, attempts: int) -> None:
        await self._dead(
            keys=[self.keys.alerts, self.keys.dead, self.keys.errors],
            args=[DELIVERY_GROUP, entry_id, payload, error, attempts, int(time.time())],
        )

    async def dead_letters(self, count: int = 100) -> list[tuple[str, dict[str, str]]]:
        return [(str(i), f) for i, f in await self.redis.xrange(self.keys.dead, count=count)]

    async def replay(self, dead_id: str) -> bool:
        """Moves one dead letter back to the alert stream; False if it is not there."""
        return bool(await self._replay(keys=[self.keys.alerts, self.keys.dead], args=[dead_id]))

    async def queue_length(self) -> int:
        return int(await self.redis.xlen(self.keys.alerts))

    async def summary(self) -> QueueSummary:
        """Counts and oldest ages of queued, pending and dead alerts."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self.keys.alerts)
            pipe.xrange(self.keys.alerts, count=1)
            pipe.xlen(self.keys.dead)
            pipe.xrange(self.keys.dead, count=1)
            queued, first, dead, first_dead = await pipe.execute()
        try:
            info = await self.redis.xpending(self.keys.alerts, DELIVERY_GROUP)
            pending = int(info["pending"])
        except ResponseError:  # no group yet: nothing was ever read
            pending = 0
        now = self.now()  # stream ids are Redis's milliseconds
        return QueueSummary(int(queued), pending, _age(first, now), int(dead),
                            _age(first_dead, now))

    async def all_feed_states(self, feed_ids: Sequence[str]) -> list[dict[str, str]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for feed_id in feed_ids:
                pipe.hgetall(self.keys.feed(feed_id))
            return [dict(r) for r in await pipe.execute()]


@dataclass(frozen=True, slots=True)
class QueueSummary:
    queued: int  # in the stream: not yet read, or read and not yet confirmed
    pending: int  # read by a worker and not yet confirmed
    oldest_age: float | None  # seconds since the oldest queued alert was added
    dead: int
    oldest_dead_age: float | None


def _age(entries: list[tuple[str, Any]], now: float) -> float | None:
    """Seconds since a stream entry was added, from its id (milliseconds-sequence)."""
    if not entries:
        return None
    return max(0.0, now - int(str(entries[0][0]).split("-")[0]) / 1000)
