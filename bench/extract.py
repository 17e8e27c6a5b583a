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

Run: pip install -e '.[bench]' && python bench/extract.py [--rounds 3] [--pages]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import lxml.html

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.extract import extract  # noqa: E402
from monitor.page import decode_html  # noqa: E402

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
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
            decode_html(page)) or ""
    except ImportError:
        print("trafilatura not installed: pip install -e '.[bench]'")
    try:
        from readability import Document

        found["readability-lxml"] = lambda page: html_to_text(
            Document(decode_html(page)).summary(html_partial=True))
    except ImportError:
        print("readability-lxml not installed: pip install -e '.[bench]'")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds per extractor")
    parser.add_argument("--pages", action="store_true", help="print per-page F1")
    parser.add_argument("--only", help="one extractor: monitor, trafilatura, readability-lxml")
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


if __name__ == "__main__":
    main()
