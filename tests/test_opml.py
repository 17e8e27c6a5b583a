"""OPML in and out (issue 27, point 3): lists shaped as feed readers export them (OPML 2.0
spec, nested folders, `category`, `text` without `title`) import with every feed, folder
and title; feeds already configured are skipped and named; an export imports again to the
same feeds; hostile lists get the feeds' limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor import opml
from monitor.cli import main
from monitor.config import load_config

READER_EXPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions from a reader</title>
    <dateCreated>Mon, 01 Dec 2026 10:00:00 GMT</dateCreated></head>
  <body>
    <outline text="News" title="News">
      <outline text="World" title="World">
        <outline type="rss" text="BBC World" title="BBC World"
          xmlUrl="https://feeds.bbci.co.uk/news/world/rss.xml"
          htmlUrl="https://www.bbc.co.uk/news/world"/>
        <outline type="rss" text="&#x627;&#x644;&#x62C;&#x632;&#x64A;&#x631;&#x629;"
          xmlUrl="https://www.aljazeera.net/aljazeerarss/a7c186be/rss.xml?utm_source=x"/>
      </outline>
      <outline type="rss" text="Reuters" xmlUrl="https://www.reutersagency.com/feed/"/>
    </outline>
    <outline type="rss" title="Only a title" xmlUrl="https://example.org/atom.xml"
      category="/Tech/Linux,/Later"/>
    <outline type="rss" text="Not a feed URL" xmlUrl="ftp://example.org/feed"/>
  </body>
</opml>
"""


def test_a_reader_export_imports_every_feed_folder_and_title() -> None:
    found = opml.read(READER_EXPORT)
    assert found.title == "Subscriptions from a reader"
    by_url = {f.url: f for f in found.feeds}
    assert by_url["https://feeds.bbci.co.uk/news/world/rss.xml"] == opml.OPMLFeed(
        "https://feeds.bbci.co.uk/news/world/rss.xml", "BBC World", ("News/World",))
    assert by_url["https://www.aljazeera.net/aljazeerarss/a7c186be/rss.xml?utm_source=x"].name == "الجزيرة"
    assert by_url["https://www.reutersagency.com/feed/"].tags == ("News",)
    assert set(by_url["https://example.org/atom.xml"].tags) == {"Tech/Linux", "Later"}
    assert by_url["https://example.org/atom.xml"].name == "Only a title"
    assert len(found.feeds) == 4 and "no http(s) URL" in found.problem


def test_import_skips_configured_feeds_and_export_reimports_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "feeds.yaml").write_text(
        "feeds:\n  - name: Mine\n    url: https://feeds.bbci.co.uk/news/world/rss.xml?utm_medium=rss\n")
    source = tmp_path / "reader.opml"
    source.write_bytes(READER_EXPORT)
    assert main(["feeds", "import", str(source), "--config-dir", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "skipped (already configured as Mine): https://feeds.bbci.co.uk/news/world/rss.xml" \
        in err
    assert "imported 3 feeds" in out
    loaded = load_config(config)
    assert {f.name: f.tags for f in loaded.feeds} == {
        "Mine": (), "الجزيرة": ("News/World",), "Reuters": ("News",),
        "Only a title": ("Tech/Linux", "Later")}
    # a second import finds every feed configured, and will not overwrite
    assert main(["feeds", "import", str(source), "--config-dir", str(config)]) == 1

    exported = tmp_path / "out.opml"
    assert main(["--config-dir", str(config), "feeds", "export", str(exported)]) == 0
    assert b'<opml version="2.0">' in exported.read_bytes()
    again = opml.read(exported.read_bytes())
    assert {(f.url, f.name, f.tags) for f in again.feeds} == {
        (f.url, f.name, f.tags) for f in loaded.feeds}


def test_hostile_lists_get_the_limits_of_feeds(tmp_path: Path) -> None:
    bomb = (b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">'
            b'<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<opml version="2.0"><body><outline text="&c;&x;" '
            b'xmlUrl="https://example.org/feed"/></body></opml>')
    found = opml.read(bomb)
    (feed,) = found.feeds
    assert "aaaaaaaaaa" not in feed.name and "root:" not in feed.name
    assert "entities refused" in found.problem and "x (external" in found.problem
    with pytest.raises(opml.OPMLError, match="larger than"):
        opml.read(b" " * (opml.MAX_BYTES + 1))
    with pytest.raises(opml.OPMLError, match="no feeds"):
        opml.read(b"<opml version='2.0'><body/></opml>")
