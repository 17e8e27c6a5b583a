"""One switch for the C speed-ups (issue 28, point 1): MONITOR_SPEEDUPS=auto|off, the path
in use shown by `monitor --version` and the start log, and the same results either way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import speedups

ROOT = Path(__file__).resolve().parent.parent


def monitor(*args: str, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MONITOR_SPEEDUPS": mode}
    return subprocess.run([sys.executable, "-m", "monitor", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


def test_version_names_the_path_in_use() -> None:
    auto = monitor("--version", mode="auto")
    off = monitor("--version", mode="off")
    assert auto.returncode == off.returncode == 0
    assert "speedups: off" in off.stdout and "Python paths only" in off.stdout
    speedups.describe()  # imports every stage, as the CLI does
    built = [name for name in speedups.MODULES if speedups.in_use(name)]
    assert "speedups: auto" in auto.stdout and built  # setup.py builds them here
    for name in built:  # this process runs auto: what it loaded, the CLI names
        assert name.rsplit(".", 1)[1] in auto.stdout


@pytest.mark.parametrize("seed", ["libya-sirte.html", "000_5789ac1c2e1f81f5.txt"])
def test_off_gives_the_same_results_as_auto(seed: str) -> None:
    outputs = []
    for mode in ("auto", "off"):
        done = monitor("--config-dir", "config", "check", f"seeds/{seed}", "--json", mode=mode)
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    auto, off = outputs
    assert auto["text"] == off["text"] and auto["matches"] == off["matches"]
    assert any(m["matched"] for m in auto["matches"])


def test_off_loads_no_c_module() -> None:
    code = ("from monitor import speedups, text, match, dedup, extract; "
            "print(speedups.describe()); "
            "print([n for n in speedups.MODULES if speedups.in_use(n)])")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MONITOR_SPEEDUPS": "off"},
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines()[-1] == "[]"


def test_an_unknown_module_is_refused() -> None:
    with pytest.raises(KeyError):
        speedups.load("monitor._nothing")
