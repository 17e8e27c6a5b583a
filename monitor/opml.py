"""OPML subscription lists in and out: feed readers' exports to feed YAML, feeds to OPML 2.0.

Rules:
1. Lists are read with listparser, never by walking the XML here: every outline with an
   `xmlUrl` is a feed, its `text` (else `title`) its name, and the folders it sits in
   and its `category` attribute (`/News/World,/Tech`) its tags, a nested folder as
   `News/World`.
2. Hostile lists get the limits feeds get (monitor.feeds rules 4, 6): at most MAX_BYTES,
   entity declarations other than plain text are dropped unread (the document type's
   internal subset goes, and the problem says which), names are plain text cut at
   MAX_TITLE_CHARS, and a link that is no http(s) URL is no feed.
3. A feed is new when no configured feed, and no feed before it in the list, has its
   canonical URL (monitor.feeds rule 3); the others are skipped and named.
4. The export is OPML 2.0: one folder outline per tag path, the feeds without tags at the
   top level, and every tag of a feed in its `category` attribute, so a list exported and
   imported again gives the same feeds, names and tags.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

import listparser
import yaml

from monitor.config import FeedConfig
from monitor.errors import MonitorError
from monitor.feeds import MAX_TITLE_CHARS, canonical_url, plain_text, refused_entities

# The feeds' own limit (MONITOR_HTTP_MAX_BYTES' default): a reader's export of thousands of
# feeds is under 1 MB.
MAX_BYTES = 10 * 1024 * 1024
_DOCTYPE_SUBSET = re.compile(rb"<!DOCTYPE[^\[>]*\[.*?\]\s*>", re.DOTALL)


class OPMLError(MonitorError):
    """Raised when a file is no subscription list monitor can read (too large, or empty
    of feeds)."""


@dataclass(frozen=True, slots=True)
class OPMLFeed:
    url: str
    name: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OPMLList:
    feeds: tuple[OPMLFeed, ...]
    title: str = ""
    problem: str = ""  # what was dropped or refused (rule 2), for the operator


def read(data: bytes) -> OPMLList:
    """The feeds of an OPML document (rules 1, 2); raises OPMLError when it has none."""
    if len(data) > MAX_BYTES:
        raise OPMLError(f"opml: larger than {MAX_BYTES:,} bytes")
    problems = []
    refused = refused_entities(data)
    if refused:
        data = _DOCTYPE_SUBSET.sub(b"", data, count=1)
        problems.append(f"XML entities refused, not read or expanded: {', '.join(refused[:5])}")
    parsed: Any = listparser.parse(data)
    feeds, dropped = [], 0
    for found in parsed.get("feeds", []):
        url = str(found.get("url", "")).strip()[:2048]  # kept as written; compared canonical
        if not canonical_url(url, fragment=True):
            dropped += 1
            continue
        tags = tuple(dict.fromkeys(
            "/".join(plain_text(part, MAX_TITLE_CHARS) for part in path)
            for path in found.get("categories", []) if path))
        feeds.append(OPMLFeed(url, plain_text(str(found.get("title", "")), MAX_TITLE_CHARS),
                              tuple(t for t in tags if t)))
    if dropped:
        problems.append(f"{dropped} outline(s) whose xmlUrl is no http(s) URL")
    if not feeds:
        why = parsed.get("bozo_exception") or "no outline with an xmlUrl"
        raise OPMLError(f"opml: no feeds found ({why})")
    title = plain_text(str(parsed.get("meta", {}).get("title", "")), MAX_TITLE_CHARS)
    return OPMLList(tuple(feeds), title, "; ".join(problems))


def new_feeds(found: Iterable[OPMLFeed], configured: Sequence[FeedConfig],
              ) -> tuple[list[OPMLFeed], list[tuple[OPMLFeed, str]]]:
    """The feeds to import, and the skipped ones with the name of the feed that has their
    canonical URL already (rule 3)."""
    known = {canonical_url(f.url, fragment=True): f.name for f in configured}
    new, skipped = [], []
    for feed in found:
        key = canonical_url(feed.url, fragment=True)
        if key in known:
            skipped.append((feed, known[key]))
            continue
        known[key] = feed.name or feed.url
        new.append(feed)
    return new, skipped


def to_yaml(feeds: Sequence[OPMLFeed], source: str) -> str:
    """Feed YAML that config/ loads, as monitor writes it."""
    rows = []
    for feed in feeds:
        row: dict[str, Any] = {"name": feed.name} if feed.name else {}
        row["url"] = feed.url
        if feed.tags:
            row["tags"] = list(feed.tags)
        rows.append(row)
    head = (f"# Imported from {source} by `monitor feeds import`: one feed per outline "
            f"with an xmlUrl,\n# its folders as tags. Review intervals and `scrape` "
            f"before the daemon polls them.\n")
    return head + yaml.safe_dump({"feeds": rows}, allow_unicode=True, sort_keys=False,
                                 width=100)


def export(feeds: Sequence[FeedConfig], title: str = "monitor feeds") -> bytes:
    """The feeds as OPML 2.0 (rule 4)."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = formatdate(usegmt=True)
    body = ET.SubElement(root, "body")
    folders: dict[tuple[str, ...], ET.Element] = {(): body}

    def folder(path: tuple[str, ...]) -> ET.Element:
        if path not in folders:
            folders[path] = ET.SubElement(folder(path[:-1]), "outline", text=path[-1],
                                          title=path[-1])
        return folders[path]

    for feed in feeds:
        paths = [tuple(p for p in tag.split("/") if p) for tag in feed.tags]
        attrs = {"type": "rss", "text": feed.name, "title": feed.name, "xmlUrl": feed.url}
        if feed.tags:
            attrs["category"] = ",".join("/" + "/".join(p) for p in paths if p)
        ET.SubElement(folder(paths[0] if paths and paths[0] else ()), "outline", attrs)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"
