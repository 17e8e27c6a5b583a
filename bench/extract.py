"""Article extraction quality and speed: monitor beside trafilatura and readability-lxml.

Pages: tests/data/pages with ground truth in tests/data/pages_expected (Readability.js's
expected HTML turned into text, newspaper's expected text), less two newspaper files that
hold a note instead of a text ("MISSED TINY PARAGRAPH AT THE VERY END"). Metric: text
split into words (white space; in scripts written without spaces, Chinese, Japanese and
Thai, each character is a word), each page compared as multisets of overlapping 4-word
shingles; precision
averaged over the pages where an extractor produced text, recall over all pages, F1 from
the two averages. Speed: pages per second over the same pages, several rounds, same run.

Like is compared with like: trafilatura and readability-lxml return the article body
without its headline, and the ground truth holds no headline for 43 of the 45 pages, so
monitor is scored on `Article.body`. `Article.text` leads with the headline (the daemon
matches and shows it that way); its score is printed on the row below.

Then the WCXB dev pages (../shared/corpus/wcxb-dev: 520 pages of 2025, seven page types,
reviewed main text), scored with that set's own score.py (mean over pages of word-level
F1, must-include and boilerplate snippets), monitor beside trafilatura (include_comments=
False, as score.py runs it) in the same run, per page type, on each half of the sites
(`half_of`: develop on one, check on the other) and on all. monitor's block model is
trained on these pages: `--model FILE` scores a model trained on one half only
(tools/train_extract.py --train-half A --out FILE), whose other half is then held out;
tools/train_extract.py prints the figures of cross-validation by site.

Run: pip install -e '.[bench]' && python bench/extract.py [--rounds 3] [--pages] [--model F]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import lxml.html

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.extract import extract  # noqa: E402
from monitor.page import decode_html  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
# The WCXB dev pages (2025, seven page types, reviewed main text): the shared corpus beside
# the checkout, as ../shared/corpus/wcxb-dev; its score.py is the benchmark's own metric.
WCXB = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "wcxb-dev"


def wcxb_metric(data: Path = WCXB) -> Any:
    """The benchmark's score.py, imported from the page set's folder."""
    spec = importlib.util.spec_from_file_location("wcxb_score", data / "score.py")
    assert spec is not None and spec.loader is not None, data
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_wcxb(data: Path = WCXB) -> list[dict[str, Any]]:
    """The page set's rows (id, url, type, main_content, with, without) with their html."""
    return list(wcxb_metric(data).load(data))


def half_of(url: str) -> str:
    """"A" or "B": a fixed split of the sites in two halves, so that rules developed on
    one half can be checked on sites of the other."""
    site = (urlsplit(url).hostname or "").removeprefix("www.")
    return "AB"[hashlib.sha1(site.encode()).digest()[0] & 1]


def wcxb_score(rows: list[dict[str, Any]], outputs: list[str], data: Path = WCXB
               ) -> dict[str, Any]:
    """The benchmark's figures for `outputs` (one text per row): mean F1, snippets found
    and kept, empty outputs, F1 per page type."""
    metric = wcxb_metric(data)
    per_type: dict[str, list[float]] = {}
    f1s, withs, withouts, empty = [], [], [], 0
    for row, text in zip(rows, outputs, strict=True):
        f1 = metric.page_prf(text, row["main_content"])[2]
        f1s.append(f1)
        per_type.setdefault(row["type"], []).append(f1)
        withs.append(metric.share_found(text, row["with"]))
        withouts.append(metric.share_found(text, row["without"]))
        empty += not text.strip()
    def mean(values: list[float]) -> float:
        return sum(values) / max(1, len(values))
    return {"pages": len(rows), "f1": round(mean(f1s), 4), "with": round(mean(withs), 4),
            "without": round(mean(withouts), 4), "empty": empty,
            "by_type": {t: round(mean(v), 4) for t, v in sorted(per_type.items())}}
BLOCKS = {"p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "br",
          "tr", "td", "th", "dd", "dt", "figcaption", "section", "article", "ul", "ol", "table"}


