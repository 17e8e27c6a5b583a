"""The corpus feeds (tests/data/feeds, copied from ../shared/corpus/feeds) served on loopback
to `monitor run --once`, each with a watchlist that catches every item it holds, one
webhook per feed and one shared by all: what issue 23 ran, for the test and the bench."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from monitor.config import FeedConfig, WatchlistConfig
from monitor.feeds import parse_feed
from monitor.match import Matcher
from tests.servers import HTTPServer, Request, Route

DATA = Path(__file__).resolve().parent / "data" / "feeds"
MAX_NEW_ITEMS = 200  # the daemon's default: items taken from one feed per poll
_WORD = re.compile(r"\w+")
_TYPES = {".json": "application/feed+json", ".atom": "application/atom+xml",
          ".rss": "application/rss+xml"}


@dataclass(frozen=True)
class Corpus:
    """The feeds as served, and what a run over them should deliver."""

    feeds: tuple[tuple[str, str], ...]  # (file name, URL)
    matching_items: int  # items a catch-all watchlist matches, at most MAX_NEW_ITEMS a feed


def _terms(title: str, summary: str) -> list[str]:
    """Words of an item's text that a watchlist can name: each item's first few."""
    return _WORD.findall(title)[:3] + _WORD.findall(summary)[:3]


def catch_all(name: str, path: Path, url: str) -> tuple[WatchlistConfig | None, int]:
    """A watchlist that every item of the feed at `path` matches (an item without a word
    of text matches none), and how many of the items the first poll takes it matches."""
    items = parse_feed(path.read_bytes(), FeedConfig(url=url).id, name, url).items
    terms = sorted({t for item in items for t in _terms(item.title, item.summary)})
    if not terms:
        return None, 0
    wl = WatchlistConfig(name=name, keywords=terms)  # type: ignore[arg-type]
    matcher = Matcher((wl,))
    matched = sum(1 for item in items[:MAX_NEW_ITEMS] if matcher.matches(item.title, item.summary))
    return wl, matched


def serve(server: HTTPServer, limit: int | None = None) -> list[tuple[str, str]]:
    """Each corpus feed (the first `limit`) at /feeds/<file name>, with a content type
    for its kind (XML files declare their own charset)."""
    feeds = []
    for path in sorted(DATA.iterdir())[:limit]:
        body = path.read_bytes()
        kind = _TYPES.get(path.suffix, "application/xml")
        server.routes[f"/feeds/{path.name}"] = Route(200, body, {"Content-Type": kind})
        feeds.append((path.name, server.url(f"/feeds/{path.name}")))
    return feeds


def hook_route(server: HTTPServer, path: str) -> None:
    server.routes[path] = Route(204)


def write_config(config: Path, server: HTTPServer, limit: int | None = None) -> Corpus:
    """config/ with every corpus feed (the first `limit`), each with its catch-all
    watchlist and webhook, and one more webhook subscribed to every watchlist; webhooks
    at /hook/* answer 204. Webhook secrets are inline (tests)."""
    feeds = serve(server, limit)
    (config / "watchlists").mkdir(parents=True, exist_ok=True)
    feed_lines, shared, matching = ["feeds:"], [], 0
    for n, (file_name, url) in enumerate(feeds):
        name = f"feed-{n:03d}"
        wl, matched = catch_all(name, DATA / file_name, url)
        if wl is None:
            feed_lines.append(f"  - {{url: {url!r}, name: {name}, scrape: false}}")
            continue
        matching += matched
        shared.append(name)
        hook_route(server, f"/hook/{name}")
        keywords = "".join(f"  - {t!r}\n" for t in (k.term for k in wl.keywords))
        (config / "watchlists" / f"{name}.yaml").write_text(
            f"name: {name}\nthreshold: 1\nkeywords:\n{keywords}subscribers:\n"
            f"  - {{webhook: {server.url('/hook/' + name)!r}, secret: s-{n}}}\n", "utf-8")
        feed_lines.append(f"  - {{url: {url!r}, name: {name}, scrape: false, "
                          f"watchlists: [{name}]}}")
    (config / "feeds.yaml").write_text("\n".join(feed_lines) + "\n", "utf-8")
    hook_route(server, "/hook/shared")
    (config / "subscribers.yaml").write_text(
        f"subscribers:\n  - name: shared\n    webhook: {server.url('/hook/shared')!r}\n"
        f"    secret: shared-secret\n    watchlists: [{', '.join(shared)}]\n", "utf-8")
    return Corpus(tuple(feeds), matching)


def deliveries(server: HTTPServer) -> Counter[tuple[str, str]]:
    """(webhook path, idempotency key) -> times it was received."""
    hooks: list[Request] = [r for r in server.requests if r.path.startswith("/hook/")]
    return Counter((r.path, r.headers.get("Idempotency-Key", "")) for r in hooks)
