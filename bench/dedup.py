"""Same-story decisions on a labelled set built from the real corpus: precision, recall,
lookups per second, and Redis memory per stored story.

Labelled set: every corpus article (bench/corpus-style: the seed and each page with
text) appears first under its own URL; then come its copies, shuffled: the same article
as another template sets it (its published ground truth text, where it has one),
re-titled under a syndicator's URL, cut to its first half, and its own URL with `www.`,
tracking parameters and an AMP path. Distinct articles must stay apart, among them two
Arabic news stories from the region (the corpus holds one Libya article, the seed; the
other is CNN Arabic on Syria). Decisions go through
monitor.poller.resolve_story against a real (embedded) Redis, and new stories are
registered by Store.commit_item, as in the daemon.

Precision: of the items merged into an earlier story, the share merged into the right
one. Recall: of the copies, the share merged into their story.

Run: python bench/dedup.py
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.extract import cases  # noqa: E402
from monitor import dedup  # noqa: E402
from monitor.embedded import EmbeddedRedis  # noqa: E402
from monitor.extract import extract, extract_text  # noqa: E402
from monitor.poller import resolve_story  # noqa: E402
from monitor.store import DEFAULT_STORY_WINDOW, Store  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
THRESHOLD = 0.5


@dataclass(frozen=True)
class Doc:
    story: str  # the true story
    url: str
    title: str
    text: str
    kind: str


def labelled() -> list[Doc]:
    seed = extract_text((ROOT / "seeds" / "000_5789ac1c2e1f81f5.txt").read_text("utf-8"))
    originals: list[tuple[str, str, str, str | None]] = [("seed", seed.title, seed.text, None)]
    for stem, page, truth in cases():
        article = extract(page)
        if article.text:
            originals.append((stem, article.title, article.text, truth))
    firsts, copies = [], []
    for i, (story, title, text, truth) in enumerate(originals):
        url = f"https://www.site{i}.example/news/{story}"
        firsts.append(Doc(story, url, title, text, "first"))
        lines = text.splitlines()
        copies.append(Doc(story, f"https://wire.example/{i}", "Re: " + title, text, "retitled"))
        copies.append(Doc(story, f"https://regional.example/{i}", title,
                          "\n".join(lines[: max(1, len(lines) // 2)]), "trimmed"))
        copies.append(Doc(story, f"https://site{i}.example/news/{story}/amp/?utm_source=tw",
                          title, "", "url-variant"))
        if truth:
            copies.append(Doc(story, f"https://mirror.example/{i}", title, truth, "template"))
    random.Random(7).shuffle(copies)
    return firsts + copies


async def run() -> None:
    docs = labelled()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp))
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(server.url, decode_responses=True)
        store = Store(client, prefix="bench")
        merged = correct = copies = found = 0
        by_kind: dict[str, list[int]] = {}
        started = time.perf_counter()
        for n, doc in enumerate(docs):
            sig = dedup.signature(doc.text) if doc.text else None
            item_id = f"{doc.story}#{n}"
            story = await resolve_story(store, item_id, doc.url, sig,
                                        {"url": doc.url, "title": doc.title},
                                        window=DEFAULT_STORY_WINDOW, threshold=THRESHOLD)
            if story.new is not None:  # registered with the item, as the poller does
                await store.commit_item(item_id, [], story.id, DEFAULT_STORY_WINDOW, 1, story.new)
            truth = story.id.split("#")[0]
            is_copy = doc.kind != "first"
            copies += is_copy
            if story.copy:
                merged += 1
                correct += truth == doc.story
                if truth != doc.story:
                    print(f"  wrong merge: {doc.kind} of {doc.story} into {truth} "
                          f"(similarity {story.similarity})")
            if is_copy:
                hit = int(story.copy and truth == doc.story)
                found += hit
                by_kind.setdefault(doc.kind, []).append(hit)
        seconds = time.perf_counter() - started
        keys = [k async for k in client.scan_iter("{bench}:story:*")]
        memory = sum([await client.memory_usage(k) or 0 for k in keys])
        ttls = [await client.ttl(k) for k in keys]
        stories = len(docs) - merged
        await client.aclose()
        server.stop()
    precision = correct / merged if merged else 1.0
    recall = found / copies
    print(f"{len(docs)} items: {len(docs) - copies} distinct articles, {copies} copies")
    print(f"precision {precision:.3f} ({correct}/{merged} merges right)   "
          f"recall {recall:.3f} ({found}/{copies} copies found)")
    for kind, hits in sorted(by_kind.items()):
        print(f"  {kind:<12} recall {sum(hits) / len(hits):.3f} ({sum(hits)}/{len(hits)})")
    print(f"lookups: {len(docs) / seconds:.0f}/s (signature + Redis round trips, one at a time)")
    print(f"redis: {memory / max(1, stories):.0f} bytes per story ({stories} stories, "
          f"{len(keys)} keys), every key expiring within {max(ttls)} s "
          f"(window {DEFAULT_STORY_WINDOW} s)")


if __name__ == "__main__":
    asyncio.run(run())
