"""Polls one feed: fetch, parse, drop seen and stale items, scrape, match, queue alerts.

Rules, in order:
1. The feed is fetched with the ETag and Last-Modified of its last poll; 304, or a body
   identical to the last one (servers without validators), ends the poll. A permanent
   redirect (301, 308) moves the feed: its new URL is kept in its state and polled from
   then on. Items the last poll read are not parsed again (monitor.feeds rule 5): their
   digests and dates are kept beside the feed's state.
2. A failed fetch is recorded in the feed's state and pushes its next poll back
   exponentially (capped), or by the server's Retry-After; the feed is never dropped,
   except on 410 Gone, which stops polling it until its URL changes in the config.
3. An item is new when its id was never committed and it was published within the max
   age (items without a date count as new), so a first poll of an old feed stays quiet.
   At most `max_new_items` are taken per poll, in feed order; the others stay unseen and
   are taken by the next polls, so a feed of thousands of items cannot swamp the daemon.
   A document that is no feed at all counts as a failed poll (rule 2).
4. For feeds that ask for it, the item's page is fetched and its article text extracted;
   when that fails or finds no article, the feed's own title and summary are matched.
5. One story, one alert: an item whose story URL or text (monitor.dedup) matches a story
   seen within the dedup window is a copy of it; its alerts go only to subscribers that
   story has not alerted yet, and the story keeps the copy as one more source. Text the
   feed repeats in many of its items (its template, learned from the items each poll
   reads and kept for the next) is left out of the signature, and a story first seen in
   the item's own feed is its story only on far stronger evidence (dedup rules 4, 5).
6. The item is marked seen in the same atomic step that queues its alerts.
7. The next poll comes after the interval learned from the feed's cadence and hints
   (monitor.feeds.cadence), kept in its state so that a 304 keeps it too. The poll's log line
   and the feed's state count its items: new, older than the max age, seen before, bad
   (one field, "read": four fields cost each claim of the feed four more to parse).
8. A bad item never costs another one: text no encoder takes is repaired by the parser
   (monitor.feeds), and an item that fails all the same is logged and skipped, with the
   rest of its poll and its commit batch going on; a document the parser fails on counts
   as a failed poll (rule 2). Only a Redis error fails a poll under way.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from redis.exceptions import RedisError

from monitor import dedup, logs
from monitor.config import Config, FeedConfig
from monitor.errors import FetchError, PermanentFetchError, RetryableFetchError
from monitor.extract import extract, wall
from monitor.feeds import ParsedFeed, cadence, parse_feed
from monitor.fetch import Fetcher
from monitor.match import Matcher
from monitor.models import Alert, Item, Match
from monitor.page import decode_html
from monitor.store import NewStory, Store, StoryLookup
from monitor.store.archive import ArchivedItem
from monitor.store.commits import Commits

FEED_ACCEPT = ("application/rss+xml, application/atom+xml, application/feed+json, "
               "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5")
MAX_BACKOFF = 24 * 3600.0
ITEMS_AT_ONCE = 16  # items of one poll scraped, matched and committed concurrently
# Inputs up to this size (bytes of a feed or page, characters of an item's text) are
# parsed, extracted and matched on the event loop, which a real page of 300 KB to 1 MB
# holds for 10-30 ms and one built to be slow (tens of thousands of blocks) for about a
# second per MB; 94% of the corpus pages are smaller. Larger inputs go to the CPU
# thread (Poller.__init__).
INLINE_MAX = 512 * 1024
GONE_PAUSE = 365 * 86400.0  # 410 Gone: not polled again unless its URL changes
MAX_KNOWN = 1000  # listed items whose digests are kept per feed (about 28 bytes each)
log = logs.get("monitor.poller")
T = TypeVar("T")


@dataclass(frozen=True)
class Runtime:
    """One loaded config with its compiled matcher; swapped whole on reload."""

    config: Config
    matcher: Matcher
    feeds: dict[str, FeedConfig] = field(default_factory=dict)

    @classmethod
    def build(cls, config: Config, previous: Runtime | None = None) -> Runtime:
        """The runtime of `config`; the `previous` one's matcher is kept when the
        watchlists did not change, since compiling 100k terms takes a second or two."""
        if previous is not None and previous.config.watchlists == config.watchlists:
            matcher = previous.matcher
        else:
            matcher = Matcher(config.watchlists)
        return cls(config, matcher, {f.id: f for f in config.feeds})


@dataclass(frozen=True, slots=True)
class PollResult:
    feed: str
    status: str
    items: int = 0
    new: int = 0
    alerts: int = 0
    error: str | None = None
    old: int = 0  # items published before the max age
    seen: int = 0  # items committed (or listed twice) before
    bad: int = 0  # new items that failed, logged and skipped (rule 8)


def cadence_state(parsed: ParsedFeed, state: Mapping[str, str], new: int,
                  now: float) -> dict[str, str]:
    """What this poll taught about the feed's cadence, as feed-state fields."""
    dates = cadence.dated(parsed.published(), now)
    observed = cadence.Observed.from_state(state).after_poll(new, now)
    return {"dated_n": str(dates.count) if dates else "",
            "dated_oldest": f"{dates.oldest:.0f}" if dates else "",
            "hint": f"{parsed.hint:.0f}" if parsed.hint else "", **observed.state()}


