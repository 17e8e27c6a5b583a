"""`monitor backtest` over what a real daemon archived: it lists exactly the items that
`monitor check` matches one by one, Arabic and English, and `--compare` names the rule
that made a difference (issue 27, points 1 and 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import redis

from monitor.cli import main
from monitor.extract import extract
from monitor.store import Keys
from tests.conftest import DATA
from tests.daemon import Daemon, rss
from tests.servers import HTTPServer, Route

PAGES = ["newspaper__arabic_article.html", "newspaper__cnn_article.html",
         "newspaper__reuters.com1.html", "readability__bbc-1__source.html",
         "chardet__windows-1256-arabic___chromium_windows-1256_with_no_encoding_specified.html"]


def word(text: str, script: str) -> str:
    """A long word of `text` in the Arabic or the Latin script."""
    pattern = r"[\u0621-\u064a]{6,}" if script == "ar" else r"\b[A-Za-z]{9,}\b"
    return re.findall(pattern, text)[3]


def watchlist(directory: Path, threshold: int, terms: list[tuple[str, int]]) -> Path:
    (directory / "watchlists").mkdir(parents=True)
    keywords = "\n".join(f"  - {{term: {json.dumps(t, ensure_ascii=False)}, weight: {w}}}"
                         for t, w in terms)
    (directory / "watchlists" / "draft.yaml").write_text(
        f"name: draft\nthreshold: {threshold}\nkeywords:\n{keywords}\n", "utf-8")
    return directory


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(list(args)) == 0
    return capsys.readouterr().out


def test_backtest_lists_what_check_matches_and_compare_names_the_threshold(
    tmp_path: Path, redis_url: str, http_server: HTTPServer,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    items = []
    for i, name in enumerate(PAGES):
        http_server.routes[f"/page/{i}"] = Route(
            200, (DATA / "pages" / name).read_bytes(), {"Content-Type": "text/html"})
        items.append((f"item-{i}", f"Story {i}", http_server.url(f"/page/{i}")))
    http_server.routes["/feed.xml"] = Route(200, rss(items),
                                            {"Content-Type": "application/rss+xml"})
    config = tmp_path / "config"
    watchlist(config, 100, [("nothing-like-this", 1)])
    (config / "feeds.yaml").write_text(
        f"feeds:\n  - name: loop\n    url: {http_server.url('/feed.xml')}\n    scrape: true\n")
    env = {"MONITOR_REDIS_URL": redis_url, "MONITOR_CONFIG_DIR": str(config),
           "MONITOR_MAX_AGE_DAYS": "100000"}
    daemon = Daemon(tmp_path, env, ("run", "--once")).start()
    assert daemon.wait(timeout=120) == 0, daemon.log[-3000:]
    with redis.Redis.from_url(redis_url) as client:
        assert client.xlen(Keys().archive) == len(PAGES)

    for key, value in {**env, "MONITOR_ALLOW_PRIVATE_URLS": "true"}.items():
        monkeypatch.setenv(key, value)
    arabic = extract((DATA / "pages" / PAGES[0]).read_bytes(), None).text
    english = extract((DATA / "pages" / PAGES[1]).read_bytes(), None).text
    terms = [(word(arabic, "ar"), 1), (word(english, "en"), 3)]
    draft = watchlist(tmp_path / "draft", 1, terms)
    stricter = watchlist(tmp_path / "stricter", 2, terms)

    # check, one page at a time, as the daemon fetched them
    by_check = set()
    for _, _title, url in items:
        out = json.loads(run_cli(capsys, "check", url, "--json", "--config-dir", str(draft)))
        if any(m["matched"] for m in out["matches"]):
            by_check.add(url)
    assert http_server.url("/page/0") in by_check and http_server.url("/page/1") in by_check
    assert len(by_check) < len(items)  # not a catch-all

    report = json.loads(run_cli(capsys, "backtest", "--json", "--config-dir", str(draft)))
    assert report["items"] == len(PAGES)
    listed = {i["link"] for i in report["watchlists"]["draft"]["items"]}
    assert listed == by_check
    text = run_cli(capsys, "backtest", "--since", "1h", "--config-dir", str(draft))
    assert f"== draft: {len(by_check)} of {len(PAGES)} items" in text
    assert "[draft] MATCH: score" in text and f"draft {len(by_check)}" in text

    # a raised threshold: what the stricter draft loses against the first
    diff = json.loads(run_cli(capsys, "backtest", "--json", "--config-dir", str(stricter),
                              "--compare", str(draft)))
    lost = {c["link"]: c for c in diff["lost"]}
    expected = {url for url in by_check if any(
        m["score"] < 2 for m in json.loads(run_cli(
            capsys, "check", url, "--json", "--config-dir", str(draft)))["matches"])}
    assert diff["gained"] == [] and set(lost) == expected and expected
    assert all("threshold 1 -> 2" in c["reason"] for c in lost.values())
    # nothing was queued by any of it
    with redis.Redis.from_url(redis_url) as client:
        assert client.xlen(Keys().alerts) == 0
