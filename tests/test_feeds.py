from __future__ import annotations

import sys
from pathlib import Path

import pytest

from monitor import feeds as feeds_module
from monitor.feeds import canonical_url, item_spans, parse_feed
from monitor.text import mostly_utf8

FEEDS = Path(__file__).parent / "data" / "feeds"
ALL_FEEDS = sorted(FEEDS.iterdir())


@pytest.mark.parametrize("path", ALL_FEEDS, ids=lambda p: p.name)
def test_every_corpus_feed_parses_without_raising(path: Path) -> None:
    parsed = parse_feed(path.read_bytes(), "f1", "feed", "https://example.org/feed")
    ids = [item.id for item in parsed.items]
    assert all(ids) and all(len(i) == 32 for i in ids)
    for item in parsed.items:
        assert item.feed_id == "f1"
        assert "<" not in item.title or ">" not in item.title  # markup stripped
        assert not item.url or item.url.startswith(("http://", "https://"))


def test_corpus_has_the_expected_feeds() -> None:
    assert len(ALL_FEEDS) == 98


@pytest.mark.parametrize(
    ("name", "count", "first_title"),
    [
        ("miniflux__urdu_UTF8.xml", 26, None),
        ("miniflux__encoding_WINDOWS-1251.xml", 50, None),
        ("miniflux__no_encoding_ISO-8859-1.xml", 10, None),
        ("feedjira__json_feed.json", None, "James Dempsey and the Breakpoints Benefit App Camp"),
        ("feedjira__TechCrunch.xml", 20, None),
        ("miniflux__rdf_UTF8.xml", 60, None),
    ],
)
def test_real_feeds_give_their_items(name: str, count: int | None,
                                     first_title: str | None) -> None:
    parsed = parse_feed((FEEDS / name).read_bytes(), "f", "f", "https://example.org/")
    if count is not None:
        assert len(parsed.items) == count
    if first_title is not None:
        assert parsed.items[0].title.startswith(first_title)
    assert len({i.id for i in parsed.items}) == len(parsed.items)


def test_legacy_charsets_decode_to_real_text() -> None:
    russian = parse_feed((FEEDS / "miniflux__encoding_WINDOWS-1251.xml").read_bytes(), "f", "f",
                         "https://example.org/")
    assert any("а" in i.title or "о" in i.summary for i in russian.items)
    german = parse_feed((FEEDS / "miniflux__encoding_ISO-8859-1.xml").read_bytes(), "f", "f",
                        "https://example.org/")
    assert any(ch in (german.items[0].title + german.items[0].summary) for ch in "äöüß")


# Arabic in UTF-8, with one byte pasted from Windows-1252 (0x80, the euro sign): read
# whole as a fallback codepage, every Arabic letter came out garbled (and matched nothing).
ARABIC_TITLES = ["حفتر يلتقي ترامب في سرت", "ترمب: ليبيا بحاجة إلى حكومة موحدة"]
STRAY = "Sirte port fees rise to 5€".encode("cp1252")


@pytest.mark.parametrize("content_type", [None, "application/rss+xml; charset=utf-8"])
def test_a_utf8_feed_with_a_stray_byte_keeps_its_text(content_type: str | None) -> None:
    items = "".join(f"<item><guid>{i}</guid><title>{t}</title></item>"
                    for i, t in enumerate(ARABIC_TITLES))
    data = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>أخبار'
            f"</title>{items}<item><guid>x</guid><title>STRAY</title></item></channel></rss>"
            ).encode().replace(b"STRAY", STRAY)
    parsed = parse_feed(data, "f", "f", "https://example.org/", content_type)
    assert [i.title for i in parsed.items] == [*ARABIC_TITLES, "Sirte port fees rise to 5€"]
    assert parsed.problem == "1 byte(s) not UTF-8 in a UTF-8 document, read as Windows-1252"


def test_a_json_feed_with_a_stray_byte_keeps_its_text() -> None:
    data = ('{"version": "https://jsonfeed.org/version/1.1", "title": "t", "items": ['
            f'{{"id": "1", "title": "{ARABIC_TITLES[0]}"}}, {{"id": "2", "title": "STRAY"}}]}}'
            ).encode().replace(b"STRAY", STRAY)
    parsed = parse_feed(data, "f", "f", "https://example.org/")
    assert [i.title for i in parsed.items] == [ARABIC_TITLES[0], "Sirte port fees rise to 5€"]
    assert parsed.problem == "1 byte(s) not UTF-8 in a UTF-8 document, read as Windows-1252"


