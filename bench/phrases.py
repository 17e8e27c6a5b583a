"""Share of word-for-word phrases of real articles that alert, through `monitor check --json`.

The way issue 24 measured phrases: take phrases of 3-6 words copied word for word from
monitor's own extracted text of real pages (the WCXB dev article pages and the corpus
pages), write one watchlist per phrase (the phrase alone, threshold 1) into a config dir
per page, run `monitor --config-dir DIR check PAGE --json` on the page (in process, through
monitor.cli.main, so the path is the command's), and count the phrases whose watchlist
matched with a phrase hit. Each phrase is tried twice: word for word, and as its words
alone joined by spaces (what tells a sentence end from an abbreviation dot: a phrase
written with the stop of its own may run across it).

Phrases, per page, drawn with a fixed seed from its text's lines (each line is one block of
the article): up to 3 with punctuation between two of their words and 1 without. Each
is put in one class by what stands between its words:
- plain: spaces only (the control: these always matched);
- inside: punctuation, but no `. ! ? ؟ 。 …` followed by white space (commas, hyphens,
  apostrophes, quotes, colons, dots inside a word such as D.C or 3.5);
- dot: a `.` or `…` followed by white space between two words, which is a sentence end or
  an abbreviation ("St. Louis", "U.S. Army"): those whose words alone match are
  printed, so the split can be read;
- end: `! ? ؟` followed by white space, or `。` (sentence ends: their words alone should
  not match, unless a comma or a lower-case word follows the stop).

Run: python bench/phrases.py [--repo PATH] [--pages N] [--show 30]
`--repo` imports monitor from another checkout (the same phrases are drawn: they depend
only on the extracted text), so two commits can be compared with the same phrases.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import random
import re
import sys
import tempfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
WORD = re.compile(r"[\w#&@+]+")  # a word as monitor folds it: + # & @ belong to it
END = re.compile(r"[!?؟]\S*\s|[。｡！？]")
DOT = re.compile(r"[.…]\S*\s")


def pages(corpus: Path, limit: int) -> list[Path]:
    wcxb = corpus / "wcxb-dev"
    kinds = {}
    with gzip.open(wcxb / "ground-truth.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            kinds[row["id"]] = row["type"]
    found = [p for p in sorted((wcxb / "html").glob("*.html.gz"))
             if kinds.get(p.name.split(".")[0]) == "article"]
    found += sorted((corpus / "pages").glob("*.html"))
    return found[:limit]


def classify(between: list[str]) -> str:
    """The class (see the module docstring) of a phrase by what stands between its words."""
    if all(not gap.strip() for gap in between):
        return "plain"
    if any(END.search(gap) for gap in between):
        return "end"
    if any(DOT.search(gap) for gap in between):
        return "dot"
    return "inside"


def draw(text: str, rng: random.Random) -> list[tuple[str, str]]:
    """(class, phrase) pairs of one page's text."""
    candidates: dict[str, list[str]] = {"plain": [], "punctuated": []}
    for line in text.split("\n"):
        words = list(WORD.finditer(line))
        for i in range(len(words)):
            n = rng.randint(3, 6)
            if i + n > len(words):
                break
            span = words[i:i + n]
            between = [line[a.end():b.start()] for a, b in zip(span, span[1:], strict=False)]
            phrase = line[span[0].start():span[-1].end()]
            plain = all(gap == " " for gap in between)
            candidates["plain" if plain else "punctuated"].append(phrase)
    picked = []
    for kind, count in (("punctuated", 3), ("plain", 1)):
        pool = candidates[kind]
        for phrase in rng.sample(pool, min(count, len(pool))):
            words = list(WORD.finditer(phrase))
            between = [phrase[a.end():b.start()] for a, b in zip(words, words[1:], strict=False)]
            picked.append((classify(between), phrase))
    return picked


def words_only(phrase: str) -> str:
    return " ".join(WORD.findall(phrase))


