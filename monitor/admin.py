"""Operator commands over the shared state: alert queues, dead letters, feed states.

Every URL they show is redacted (monitor.urls), errors recorded by older versions too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from monitor import dedup
from monitor.circuits import Circuit
from monitor.config import Config
from monitor.store import WAITING_CONSUMER, Store, waiting_consumer
from monitor.urls import canonical_url, redact, redact_text

LIST_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    subscriber: str
    watchlists: tuple[str, ...]
    title: str
    attempts: int
    failed_at: float
    error: str


def _dead(entry_id: str, fields: dict[str, str]) -> DeadLetter:
    try:
        alert = json.loads(fields.get("alert", ""))
    except ValueError:
        alert = {}
    matches = alert.get("matches") or []
    return DeadLetter(
        id=entry_id,
        subscriber=str(alert.get("subscriber", "?")),
        watchlists=tuple(str(m.get("watchlist")) for m in matches if isinstance(m, dict)),
        title=str((alert.get("item") or {}).get("title", "")),
        attempts=int(fields.get("attempts") or 0),
        failed_at=float(fields.get("failed_at") or 0),
        error=redact_text(fields.get("error", "")),
    )


async def alerts_report(store: Store) -> dict[str, Any]:
    summary = await store.summary()
    pending = [p for p in await store.pending(LIST_LIMIT)
               if not p.consumer.startswith(WAITING_CONSUMER)]
    errors = await store.last_errors([p.id for p in pending])
    failing = [
        {"id": p.id, "consumer": p.consumer, "deliveries": p.deliveries,
         "attempts": e.get("attempts"), "idle_s": round(p.idle_seconds, 1),
         "last_error": redact_text(e.get("error") or "")}
        for p, e in zip(pending, errors, strict=True) if e
    ]
    dead = [asdict(_dead(i, f)) for i, f in await store.dead_letters(LIST_LIMIT)]
    counts = await store.pending_counts()
    down = [Circuit.from_json(cid, raw) for cid, raw in sorted((await store.circuits()).items())]
    # Waiting for an endpoint that is up: a busy one (monitor.worker rule 5), or one
    # whose circuit closed a moment ago.
    for_room = sum(n for name, n in counts.items() if name.startswith(WAITING_CONSUMER)) \
        - sum(counts.get(waiting_consumer(c.id), 0) for c in down)
    return {**asdict(summary), "endpoints_down": _endpoints_down(down, counts, store.now()),
            "waiting_for_room": for_room, "failing": failing, "dead_letters": dead}


def _endpoints_down(down: list[Circuit], counts: dict[str, int],
                    now: float) -> list[dict[str, Any]]:
    """The open circuits (monitor.circuits): since when, the last error, what waits."""
    return [{"endpoint": c.id, "subscriber": c.label, "since": c.since,
             "down_s": round(max(0.0, now - c.since), 1), "probes_failed": c.probes,
             "next_probe_in_s": round(max(0.0, c.next_probe - now), 1),
             "waiting": counts.get(waiting_consumer(c.id), 0),
             "last_error": redact_text(c.error)}
            for c in down]


def format_alerts(report: dict[str, Any]) -> str:
    def age(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds:,.0f}s"

    lines = [
        f"queued: {report['queued']} (pending delivery: {report['pending']}, "
        f"oldest: {age(report['oldest_age'])})",
        f"dead:   {report['dead']} (oldest: {age(report['oldest_dead_age'])})",
    ]
    if report["endpoints_down"]:
        lines.append("\nendpoints down (their alerts wait; one probe at a time):")
        for e in report["endpoints_down"]:
            since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["since"]))
            lines.append(f"  {e['endpoint']} ({e['subscriber']}): down since {since}Z "
                         f"({_duration(e['down_s'])}), {e['waiting']} waiting, "
                         f"{e['probes_failed']} probes failed, next in "
                         f"{e['next_probe_in_s']:g}s: {e['last_error']}")
    if report["waiting_for_room"]:
        lines.append(f"\nwaiting for a busy endpoint: {report['waiting_for_room']}")
    if report["failing"]:
        lines.append("\nretrying:")
        lines += [f"  {f['id']}  tries {f['attempts']}  idle {f['idle_s']}s  {f['last_error']}"
                  for f in report["failing"]]
    if report["dead_letters"]:
        lines.append("\ndead letters (monitor alerts replay --id ID | --subscriber S | "
                     "--watchlist W | --all):")
        for d in report["dead_letters"]:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(d["failed_at"]))
            lines.append(f"  {d['id']}  {d['subscriber']}  [{', '.join(d['watchlists'])}]  "
                         f"{d['attempts']} attempts, {when}Z: {d['error']}  | {d['title'][:60]}")
    return "\n".join(lines)


async def replay(store: Store, *, ids: Sequence[str] = (), subscriber: str | None = None,
                 watchlist: str | None = None, everything: bool = False) -> list[str]:
    """Re-queues the dead letters that match every given filter; returns their ids."""
    if not (everything or ids or subscriber or watchlist):
        return []  # no filter is not "everything": that takes --all
    chosen = []
    for entry_id, fields in await store.dead_letters(count=100_000):
        dead = _dead(entry_id, fields)
        if ids and entry_id not in ids:
            continue
        if subscriber and dead.subscriber != subscriber:
            continue
        if watchlist and watchlist not in dead.watchlists:
            continue
        if await store.replay(entry_id):
            chosen.append(entry_id)
    return chosen


async def feeds_report(store: Store, config: Config) -> list[dict[str, Any]]:
    states = await store.all_feed_states([f.id for f in config.feeds])
    now = store.now()
    rows = []
    for feed, state in zip(config.feeds, states, strict=True):
        next_poll = float(state["next_poll"]) if state.get("next_poll") else None
        last_poll = float(state["last_poll"]) if state.get("last_poll") else None
        rows.append({
            "name": feed.name, "url": redact(feed.url),
            "status": state.get("status") or "never polled",
            "failures": int(state.get("failures") or 0), "items": int(state.get("items") or 0),
            "last_poll_ago_s": None if last_poll is None else round(now - last_poll),
            "next_poll_in_s": None if next_poll is None else round(next_poll - now),
            "error": redact_text(state.get("error") or ""),
            "pages_without_article": int(state.get("no_article") or 0),
            "interval_s": round(float(state["interval"])) if state.get("interval")
            else round(feed.interval),
            "feed_hint_s": round(float(state["hint"])) if state.get("hint") else None,
            # The last poll that read the document: what it took, and what it skipped.
            **_read_counts(state.get("read", "")),
        })
    return rows


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size < size / 10:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _read_counts(field: str) -> dict[str, int | None]:
    """The counts of a feed state's "read" field (monitor.poller rule 7), None for each
    when there is none."""
    values = field.split()
    counts = [int(v) for v in values] if len(values) == 4 and all(map(str.isdigit, values)) \
        else [None] * 4
    return dict(zip(("new", "old", "seen", "bad"), counts, strict=True))


def _read(row: dict[str, Any]) -> str:
    """What the feed's last reading poll did with its items: " (2 new, 18 older than the
    max age, 30 seen before)"; "" before any."""
    if row.get("new") is None:
        return ""
    parts = [f"{row['new']} new"]
    if row.get("old"):
        parts.append(f"{row['old']} older than the max age")
    if row.get("seen"):
        parts.append(f"{row['seen']} seen before")
    if row.get("bad"):
        parts.append(f"{row['bad']} failed (see the log)")
    return f" ({', '.join(parts)})"


