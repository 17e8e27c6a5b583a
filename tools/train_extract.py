"""Train the extractor's block classifier (monitor/extract/data/blocks.json.gz) on WCXB
pages, and report how it does on pages it was not trained on.

Each page is read as monitor.extract reads it (the same blocks and feature rows); a block
is labelled article text when most of its word trigrams occur in the page's reviewed main
text (a block of one or two words: when it is a line of it). A LightGBM forest is fitted
on the blocks, each page weighing the same. Cross-validation folds split by site, so the
figures printed are those of sites the model has not seen; `--train-half` fits on one half
of the sites (bench/extract.py's halves) to check on the other.

Run: pip install -e '.[train]' && python tools/train_extract.py [--data DIR] [--folds 5]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.extract import WCXB, cases, half_of, load_wcxb, score, wcxb_score  # noqa: E402
from monitor.extract import assemble  # noqa: E402
from monitor.extract.features import NAMES  # noqa: E402
from monitor.extract.model import MODEL_FILE, Classifier, Forest  # noqa: E402
from monitor.extract.reader import Reading, read  # noqa: E402
from monitor.extract.rules import default_boilerplate  # noqa: E402

WORD = re.compile(r"\w+")
TESTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "wcxb"
SHIPPED = Path(__file__).resolve().parent.parent / "monitor" / "extract" / MODEL_FILE
PARAMS = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "max_depth": 8,
          "min_data_in_leaf": 40, "feature_fraction": 0.7, "bagging_fraction": 0.8,
          "bagging_freq": 1, "lambda_l2": 1.0, "verbose": -1, "seed": 7,
          "num_threads": 2, "deterministic": True, "force_row_wise": True}
ROUNDS = 250
CUT = 0.4


def labels(reading: Reading, truth: str) -> tuple[np.ndarray, np.ndarray]:
    """Per block: 1 if it is article text; and its weight (its words' share of the
    page's, so that each page weighs the same, as in the benchmark's mean)."""
    true_words = WORD.findall(truth.lower())
    trigrams = set(zip(true_words, true_words[1:], true_words[2:], strict=False))
    lines = {" ".join(WORD.findall(line.lower())) for line in truth.splitlines()}
    y, w = [], []
    for text in reading.blocks.texts:
        words = WORD.findall(text.lower())
        if len(words) >= 3:
            grams = list(zip(words, words[1:], words[2:], strict=False))
            y.append(sum(g in trigrams for g in grams) / len(grams) >= 0.5)
        else:
            y.append(bool(words) and " ".join(words) in lines)
        w.append(len(words) + 1)
    weights = np.asarray(w, dtype=np.float64)
    return np.asarray(y, dtype=np.float64), weights / weights.sum() * 100


def forest_dict(booster: Any) -> dict[str, Any]:
    """A LightGBM model as monitor.extract.model.Forest's flat node arrays."""
    out: dict[str, Any] = {"feature": [], "threshold": [], "left": [], "right": [],
                           "value": [], "roots": [], "depth": 0, "bias": 0.0}

    def add(node: dict[str, Any], depth: int) -> int:
        i = len(out["feature"])
        for key, value in (("feature", 0), ("threshold", 0.0), ("left", i), ("right", i),
                           ("value", 0.0)):
            out[key].append(value)
        if "leaf_value" in node:
            out["value"][i] = node["leaf_value"]
            out["depth"] = max(out["depth"], depth)
            return i
        assert node["decision_type"] == "<=", node["decision_type"]
        out["feature"][i] = node["split_feature"]
        out["threshold"][i] = node["threshold"]
        out["left"][i] = add(node["left_child"], depth + 1)
        out["right"][i] = add(node["right_child"], depth + 1)
        return i

    for tree in booster.dump_model()["tree_info"]:
        out["roots"].append(add(tree["tree_structure"], 0))
    return out


Page = dict[str, Any]


def _booster(pages: list[Page], key: str) -> Any:
    import lightgbm

    pages = [p for p in pages if not p["reserved"]]
    x = np.concatenate([p[key] for p in pages]).astype(np.float64)
    y = np.concatenate([p["y"] for p in pages])
    w = np.concatenate([p["w"] for p in pages])
    return lightgbm.train(PARAMS, lightgbm.Dataset(x, y, weight=w), ROUNDS)


def _forest(booster: Any) -> Forest:
    return Forest.from_dict(forest_dict(booster))


def fit(pages: list[Page]) -> tuple[Classifier, dict[str, Any]]:
    """The classifier fitted on `pages`, and the model file's contents."""
    raw = {"features": NAMES, "forest": forest_dict(_booster(pages, "x")), "cut": CUT}
    return Classifier.from_dict(raw), raw


