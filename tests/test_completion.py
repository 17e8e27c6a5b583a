"""A command line like its peers (issue 27, point 4): options after the command, `--help`
listing commands one a line, completion scripts that the shells themselves accept and
that complete the commands and their options."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import main

ROOT = Path(__file__).resolve().parent.parent


def monitor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_config_dir_goes_before_or_after_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "feeds.yaml").write_text("feeds:\n  - url: https://example.org/feed\n")
    assert main(["validate", "--config-dir", str(tmp_path)]) == 0
    assert "config OK: 1 feeds" in capsys.readouterr().out
    assert main(["--config-dir", str(tmp_path / "nowhere"), "validate",
                 "--config-dir", str(tmp_path)]) == 0  # the later one wins


def test_help_lists_each_command_on_its_own_line() -> None:
    out = monitor("--help").stdout
    for command in ("run", "validate", "check", "backtest", "feeds", "story", "alerts",
                    "completion"):
        assert any(line.split()[:1] == [command] and len(line.split()) > 1
                   for line in out.splitlines()), command
    assert "Exit statuses" in out
    assert monitor("--version").stdout.startswith("monitor ")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_parse_in_their_shell(shell: str, tmp_path: Path) -> None:
    result = monitor("completion", shell)
    assert result.returncode == 0 and "backtest" in result.stdout
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")
    script = tmp_path / f"monitor.{shell}"
    script.write_text(result.stdout)
    assert subprocess.run([shell, "-n", str(script)], timeout=30).returncode == 0


def test_bash_completes_subcommands_and_options(tmp_path: Path) -> None:
    script = tmp_path / "monitor.bash"
    script.write_text(monitor("completion", "bash").stdout)
    probe = (f"source {script}; COMP_WORDS=(monitor feeds im); COMP_CWORD=2; "
             "_monitor_complete; echo \"${COMPREPLY[@]}\"; "
             "COMP_WORDS=(monitor backtest --w); COMP_CWORD=2; _monitor_complete; "
             "echo \"${COMPREPLY[@]}\"")
    lines = subprocess.run(["bash", "-c", probe], capture_output=True, text=True,
                           timeout=30).stdout.splitlines()
    assert lines == ["import", "--watchlist"]
