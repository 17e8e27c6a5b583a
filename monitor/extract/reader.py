"""Page -> a Reading: its metadata, its cleaned tree's blocks and their feature rows,
what the block classifier and the text assembly work from."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

import lxml.html

from monitor.extract.blocks import Blocks, segment
from monitor.extract.clean import parse, strip
from monitor.extract.features import Matrix, matrix, page_kinds
from monitor.extract.rules import HEADING_MAX_CHARS, Boilerplate
from monitor.page import Marks, decode_html, markup_language
from monitor.page import published as page_published
from monitor.page import title as page_title
from monitor.text import fold


@dataclass(frozen=True, slots=True)
class Reading:
    doc: lxml.html.HtmlElement
    title: str
    headline: str  # the first <h1>'s text
    language: str | None
    published: datetime | None
    blocks: Blocks
    features: Matrix
    refresh: bool  # a meta refresh sends the reader to another URL


def read(html: str | bytes, url: str | None, rules: Boilerplate) -> Reading | None:
    """The page's Reading; None for an empty or unparseable page."""
    text = decode_html(html) if isinstance(html, bytes) else html
    text = text.replace("\x00", "")
    if not text.strip():
        return None
    doc = parse(text, url)
    if doc is None:
        return None
    marks = Marks.of(doc)
    title = page_title(marks)
    headline = choose_headline([" ".join(h1.text_content().split()) for h1 in marks.headings],
                               title)
    language = markup_language(marks)
    published = page_published(marks)
    refresh = any("url=" in content.lower() for content in marks.meta(
        "http-equiv", "refresh", "Refresh", "REFRESH"))
    strip(doc, rules)
    body = doc.find("body")
    blocks = segment(body if body is not None else doc)
    kinds = page_kinds(urlsplit(url).path if url else "", _stated_types(marks))
    ends = [len(t) <= HEADING_MAX_CHARS and rules.is_end(fold(t).strip()) for t in blocks.texts]
    return Reading(doc, title, headline, language, published, blocks,
                   matrix(blocks, title, headline, kinds, ends), refresh)


_WORDS = re.compile(r"\w+")
_TITLE_PARTS = re.compile(r"\s+(?:[-|–—·•»]|::)\s+")


def choose_headline(h1s: list[str], title: str) -> str:
    """The page's headline: the `<h1>` that shares most words with the title's own part
    (its longest part between " - " or " | ": not the site's name), else that part of
    the title, else the first `<h1>`. A site's logo or a search box set in an `<h1>` is not
    the headline."""
    core = max(_TITLE_PARTS.split(title), key=len) if title else ""
    core_words = set(_WORDS.findall(core.casefold()))
    best, best_share = "", 0.0
    for h1 in h1s:
        words = _WORDS.findall(h1.casefold())
        if not words:
            continue
        share = max(sum(w in core_words for w in words) / len(words),
                    len(core_words & set(words)) / max(len(core_words), 1))
        if share > best_share:
            best, best_share = h1, share
    if best_share >= 0.6 or not core:
        return best or next((h for h in h1s if h), "")
    return core


_LD_TYPE = re.compile(r'"@type"\s*:\s*\[?\s*"([^"]+)"')


def _stated_types(marks: Marks) -> list[str]:
    """og:type and the JSON-LD @type values, lower case ("article", "product")."""
    types = [t.lower().rpartition(".")[2] for t in marks.meta("property", "og:type")]
    for script in marks.scripts:
        types += [t.lower() for t in _LD_TYPE.findall(script.text or "")]
    return types
