"""The optional C speed-ups, chosen in this one place by one switch: MONITOR_SPEEDUPS.

1. `auto` (the default) runs each C module that setup.py built, and its Python path (to
   the same results, more slowly) where it was not built; `off` runs every Python path.
2. The switch is read from the process environment once, when monitor is imported,
   because the stages bind their functions at import. An unknown value counts as `auto`
   here; Settings rejects it when the CLI starts.
3. Every stage asks `load` for its C module, so `describe` tells what runs: the daemon
   logs it at start and `monitor --version` prints it.

A leaf: it imports nothing of monitor.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

MODES = ("auto", "off")

# Every C module, beside the Python module that loads it (its owner).
MODULES: dict[str, str] = {
    "monitor._fold": "monitor.text",
    "monitor.match._scan": "monitor.match",
    "monitor.match._explain": "monitor.match",
    "monitor.dedup._minhash": "monitor.dedup",
    "monitor.extract._forest": "monitor.extract.model",
}


def _mode() -> str:
    value = os.environ.get("MONITOR_SPEEDUPS", "auto").strip().lower()
    return value if value in MODES else "auto"


MODE = _mode()
_loaded: dict[str, bool] = {}


def load(name: str) -> ModuleType | None:
    """The C module `name` (one of MODULES), or None where the switch is off or it was
    not built; the caller then takes its Python path."""
    if name not in MODULES:
        raise KeyError(f"unknown speed-up {name!r}")
    module: ModuleType | None = None
    if MODE != "off":
        try:
            module = importlib.import_module(name)
        except ImportError:  # pragma: no cover - installs without a C compiler
            module = None
    _loaded[name] = module is not None
    return module


def in_use(name: str) -> bool:
    """Whether the C module `name` runs (False before its stage was imported)."""
    return _loaded.get(name, False)


def describe() -> str:
    """One line that tells which path runs, for the start log and `monitor --version`."""
    for name, owner in MODULES.items():  # each owner makes its choice as it is imported
        if name not in _loaded:
            importlib.import_module(owner)
    on = [name.rsplit(".", 1)[1] for name in MODULES if _loaded.get(name)]
    off = [name.rsplit(".", 1)[1] for name in MODULES if not _loaded.get(name)]
    if MODE == "off":
        return "speedups: off (MONITOR_SPEEDUPS=off): Python paths only"
    if not off:
        return "speedups: auto: C " + ", ".join(on)
    return ("speedups: auto: C " + (", ".join(on) or "none") + "; Python " + ", ".join(off)
            + " (not built)")
