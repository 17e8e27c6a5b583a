"""Feed documents made to issue 23's descriptions of real feeds that lost alerts, built
from real feeds' items where the shape allows (tests/data/feeds): episodes whose notes are
mostly one sponsor list, comparison posts with a templated teaser, posts whose text is
mostly a widget's leaked script, and a blog whose posts are anchors on one page a day.
The made parts (sponsor list, teaser, script) are written to the shapes described; the
dates are recent, so that a daemon's max age keeps the items."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from monitor.feeds import parse_feed

FEEDS = Path(__file__).resolve().parent / "data" / "feeds"

# About 80 words, as a podcast's notes repeat them under every episode.
SPONSORS = (
    "This episode is brought to you by Squarespace: whether you need a landing page, a "
    "gallery, a blog or an online store, head to squarespace.com/bombcast for a free trial "
    "and use the offer code BOMBCAST to save ten percent off your first purchase. Thanks "
    "also to Audible: get a free audiobook with a thirty day trial at audible.com/bombcast. "
    "And to ExpressVPN: get three extra months free at expressvpn.com/bombcast. See the "
    "full sponsor list and every promo code at giantbomb.com/sponsors.")

TEASER = (
    "{x} vs. {y}: which one should you pick for your observability stack? In this "
    "comparison we look at how {x} and {y} handle data ingestion, the query language, "
    "storage costs, high availability and scaling, and what it takes to run each of them "
    "in production. We cover the strengths and the trade-offs of both, with benchmarks "
    "from our own test cluster, so that you can decide with numbers instead of marketing "
    "claims. {own} Read on for the full comparison, or skip to the summary table at the end.")
COMPARISONS = [
    ("Loki", "Elasticsearch", "Loki indexes only labels and keeps log lines in object "
     "storage chunks, so its index stays a hundred times smaller than a full text index "
     "while grep style queries scan the chunks they need."),
    ("VictoriaMetrics", "Graphite", "VictoriaMetrics speaks PromQL and the Graphite "
     "plaintext protocol alike, compresses samples to under a byte each, and replaces the "
     "carbon relay and whisper files with a single binary."),
    ("ClickHouse", "Elasticsearch", "ClickHouse stores logs in columns sorted by time and "
     "service, answers aggregations over billions of rows in a second, and needs a schema "
     "where the search engine takes any document you send it."),
    ("Prometheus", "Graphite", "Prometheus pulls metrics from targets it discovers, keeps "
     "labels as first class dimensions, and alerts from the same rules that power its "
     "dashboards, while Graphite waits for pushes of dotted metric names."),
    ("OpenSearch", "Elasticsearch", "OpenSearch forked from version seven point ten under "
     "the Apache license, ships security and alerting plugins for free, and has drifted "
     "apart in its vector search and its observability dashboards since."),
    ("InfluxDB", "Graphite", "InfluxDB keeps tags and fields in a time structured merge "
     "tree, downsamples with tasks written in Flux or SQL, and holds irregular events that "
     "a fixed retention schema of whisper archives cannot."),
    ("TimescaleDB", "InfluxDB", "TimescaleDB is PostgreSQL with hypertables, so joins "
     "against your business tables, foreign keys and every Postgres extension keep "
     "working on the metrics next to them."),
    ("Mimir", "Thanos", "Mimir shards series across ingesters by a hash ring and compacts "
     "blocks in a split and merge scheme, while Thanos sidecars upload each Prometheus "
     "server's blocks to a bucket and query them where they lie."),
]

# A social widget's loader and styles, as a CMS that dropped the tags around them leaves
# them in an item's text (about 170 words once folded).
WIDGET = (
    "window.twttr = (function(d, s, id) { var js, fjs = d.getElementsByTagName(s)[0], "
    "t = window.twttr || {}; if (d.getElementById(id)) return t; js = d.createElement(s); "
    "js.id = id; js.src = \"https://platform.twitter.com/widgets.js\"; "
    "fjs.parentNode.insertBefore(js, fjs); t._e = []; t.ready = function(f) { "
    "t._e.push(f); }; return t; }(document, \"script\", \"twitter-wjs\")); "
    ".twitter-tweet { margin: 10px auto !important; max-width: 550px; } .instagram-media "
    "{ background: #FFF; border: 0; border-radius: 3px; box-shadow: 0 0 1px 0 "
    "rgba(0,0,0,0.5), 0 1px 10px 0 rgba(0,0,0,0.15); margin: 1px; max-width: 540px; "
    "min-width: 326px; padding: 0; width: calc(100% - 2px); } (function(i, s, o, g, r, a, "
    "m) { i['GoogleAnalyticsObject'] = r; i[r] = i[r] || function() { (i[r].q = i[r].q || "
    "[]).push(arguments) }, i[r].l = 1 * new Date(); a = s.createElement(o), m = "
    "s.getElementsByTagName(o)[0]; a.async = 1; a.src = g; m.parentNode.insertBefore(a, m) "
    "})(window, document, 'script', 'https://www.google-analytics.com/analytics.js', 'ga'); "
    "ga('create', 'UA-12345678-1', 'auto'); ga('send', 'pageview');")


def rss(items: list[dict[str, str]], title: str = "Made feed") -> bytes:
    """An RSS 2.0 document of items (guid, title, link, description, and pubDate, else an
    hour apart from now backwards)."""
    now = datetime.now(UTC)
    body = "".join(
        "<item>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in {
            "pubDate": format_datetime(now - timedelta(hours=i), usegmt=True), **item}.items()
            if v) + "</item>"
        for i, item in enumerate(items))
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{escape(title)}</title><link>https://example.org/</link>{body}"
            f"</channel></rss>").encode()


def podcast_with_sponsors(episodes: int = 30) -> bytes:
    """Giant Bombcast's real episodes, each note followed by one sponsor list."""
    real = parse_feed((FEEDS / "rss-parser__giantbomb-podcast.rss").read_bytes(), "f", "f",
                      "https://www.giantbomb.com/")
    return rss([{"guid": item.url, "title": item.title, "link": item.url,
                 "description": f"<p>{escape(item.summary)}</p><p>{SPONSORS}</p>"}
                for item in real.items[:episodes]], "Giant Bombcast")