def format_feeds(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        last = "never" if r["last_poll_ago_s"] is None else f"{r['last_poll_ago_s']}s ago"
        nxt = "now" if r["next_poll_in_s"] is None else f"in {max(r['next_poll_in_s'], 0)}s"
        fails = f", {r['failures']} failures" if r["failures"] else ""
        if r["pages_without_article"]:
            fails += f", {r['pages_without_article']} pages behind a wall (scraping blocked)"
        every = f"every {_duration(r['interval_s'])}"
        if r["feed_hint_s"]:
            every += f" (feed asks {_duration(r['feed_hint_s'])})"
        lines.append(f"{r['name']}: {r['status']}{fails}, {r['items']} items{_read(r)}, "
                     f"polled {last}, next {nxt}, {every}"
                     + (f"\n    error: {r['error']}" if r["error"] else ""))
    return "\n".join(lines)


async def story_report(store: Store, url: str) -> dict[str, Any] | None:
    """The story an article URL belongs to: its sources and whom it alerted. A URL with a
    fragment is looked up with it first (an anchor post: monitor.feeds.item_urls)."""
    story_id = None
    for keep in (True, False):
        story_id = story_id or await store.story_by_url(
            dedup.url_key(canonical_url(url, fragment=keep)))
    if story_id is None:
        return None
    info = await store.story_info(story_id)
    info["url"] = redact(info["url"])
    for source in info["sources"]:
        if isinstance(source, dict) and isinstance(source.get("url"), str):
            source["url"] = redact(source["url"])
    info["alerted"] = await store.story_alerted(story_id)
    return info


def format_story(info: dict[str, Any]) -> str:
    first = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(info["first_seen"])) \
        if info["first_seen"] else "?"
    lines = [f"story {info['id']}: {info['title']}", f"first seen {first}Z at {info['url']}",
             f"{len(info['sources'])} sources:"]
    lines += [f"  {s.get('feed', '?')}: {s.get('url', '')}  | {s.get('title', '')[:70]}"
              for s in info["sources"]]
    alerted = ", ".join(f"{sub} (at {n} sources)" for sub, n in info["alerted"].items())
    lines.append(f"alerted: {alerted or 'nobody'}")
    return "\n".join(lines)
