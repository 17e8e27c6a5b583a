"""Feed bytes -> Items: one pure function over bytes, with stable ids and canonical URLs.

Rules, in order:
1. feedparser reads RSS 0.9x/1.0/2.0 and Atom (white space before the XML declaration, which
   many servers emit, is dropped first); JSON Feed 1.0/1.1 is read here. A malformed
   document yields what could be read plus a `problem` text, never an exception.
   A document labelled Shift_JIS, EUC-KR, GB2312/GBK or Big5 (in its Content-Type or XML
   declaration) is read with the superset that browsers read it with (the WHATWG
   Encoding Standard): Python's strict codecs reject the vendor characters common in such
   feeds (①, ～), and feedparser's fallback, without chardet, is ISO-8859-2 mojibake.
   A document labelled UTF-8 (or not labelled) that is UTF-8 but for a few stray bytes
   (at least four in five of its non-ASCII characters valid) is read as UTF-8 with those
   bytes in Windows-1252; feedparser would read all of it in that fallback.
2. An item's id is its GUID (scoped to the feed, since some feeds number GUIDs 1, 2, 3),
   else its canonical link, else a hash of its title and summary.
3. Canonical URL: scheme and host lower-cased, default port, fragment and tracking
   parameters (utm_*, fbclid, gclid, ...) removed; the fragment stays where it tells the
   document's items apart (`item_urls`). A link that is no http(s) URL counts as none.
4. Titles and summaries become plain text as a reader sees it: block elements and line
   breaks separate words, script, style and other hidden content is dropped, control
   characters too (a lone surrogate becomes U+FFFD), white space is collapsed, and the
   text is cut at MAX_TITLE_CHARS and MAX_SUMMARY_CHARS, so a hostile feed's 10 MB title
   cannot travel into alerts.
5. Items already read are not parsed again. Each item element (`<item>`, `<entry>`, any
   namespace prefix) is found in the bytes and digested; given the digests of the last
   poll's items, only the document without them is parsed, so a feed that lists 50 items,
   one of them new, costs one item's parsing, and a feed that only changed its build date
   costs none. The digests are trusted only when the document's items split into exactly
   as many elements as feedparser reads, in order; else the whole document is parsed.
6. Entities declared in a document are never read or expanded but for plain-text ones:
   feedparser drops external entities (XXE), parameter entities and entities built of
   other entities (expansion bombs). Each one dropped is named in the parse's `problem`,
   which the poll logs as a warning naming the feed.
"""

from __future__ import annotations

import calendar
import email.utils
import hashlib
import html
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import feedparser
import lxml.html

from monitor.feeds.cadence import feed_hint
from monitor.models import Item
from monitor.text import mostly_utf8

TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_ga",
     "ocid", "cmpid", "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee",
     "at_medium", "at_campaign", "spm", "ito", "xtor"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_TITLE_CHARS = 1_000
MAX_SUMMARY_CHARS = 100_000

# On every parse, feedparser asks xml.sax for the drv_libxml2 driver before expat: where
# it is missing (everywhere, nearly), a failed import that searches sys.path, 60 us of a
# five-item feed's 2 ms; where it is installed, a parser our XXE tests never ran. Expat.
feedparser.api.PREFERRED_XML_PARSERS[:] = []


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str
    items: tuple[Item, ...]
    problem: str | None = None
    hint: float | None = None  # seconds between useful polls, from the feed (monitor.feeds.cadence)
    # Rule 5: the digest of each item's element, in the order of `items` (None when the
    # document's items could not be told apart), and the items known from an earlier
    # poll that were not parsed again, as (digest, published unix time or None).
    digests: tuple[str, ...] | None = None
    skipped: tuple[tuple[str, float | None], ...] = ()

    @property
    def count(self) -> int:
        """Items in the document, parsed or skipped."""
        return len(self.items) + len(self.skipped)

    def published(self) -> list[datetime | None]:
        """Publication dates of every item in the document, parsed or skipped."""
        return [item.published for item in self.items] + [
            None if at is None else datetime.fromtimestamp(at, tz=UTC) for _, at in self.skipped]


_REDIRECTORS = {("google.com", "/url"), ("www.google.com", "/url"), ("news.google.com", "/url")}


