"""Runs `monitor` as a real subprocess for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

FAST_ENV = {
    "MONITOR_TICK_SECONDS": "0.2",
    "MONITOR_RELOAD_SECONDS": "0.3",
    "MONITOR_HTTP_TIMEOUT": "5",
    "MONITOR_LOG_FORMAT": "json",
    "MONITOR_LOG_LEVEL": "DEBUG",
    "MONITOR_DELIVERY_BACKOFF_BASE": "0.2",
    "MONITOR_DELIVERY_VISIBILITY_TIMEOUT": "5",
    "MONITOR_ALLOW_PRIVATE_URLS": "true",  # every test server is on loopback
    "MONITOR_HTTP_HOST_DELAY": "0",  # ... so every feed and page shares one host
}


def rss(items: list[tuple[str, str, str]]) -> bytes:
    """An RSS 2.0 document of (guid, title, link) items, published now."""
    now = format_datetime(datetime.now(UTC), usegmt=True)
    body = "".join(
        f"<item><guid>{escape(g)}</guid><title>{escape(t)}</title><link>{escape(link)}</link>"
        f"<description>{escape(t)}</description><pubDate>{now}</pubDate></item>"
        for g, t, link in items
    )
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Test feed</title>{body}</channel></rss>").encode()


class Daemon:
    def __init__(self, workdir: Path, env: dict[str, str], args: tuple[str, ...] = ("run",)):
        self.workdir = workdir
        self.env = {**os.environ, **FAST_ENV, **env}
        self.args = args
        self.log_path = workdir / f"daemon-{len(list(workdir.glob('daemon-*.log')))}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "monitor", *self.args],
                                     cwd=self.workdir, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    def wait(self, timeout: float = 60) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        self._log.close()
        return code

    @property
    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")
