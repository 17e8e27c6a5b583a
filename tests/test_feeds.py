from __future__ import annotations

from pathlib import Path

import pytest

from monitor.feeds import canonical_url, parse_feed

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


@pytest.mark.parametrize(
    "data",
    [b"", b"<rss><channel><item><title>x", b"\x00\xff\xfe garbage", b"{not json",
     b"<html><body>Not a feed</body></html>"],
)
def test_broken_documents_report_a_problem_not_an_exception(data: bytes) -> None:
    parsed = parse_feed(data, "f", "f", "https://example.org/")
    assert parsed.problem


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