def comparison_teasers() -> bytes:
    """Comparison posts whose teaser is one template with the products' names in it."""
    return rss([{"guid": f"https://blog.example.org/?p={100 + i}", "title": f"{x} vs. {y}",
                 "link": f"https://blog.example.org/{x.lower()}-vs-{y.lower()}/",
                 "description": TEASER.format(x=x, y=y, own=own)}
                for i, (x, y, own) in enumerate(COMPARISONS)], "Observability blog")


def leaked_widget(posts: int = 8) -> bytes:
    """Short posts of a real feed (heise's German items: their titles, their first words)
    whose text is otherwise a widget's script left behind by the CMS."""
    real = parse_feed((FEEDS / "miniflux__encoding_ISO-8859-1.xml").read_bytes(), "f", "f",
                      "https://www.heise.de/")
    return rss([{"guid": item.url, "title": item.title, "link": item.url,
                 "description": " ".join(item.summary.split()[:12]) + " " + WIDGET}
                for item in real.items[:posts]], "heise online")


def anchor_posts(days: int = 7, per_day: int = 7) -> tuple[bytes, int]:
    """A blog whose posts are anchors on one page a day (`.../2017/06/26.html#a080605`),
    untitled, each post's GUID its link, their texts a real feed's (the Guardian's); and
    the number of posts."""
    real = parse_feed((FEEDS / "rss-parser__guardian.rss").read_bytes(), "f", "f",
                      "https://www.theguardian.com/")
    texts = [item.title + ". " + item.summary for item in real.items]
    assert len(texts) >= days * per_day
    items = []
    for day in range(days):
        for post in range(per_day):
            link = f"http://scripting.com/2017/06/{26 - day:02d}.html#a{8 + post:02d}0605"
            items.append({"guid": link, "link": link,
                          "description": texts[day * per_day + post]})
    return rss(items, "Scripting News"), len(items)


def json_feed(items: list[dict[str, object]]) -> bytes:
    """A JSON Feed 1.1 document; a str value may hold a lone surrogate, written as its
    \\u escape (json.dumps with ensure_ascii), as real feeds carry it."""
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "JSON",
                       "items": items}).encode()
