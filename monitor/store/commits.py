"""Commits the new items of every poll under way in turn, many to a Redis round trip.

Rules:
1. Items are committed in the order they are handed in, one batch at a time: the first
   one handed in starts a batch on the next turn of the event loop, and the items handed
   in while a batch is in Redis go in the next one (at most MAX_BATCH), so under load the
   batches grow by themselves and alone an item waits no longer than its own commit.
2. An item is committed as a story of its own unless Redis knows its story (by URL or by
   text: `Store.commit_new_stories`). Then it is judged (`judge`: compared with the
   stories found, and committed as a copy or as a story of its own) before any item after
   it is committed, since one of those may be a copy of it; the batch's items after it go
   first in the next one.
3. Within one process this turn-taking replaces a lock held for an item's round trips:
   with it, items of the polls under way waited for their turn in queues of 40 to 150
   (bench/e2e.py), and each paid for a script call of its own. Across instances the
   scripts decide (monitor.store.scripts).
4. An item whose batch fails gets the error, and so does an item whose own keys Redis
   refused or whose alerts cannot be written at all (text no encoder takes): the others
   of its batch are committed. Its poll skips it (monitor.poller rule 8), or on a Redis
   error fails, and if Redis did not commit it, the next poll takes it again. An item
   whose waiter went away before its batch was sent is not committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from monitor.models import Alert
from monitor.store import NewStory, Store, StoryLookup

R = TypeVar("R")
MAX_BATCH = 32  # items per script call: bounds how long one call holds Redis (~10 ms)


@dataclass(slots=True)
class _Entry(Generic[R]):
    item_id: str
    alerts: Sequence[Alert]
    story: NewStory
    judge: Callable[[StoryLookup], Awaitable[R]]
    done: asyncio.Future[int | R]


class Commits(Generic[R]):
    def __init__(self, store: Store, window: int) -> None:
        self.store = store
        self.window = window
        self._queue: list[_Entry[R]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def commit(self, item_id: str, alerts: Sequence[Alert], story: NewStory,
                     judge: Callable[[StoryLookup], Awaitable[R]]) -> int | R:
        """The alerts queued (-1 if the item was seen already) when the item was committed
        as the story of its own `story` describes, else what `judge` returned, given
        what Redis knows of its story."""
        done: asyncio.Future[int | R] = asyncio.get_running_loop().create_future()
        self._queue.append(_Entry(item_id, alerts, story, judge, done))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        batch: list[_Entry[R]] = []
        try:
            while self._queue:
                batch = [e for e in self._queue[:MAX_BATCH] if not e.done.done()]
                del self._queue[:MAX_BATCH]
                if batch:
                    tried = await self._commit(batch)
                    self._queue[:0] = batch[tried:]
                batch = []
        except BaseException as exc:  # the loop is going away (or a bug): no one waits on
            for entry in [*batch, *self._queue]:
                if isinstance(exc, Exception):
                    _fail(entry.done, exc)
                else:
                    entry.done.cancel()
            self._queue.clear()
            raise
        finally:
            self._flushing = None

    async def _commit(self, batch: list[_Entry[R]]) -> int:
        """Commits `batch` up to its first item that needs judging, judges that one, and
        returns how many were tried (rule 2)."""
        try:
            replies = await self.store.commit_new_stories(
                [(e.item_id, e.alerts, e.story) for e in batch], self.window)
        except Exception as exc:  # every item of the batch sees it
            for entry in batch:
                _fail(entry.done, exc)
            return len(batch)
        for entry, reply in zip(batch, replies, strict=False):
            if isinstance(reply, Exception):  # this item's keys only (rule 4)
                _fail(entry.done, reply)
                continue
            if not isinstance(reply, StoryLookup):
                _settle(entry.done, reply)
                continue
            try:
                _settle(entry.done, await entry.judge(reply))
            except Exception as exc:
                _fail(entry.done, exc)
        return len(replies)


def _settle(done: asyncio.Future[R], result: R) -> None:
    """Hands the waiter its result, unless it went away."""
    if not done.done():
        done.set_result(result)


def _fail(done: asyncio.Future[R], error: Exception) -> None:
    if not done.done():
        done.set_exception(error)