def test_a_json_feed_that_json_reads_as_utf16_is_an_invalid_feed() -> None:
    # A NUL as second byte makes json decode as UTF-16; the bytes are valid UTF-8, so
    # there is nothing to repair (it was parsed again and again, to a RecursionError).
    for data in (b'{\x00"version":1}x', b'{\x00\x00\x00"a"'):
        parsed = parse_feed(data, "f", "f", "https://example.org/", "application/feed+json")
        assert parsed.items == () and parsed.problem is not None
        assert parsed.problem.startswith("parser: invalid JSON Feed: "), parsed.problem


@pytest.mark.parametrize("codec", ["cp1252", "cp1256", "gbk"])
def test_a_feed_wholly_in_another_charset_is_not_taken_for_utf8(codec: str) -> None:
    """Labelled UTF-8 but written in another codec: not UTF-8 with stray bytes, so read
    as before (feedparser's fallback), not byte by byte as Windows-1252."""
    text = {"cp1252": "Café naïve à Zürich, déjà vu", "cp1256": ARABIC_TITLES[0],
            "gbk": "会议在苏尔特举行"}[codec]
    assert mostly_utf8(text.encode(codec)) is None


# CJK feeds from chardet's test suite, each labelled in its XML declaration; the CP932 one
# holds vendor characters (～) that Python's strict shift_jis codec rejects, which without
# chardet left feedparser's ISO-8859-2 fallback: "‚ł‚ç‚Č‚é–hŠŚ‘Î".
@pytest.mark.parametrize(("name", "first_title"), [
    ("chardet__CP932__y-moto.com.xml", "さらなる防寒対策"),
    ("chardet__SHIFT_JIS__milliontimes.jp.xml", "ビルドとステアの違い"),
    ("chardet__EUC-KR__acnnewswire.net.xml", "JCB가 China UnionPay와 ATM"),
    ("chardet__GB2312__acnnewswire.net.xml", "JCB 与中国银联（China UnionPay）"),
    ("chardet__Big5__sinica.edu.tw.xml", "新年快樂"),
])
def test_cjk_feeds_are_read_as_browsers_read_them(name: str, first_title: str) -> None:
    parsed = parse_feed((FEEDS / name).read_bytes(), "f", "f", "https://example.org/")
    assert parsed.items[0].title.startswith(first_title)
    assert parsed.problem is None


@pytest.mark.parametrize(("content_type", "declared", "read_as"), [
    ("text/xml; charset=Shift_JIS", b"", "text/xml; charset=cp932"),
    (None, b'<?xml version="1.0" encoding="shift_jis"?>', "application/xml; charset=cp932"),
    ("application/rss+xml", b"<?xml version='1.0' encoding='EUC-KR'?>",
     "application/rss+xml; charset=cp949"),
    ("text/xml; charset=utf-8", b'<?xml version="1.0" encoding="gb2312"?>', None),
    (None, b'<?xml version="1.0" encoding="iso-8859-1"?>', None),
    (None, b"<rss>", None),
])
def test_only_labels_of_narrower_codecs_change_how_a_feed_is_read(
        content_type: str | None, declared: bytes, read_as: str | None) -> None:
    assert feeds_module._superset_type(declared + b"<rss/>", content_type) == read_as


@pytest.mark.parametrize(
    "data",
    [b"", b"<rss><channel><item><title>x", b"\x00\xff\xfe garbage", b"{not json",
     b"<html><body>Not a feed</body></html>"],
)
def test_broken_documents_report_a_problem_not_an_exception(data: bytes) -> None:
    parsed = parse_feed(data, "f", "f", "https://example.org/")
    assert parsed.problem


def _declaring(*declarations: str, title: str = "Haftar") -> bytes:
    subset = "\n".join(declarations)
    return (f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n{subset}\n]>\n<rss version="2.0"><channel>'
            f"<title>t</title><item><guid>1</guid><title>{title}</title></item></channel></rss>"
            ).encode()


