"""Real text for the benchmarks: the seed, the corpus feeds' items, the corpus pages' text."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from monitor.extract import extract, extract_text
from monitor.feeds import parse_feed

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SEED = ROOT / "seeds" / "000_5789ac1c2e1f81f5.txt"


def documents() -> Iterator[tuple[str, str]]:
    """(title, body) pairs, as the matcher sees them in the daemon."""
    seed = extract_text(SEED.read_text("utf-8"))
    yield seed.title, seed.text
    for path in sorted((DATA / "feeds").iterdir()):
        for item in parse_feed(path.read_bytes(), "f", "f", "https://example.org/").items:
            if item.title or item.summary:
                yield item.title, item.summary
    for path in sorted((DATA / "pages").glob("*.html")):
        article = extract(path.read_bytes())
        if article.text:
            yield article.title, article.text


def size(docs: list[tuple[str, str]]) -> int:
    return sum(len(t.encode()) + len(b.encode()) for t, b in docs)