def check(page: Path, phrases: list[str], main: object) -> dict[str, tuple[bool, bool]]:
    """Per phrase, whether its watchlist matches with a phrase hit, written word for word
    and written as its words alone, by `monitor --config-dir DIR check PAGE --json`."""
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "config" / "watchlists").mkdir(parents=True)
        for i, phrase in enumerate(phrases):
            for name, term in ((f"p{i}", phrase), (f"w{i}", words_only(phrase))):
                (root / "config" / "watchlists" / f"{name}.yaml").write_text(yaml.safe_dump(
                    {"name": name, "threshold": 1, "phrases": [term]}, allow_unicode=True),
                    encoding="utf-8")
        target = root / page.name.removesuffix(".gz")
        data = page.read_bytes()
        target.write_bytes(gzip.decompress(data) if page.suffix == ".gz" else data)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["--config-dir", str(root / "config"), "check", str(target), "--json"])
        assert code == 0, f"check failed on {page}"
        result = json.loads(out.getvalue())
    matched = {m["watchlist"]: m["matched"] and any(h["kind"] == "phrase" for h in m["hits"])
               for m in result["matches"]}
    return {phrase: (matched[f"p{i}"], matched[f"w{i}"]) for i, phrase in enumerate(phrases)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--show", type=int, default=30, help="misses and dots to print")
    parser.add_argument("--json", type=Path, help="write every phrase and its result here")
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo.resolve()))
    import monitor
    from monitor.cli import main as cli_main
    from monitor.extract import extract

    rng = random.Random(24)
    rows = []
    for page in pages(args.corpus, args.pages):
        data = page.read_bytes()
        article = extract(gzip.decompress(data) if page.suffix == ".gz" else data, None)
        picked = draw(article.text, rng)
        if not picked:
            continue
        results = check(page, [phrase for _, phrase in picked], cli_main)
        for kind, phrase in picked:
            written, words = results[phrase]
            rows.append({"page": page.name, "class": kind, "phrase": phrase,
                         "matched": written, "words_matched": words})
    print(f"monitor from {Path(monitor.__file__).parent}")
    print(f"{'class':>8} {'phrases':>8} {'word for word':>14} {'words alone':>12}")
    for kind in ("plain", "inside", "dot", "end"):
        chosen = [r for r in rows if r["class"] == kind]
        written = sum(r["matched"] for r in chosen)
        words = sum(r["words_matched"] for r in chosen)
        print(f"{kind:>8} {len(chosen):>8} {written:>6} {written / max(len(chosen), 1):>7.1%} "
              f"{words:>4} {words / max(len(chosen), 1):>7.1%}")
    punctuated = [r for r in rows if r["class"] != "plain"]
    within = [r for r in rows if r["class"] in ("plain", "inside")]
    print(f"word for word, all with punctuation: {sum(r['matched'] for r in punctuated)}/"
          f"{len(punctuated)} = {sum(r['matched'] for r in punctuated) / max(len(punctuated), 1):.1%}"
          f"; inside a sentence (plain and inside): {sum(r['matched'] for r in within)}/"
          f"{len(within)} = {sum(r['matched'] for r in within) / max(len(within), 1):.1%}")
    for label, chosen in (
            ("misses inside a sentence", [r for r in within if not r["matched"]
                                          or not r["words_matched"]]),
            ("dot phrases whose words alone match (the dot read as an abbreviation)",
             [r for r in rows if r["class"] == "dot" and r["words_matched"]]),
            ("end phrases whose words alone match",
             [r for r in rows if r["class"] == "end" and r["words_matched"]]),
            ("dot and end phrases that miss word for word",
             [r for r in rows if r["class"] in ("dot", "end") and not r["matched"]])):
        print(f"\n{label} ({len(chosen)}):")
        for r in chosen[:args.show]:
            print(f"  {'MATCH' if r['matched'] else 'miss '} "
                  f"{'MATCH' if r['words_matched'] else 'miss '} {r['phrase']!r}")
    if args.json:
        args.json.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
