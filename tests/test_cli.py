from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitor.cli import main
from tests.servers import HTTPServer, Route

ROOT = Path(__file__).resolve().parent.parent
NOTICE = "Sorry, you need to enable JavaScript to visit this website."


def check_json(capsys: pytest.CaptureFixture[str], target: str) -> dict:  # type: ignore[type-arg]
    assert main(["--config-dir", str(ROOT / "config"), "check", target, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("seed", ["000_5789ac1c2e1f81f5.txt", "libya-sirte.html"])
def test_check_json_on_the_seed(capsys: pytest.CaptureFixture[str], seed: str) -> None:
    out = check_json(capsys, str(ROOT / "seeds" / seed))
    assert set(out) >= {"title", "text", "matches"}
    assert NOTICE not in out["text"] and "المزيد من العالم العربي" not in out["text"]
    assert out["title"].startswith('"الجيش الوطني" يؤكد صد هجوم')
    (libya,) = [m for m in out["matches"] if m["watchlist"] == "libya"]
    assert libya["matched"] and libya["score"] >= libya["threshold"]
    matched = {h["matched"] for h in libya["hits"]}
    assert {"حفتر", "سرت", "ترامب", "ترمب"} <= matched
    for hit in libya["hits"]:
        assert set(hit) >= {"term", "matched", "field"}
        source = out["title"] if hit["field"] == "title" else out["text"]
        assert source[hit["offset"]:hit["offset"] + len(hit["matched"])] == hit["matched"]
    assert sum(c["points"] for c in libya["breakdown"]) == libya["score"]


def test_check_human_output_explains_the_score(capsys: pytest.CaptureFixture[str]) -> None:
    seed = ROOT / "seeds" / "libya-sirte.html"
    assert main(["--config-dir", str(ROOT / "config"), "check", str(seed)]) == 0
    out = capsys.readouterr().out
    assert "[libya] MATCH: score 11.0 (threshold 5.0)" in out
    assert "+4  entity Sirte (weight 2 x title 2)" in out
    assert "entity 'Donald Trump' as 'ترمب': 'ترمب' in body" in out
    assert NOTICE not in out


def test_check_a_url(capsys: pytest.CaptureFixture[str], http_server: HTTPServer) -> None:
    page = (ROOT / "seeds" / "libya-sirte.html").read_bytes()
    http_server.routes["/a"] = Route(200, page, {"Content-Type": "text/html; charset=utf-8"})
    out = check_json(capsys, http_server.url("/a"))
    assert out["matches"][0]["matched"] and NOTICE not in out["text"]


def test_check_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config-dir", str(ROOT / "config"), "check", "/nonexistent.html"]) == 1
    assert "check: /nonexistent.html:" in capsys.readouterr().err
