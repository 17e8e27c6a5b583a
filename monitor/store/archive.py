"""The archive of recent items: what each new item said, kept compressed for backtests.

Rules:
1. Every item the poller commits as new is archived once, after its commit: title, the
   text that was matched (the article's, or the feed's summary), link, feed, language,
   publication time and whether the page was scraped, as JSON compressed with zlib in one
   entry of a Redis stream (`Keys.archive`), whose id is the time it was archived.
2. The archive keeps items for its TTL (MONITOR_ARCHIVE_DAYS) and within its budget
   (MONITOR_ARCHIVE_MAX_MB): each write takes the oldest entries off first while they are
   too old or the archive is over budget (scripts.ARCHIVE_ADD). The budget counts each
   entry's compressed bytes and ENTRY_OVERHEAD, Redis's own cost of an entry.
3. The archive is evidence for the operator, not part of alerting: a failed write is
   logged and never fails the item, its poll or its alerts.
4. Writes of the items committed together go in one script call (the first waits a turn
   of the event loop for the others), as commits and poll outcomes do.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from redis.client import NEVER_DECODE

from monitor import logs
from monitor.store.keys import DEFAULT_ARCHIVE_MAX_BYTES, DEFAULT_ARCHIVE_TTL, Keys
from monitor.store.scripts import ARCHIVE_ADD

# Bytes Redis spends on a stream entry besides its value: the entry's fields in the
# listpack (id delta, flags, field name, lengths) and its share of the radix tree and
# listpack headers. Measured with used_memory: 2,843 bytes an entry of corpus article text
# whose blob is 2,752 (91 more), 489 an entry of a 40-word text counted 464 + 48, so 96
# keeps the count at or above what Redis spends (tests/test_archive.py holds it).
ENTRY_OVERHEAD = 96
ZLIB_LEVEL = 6  # level 9 saves under 1% more on article text, at twice the CPU
READ_BATCH = 500  # entries per XRANGE when reading the archive back
MAX_BATCH = 64  # items per script call
log = logs.get("monitor.store.archive")


@dataclass(frozen=True, slots=True)
class ArchivedItem:
    id: str
    feed_id: str
    feed: str
    title: str
    text: str
    link: str
    language: str | None = None
    published: float | None = None  # unix time
    scraped: bool = False
    archived: float = 0.0  # unix time, from the entry's id; not stored in the blob

    def pack(self) -> bytes:
        fields = asdict(self)
        del fields["archived"]
        return zlib.compress(json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
                             .encode("utf-8"), ZLIB_LEVEL)

    @classmethod
    def unpack(cls, blob: bytes, archived: float = 0.0) -> ArchivedItem:
        fields: dict[str, Any] = json.loads(zlib.decompress(blob))
        return cls(**fields, archived=archived)

    @property
    def published_at(self) -> datetime | None:
        return None if self.published is None else datetime.fromtimestamp(self.published, UTC)


class Archive:
    """Writes and reads the archive stream of one deployment."""

    def __init__(self, client: Any, keys: Keys, *, ttl: int = DEFAULT_ARCHIVE_TTL,
                 max_bytes: int = DEFAULT_ARCHIVE_MAX_BYTES) -> None:
        self.redis = client
        self.keys = keys
        self.ttl = max(1, int(ttl))
        self.max_bytes = max(0, int(max_bytes))
        self._script = client.register_script(ARCHIVE_ADD)
        self._queue: list[tuple[bytes, asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def add(self, item: ArchivedItem) -> None:
        """Archives `item` with the others added at the same time; never raises (rule 3)."""
        if not self.max_bytes:  # MONITOR_ARCHIVE_MAX_MB=0: no archive
            return
        try:
            blob = item.pack()
        except Exception:
            log.exception("item not archived: cannot encode it", feed=item.feed, item=item.link)
            return
        if len(blob) + ENTRY_OVERHEAD > self.max_bytes:
            log.warning("item not archived: larger than the whole budget", feed=item.feed,
                        item=item.link, bytes=len(blob))
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((blob, done))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # the items committed with this one join it (rule 4)
            while self._queue:
                batch = self._queue[:MAX_BATCH]
                del self._queue[:MAX_BATCH]
                try:
                    await self.write([blob for blob, _ in batch])
                except Exception as exc:  # rule 3
                    log.warning("items not archived", error=str(exc), items=len(batch))
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)
        finally:
            self._flushing = None
            for _, done in self._queue:  # cancelled under way: no one is left to wait
                if not done.done():
                    done.set_result(None)

    async def write(self, blobs: Sequence[bytes]) -> tuple[int, int, int]:
        """Appends packed items and trims (rule 2): (added, dropped, bytes counted)."""
        added, dropped, counted = await self._script(
            keys=[self.keys.archive, self.keys.archive_bytes],
            args=[self.max_bytes, self.ttl, ENTRY_OVERHEAD, *blobs])
        return int(added), int(dropped), int(counted)

    async def items(self, since: float = 0.0) -> AsyncIterator[ArchivedItem]:
        """The archived items archived at or after unix time `since`, oldest first; an
        entry that cannot be read (written by a newer version?) is skipped and logged."""
        start = f"{max(0, int(since * 1000))}-0"
        while True:
            rows = await self.redis.execute_command(
                "XRANGE", self.keys.archive, start, "+", "COUNT", READ_BATCH,
                **{NEVER_DECODE: True})
            for entry_id, fields in rows:
                entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                archived = int(entry.split("-")[0]) / 1000
                try:
                    yield ArchivedItem.unpack(fields[b"z"], archived)
                except Exception as exc:
                    log.warning("archived item unreadable; skipped", entry=entry, error=str(exc))
            if len(rows) < READ_BATCH:
                return
            last = rows[-1][0].decode()
            ms, seq = last.split("-")
            start = f"{ms}-{int(seq) + 1}"

    async def stats(self) -> tuple[int, int]:
        """(entries, bytes counted against the budget)."""
        length = await self.redis.xlen(self.keys.archive)
        counted = await self.redis.get(self.keys.archive_bytes)
        return int(length), int(counted or 0)