def canonical_url(url: str, base: str | None = None, *, fragment: bool = False) -> str:
    """The http(s) URL without tracking parameters, and without its fragment unless
    `fragment` (rule 3); a feed proxy's redirect link (Google Alerts' google.com/url?...
    &url=TARGET) becomes its target. A link that is no http(s) URL (another scheme, a
    port out of range, a broken IPv6 literal) gives "": never an exception."""
    url = clean_text(url).strip()
    if not url:
        return ""
    try:
        return _canonical_url(url, base, fragment)
    except ValueError:  # urlsplit's "Invalid IPv6 URL", .port's "out of range"
        return ""


def _canonical_url(url: str, base: str | None, fragment: bool) -> str:
    parts = urlsplit(url)
    if ((parts.hostname or "").lower(), parts.path) in _REDIRECTORS:
        params = dict(parse_qsl(parts.query))
        target = params.get("url") or params.get("q")
        if target and target.startswith(("http://", "https://")):
            url = target
    if base and not urlsplit(url).scheme:
        url = urljoin(base, url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return ""
    if ":" in host:  # an IPv6 literal keeps its brackets (hostname drops them)
        host = f"[{host}]"
    port = parts.port  # before the host is rebuilt: ValueError when out of range
    if port and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query),
                       parts.fragment if fragment else ""))


def item_urls(links: Sequence[str], guids: Sequence[str], base: str) -> list[str]:
    """The canonical URLs of a document's item links (rule 3), with the fragment kept
    where it tells items apart: where another item links to the same page under another
    fragment (a blog whose posts are anchors on one page a day, `.../26.html#a080605`),
    or where the item's GUID carries it."""
    bare = [canonical_url(link, base) for link in links]
    fragments = [clean_text(urlsplit(link).fragment) if "#" in link and url else ""
                 for link, url in zip(links, bare, strict=True)]
    if not any(fragments):
        return bare
    per_page: dict[str, set[str]] = {}
    for url, fragment in zip(bare, fragments, strict=True):
        per_page.setdefault(url, set()).add(fragment)
    return [f"{url}#{fragment}" if fragment and (len(per_page[url]) > 1
                                                  or f"#{fragment}" in guid) else url
            for url, fragment, guid in zip(bare, fragments, guids, strict=True)]


# Rule 4: elements that a browser sets apart from the text around them (a line break, a
# block, a table cell): their text must not run into the words before and after, or a
# word glued across them ("totally<br/>enjoyed", "...and</li><li>GKE") never matches.
_SEPARATE = frozenset({"address", "article", "aside", "blockquote", "br", "caption", "center", "dd",
             "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
             "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hgroup", "hr",
             "legend", "li", "main", "menu", "nav", "ol", "optgroup", "option", "p", "pre",
             "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul"})
_SEPARATING_TAG = re.compile(
    r"<(?=/?(?:" + "|".join(sorted(_SEPARATE, key=len, reverse=True)) + r")[\s/>])", re.I)
# Elements whose content a reader never sees as text: code, styles, fallbacks.
_HIDDEN = ("script", "style", "noscript", "template", "iframe")
# Characters no text of an item may carry: C0 controls but tab and line ends (XML 1.0
# forbids them; lxml reads NUL as U+FFFD), and lone surrogates, which JSON's \ud800
# escapes give, which lxml silently cuts the text at, and which no UTF-8 encoder (Redis,
# orjson, the signature's CRC) accepts. Controls go, surrogates become U+FFFD.
_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+")
_SURROGATES = re.compile("[\ud800-\udfff]")
_TAG = re.compile(r"<[^>]*>")


def clean_text(text: str) -> str:
    """`text` without control characters, with any lone surrogate as U+FFFD."""
    if not text.isprintable() and _CONTROLS.search(text):  # isprintable: 2x faster
        text = _CONTROLS.sub("", text)
    try:
        text.encode()  # 5x faster than searching for surrogates
    except UnicodeEncodeError:
        text = _SURROGATES.sub("\ufffd", text)
    return text


def plain_text(markup: str, limit: int = MAX_SUMMARY_CHARS) -> str:
    """Text of an HTML fragment as a reader sees it (rule 4): block elements and line
    breaks separate words, script, style and other hidden content is dropped, white
    space is collapsed; at most `limit` characters."""
    if not markup:
        return ""
    markup = clean_text(markup[: limit * 4])  # beyond this, no text within the limit
    if "<" not in markup and "&" not in markup:
        return " ".join(markup.split())[:limit]
    # A space before each tag that separates words: one regular expression over the
    # markup costs a tenth of visiting the parsed elements in Python.
    markup = _SEPARATING_TAG.sub(" <", markup)
    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
    except (ValueError, lxml.etree.ParserError):  # nothing parsable: tags as spaces
        text = html.unescape(_TAG.sub(" ", markup))
    else:
        lxml.etree.strip_elements(root, *_HIDDEN, with_tail=False)
        text = root.text_content()
    return " ".join(text.split())[:limit]