def known_items(value: str) -> dict[str, float | None]:
    """The digests and dates of the items a feed's last poll read, as `known_field` wrote
    them; an entry that does not read as one is left out (its item is parsed again)."""
    known: dict[str, float | None] = {}
    for entry in value.split():
        digest, _, at = entry.partition(":")
        try:
            known[digest] = float(at) if at else None
        except ValueError:
            continue
    return known


def known_field(parsed: ParsedFeed, left: Sequence[Item]) -> str:
    """The items this poll read, as "digest:published" words, but for those `left` unread
    for a later poll; empty when the document's items could not be told apart."""
    if parsed.digests is None or parsed.count > MAX_KNOWN:
        return ""
    unread = {item.id for item in left}
    entries = [(digest, None if item.published is None else item.published.timestamp())
               for digest, item in zip(parsed.digests, parsed.items, strict=True)
               if item.id not in unread]
    return " ".join(f"{digest}:{'' if at is None else f'{at:.0f}'}"
                    for digest, at in [*parsed.skipped, *entries])


def poll_interval(feed: FeedConfig, state: Mapping[str, str], now: float) -> float:
    """Seconds to the feed's next poll from the cadence fields of its state."""
    dates = None
    if state.get("dated_n") and state.get("dated_oldest"):
        dates = cadence.Dated(int(state["dated_n"]), float(state["dated_oldest"]))
    low, high = feed.bounds
    return cadence.next_interval(
        interval=feed.interval, low=low, high=high, adaptive=feed.adaptive, dates=dates,
        observed=cadence.Observed.from_state(state),
        hint=float(state["hint"]) if state.get("hint") else None, now=now)


