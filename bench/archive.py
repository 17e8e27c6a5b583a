"""Bytes per archived item (monitor.store.archive) on the corpus: every item of every
corpus feed (tests/data/feeds) with its feed's title and summary, and every corpus page
(tests/data/pages) with its extracted article text, as the poller archives them; each
figure both as the archive counts it against MONITOR_ARCHIVE_MAX_MB and as Redis's
used_memory grows, beside the raw JSON.

Run: python bench/archive.py
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.config import FeedConfig  # noqa: E402
from monitor.extract import extract  # noqa: E402
from monitor.feeds import parse_feed  # noqa: E402
from monitor.store import Store  # noqa: E402
from monitor.store.archive import ArchivedItem  # noqa: E402
from tests.servers import RedisServer  # noqa: E402

DATA = ROOT / "tests" / "data"


def feed_items() -> list[ArchivedItem]:
    out = []
    for path in sorted((DATA / "feeds").iterdir()):
        url = f"https://example.org/{path.name}"
        feed = FeedConfig(url=url)
        for item in parse_feed(path.read_bytes(), feed.id, path.name, url).items:
            out.append(ArchivedItem(item.id, feed.id, path.name, item.title, item.summary,
                                    item.url, item.language,
                                    item.published.timestamp() if item.published else None))
    return out


def page_items() -> list[ArchivedItem]:
    out = []
    for path in sorted((DATA / "pages").iterdir()):
        article = extract(path.read_bytes(), None)
        out.append(ArchivedItem(path.name, "pages", "pages", article.title, article.text,
                                f"https://example.org/{path.name}", article.language,
                                None, True))
    return out


async def measure(client: aioredis.Redis, name: str, items: list[ArchivedItem]) -> None:
    await client.flushall()
    base = (await client.info("memory"))["used_memory"]
    store = Store(client)
    for start in range(0, len(items), 64):
        await asyncio.gather(*(store.archive.add(i) for i in items[start:start + 64]))
    entries, counted = await store.archive.stats()
    used = (await client.info("memory"))["used_memory"] - base
    raw = sum(len(json.dumps([i.title, i.text, i.link], ensure_ascii=False).encode())
              for i in items)
    print(f"{name:>6}: {entries:,} items, raw JSON {raw / entries:,.0f} B/item, "
          f"counted {counted / entries:,.0f} B/item, used_memory {used / entries:,.0f} B/item "
          f"({used / raw:.0%} of raw)")


async def main() -> None:
    server = RedisServer(Path(tempfile.mkdtemp())).start()
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    try:
        await measure(client, "feeds", feed_items())
        await measure(client, "pages", page_items())
    finally:
        await client.aclose()
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
