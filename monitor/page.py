"""Page metadata and decoding: the text of page bytes whatever their charset, and the
title, language and publication date that the markup states.

Rules, in order:
1. Bytes are decoded by BOM, then as UTF-8 when they are valid UTF-8 (a page labelled
   gb2312 that is really UTF-8 decodes right) or UTF-8 but for a few stray bytes (read as
   Windows-1252: monitor.text.mostly_utf8), then by the declared charset when it decodes
   cleanly (Shift_JIS, EUC-KR, GB2312 and Big5 by their supersets, as browsers and
   monitor.feeds read them), else by charset-normalizer's detection.
2. The title is og:title, twitter:title, <title>, else the first <h1>.
3. The language comes from the markup (html lang, content-language, og:locale), else from
   the script of the text where the script nearly settles it (Arabic, Urdu, Persian,
   Chinese, Japanese, Korean, Greek, Hebrew, Thai, ...).
4. The publication date comes from article:published_time, itemprop=datePublished, other
   date metas, JSON-LD, then the first <time datetime>.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import charset_normalizer
import lxml.etree
import lxml.html

from monitor.dates import parse_date
from monitor.text import SUPERSETS, mostly_utf8

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def decode_html(data: bytes, declared: str | None = None) -> str:
    """Text of an HTML document whose charset may be missing or wrong (rule 1)."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"),
                       (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(codec, errors="replace")
    repaired = mostly_utf8(data)  # valid UTF-8, or but for a few stray bytes
    if repaired is not None:
        return repaired[0]
    found = _META_CHARSET.search(data[:4096])
    for label in (declared, found.group(1).decode("ascii") if found else None):
        if label:
            try:
                return data.decode(SUPERSETS.get(label.lower(), label))
            except (LookupError, UnicodeDecodeError):
                continue
    best = charset_normalizer.from_bytes(data).best()
    return str(best) if best is not None else data.decode("utf-8", errors="replace")


_DATE_NAMES = ("pubdate", "publishdate", "date", "DC.date.issued", "parsely-pub-date",
               "sailthru.date", "article.published")
# The elements the rules below read, by tag in one walk of the document; an XPath per
# rule walked it once each (1.75 ms a page on the corpus's larger pages, 0.3 ms this way).
_MARKED_TAGS = ("meta", "time", "title", "h1", "script")
# Any element may carry itemprop="datePublished": this walk tests every element's
# attributes, so it runs only when the metas state no date.
_DATED = lxml.etree.XPath('//@itemprop[.="datePublished"]/..')  # see extract._ARTICLE_BODY


@dataclass(frozen=True, slots=True)
class Marks:
    """A page and the elements that state its title, language and date, in document order:
    the rules below read them from this one walk."""

    doc: lxml.html.HtmlElement
    metas: list[lxml.html.HtmlElement]
    times: list[lxml.html.HtmlElement]
    titles: list[lxml.html.HtmlElement]
    headings: list[lxml.html.HtmlElement]  # h1
    scripts: list[lxml.html.HtmlElement]  # JSON-LD

    @classmethod
    def of(cls, doc: lxml.html.HtmlElement) -> Marks:
        marks = cls(doc, [], [], [], [], [])
        lists = dict(zip(_MARKED_TAGS, (marks.metas, marks.times, marks.titles, marks.headings,
                                        marks.scripts), strict=True))
        for el in doc.iter(*_MARKED_TAGS):
            if el.tag != "script" or el.get("type") == "application/ld+json":
                lists[el.tag].append(el)
        return marks

    def meta(self, attribute: str, *values: str) -> Iterator[str]:
        """The content of each meta whose `attribute` is one of `values`."""
        for el in self.metas:
            if el.get(attribute) in values:
                content = el.get("content")
                if content is not None:
                    yield content


def _dated(doc: lxml.html.HtmlElement) -> Iterator[str]:
    """The datetime of each element marked datePublished; walks the document when asked."""
    for el in _DATED(doc):
        value = el.get("datetime")
        if value is not None:
            yield value


def published(marks: Marks) -> datetime | None:
    """The publication date the markup states (rule 4)."""
    candidates = itertools.chain(
        marks.meta("property", "article:published_time"),
        marks.meta("itemprop", "datePublished"),
        _dated(marks.doc),
        marks.meta("name", *_DATE_NAMES))
    for value in candidates:
        if found := parse_date(str(value)):
            return found
    for script in marks.scripts:
        for text in script.xpath("text()"):
            match = re.search(r'"datePublished"\s*:\s*("[^"]*")', text)
            if match and (found := parse_date(json.loads(match.group(1)))):
                return found
    for el in marks.times:
        value = el.get("datetime")
        if value is not None and (found := parse_date(value)):
            return found
    return None


_HTML_LANG = lxml.etree.XPath("/html/@lang")
_HTML_XML_LANG = lxml.etree.XPath(
    "/html/@xml:lang", namespaces={"xml": "http://www.w3.org/XML/1998/namespace"})


def _stated_languages(marks: Marks) -> Iterator[str]:
    yield from _HTML_LANG(marks.doc)
    yield from _HTML_XML_LANG(marks.doc)
    yield from marks.meta("http-equiv", "content-language", "Content-Language")
    yield from marks.meta("property", "og:locale")


def markup_language(marks: Marks) -> str | None:
    """The language the markup states (rule 3)."""
    for value in _stated_languages(marks):
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


@functools.lru_cache(maxsize=4096)
def _script(letter: str) -> str:
    """The language a letter's script nearly settles, else the script's name."""
    name = unicodedata.name(letter, "").split(" ")[0]
    return _SCRIPT_LANGUAGE.get(name, name)


def script_language(text: str, sample: int = 2000) -> str | None:
    """A language guessed from the script of `text`; None for Latin and Cyrillic, which
    many languages share."""
    # Counted by character in C, then by script over the distinct letters, in the order
    # they first occur (which settles ties as counting letter by letter would).
    letters = {c: n for c, n in Counter(text[:sample]).items() if c.isalpha()}
    scripts: Counter[str] = Counter()
    for letter, n in letters.items():
        scripts[_script(letter)] += n
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


def title(marks: Marks) -> str:
    """The title the markup states (rule 2)."""
    stated = itertools.chain(
        marks.meta("property", "og:title"), marks.meta("name", "twitter:title"),
        (str(text) for el in marks.titles for text in el.xpath("text()")),
        (el.text_content() for el in marks.headings))
    for value in stated:
        value = " ".join(value.split())
        if value:
            return value
    return ""