def alert_key(item_id: str, subscriber: str) -> str:
    """Stable per (item, subscriber): every retry and re-queue carries the same key."""
    return hashlib.sha256(f"{item_id}\0{subscriber}".encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Story:
    id: str
    copy: bool  # a story seen before: this item is one more source of it
    sources: tuple[str, ...]
    similarity: float | None = None
    changed: bool = False  # same page (story URL), text changed substantially
    new: NewStory | None = None  # a story first seen now, registered with the item's commit


def alerts_for(item: Item, matches: Sequence[Match], config: Config, scraped: bool,
               now: datetime, story: Story | None = None,
               alerted: Mapping[str, int] | None = None) -> list[Alert]:
    """One alert per subscriber with at least one of its watchlists matched at its minimum.
    A subscriber the item's story already alerted gets an update only if it asked for one:
    `update_sources` more sources since its last alert, or `update_on_change` and the
    story's text changed."""
    alerted = alerted or {}
    out = []
    for sub in config.subscribers:
        kind = "alert"
        if sub.name in alerted:
            grown = sub.update_sources is not None and story is not None and \
                len(story.sources) >= alerted[sub.name] + sub.update_sources
            changed = sub.update_on_change and story is not None and story.changed
            if not (grown or changed):
                continue
            kind = "update"
        mine = tuple(m for m in matches if m.watchlist in sub.watchlists and m.score >= sub.min_score)
        if mine:
            out.append(Alert(alert_key(item.id, sub.name), sub.name, item, mine, now, scraped,
                             story.id if story else item.id, story.sources if story else (),
                             kind))
    return out


def new_story(item_id: str, url: str, sig: dedup.Signature | None,
              source: dict[str, str], feed: str = "", *, keyed: bool = True) -> Story:
    """The item as a story of its own, under its id: what it is unless Redis knows its
    story, by its story URL or by its text (`sig`, the signature of its text, None when
    too short). `feed`: the id of the item's feed; `keyed`: whether its URL is its own
    (not a link the feed gives several of its items, such as its home page)."""
    new = NewStory(dedup.url_key(url) if keyed else "",
                   tuple(dedup.band_keys(sig)) if sig is not None else (),
                   dedup.to_bytes(sig) if sig is not None else None, source, feed)
    return Story(item_id, False, (url,), new=new)


async def resolve_story(store: Store, item_id: str, url: str, sig: dedup.Signature | None,
                        source: dict[str, str], *, window: int, threshold: float,
                        own: Story | None = None, known: StoryLookup | None = None,
                        feed: str = "") -> Story:
    """The story an item belongs to: a known one by story URL or by text, else `own`, the
    item's `new_story`, which `Store.commit_item` registers with the item. `known`: what
    Redis answered for it already (`Store.commit_new_story`), else it is looked up. A
    story first seen in the item's own `feed` (another item of it, since the item is new)
    is its story only on the stronger evidence of `dedup.same_feed_story`."""
    own = own or new_story(item_id, url, sig, source, feed)
    assert own.new is not None
    key = own.new.url_key
    found, candidates = known or await store.story_candidates(key, own.new.bands, window)
    title = source.get("title", "")
    wanted = ({found} if found else set()) | (candidates if sig is not None else set())
    cards = await store.story_cards(sorted(wanted)) if wanted else {}
    score: float | None = 1.0 if found else None
    changed = False
    if found is not None:
        card = cards.get(found)
        stored = dedup.from_bytes(card.sig) if card and card.sig else None
        if sig is not None and stored is not None:
            score = dedup.similarity(sig, stored)
            changed = score < dedup.CHANGED_BELOW  # the page's text moved on: developing
        if card and feed and card.feed == feed and not dedup.same_feed_story(
                title, card.title, sig, stored, same_url=True):
            # Another item of this feed under this URL: the URL stays the other's.
            candidates = candidates - {found}
            found, score, changed, key = None, None, False, ""
            own = replace(own, new=replace(own.new, url_key=""))
    if found is None and sig is not None:
        best_score, best = 0.0, ""
        for sid, card in cards.items():
            if card.sig is None or sid not in candidates:
                continue
            stored = dedup.from_bytes(card.sig)
            similar = dedup.similarity(sig, stored)
            if (dedup.same_feed_story(title, card.title, sig, stored, same_url=False)
                    if feed and card.feed == feed else similar >= threshold) \
                    and (similar, sid) > (best_score, best):
                best_score, best = similar, sid
        if best:
            found, score = best, best_score
    if found is not None:
        sources = await store.add_source(found, key, source, window)
        return Story(found, True, tuple(s.get("url", "") for s in sources), score, changed)
    return own


def shared_links(items: Sequence[Item]) -> frozenset[str]:
    """The links a document gives to several of its items (distinct ids): a podcast's
    home page for every episode, say. Such a link is no item's own story URL."""
    ids: dict[str, set[str]] = {}
    for item in items:
        if item.url:
            ids.setdefault(item.url, set()).add(item.id)
    return frozenset(url for url, of in ids.items() if len(of) > 1)


def _analyse(matcher: Matcher, title: str, body: str, template: dedup.Template | None,
             ) -> tuple[list[Match], dedup.Signature | None]:
    """An item's watchlist matches and the signature of its text, but for its feed's
    template."""
    return matcher.matches(title, body), dedup.signature(body, template) if body else None


class Poller:
    def __init__(self, store: Store, fetcher: Fetcher, *, max_age: float,
                 scrape_concurrency: int = 8, max_new_items: int = 200,
                 dedup_window: float = 48 * 3600, dedup_threshold: float = 0.5,
                 cpu_threads: int = 1) -> None:
        self.store = store
        self.fetcher = fetcher
        self.max_age = max_age
        self.max_new_items = max_new_items
        self.dedup_window = int(dedup_window)
        self.dedup_threshold = dedup_threshold
        # Items are committed in turn, many to a round trip (monitor.store.commits): an item
        # whose story Redis knows is judged and committed before the items after it, so
        # that two copies of one story polled at once from two feeds do not each find no
        # story yet, or no alert yet, and alert twice. Across instances, the commit
        # scripts decide: a new story is looked up and registered in one step, and an
        # alert is queued only if its subscriber's record on the story is still what was
        # read. Matching and the text's signature are computed before, outside the turn.
        self._commits: Commits[tuple[int, Story]] = Commits(store, self.dedup_window)
        self._scrapes = asyncio.Semaphore(scrape_concurrency)
        self.items_in_flight = 0  # new items of the polls under way, not yet committed
        # Parsing, extraction and matching hold the GIL, so threads add no speed: several
        # handing it to each other cost 15-20% more CPU per item than one, and one thread
        # handing it to the event loop 5-20% more than none (bench/e2e.py). So inputs up
        # to INLINE_MAX run on the loop itself; larger ones go to `cpu_threads` threads
        # (0: the loop too), where a huge page shares time with the polls instead of
        # holding them all up while it is taken apart.
        self._cpu = (ThreadPoolExecutor(cpu_threads, thread_name_prefix="monitor-cpu")
                     if cpu_threads else None)

    async def _compute(self, size: int, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args), on the event loop when its input (`size` bytes or characters) is
        small, else on the CPU thread."""
        if self._cpu is None or size <= INLINE_MAX:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._cpu, fn, *args)

    def close(self) -> None:
        if self._cpu is not None:
            self._cpu.shutdown(wait=False, cancel_futures=True)

    async def poll(self, feed: FeedConfig, runtime: Runtime,
                   state: dict[str, str] | None = None) -> PollResult:
        """Polls `feed`; `state` is its stored state when the caller read it already
        (with the claim), else it is read here."""
        started = time.monotonic()
        if state is None:
            state = await self.store.feed_state(feed.id)
        same_url = state.get("url") == feed.url
        moved = state.get("moved_to") if same_url else None
        try:
            resp = await self.fetcher.get(
                moved or feed.url,
                etag=state.get("etag") if same_url else None,
                last_modified=state.get("last_modified") if same_url else None,
                accept=FEED_ACCEPT,
            )
        except FetchError as exc:
            return await self._failed(feed, state, exc)
        body_hash = hashlib.sha256(resp.body).hexdigest()[:16] if resp.body else ""
        base_state: dict[str, Any] = {
            "url": feed.url, "name": feed.name, "last_poll": self.store.now(), "failures": 0,
            "error": "", "etag": resp.etag or state.get("etag") or "",
            "last_modified": resp.last_modified or state.get("last_modified") or "",
            "body_hash": body_hash or state.get("body_hash") or "",
            "moved_to": resp.moved_to or moved or "",
        }
        if resp.moved_to and resp.moved_to != moved:
            log.warning("feed moved permanently; polling its new URL (update the config)",
                        feed=feed.name, url=feed.url, moved_to=resp.moved_to)
        if resp.not_modified or (body_hash and body_hash == state.get("body_hash") and same_url):
            status = "304" if resp.not_modified else "unchanged"
            interval = poll_interval(feed, state, self.store.now())
            await self._finish(feed, {**base_state, "status": status, "interval": interval},
                               interval, state)
            log.debug("feed not modified", feed=feed.name, status=status)
            return PollResult(feed.name, "not-modified")
        known, template_text = await self.store.feed_memory(feed.id) if same_url else ("", "")
        try:
            parsed = await self._compute(len(resp.body), parse_feed, resp.body, feed.id,
                                         feed.name, feed.url, resp.content_type,
                                         known_items(known))
        except Exception as exc:  # a parser bug: the feed backs off, never stalls (rule 8)
            log.exception("feed could not be parsed", feed=feed.name)
            error = f"parser: {type(exc).__name__}: {exc}"
            return await self._failed(feed, state, PermanentFetchError(error))
        if resp.truncated:
            log.warning("feed body cut at size limit", feed=feed.name, bytes=len(resp.body))
        if parsed.problem and not parsed.items:
            error = f"parser: no items: {parsed.problem}"
            return await self._failed(feed, state, PermanentFetchError(error))
        if parsed.problem:
            log.warning("feed has problems", feed=feed.name, error=parsed.problem,
                        items=len(parsed.items))
        now = self.store.now()
        new_items, old = await self._new_items(parsed, now)
        seen = parsed.count - len(new_items) - old
        template = await self._template(feed, parsed, template_text, now)
        learned = cadence_state(parsed, state, len(new_items), now)
        interval = poll_interval(feed, learned, now)
        left: list[Item] = []
        if len(new_items) > self.max_new_items:
            log.warning("feed has more new items than one poll takes; the rest come next poll",
                        feed=feed.name, new=len(new_items), taken=self.max_new_items)
            new_items, left = new_items[: self.max_new_items], new_items[self.max_new_items:]
            base_state["body_hash"] = ""  # the same body must be read again for the rest
        queued, bad = await self._process_all(feed, new_items, runtime, template,
                                              shared_links(parsed.items))
        await self._finish(feed, {**base_state, **learned, "status": str(resp.status),
                                  "error": parsed.problem or "", "items": parsed.count,
                                  "interval": interval,
                                  "read": f"{len(new_items)} {old} {seen} {bad}"},
                           interval, state, known_field(parsed, left))
        log.info("feed polled", feed=feed.name, items=parsed.count, parsed=len(parsed.items),
                 new=len(new_items), old=old, seen=seen, bad=bad, alerts=queued,
                 duration_ms=round((time.monotonic() - started) * 1000))
        return PollResult(feed.name, "ok", parsed.count, len(new_items), queued, parsed.problem,
                          old, seen, bad)

    async def _template(self, feed: FeedConfig, parsed: ParsedFeed, stored: str,
                        now: float) -> dedup.Template:
        """The feed's template (monitor.dedup rule 4): the one its last polls left, with
        what the items this poll read repeat; kept for the next polls when it changed."""
        before = dedup.Template.from_text(stored) if stored else dedup.EMPTY_TEMPLATE
        texts = [item.summary for item in parsed.items if item.summary]
        if len(texts) < dedup.TEMPLATE_ITEMS and not stored:  # nothing to learn or age
            return before
        template = before.learn(await self._compute(
            sum(map(len, texts)), lambda: [dedup.shingles(t) for t in texts]), int(now // 86400))
        if template != before:
            await self.store.set_feed_template(
                feed.id, template.to_text() if len(template.excluded) else "")
        return template

    async def _process_all(self, feed: FeedConfig, items: Sequence[Item], runtime: Runtime,
                           template: dedup.Template, shared: frozenset[str]) -> tuple[int, int]:
        """Processes a poll's new items, ITEMS_AT_ONCE at a time: the alerts they queued,
        and how many failed. An item that fails but by Redis is logged and skipped, and
        costs no other item anything (rule 8); a Redis error fails the poll, whose items
        the next poll takes again."""
        gate = asyncio.Semaphore(ITEMS_AT_ONCE)
        bad = 0

        async def process(item: Item) -> int:
            nonlocal bad
            async with gate:
                try:
                    return await self._process(feed, item, runtime, template,
                                               keyed=item.url not in shared)
                except RedisError:
                    raise
                except Exception:
                    bad += 1
                    log.exception("item failed; skipped", feed=feed.name,
                                  item=item.url or item.id)
                    return 0

        self.items_in_flight += len(items)
        try:
            queued = sum(await asyncio.gather(*(process(i) for i in items)))
        finally:
            self.items_in_flight -= len(items)
        return queued, bad

    async def _failed(self, feed: FeedConfig, state: dict[str, str],
                      exc: FetchError) -> PollResult:
        failures = int(state.get("failures") or 0) + 1
        if isinstance(exc, PermanentFetchError) and exc.status == 410:
            await self._finish(feed, {"url": feed.url, "name": feed.name, "status": "gone",
                                      "last_poll": self.store.now(), "error": str(exc),
                                      "failures": failures}, GONE_PAUSE, state)
            log.error("feed is gone (HTTP 410): polling stopped; remove it or change its URL",
                      feed=feed.name, url=feed.url)
            return PollResult(feed.name, "gone", error=str(exc))
        delay = min(feed.interval * 2 ** (failures - 1), max(MAX_BACKOFF, feed.interval))
        if isinstance(exc, RetryableFetchError) and exc.delay is not None:
            delay = max(delay, exc.delay)
        await self._finish(feed, {"url": feed.url, "name": feed.name,
                                  "last_poll": self.store.now(), "status": "error",
                                  "error": str(exc), "failures": failures}, delay, state)
        log.warning("feed poll failed", feed=feed.name, error=str(exc), failures=failures,
                    retry_in_s=round(delay))
        return PollResult(feed.name, "error", error=str(exc))

    async def _finish(self, feed: FeedConfig, fields: dict[str, Any], delay: float,
                      previous: Mapping[str, str], known: str | None = None) -> None:
        """Records the poll: the fields that differ from the feed's `previous` state (a
        304 changes three or four of its dozen), the items it read, and the next due time."""
        due = self.store.now() + delay
        await self.store.finish_poll(feed.id, {**fields, "next_poll": due}, due, previous,
                                     known)

    async def _new_items(self, parsed: ParsedFeed, now: float) -> tuple[list[Item], int]:
        """The document's new items (rule 3), and how many of its items, parsed or not,
        were published before the max age."""
        oldest = now - self.max_age
        recent = [i for i in parsed.items
                  if i.published is None or i.published.timestamp() >= oldest]
        fresh = {i.id: i for i in recent}
        old = len(parsed.items) - len(recent) + sum(
            1 for _, at in parsed.skipped if at is not None and at < oldest)
        unseen = await self.store.unseen(list(fresh))
        return [fresh[i] for i in unseen], old

    async def _process(self, feed: FeedConfig, item: Item, runtime: Runtime,
                       template: dedup.Template | None = None, *, keyed: bool = True) -> int:
        title, body, scraped = item.title, item.summary, False
        if feed.scrape and item.url:
            article_text = await self._scrape(feed, item)
            if article_text:
                body, scraped = article_text, True
        # CPU work first, outside the commits' turn (monitor.store.commits).
        found, sig = await self._compute(len(title) + len(body), _analyse, runtime.matcher,
                                         title, body, template)
        matches = [m for m in found if feed.watchlists is None or m.watchlist in feed.watchlists]
        source = {"feed": feed.name, "url": item.url, "title": item.title}
        story = new_story(item.id, item.url, sig, source, feed.id, keyed=keyed)
        assert story.new is not None
        now = datetime.now(UTC)

        async def judge(known: StoryLookup) -> tuple[int, Story]:
            """Commits the item as a copy of the story Redis knows, or as its own if the
            story found is not it after all."""
            judged = await resolve_story(self.store, item.id, item.url, sig, source,
                                         window=self.dedup_window,
                                         threshold=self.dedup_threshold, own=story,
                                         known=known, feed=feed.id)
            alerted = await self.store.story_alerted(judged.id) if judged.copy else {}
            alerts = alerts_for(item, matches, runtime.config, scraped, now, judged, alerted)
            return await self.store.commit_item(item.id, alerts, judged.id, self.dedup_window,
                                                len(judged.sources), judged.new,
                                                alerted), judged

        # Most items are stories of their own: they are committed as such, unless Redis
        # knows the story; then it is judged.
        committed = await self._commits.commit(
            item.id, alerts_for(item, matches, runtime.config, scraped, now, story),
            story.new, judge)
        queued, story = (committed, story) if isinstance(committed, int) else committed
        if queued >= 0:  # committed now, not seen before: kept for backtests
            await self.store.archive.add(ArchivedItem(
                item.id, feed.id, feed.name, title, body, item.url, item.language,
                item.published.timestamp() if item.published else None, scraped))
        if story.copy:
            log.info("copy of a known story", feed=feed.name, item=item.url or item.id,
                     story=story.id, sources=len(story.sources), similarity=story.similarity,
                     alerts=max(queued, 0))
        if matches:
            log.info("item matched", feed=feed.name, item=item.url or item.id,
                     watchlist=[m.watchlist for m in matches], alerts=max(queued, 0),
                     scraped=scraped)
        return max(queued, 0)

    async def _scrape(self, feed: FeedConfig, item: Item) -> str:
        async with self._scrapes:
            try:
                resp = await self.fetcher.get(item.url, accept="text/html,*/*;q=0.8",
                                              public_only=True)
            except FetchError as exc:
                log.warning("scrape failed; matching feed title and summary", feed=feed.name,
                            item=item.url, error=str(exc))
                return ""
        html = decode_html(resp.body, resp.charset)
        article = await self._compute(len(resp.body), extract, html, resp.url)
        if not article.text:
            # Only a wall (JavaScript, consent, bot check, redirect) means the source blocks
            # scraping: counted per feed for `monitor feeds`. A page of text where the
            # extractor found no article is the extractor's miss, logged as such.
            blocked = await self._compute(len(resp.body), wall, html)
            if blocked:
                await self.store.count_no_article(feed.id)
                log.warning("scrape found no article text: the page is a wall; matching feed "
                            "title and summary", feed=feed.name, item=item.url, wall=blocked)
            else:
                log.warning("scrape found no article text: the extractor found none in the "
                            "page; matching feed title and summary", feed=feed.name,
                            item=item.url)
        return article.text