def html_to_text(html: str) -> str:
    """Readability's expected HTML as text: one line per block."""
    root = lxml.html.fromstring(html)
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag in BLOCKS:
            el.tail = "\n" + (el.tail or "")
    return root.text_content()


def cases() -> list[tuple[str, bytes, str]]:
    out = []
    for page in sorted((DATA / "pages").glob("*.html")):
        stem = page.stem.removesuffix("__source")
        txt = DATA / "pages_expected" / f"{stem}__expected.txt"
        html = DATA / "pages_expected" / f"{stem}__expected.html"
        if txt.exists():
            truth = txt.read_text("utf-8", errors="replace")
            if truth.strip().isupper() and len(truth.split()) < 20:
                print(f"skipped {stem}: its ground truth is a note: {truth.strip()!r}")
                continue
        elif html.exists():
            truth = html_to_text(html.read_text("utf-8", errors="replace"))
        else:
            continue
        out.append((stem, page.read_bytes(), truth))
    return out


# Scripts written without spaces have no white-space words: each character counts as one.
UNSPACED = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
WORD = re.compile(f"[{UNSPACED}]|[^\\s{UNSPACED}]+")


def shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    words = WORD.findall(text)
    if len(words) < n:
        return Counter([tuple(words)]) if words else Counter()
    return Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def score(outputs: list[str], truths: list[str]) -> tuple[float, float, float, list[float]]:
    precisions, recalls, per_page = [], [], []
    for got, want in zip(outputs, truths, strict=True):
        g, w = shingles(got), shingles(want)
        overlap = sum((g & w).values())
        recall = overlap / max(1, sum(w.values()))
        recalls.append(recall)
        if g:
            precision = overlap / sum(g.values())
            precisions.append(precision)
            per_page.append(2 * precision * recall / (precision + recall) if overlap else 0.0)
        else:
            per_page.append(0.0)
    p = sum(precisions) / max(1, len(precisions))
    r = sum(recalls) / len(recalls)
    return p, r, 2 * p * r / (p + r) if p + r else 0.0, per_page


def extractors() -> dict[str, Callable[[bytes], str]]:
    found: dict[str, Callable[[bytes], str]] = {"monitor": lambda page: extract(page).body}
    try:
        import trafilatura

        found["trafilatura"] = lambda page: trafilatura.extract(
            decode_html(page), include_comments=False) or ""
    except ImportError:
        print("trafilatura not installed: pip install -e '.[bench]'")
    try:
        from readability import Document

        found["readability-lxml"] = lambda page: html_to_text(
            Document(decode_html(page)).summary(html_partial=True))
    except ImportError:
        print("readability-lxml not installed: pip install -e '.[bench]'")
    return found


def wcxb_extractors(model: Path | None) -> dict[str, Callable[[str, str], str]]:
    """monitor (`.body`, with the shipped block model or `model`) and trafilatura as the
    benchmark's score.py runs it (include_comments=False), on the page's text and URL."""
    classifier = None
    if model is not None:
        import gzip
        import json

        from monitor.extract.model import Classifier

        classifier = Classifier.from_dict(json.loads(gzip.decompress(model.read_bytes())))

    def ours(html: str, url: str) -> str:
        if classifier is None:
            return extract(html, url=url).body
        from monitor.extract import assemble, default_boilerplate
        from monitor.extract.reader import read

        reading = read(html, url, default_boilerplate())
        return assemble(reading, classifier).body if reading else ""

    found: dict[str, Callable[[str, str], str]] = {"monitor": ours}
    try:
        import trafilatura

        found["trafilatura"] = lambda html, url: trafilatura.extract(
            html, include_comments=False) or ""
    except ImportError:
        print("trafilatura not installed: pip install -e '.[bench]'")
    return found


