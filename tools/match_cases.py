"""Runs the matcher cases of tests/data/match_cases.yaml end to end, as held-out cases are:
a config dir with one watchlist per case (its one term, threshold 1) and the case's text
in a file, through `monitor --config-dir DIR check FILE --json` in a process of its own,
comparing the text of the body hits of the case's match with the case's `hits`.

Run: python tools/match_cases.py [--repo PATH] [--cases FILE] [--in-process]
`--repo` runs the monitor of another checkout (its C extensions built in place), so the
same cases can be run on two commits.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "tests" / "data" / "match_cases.yaml"
RUNNER = "import sys; sys.path.insert(0, sys.argv.pop(1)); from monitor.cli import main; " \
         "raise SystemExit(main(sys.argv[1:]))"


def load(path: Path = CASES) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = yaml.safe_load(path.read_text("utf-8"))
    return cases


def watchlist(case: dict[str, Any]) -> dict[str, Any]:
    """The case's watchlist: its term, as a phrase or a keyword, threshold 1."""
    term: dict[str, Any] = {"term": str(case["term"])}
    if "case" in case:
        term["case"] = case["case"]
    return {"name": "case", "threshold": 1, ("phrases" if case.get("phrase") else "keywords"): [term]}


def body_hits(output: str | None) -> list[str] | None:
    if output is None:
        return None
    (result,) = json.loads(output)["matches"]
    return [hit["matched"] for hit in result["hits"] if hit["field"] == "body"]


def run(case: dict[str, Any], check: Callable[[list[str]], str | None]) -> list[str] | None:
    """The body hits of the case, by `check` (which runs the command on its arguments,
    None when it fails: a monitor that refuses the case's watchlist)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "config" / "watchlists").mkdir(parents=True)
        (root / "config" / "watchlists" / "case.yaml").write_text(
            yaml.safe_dump(watchlist(case), allow_unicode=True), encoding="utf-8")
        (root / "case.txt").write_text(str(case["text"]) + "\n", encoding="utf-8")
        return body_hits(check(["--config-dir", str(root / "config"), "check",
                                str(root / "case.txt"), "--json"]))


def in_process(argv: list[str]) -> str | None:
    from monitor.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    return out.getvalue() if code == 0 else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, default=ROOT)
    parser.add_argument("--cases", type=Path, default=CASES)
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--json", type=Path, help="write each case's verdict here")
    args = parser.parse_args()
    repo = str(args.repo.resolve())

    def subprocess_check(argv: list[str]) -> str | None:
        done = subprocess.run([sys.executable, "-c", RUNNER, repo, *argv], capture_output=True,
                              text=True, check=False, cwd="/")
        return done.stdout if done.returncode == 0 else None

    if args.in_process:
        sys.path.insert(0, repo)
    check = in_process if args.in_process else subprocess_check
    verdicts = []
    for case in load(args.cases):
        got = run(case, check)
        verdicts.append({**case, "got": got, "passed": got == case["hits"]})
    by_script: dict[str, list[int]] = {}
    for v in verdicts:
        by_script.setdefault(v["script"], [0, 0])
        by_script[v["script"]][0] += v["passed"]
        by_script[v["script"]][1] += 1
    print(f"monitor from {repo}")
    for script, (passed, total) in by_script.items():
        print(f"  {script:>8}: {passed}/{total}")
    print(f"  {'all':>8}: {sum(v['passed'] for v in verdicts)}/{len(verdicts)}")
    for v in verdicts:
        if not v["passed"]:
            print(f"  FAIL {v['script']} {v['term']!r} in {v['text']!r}: {v['got']} "
                  f"(expected {v['hits']})")
    if args.json:
        args.json.write_text(json.dumps(verdicts, ensure_ascii=False, indent=1), "utf-8")


if __name__ == "__main__":
    main()