def cross_validate(pages: list[Page], folds: int) -> list[str]:
    """Each page's text from the model fitted on the folds that do not hold its site."""
    out = {}
    for fold in range(folds):
        classifier = Classifier(_forest(_booster([p for p in pages if p["fold"] != fold],
                                                 "x")), CUT)
        for p in pages:
            if p["fold"] == fold:
                out[p["id"]] = assemble(p["reading"], classifier).body
    return [out.get(p["id"], "") for p in pages]


def texts(pages: list[Page], classifier: Classifier) -> list[str]:
    return [assemble(p["reading"], classifier).body if p["reading"] else "" for p in pages]


def reserved_sites() -> set[str]:
    """The sites of the pages that tests/test_extract.py checks: never trained on, so
    that the tests check the model on sites it has not seen."""
    path = TESTS / "ground-truth.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return {_site(json.loads(line)["url"]) for line in lines}


def load(data: Path, folds: int) -> list[Page]:
    """The WCXB pages, then the corpus pages of tests/data (bench/extract.py's, type
    "corpus", 2010s news and magazine pages), each read and labelled."""
    rules = default_boilerplate()
    reserved = reserved_sites()
    pages = []
    corpus = [{"id": stem, "url": f"https://{stem}/", "type": "corpus", "html": page,
               "main_content": truth} for stem, page, truth in cases()]
    for row in [*load_wcxb(data), *corpus]:
        url = row["url"] if row["type"] != "corpus" else None
        row["reading"] = reading = read(row["html"], url, rules)
        row["fold"] = _fold(row["url"], folds)
        row["reserved"] = _site(row["url"]) in reserved
        if reading is not None:
            row["y"], row["w"] = labels(reading, row["main_content"])
            row["x"] = reading.features
        pages.append(row)
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=WCXB)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--train-half", choices=["A", "B"],
                        help="fit on one half of the sites and score both halves")
    parser.add_argument("--check", action="store_true", help="cross-validate only")
    parser.add_argument("--out", type=Path, help="model file to write (default: the shipped "
                        "one; with --train-half, none unless given)")
    args = parser.parse_args()
    pages = load(args.data, args.folds)
    usable = [p for p in pages if p["reading"] is not None and len(p["y"])]
    print(f"{len(pages)} pages, {sum(len(p['y']) for p in usable)} blocks")
    if args.train_half:
        classifier, raw = fit([p for p in usable if half_of(p["url"]) == args.train_half])
        for half in "AB":
            part = [p for p in pages if half_of(p["url"]) == half]
            report(f"half {half}{' (trained on)' if half == args.train_half else ''}", part,
                   dict(zip([p["id"] for p in part], texts(part, classifier), strict=True)))
        if args.out:
            write(raw, args.out)
        return
    outputs = dict(zip([p["id"] for p in usable], cross_validate(usable, args.folds),
                       strict=True))
    report(f"{args.folds}-fold by site, held-out folds", pages, outputs)
    if args.check:
        return
    classifier, raw = fit(usable)
    write(raw, args.out or SHIPPED)
    report("in-sample", pages, dict(zip([p["id"] for p in pages], texts(pages, classifier),
                                        strict=True)))


def report(name: str, pages: list[Page], outputs: dict[str, str]) -> None:
    """WCXB's figures on its pages, bench/extract.py's 4-shingle F1 on the corpus's."""
    wcxb = [p for p in pages if p["type"] != "corpus"]
    corpus = [p for p in pages if p["type"] == "corpus"]
    print(f"{name}: WCXB", wcxb_score(wcxb, [outputs.get(p["id"], "") for p in wcxb]))
    f1 = score([outputs.get(p["id"], "") for p in corpus], [p["main_content"] for p in corpus])
    print(f"{name}: corpus pages ({len(corpus)}) precision {f1[0]:.3f} recall {f1[1]:.3f} "
          f"F1 {f1[2]:.3f}")


def write(raw: dict[str, Any], path: Path) -> None:
    path.write_bytes(gzip.compress(json.dumps(raw, separators=(",", ":")).encode(), 9,
                                   mtime=0))
    print("wrote", path, f"{path.stat().st_size:,} bytes")


def _site(url: str) -> str:
    return (urlsplit(url).hostname or "").removeprefix("www.")


def _fold(url: str, folds: int) -> int:
    return int(hashlib.sha1(_site(url).encode()).hexdigest(), 16) % folds


if __name__ == "__main__":
    main()