@pytest.mark.parametrize(
    ("doc", "refused"),
    [
        (_declaring('<!ENTITY x SYSTEM "file:///etc/passwd">', title="Haftar &x;"),
         ['x (external: SYSTEM "file:///etc/passwd")']),
        (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
         b'<rss version="2.0"><channel><title>t</title><item><guid>1</guid>'
         b"<title>Haftar &x;</title></item></channel></rss>",  # all on one line: dropped silently
         ['x (external: SYSTEM "file:///etc/passwd")']),
        (_declaring('<!ENTITY % p SYSTEM "http://evil.example/x.dtd">', "%p;"),
         ['%p (external: SYSTEM "http://evil.example/x.dtd")']),
        (_declaring('<!ENTITY a "lol">', '<!ENTITY b "&a;&a;&a;&a;">', title="Haftar &b;"),
         ["b (built of other entities)"]),
        (_declaring(*(f'<!ENTITY e{i} PUBLIC "-//x//{i}" "http://e.example/{i}">'
                      for i in range(7))), None),  # five named, then a count
        (_declaring('<!ENTITY a "lol">', title="Haftar &a;"), []),  # plain text: read
        ((FEEDS / "chardet__KOI8-R__aif.ru.health.xml").read_bytes(), []),  # a public DTD
    ],
    ids=["xxe", "xxe-one-line", "parameter", "expansion", "many", "plain", "netscape-dtd"],
)
def test_refused_entities_are_named_in_the_problem(doc: bytes, refused: list[str] | None) -> None:
    parsed = parse_feed(doc, "f", "f", "https://example.org/")
    assert parsed.items and "root:" not in parsed.items[0].title  # /etc/passwd never read
    if refused is None:  # seven refused
        assert parsed.problem is not None
        assert parsed.problem.count("(external: PUBLIC") == 5
        assert "e4 (external" in parsed.problem and "and 2 more" in parsed.problem
    elif refused:
        assert parsed.problem is not None and parsed.problem.startswith(
            "XML entities refused, not read or expanded (an XXE attempt?): "
            + ", ".join(refused)), parsed.problem
    else:
        assert "entities refused" not in (parsed.problem or "")
    if b'<!ENTITY a "lol">' in doc and b"&b;" not in doc:
        assert parsed.items[0].title == "Haftar lol"


def test_no_corpus_feed_is_taken_for_an_entity_attempt() -> None:
    assert [p.name for p in ALL_FEEDS if feeds_module.refused_entities(p.read_bytes())] == []


def test_a_body_naming_a_local_file_is_not_read_as_that_file(tmp_path: Path) -> None:
    # A hostile server answers with the path of a feed on the daemon's own disk.
    local = tmp_path / "private.xml"
    local.write_bytes((FEEDS / ALL_FEEDS[0].name).read_bytes())
    assert parse_feed(local.read_bytes(), "f", "f", "https://example.org/").items
    parsed = parse_feed(str(local).encode(), "f", "f", "https://evil.example/feed")
    assert parsed.items == () and parsed.problem