def _published(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = dict.get(entry, key)  # not entry.get: its key aliasing warns
        if parsed:
            try:
                return datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _item_id(feed_id: str, guid: str, link: str, title: str, summary: str) -> str:
    if guid:
        source = f"guid\0{feed_id}\0{guid}"
    elif link:
        source = f"url\0{link}"
    else:
        source = f"text\0{feed_id}\0{title}\0{summary}"
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def parse_feed(data: bytes, feed_id: str, feed_name: str, feed_url: str,
               content_type: str | None = None,
               known: Mapping[str, float | None] | None = None) -> ParsedFeed:
    """Items of a feed document; never raises on bad input (rule 1). `known`: the digests
    of items read before, with their publication times; those are not parsed (rule 5)."""
    data = _strip_leading_space(data)
    if data[:1] == b"{":
        json_feed = _parse_json_feed(data, feed_id, feed_name, feed_url)
        if json_feed is not None:
            return json_feed
    spans = item_spans(data) or []
    digests = [hashlib.blake2b(data[a:b], digest_size=8).hexdigest() for a, b in spans]
    if known and any(d in known for d in digests):
        parts, last, fresh, skipped = [], 0, [], []
        for (a, b), digest in zip(spans, digests, strict=True):
            if digest in known:
                parts.append(data[last:a])
                last = b
                skipped.append((digest, known[digest]))
            else:
                fresh.append(digest)
        parts.append(data[last:])
        parsed = _parse_xml(b"".join(parts), feed_id, feed_name, feed_url, content_type)
        if len(parsed.items) == len(fresh):
            return replace(parsed, digests=tuple(fresh), skipped=tuple(skipped))
    parsed = _parse_xml(data, feed_id, feed_name, feed_url, content_type)
    if digests and len(digests) == len(parsed.items):
        return replace(parsed, digests=tuple(digests))
    return parsed


# Rule 5: an item element's start or end tag, any namespace prefix; CDATA sections and
# comments are matched whole, so that markup quoted inside them is not taken for tags.
_ITEM_TAG = re.compile(rb"<!\[CDATA\[.*?\]\]>|<!--.*?-->"
                       rb"|<(/?)(?:[A-Za-z_][\w.-]*:)?(?:item|entry)(?=[\s/>])[^<>]*>", re.S)


def item_spans(data: bytes) -> list[tuple[int, int]] | None:
    """Byte spans of a feed document's item elements (rule 5), or None when they cannot be
    told apart for sure: nested or unbalanced item tags. A document whose markup is not
    ASCII-compatible (UTF-16) has no spans."""
    spans: list[tuple[int, int]] = []
    start = -1
    for tag in _ITEM_TAG.finditer(data):
        closing = tag.group(1)
        if closing is None:  # CDATA or a comment
            continue
        if closing:
            if start < 0:
                return None
            spans.append((start, tag.end()))
            start = -1
        elif start >= 0:
            return None
        elif tag.group().endswith(b"/>"):
            spans.append((tag.start(), tag.end()))
        else:
            start = tag.start()
    return None if start >= 0 else spans


# Rule 1: labels whose documents are read with a superset, as browsers read them (pages
# too: monitor.page).
SUPERSETS = {
    **dict.fromkeys(("shift_jis", "shift-jis", "sjis", "x-sjis", "ms_kanji", "csshiftjis",
                     "windows-31j"), "cp932"),
    **dict.fromkeys(("euc-kr", "euc_kr", "ks_c_5601-1987", "csksc56011987", "korean"),
                    "cp949"),
    **dict.fromkeys(("gb2312", "gbk", "x-gbk", "csgb2312", "chinese", "gb_2312-80"),
                    "gb18030"),
    **dict.fromkeys(("big5", "csbig5", "x-x-big5", "big5-hkscs"), "big5hkscs"),
}
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""\A<\?xml[^>]*?encoding\s*=\s*["']([\w.:-]+)""")


def _charset_label(data: bytes, content_type: str | None) -> str | None:
    """The charset `data` is labelled with: the header's, else the XML declaration's."""
    found = _CHARSET.search(content_type or "")
    if found:
        return found.group(1)
    declared = _XML_ENCODING.match(data)
    return declared.group(1).decode("ascii") if declared else None


def _superset_type(data: bytes, content_type: str | None) -> str | None:
    """The Content-Type to read `data` with when its charset label names an encoding read
    as a superset (rule 1), else None."""
    label = _charset_label(data, content_type)
    superset = SUPERSETS.get((label or "").lower())
    if superset is None:
        return None
    media = (content_type or "").split(";")[0].strip() or "application/xml"
    return f"{media}; charset={superset}"


def _repair_utf8(data: bytes, content_type: str | None) -> tuple[bytes, int]:
    """A document labelled UTF-8 (or not labelled) that is UTF-8 but for a few stray
    bytes, with those read as Windows-1252, and their count (rule 1); else `data`, 0."""
    if data.isascii() or (_charset_label(data, content_type) or "utf-8").lower() not in (
            "utf-8", "utf8"):
        return data, 0
    repaired = mostly_utf8(data)
    if repaired is not None and repaired[1]:
        return repaired[0].encode("utf-8"), repaired[1]
    return data, 0


# Rule 6: the prolog (all before the first element, as feedparser cuts it), its entity
# declarations, and the only kind feedparser keeps (its RE_SAFE_ENTITY_PATTERN).
_FIRST_ELEMENT = re.compile(rb"<\w")
_ENTITY_DECL = re.compile(rb"<!ENTITY\s+(%\s*)?([^\s>]*)([^>]*)>")
_PLAIN_ENTITY = re.compile(rb'\s+"(&#\w+;|[^&"]*)"')
_WORD_NAME = re.compile(rb"\w+\Z")
REFUSED_SHOWN = 5  # entities named in the problem; a count for the rest


def refused_entities(data: bytes) -> list[str]:
    """The entity declarations of `data` that are dropped unread (rule 6), each as its
    name and why, in printable characters only (the text is the feed's)."""
    first = _FIRST_ELEMENT.search(data)
    head = data[: first.start()] if first else data
    if b"<!ENTITY" not in head:
        return []
    refused = []
    for decl in _ENTITY_DECL.finditer(head):
        parameter, name, rest = decl.groups()
        if not parameter and _WORD_NAME.match(name) and _PLAIN_ENTITY.match(rest):
            continue  # plain text: kept and expanded, as harmless as any other text
        words = rest.split()
        if words and words[0] in (b"SYSTEM", b"PUBLIC"):
            why = "external: " + " ".join(w.decode("utf-8", "replace") for w in words)
        elif b"&" in rest or b"%" in rest:
            why = "built of other entities"
        else:
            why = "not plain text"
        text = f"{'%' if parameter else ''}{name.decode('utf-8', 'replace')} ({why[:120]})"
        refused.append("".join(c if c.isprintable() else "?" for c in text))
    return refused


def _entities_problem(refused: list[str]) -> str:
    shown = ", ".join(refused[:REFUSED_SHOWN])
    more = f" and {len(refused) - REFUSED_SHOWN} more" if len(refused) > REFUSED_SHOWN else ""
    return f"XML entities refused, not read or expanded (an XXE attempt?): {shown}{more}"


def _stray_problem(stray: int) -> str:
    return f"{stray} byte(s) not UTF-8 in a UTF-8 document, read as Windows-1252"


def _parse_xml(data: bytes, feed_id: str, feed_name: str, feed_url: str,
               content_type: str | None) -> ParsedFeed:
    data, stray = _repair_utf8(data, content_type)
    content_type = _superset_type(data, content_type) or content_type
    headers = {"content-type": content_type} if content_type else {}
    try:
        parsed = _feedparser(data, headers)
    except (ValueError, OverflowError):  # a character reference no character has
        data = _CHAR_REF.sub(_valid_char_ref, data)
        try:
            parsed = _feedparser(data, headers)
        except (ValueError, OverflowError) as exc:
            return ParsedFeed(title="", items=(), problem=f"parser: {exc}")
    problem = None
    if parsed.get("bozo"):
        problem = f"{type(parsed.bozo_exception).__name__}: {parsed.bozo_exception}"
    elif stray:
        problem = _stray_problem(stray)
    refused = refused_entities(data)
    if refused:
        problem = "; ".join(filter(None, (_entities_problem(refused), problem)))
    language = parsed.feed.get("language") or None
    items: list[Item] = []
    guids = [clean_text(str(entry.get("id") or "")).strip()[:2048] for entry in parsed.entries]
    urls = item_urls([str(entry.get("link") or "") for entry in parsed.entries], guids, feed_url)
    for entry, guid, url in zip(parsed.entries, guids, urls, strict=True):
        title = plain_text(entry.get("title", ""), MAX_TITLE_CHARS)
        summary = plain_text(entry.get("summary", ""))
        items.append(Item(
            id=_item_id(feed_id, guid, url, title, summary),
            feed_id=feed_id,
            feed_name=feed_name,
            title=title,
            url=url,
            summary=summary,
            published=_published(entry),
            language=entry.get("language") or language,
        ))
    if not items and problem is None and not parsed.get("version"):
        problem = "parser: not a feed (no RSS, Atom or JSON Feed document found)"
    hint = feed_hint(parsed.feed.get("ttl"), parsed.feed.get("sy_updateperiod"),
                     parsed.feed.get("sy_updatefrequency"))
    return ParsedFeed(title=plain_text(parsed.feed.get("title", "")), items=tuple(items),
                      problem=problem, hint=hint)


def _feedparser(data: bytes, headers: dict[str, str]) -> Any:
    # A stream, not the bytes: given bytes, feedparser first tries them as a file name,
    # so a feed whose body was "/etc/some.xml" read that local file (and paid a failed
    # open() on every other document).
    return feedparser.parse(io.BytesIO(data), response_headers=headers,
                            sanitize_html=False, resolve_relative_uris=False)


# Rule 1: feedparser's fallback parser raises on a character reference to a surrogate
# (&#xD800;), to a number past U+10FFFF or past a C int: such a reference reads as U+FFFD.
_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")


def _valid_char_ref(ref: re.Match[bytes]) -> bytes:
    code = int(ref.group(1), 16) if ref.group(1) else int(ref.group(2))
    return ref.group() if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF \
        else b"&#xFFFD;"


def _strip_leading_space(data: bytes) -> bytes:
    bom = b"\xef\xbb\xbf"
    body = data[len(bom):] if data.startswith(bom) else data
    stripped = body.lstrip(b" \t\r\n")
    if stripped is body:
        return data
    return bom + stripped if body is not data else stripped


def _parse_json_feed(data: bytes, feed_id: str, feed_name: str,
                     feed_url: str) -> ParsedFeed | None:
    """JSON Feed (jsonfeed.org) 1.0/1.1; None when the document is not one."""
    try:
        doc = json.loads(data)
    except UnicodeDecodeError as exc:  # stray bytes in UTF-8, as in XML feeds (rule 1)
        repaired = mostly_utf8(data)
        # Valid UTF-8 that json read as UTF-16 or -32 (a NUL among the first bytes):
        # nothing to repair, and parsing the same bytes again would fail again, forever.
        if repaired is None or not repaired[1]:
            return ParsedFeed(title="", items=(), problem=f"parser: invalid JSON Feed: {exc}")
        parsed = _parse_json_feed(repaired[0].encode("utf-8"), feed_id, feed_name, feed_url)
        if parsed is not None and parsed.problem is None:
            parsed = replace(parsed, problem=_stray_problem(repaired[1]))
        return parsed
    except ValueError as exc:
        return ParsedFeed(title="", items=(), problem=f"parser: invalid JSON Feed: {exc}")
    if not isinstance(doc, dict) or "jsonfeed.org/version" not in str(doc.get("version", "")):
        return None
    language = _language(doc.get("language"))
    items: list[Item] = []
    listed = doc.get("items")
    entries = [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
    guids = [clean_text(_text(e.get("id"))).strip()[:2048] for e in entries]
    urls = item_urls([_text(e.get("url")) or _text(e.get("external_url")) for e in entries],
                     guids, feed_url)
    for entry, guid, url in zip(entries, guids, urls, strict=True):
        title = plain_text(_text(entry.get("title")), MAX_TITLE_CHARS)
        summary = plain_text(_text(entry.get("summary")) or _text(entry.get("content_text"))
                             or _text(entry.get("content_html")))
        items.append(Item(
            id=_item_id(feed_id, guid, url, title, summary),
            feed_id=feed_id, feed_name=feed_name, title=title, url=url, summary=summary,
            published=parse_date(entry.get("date_published") or entry.get("date_modified")),
            language=_language(entry.get("language")) or language,
        ))
    return ParsedFeed(title=plain_text(_text(doc.get("title"))), items=tuple(items))


def _language(value: Any) -> str | None:
    return value.strip()[:35] or None if isinstance(value, str) else None


def _text(value: Any) -> str:
    """A JSON Feed field as text: a string, or a number written out; any other value (a
    list, an object, true) is no text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def parse_date(value: Any) -> datetime | None:
    """A date from ISO 8601 (Z allowed) or RFC 822 text; naive dates are taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
