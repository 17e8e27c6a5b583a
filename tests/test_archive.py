"""The archive of recent items keeps to its budget under a flood, oldest out first, and
reads back what was written (issue 27, point 1)."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import redis.asyncio as aioredis

from monitor.extract import extract
from monitor.store import Store
from monitor.store.archive import ArchivedItem
from tests.conftest import DATA

BUDGET = 1024 * 1024
MARGIN = 64 * 1024  # the byte count, the script cache, a partly emptied stream node


def corpus_texts() -> list[tuple[str, str]]:
    out = []
    for path in sorted((DATA / "pages").iterdir()):
        article = extract(path.read_bytes(), None)
        if article.text:
            out.append((article.title, article.text))
    return out


async def test_a_flood_keeps_the_newest_items_within_the_budget(aredis: aioredis.Redis) -> None:
    base = (await aredis.info("memory"))["used_memory"]
    store = Store(aredis, archive_max_bytes=BUDGET)
    texts, rnd = corpus_texts(), random.Random(7)
    flood = 1500
    for start in range(0, flood, 50):
        batch = []
        for n in range(start, start + 50):
            title, text = texts[n % len(texts)]
            words = text.split()
            cut = rnd.randrange(len(words))
            batch.append(ArchivedItem(f"id-{n}", "feed", "Feed", title,
                                      " ".join(words[cut:] + words[:cut]), f"http://x/{n}"))
        await asyncio.gather(*(store.archive.add(item) for item in batch))
    entries, counted = await store.archive.stats()
    used = (await aredis.info("memory"))["used_memory"] - base
    assert 0 < entries < flood and counted <= BUDGET
    assert used <= BUDGET + MARGIN, (used, counted, entries)
    kept = [item.id async for item in store.archive.items()]
    assert kept == [f"id-{n}" for n in range(flood - entries, flood)]  # the oldest went


async def test_items_read_back_as_written_and_since_filters(aredis: aioredis.Redis) -> None:
    store = Store(aredis)
    item = ArchivedItem("i1", "f1", "BBC Arabic", "حفتر في سرت", "نص المقال " * 50,
                        "https://example.org/a?x=1", "ar", 1.7e9, True)
    await store.archive.add(item)
    (back,) = [i async for i in store.archive.items()]
    assert back.archived > 0
    assert back == dataclasses.replace(item, archived=back.archived)
    assert [i async for i in store.archive.items(since=back.archived + 1)] == []
    assert await aredis.ttl(store.keys.archive) > 13 * 86400


async def test_no_budget_no_archive(aredis: aioredis.Redis) -> None:
    store = Store(aredis, archive_max_bytes=0)
    await store.archive.add(ArchivedItem("i", "f", "F", "t", "x", "http://x/"))
    assert await aredis.exists(store.keys.archive) == 0
