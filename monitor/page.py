"""Page metadata and decoding: the text of page bytes whatever their charset, and the
title, language and publication date that the markup states.

Rules, in order:
1. Bytes are decoded by BOM, then as UTF-8 when they are valid UTF-8 (a page labelled
   gb2312 that is really UTF-8 decodes right), then by the declared charset when it decodes
   cleanly, else by charset-normalizer's detection.
2. The title is og:title, twitter:title, <title>, else the first <h1>.
3. The language comes from the markup (html lang, content-language, og:locale), else from
   the script of the text where the script nearly settles it (Arabic, Urdu, Persian,
   Chinese, Japanese, Korean, Greek, Hebrew, Thai, ...).
4. The publication date comes from article:published_time, itemprop=datePublished, other
   date metas, JSON-LD, then the first <time datetime>.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from datetime import datetime

import charset_normalizer
import lxml.html

from monitor.feeds import parse_date

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def decode_html(data: bytes, declared: str | None = None) -> str:
    """Text of an HTML document whose charset may be missing or wrong (rule 1)."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"),
                       (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(codec, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    found = _META_CHARSET.search(data[:4096])
    for label in (declared, found.group(1).decode("ascii") if found else None):
        if label:
            try:
                return data.decode(label)
            except (LookupError, UnicodeDecodeError):
                continue
    best = charset_normalizer.from_bytes(data).best()
    return str(best) if best is not None else data.decode("utf-8", errors="replace")


_DATE_XPATHS = (
    '//meta[@property="article:published_time"]/@content',
    '//meta[@itemprop="datePublished"]/@content',
    '//*[@itemprop="datePublished"]/@datetime',
    '//meta[@name="pubdate" or @name="publishdate" or @name="date" or @name="DC.date.issued"'
    ' or @name="parsely-pub-date" or @name="sailthru.date" or @name="article.published"]/@content',
    "//time[@datetime]/@datetime",
)


def published(doc: lxml.html.HtmlElement) -> datetime | None:
    for xpath in _DATE_XPATHS[:4]:
        for value in doc.xpath(xpath):
            if found := parse_date(str(value)):
                return found
    for script in doc.xpath('//script[@type="application/ld+json"]/text()'):
        match = re.search(r'"datePublished"\s*:\s*("[^"]*")', script)
        if match and (found := parse_date(json.loads(match.group(1)))):
            return found
    for value in doc.xpath(_DATE_XPATHS[4]):
        if found := parse_date(str(value)):
            return found
    return None


def markup_language(doc: lxml.html.HtmlElement) -> str | None:
    for xpath in ("/html/@lang", "/html/@xml:lang",
                  '//meta[@http-equiv="content-language" or @http-equiv="Content-Language"]'
                  "/@content", '//meta[@property="og:locale"]/@content'):
        for value in doc.xpath(xpath, namespaces={"xml": "http://www.w3.org/XML/1998/namespace"}):
            tag = str(value).strip().replace("_", "-").split(",")[0]
            if re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", tag):
                primary, dash, rest = tag.partition("-")
                return primary.lower() + dash + rest  # "EN-us" -> "en-us", "fr-CA" kept
    return None


# Scripts that nearly settle the language: Unicode name prefix -> language.
_SCRIPT_LANGUAGE = {"ARABIC": "ar", "CJK": "zh", "HIRAGANA": "ja", "KATAKANA": "ja",
                    "HANGUL": "ko", "GREEK": "el", "HEBREW": "he", "THAI": "th",
                    "DEVANAGARI": "hi", "BENGALI": "bn", "ARMENIAN": "hy", "GEORGIAN": "ka",
                    "ETHIOPIC": "am", "KHMER": "km", "TAMIL": "ta", "SINHALA": "si"}
_URDU_LETTERS = frozenset("ٹڈڑںےۓھ")
_PERSIAN_LETTERS = frozenset("پچژگ")


def script_language(text: str, sample: int = 2000) -> str | None:
    """A language guessed from the script of `text`; None for Latin and Cyrillic, which
    many languages share."""
    scripts: Counter[str] = Counter()
    letters = [c for c in text[:sample] if c.isalpha()]
    for c in letters:
        name = unicodedata.name(c, "").split(" ")[0]
        scripts[_SCRIPT_LANGUAGE.get(name, name)] += 1
    if not scripts:
        return None
    top, count = scripts.most_common(1)[0]
    if top == "zh" and (scripts["ja"] > count / 20):
        top = "ja"  # Japanese mixes kanji with kana
    if top == "ar":
        present = set(letters)
        if present & _URDU_LETTERS:
            return "ur"
        if present & _PERSIAN_LETTERS:
            return "fa"
    return top if top in _SCRIPT_LANGUAGE.values() else None


def title(doc: lxml.html.HtmlElement) -> str:
    for xpath in ('//meta[@property="og:title"]/@content', '//meta[@name="twitter:title"]/@content',
                  "//title/text()", "//h1"):
        for found in doc.xpath(xpath):
            value = found.text_content() if hasattr(found, "text_content") else str(found)
            value = " ".join(value.split())
            if value:
                return value
    return ""
