"""Matcher throughput, build time and memory at 1k, 10k and 100k terms, beside a `re` baseline.

Text: about 5 MB of real mixed text (bench/corpus.py: the seed, every corpus feed's titles
and summaries, every corpus page's extracted text), repeated to reach the size. Terms,
spread over 10 watchlists as entities (with aliases), keywords and phrases, about a third
Arabic-script, built from that text's own words in two mixes:
- dense: every term is a word or two-word phrase of the text, so nearly every document
  hits many terms (a worst case; real watchlists are mostly names an article lacks);
- names: 5% of the terms are such words and phrases; the rest are two-word names made of
  the text's words that do not occur in it, the way most of a large entity list does not
  occur in any one article.
Baseline: one Python `re` alternation with Unicode word boundaries over the same folded
text, timed on a slice (it is too slow for the whole) and reported in MB/s. Beside it,
the same matcher with the C scanner switched off (the ahocorasick-rs automaton that
installs without a C compiler use), over the whole text.

Matcher MB/s is the median of three passes over the whole text (this machine's speed
moves by tens of percent from one minute to the next); the first pass is printed too.

Run: python bench/match.py [--mb 5]
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import documents, size  # noqa: E402
from monitor import speedups  # noqa: E402
from monitor.config import WatchlistConfig  # noqa: E402
from monitor.match import Matcher  # noqa: E402
from monitor.text import fold, fold_term, is_arabic  # noqa: E402

WORD = re.compile(r"[^\W\d_]{3,}")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def vocabulary(docs: list[tuple[str, str]]) -> tuple[list[str], list[str], list[str]]:
    """Distinct Arabic-script words, other words, and two-word phrases of the text."""
    arabic: dict[str, None] = {}
    other: dict[str, None] = {}
    phrases: dict[str, None] = {}
    for title, body in docs:
        words = WORD.findall(f"{title} {body}")
        for word in words:
            (arabic if is_arabic(word[0]) else other).setdefault(word, None)
        for a, b in zip(words, words[1:], strict=False):
            phrases.setdefault(f"{a} {b}", None)
    return list(arabic), list(other), list(phrases)


def dense_terms(n: int, vocab: tuple[list[str], list[str], list[str]],
                rng: random.Random) -> list[str]:
    arabic, other, phrases = vocab
    picked = rng.sample(phrases, min(n // 5, len(phrases)))
    picked += rng.sample(arabic, min(n // 3, len(arabic)))
    picked += rng.sample(other, min(n - len(picked), len(other)))
    return picked


def name_terms(n: int, vocab: tuple[list[str], list[str], list[str]], rng: random.Random,
               present: set[str]) -> list[str]:
    arabic, other, _ = vocab
    picked = dense_terms(n // 20, vocab, rng)
    seen = set(picked)
    while len(picked) < n:
        words = arabic if len(picked) % 3 == 0 else other
        name = f"{rng.choice(words)} {rng.choice(words)}"
        if name not in seen and fold_term(name) not in present:
            seen.add(name)
            picked.append(name)
    return picked


def watchlists(picked: list[str], rng: random.Random) -> list[WatchlistConfig]:
    picked = list(picked)
    rng.shuffle(picked)
    lists = []
    per_list = len(picked) // 10
    for i in range(10):
        terms = picked[i * per_list:(i + 1) * per_list]
        third = len(terms) // 3
        entities = [{"name": terms[j], "aliases": [terms[j + 1]], "weight": 2}
                    for j in range(0, third - 1, 2)]
        lists.append(WatchlistConfig.model_validate({
            "name": f"w{i}", "threshold": 3, "entities": entities,
            "keywords": [{"term": t, "weight": 1} for t in terms[third:2 * third]],
            "phrases": [{"term": t, "weight": 2} for t in terms[2 * third:]],
        }))
    return lists


def bench_matcher(lists: list[WatchlistConfig], docs: list[tuple[str, str]], mb: float,
                  passes: int = 3, native: bool = True
                  ) -> tuple[float, float, float, float, int, int]:
    """MB/s, the median of `passes` passes over the text and the first pass's alone (it
    also pays for what the matcher makes on first use and the first collection after the
    build); build seconds and MB; terms; matches per pass."""
    gc.collect()
    before = rss_mb()
    started = time.perf_counter()
    matcher = Matcher(lists, native=native)
    build = time.perf_counter() - started
    gc.collect()
    memory = rss_mb() - before
    speeds = []
    for _ in range(passes):
        started = time.perf_counter()
        matched = 0
        for title, body in docs:
            matched += len(matcher.matches(title, body))
        speeds.append(mb / (time.perf_counter() - started))
    return (statistics.median(speeds), speeds[0], build, memory, matcher.term_count, matched)


def bench_automaton(lists: list[WatchlistConfig], docs: list[tuple[str, str]],
                    mb: float) -> tuple[float, float]:
    """bench_matcher's median MB/s and build time with the C scanner and hits switched off."""
    speed, _, build, *_ = bench_matcher(lists, docs, mb, native=False)
    return speed, build


def bench_regex(lists: list[WatchlistConfig], docs: list[tuple[str, str]],
                budget_s: float = 4.0) -> float:
    terms = {fold_term(s) for wl in lists for e in wl.entities for s in e.spellings}
    terms |= {fold_term(t.term) for wl in lists for t in (*wl.keywords, *wl.phrases)}
    alternation = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
    pattern = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)")
    done = 0
    started = time.perf_counter()
    for title, body in docs:
        for text in (title, body):
            for _ in pattern.finditer(fold(text)):
                pass
        done += len(title.encode()) + len(body.encode())
        if time.perf_counter() - started > budget_s:
            break
    return done / 1e6 / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=5.0, help="text size to match")
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    base = list(documents())
    docs = list(base)
    while size(docs) < args.mb * 1e6:
        docs += base
    mb = size(docs) / 1e6
    vocab = vocabulary(base)
    present = {fold_term(p) for p in vocab[2]}
    print(f"text: {mb:.1f} MB in {len(docs)} documents ({size(base) / 1e6:.2f} MB distinct); "
          f"vocabulary: {len(vocab[0])} Arabic-script words, {len(vocab[1])} other, "
          f"{len(vocab[2])} phrases")
    print("scanner: " + ("C (monitor/match/_scan.c)" if speedups.in_use("monitor.match._scan") else
                         "automaton (the C extension was not built)"))
    print(f"{'mix':>6} {'terms':>8} {'monitor MB/s':>13} {'1st pass':>9} {'re MB/s':>9} {'ratio':>7} "
          f"{'build s':>8} {'build MB':>9} {'keys':>7} {'matches':>8} "
          f"{'automaton MB/s':>15} {'its build s':>12}")
    for mix in ("names", "dense"):
        for n in (int(x) for x in args.sizes.split(",")):
            rng = random.Random(n)
            terms = (name_terms(n, vocab, rng, present) if mix == "names"
                     else dense_terms(n, vocab, rng))
            lists = watchlists(terms, rng)
            speed, first, build, memory, keys, matched = bench_matcher(lists, docs, mb)
            baseline = bench_regex(lists, docs)
            automaton, automaton_build = bench_automaton(lists, docs, mb)
            print(f"{mix:>6} {n:>8} {speed:>13.1f} {first:>9.1f} {baseline:>9.2f} "
                  f"{speed / baseline:>6.0f}x "
                  f"{build:>8.2f} {memory:>9.1f} {keys:>7} {matched:>8} {automaton:>15.1f} "
                  f"{automaton_build:>12.2f}")


if __name__ == "__main__":
    main()