def wcxb_report(data: Path, model: Path | None) -> None:
    """F1 per page type on each half of the sites and on all, snippets and empty
    outputs on the articles, and pages/s, for monitor and trafilatura in one run."""
    rows = load_wcxb(data)
    outputs, rates = {}, {}
    for name, fn in wcxb_extractors(model).items():
        started = time.perf_counter()
        outputs[name] = [fn(row["html"], row["url"]) for row in rows]
        rates[name] = len(rows) / (time.perf_counter() - started)
    parts = {"A": [i for i, r in enumerate(rows) if half_of(r["url"]) == "A"],
             "B": [i for i, r in enumerate(rows) if half_of(r["url"]) == "B"],
             "all": list(range(len(rows)))}
    scores = {(name, part): wcxb_score([rows[i] for i in index],
                                       [outputs[name][i] for i in index], data)
              for name in outputs for part, index in parts.items()}
    names = list(outputs)
    print(f"\nWCXB dev ({len(rows)} pages), F1 by page type; halves A and B split the sites")
    print(f"{'type':<14}" + "".join(f"{n[:11] + ' ' + p:>17}" for n in names for p in parts))
    for kind in sorted({r["type"] for r in rows}) + ["all types"]:
        cells = [scores[(n, p)]["by_type"].get(kind) if kind != "all types"
                 else scores[(n, p)]["f1"] for n in names for p in parts]
        print(f"{kind:<14}" + "".join(f"{c:>17.3f}" if c is not None else f"{'':>17}"
                                      for c in cells))
    articles = [i for i, r in enumerate(rows) if r["type"] == "article"]
    for name in names:
        got = wcxb_score([rows[i] for i in articles], [outputs[name][i] for i in articles], data)
        print(f"{name}: articles F1 {got['f1']:.3f}, must-include snippets {got['with']:.1%}, "
              f"boilerplate snippets {got['without']:.1%}, empty {got['empty']}; "
              f"{rates[name]:.1f} pages/s")
    if "trafilatura" in outputs:
        lost = [rows[i]["id"] for i in range(len(rows)) if not outputs["monitor"][i].strip()
                and outputs["trafilatura"][i].strip()]
        print(f"monitor empty where trafilatura has text: {len(lost)} {lost[:10]}; speed "
              f"{rates['monitor'] / rates['trafilatura']:.2f}x trafilatura's")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds per extractor")
    parser.add_argument("--pages", action="store_true", help="print per-page F1")
    parser.add_argument("--only", help="one extractor: monitor, trafilatura, readability-lxml")
    parser.add_argument("--wcxb", type=Path, default=WCXB,
                        help="WCXB-format page set to report on as well (default: %(default)s)")
    parser.add_argument("--no-wcxb", action="store_true", help="the corpus pages only")
    parser.add_argument("--model", type=Path,
                        help="block model file to score on WCXB instead of the shipped one "
                             "(tools/train_extract.py --train-half A --out FILE)")
    args = parser.parse_args()
    data = cases()
    truths = [t for _, _, t in data]
    print(f"{len(data)} pages with ground truth")
    print(f"{'extractor':<18} {'precision':>9} {'recall':>7} {'F1':>6} {'pages/s':>8} {'speed':>6}")
    results = {}
    for name, fn in extractors().items():
        if args.only and name != args.only:
            continue
        outputs = [fn(page) for _, page, _ in data]  # warm-up and the quality run
        started = time.perf_counter()
        for _ in range(args.rounds):
            for _, page, _ in data:
                fn(page)
        rate = args.rounds * len(data) / (time.perf_counter() - started)
        results[name] = (score(outputs, truths), rate)
        if name == "monitor":
            texts = [extract(page).text for _, page, _ in data]
            results["monitor .text"] = (score(texts, truths), rate)
    base = results.get("trafilatura", results["monitor"])[1]
    for name, ((p, r, f1, _), rate) in results.items():
        print(f"{name:<18} {p:>9.3f} {r:>7.3f} {f1:>6.3f} {rate:>8.1f} {rate / base:>5.2f}x")
    if args.pages:
        names = list(results)
        print("\nper-page F1: " + "  ".join(names))
        for i, (stem, _, _) in enumerate(data):
            print(f"{stem:<45} " + "  ".join(f"{results[n][0][3][i]:.2f}" for n in names))
    if not args.no_wcxb and (args.wcxb / "ground-truth.jsonl.gz").exists():
        wcxb_report(args.wcxb, args.model)


if __name__ == "__main__":
    main()