def test_item_ids_guid_then_link_then_content() -> None:
    rss = b"""<rss version="2.0"><channel><title>t</title>
      <item><guid>1</guid><title>A</title><link>https://x.org/a?utm_source=rss#top</link></item>
      <item><title>B</title><link>https://X.org:443/b?id=7&amp;fbclid=zz</link></item>
      <item><title>C</title><description>only text</description></item>
    </channel></rss>"""
    a, b, c = parse_feed(rss, "feed-one", "f", "https://x.org/feed").items
    assert a.url == "https://x.org/a"
    assert b.url == "https://x.org/b?id=7"
    assert c.url == ""
    again = parse_feed(rss, "feed-one", "f", "https://x.org/feed").items
    assert [i.id for i in again] == [a.id, b.id, c.id]
    # GUIDs are scoped to their feed: feeds numbering items 1, 2, 3 do not collide.
    other = parse_feed(rss, "feed-two", "f", "https://y.org/feed").items
    assert other[0].id != a.id
    # Without a GUID the canonical link is the id, whichever feed carries it.
    assert other[1].id == b.id


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://Example.ORG/a/b?utm_medium=x&q=1#frag", "https://example.org/a/b?q=1"),
        ("http://example.org:80/", "http://example.org/"),
        ("http://example.org:8080/x?gclid=1", "http://example.org:8080/x"),
        ("https://example.org", "https://example.org/"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_relative_links_resolve_against_the_feed() -> None:
    assert canonical_url("/news/1", base="https://x.org/feed.xml") == "https://x.org/news/1"


# -- items already read are not parsed again (rule 5) -------------------------------------

TRUSTED = [p for p in ALL_FEEDS
           if parse_feed(p.read_bytes(), "f", "f", "https://example.org/").digests]


def test_most_corpus_feeds_split_into_their_items() -> None:
    # The rest are JSON feeds, empty or broken documents, and a UTF-16 one.
    assert len(TRUSTED) >= 89


@pytest.mark.parametrize("path", TRUSTED, ids=lambda p: p.name)
def test_known_items_are_skipped_and_the_rest_parse_the_same(path: Path) -> None:
    data = path.read_bytes()
    full = parse_feed(data, "f", "f", "https://example.org/")
    assert full.digests is not None
    # Every other item is known from an earlier poll: only the others are parsed.
    known = {digest: item.published.timestamp() if item.published else None
             for digest, item in list(zip(full.digests, full.items, strict=True))[::2]}
    part = parse_feed(data, "f", "f", "https://example.org/", known=known)
    # (Some feeds list an item twice: both copies are known.)
    rest = [(d, item) for d, item in zip(full.digests, full.items, strict=True) if d not in known]
    assert part.count == full.count
    assert part.items == tuple(item for _, item in rest)
    assert part.digests == tuple(d for d, _ in rest)
    assert dict(part.skipped) == known
    assert sorted(map(str, part.published())) == sorted(map(str, full.published()))
    assert (part.title, part.hint) == (full.title, full.hint)


def test_a_feed_that_only_changed_its_build_date_parses_no_item() -> None:
    def feed(build: str, items: int) -> bytes:
        body = "".join(f"<item><guid>{i}</guid><title>Item {i}</title></item>" for i in range(items))
        return (f'<rss version="2.0"><channel><title>t</title><lastBuildDate>{build}'
                f"</lastBuildDate>{body}</channel></rss>").encode()
    first = parse_feed(feed("Mon, 02 Mar 2026 10:00:00 GMT", 30), "f", "f", "https://x.org/")
    assert first.digests is not None
    known = dict.fromkeys(first.digests)
    again = parse_feed(feed("Mon, 02 Mar 2026 10:05:00 GMT", 30), "f", "f", "https://x.org/",
                       known=known)
    assert (again.items, again.count, again.title) == ((), 30, "t")
    grown = parse_feed(feed("Mon, 02 Mar 2026 10:10:00 GMT", 31), "f", "f", "https://x.org/",
                       known=known)
    assert [i.title for i in grown.items] == ["Item 30"]


@pytest.mark.parametrize(
    ("doc", "items"),
    [
        # Markup quoted in CDATA or a comment is not a tag.
        (b"<rss><channel><item><description><![CDATA[a </item> b <item>]]></description>"
         b"</item><!-- <item> --><item/></channel></rss>",
         [b"<item><description><![CDATA[a </item> b <item>]]></description></item>", b"<item/>"]),
        # Any namespace prefix; <items> (RSS 1.0's table of contents) is not an item.
        (b"<feed><atom:entry x='1'>a</atom:entry><items>no</items><entry >b</entry ></feed>",
         [b"<atom:entry x='1'>a</atom:entry>", b"<entry >b</entry >"]),
        (b"<rss><item><item>nested</item></item></rss>", None),
        (b"<rss><item>a</item></item></rss>", None),
        (b"<rss><item>cut short", None),
        ("<rss><item>utf-16</item></rss>".encode("utf-16"), []),
    ],
)
def test_item_spans(doc: bytes, items: list[bytes] | None) -> None:
    spans = item_spans(doc)
    assert (None if spans is None else [doc[a:b] for a, b in spans]) == items


def test_a_split_that_disagrees_with_feedparser_is_not_trusted() -> None:
    # An extension element named "item" beside the items: four elements, three items.
    doc = (b'<rss version="2.0" xmlns:x="urn:x"><channel><title>t</title><x:item>extension'
           b"</x:item><item><guid>1</guid></item><item><guid>2</guid></item>"
           b"<item><guid>3</guid></item></channel></rss>")
    parsed = parse_feed(doc, "f", "f", "https://x.org/")
    assert len(parsed.items) == 3
    assert parsed.digests is None
    # Digests of some other document's items: the item with the same bytes is skipped,
    # and since the rest no longer split one to one, everything is parsed.
    other = parse_feed(b'<rss version="2.0"><channel><item><guid>1</guid></item></channel></rss>',
                       "f", "f", "https://x.org/")
    assert other.digests is not None
    again = parse_feed(doc, "f", "f", "https://x.org/", known=dict.fromkeys(other.digests))
    assert [i.id for i in again.items] == [i.id for i in parsed.items]


def test_parsing_looks_for_no_other_xml_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """feedparser would ask for the drv_libxml2 driver on every parse, and the failed
    import searched sys.path each time (monitor.feeds); expat parses alone."""
    asked: list[str] = []

    class Recorder:
        @staticmethod
        def find_spec(name: str, *args: object) -> None:
            asked.append(name)

    monkeypatch.setattr(sys, "meta_path", [Recorder(), *sys.meta_path])
    feed = FEEDS / "feedjira__AmazonWebServicesBlog.xml"
    parsed = parse_feed(feed.read_bytes(), "f1", "feed", "https://example.org/feed")
    assert parsed.items and parsed.problem is None
    assert "drv_libxml2" not in asked
