"""The docs hold to the code: the site builds without a warning; every setting, YAML
field, command, Redis key and script is documented; the examples work on real input."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import time
import typing
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from monitor import config as config_module
from monitor.config import load_config, parse_duration
from monitor.deliver import WebhookSender, sign
from monitor.extract import extract
from monitor.match import Matcher
from monitor.models import Contribution
from monitor.settings import Settings
from monitor.store import scripts
from monitor.store.keys import Keys
from tests.servers import HTTPServer, Request, Route, SMTPServer
from tests.test_worker import SECRET, make_alert, worker_for

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
README_MAX_LINES = 150
# The YAML config models, each with the heading of its section on the configuration page.
MODEL_SECTIONS = {
    "_FileConfig": "## Config files",
    "FeedConfig": "## Feeds",
    "WatchlistConfig": "## Watchlists",
    "Term": "### Terms",
    "Entity": "### Entities",
    "Alias": "### Aliases",
    "Group": "### Rules",
    "SubscriberConfig": "## Subscribers",
}


def page(name: str) -> str:
    return (DOCS / name).read_text("utf-8")


def sections(text: str) -> dict[str, str]:
    """Heading line -> the text up to the next heading of any level (fenced code skipped)."""
    out: dict[str, list[str]] = {}
    current: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,6} ", line):
            current = out.setdefault(line.strip(), [])
            continue
        current.append(line)
    return {heading: "\n".join(lines) for heading, lines in out.items()}


def table(section: str) -> dict[str, list[str]]:
    """The rows of the tables in a section whose first cell is code: `key` -> cells."""
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 2:
            rows[cells[0].strip("`")] = cells
    return rows


def marked_block(text: str, marker: str) -> str:
    """The fenced code block between `<!-- marker -->` and `<!-- /marker -->`."""
    found = re.search(rf"<!-- {marker} -->\n```\w*\n(.*?)```\n<!-- /{marker} -->", text, re.S)
    assert found, f"no <!-- {marker} --> block"
    return found.group(1)


def literal(value: Any) -> str:
    """A default as the docs write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# -- (a) the site builds, strictly ------------------------------------------------------

def test_mkdocs_builds_strict_without_a_warning(tmp_path: Path) -> None:
    site = tmp_path / "site"
    # Material for MkDocs prints a notice about its end of life unless told not to; it is
    # not about these docs. Every warning of the build itself fails it (--strict) and here.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                             "--site-dir", str(site)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert not [line for line in output.splitlines() if "WARNING" in line or "ERROR" in line]
    pages = {p.stem for p in DOCS.glob("*.md")} - {"index"}
    assert {p for p in pages if not (site / p / "index.html").is_file()} == set()


# -- (b) configuration: settings and YAML fields ------------------------------------------

def env_names() -> dict[str, str]:
    """Each setting's environment variable -> its field name."""
    prefix = Settings.model_config.get("env_prefix", "")
    return {(prefix + name).upper(): name for name in Settings.model_fields}


def test_every_setting_is_documented_with_its_variable_and_default() -> None:
    rows = table(sections(page("configuration.md"))["## Process settings"])
    problems = []
    for variable, name in env_names().items():
        field = Settings.model_fields[name]
        if variable not in rows:
            problems.append(f"{variable} ({name}) is not in the process settings table")
            continue
        default = rows[variable][1]
        if field.default is None:
            if not default:
                problems.append(f"{variable}: say what it is when unset")
        elif f"`{literal(field.default)}`" not in default:
            problems.append(f"{variable}: documented default {default!r}, "
                            f"the code's is {literal(field.default)!r}")
    assert problems == []


def test_no_documented_variable_is_unknown_to_settings() -> None:
    known = set(env_names())
    files = [README, *DOCS.glob("*.md"), ROOT / "docker-compose.yml", ROOT / "Dockerfile",
             ROOT / "contrib" / "monitor.service"]
    unknown = set()
    for path in files:
        for found in re.finditer(r"MONITOR_[A-Z0-9_]+(\*)?", path.read_text("utf-8")):
            name = found.group(0).rstrip("*")
            if found.group(1) and any(k.startswith(name) for k in known):
                continue  # `MONITOR_SMTP_*`: a family of settings
            if name not in known:
                unknown.add(f"{path.name}: {name}")
    assert unknown == set()


def config_models() -> dict[str, type[BaseModel]]:
    """Every pydantic model a config file can hold, found from the top-level file model
    through the fields' types, so a model added to the config is found too."""
    found: dict[str, type[BaseModel]] = {}

    def walk(tp: Any) -> None:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if tp.__name__ in found:
                return
            found[tp.__name__] = tp
            for field in tp.model_fields.values():
                walk(field.annotation)
        for arg in typing.get_args(tp):
            walk(arg)

    walk(config_module._FileConfig)
    return found


def documents_default(cell: str, value: Any) -> bool:
    """Whether a default cell names `value`: as a literal, or a duration equal to it."""
    for token in re.findall(r"`([^`]+)`", cell):
        if token == literal(value):
            return True
        if isinstance(value, float) and not isinstance(value, bool):
            try:
                if parse_duration(token) == value:
                    return True
            except ValueError:
                continue
    return False


def test_every_yaml_field_is_documented_with_its_default() -> None:
    by_heading = sections(page("configuration.md"))
    models = config_models()
    assert set(models) == set(MODEL_SECTIONS), "map each config model to its section"
    problems = []
    for name, model in models.items():
        rows = table(by_heading[MODEL_SECTIONS[name]])
        for key, field in model.model_fields.items():
            if key not in rows:
                problems.append(f"{name}.{key} is not under {MODEL_SECTIONS[name]!r}")
                continue
            default = rows[key][1]
            if field.is_required():
                if "required" not in default:
                    problems.append(f"{name}.{key}: say it is required")
            elif field.default in (None, "", (), PydanticUndefined):
                if not default:
                    problems.append(f"{name}.{key}: say what it is when not given")
            elif not documents_default(default, field.default):
                problems.append(f"{name}.{key}: documented default {default!r}, the code's "
                                f"is {literal(field.default)!r}")
        extra = set(rows) - set(model.model_fields)
        if extra:
            problems.append(f"{name}: documented keys the model lacks: {sorted(extra)}")
    assert problems == []


# -- (c) the command line -----------------------------------------------------------------

def monitor_help(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "monitor", *args, "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def subcommands(help_text: str) -> list[str]:
    found = re.search(r"\{([a-z,]+)\}", help_text)
    return found.group(1).split(",") if found else []


OPTION = r"(?<![\w-])--[a-z][a-z-]*(?![\w-])"


def options(help_text: str) -> set[str]:
    return set(re.findall(OPTION, help_text)) - {"--help"}


def names(option: str, text: str) -> bool:
    return option in re.findall(OPTION, text)


def test_every_command_and_option_is_on_the_cli_page() -> None:
    text = page("cli.md")
    by_heading = sections(text)
    top = monitor_help()
    commands = subcommands(top)
    assert "run" in commands  # the help was read
    missing = sorted(o for o in options(top) if not names(o, text))
    for command in commands:
        heading = f"## monitor {command}"
        if heading not in by_heading:
            missing.append(heading)
            continue
        section = by_heading[heading]
        own = monitor_help(command)
        missing += [f"{command} {o}" for o in sorted(options(own)) if not names(o, section)]
        for nested in subcommands(own):
            if f"monitor {command} {nested}" not in section:
                missing.append(f"monitor {command} {nested}")
            missing += [f"{command} {nested} {o}"
                        for o in sorted(options(monitor_help(command, nested)))
                        if not names(o, section)]
    assert missing == []


# -- architecture: Redis keys and scripts ---------------------------------------------------

def test_every_redis_key_and_script_is_on_the_architecture_page() -> None:
    text = page("architecture.md")
    documented = {re.sub(r"<[^>]+>", "<x>", key)
                  for key in table(sections(text)["## Redis data"])}
    keys = Keys("p")
    missing = []
    for name, member in vars(Keys).items():
        if name.startswith("_") or not isinstance(member, property | type(Keys.seen)):
            continue
        if isinstance(member, property):
            value = getattr(keys, name)
        else:
            params = len(inspect.signature(member).parameters) - 1
            value = getattr(keys, name)(*["<x>"] * params)
        pattern = value.removeprefix("{p}:")
        if pattern not in documented:
            missing.append(pattern)
    names = [n for n, v in vars(scripts).items() if n.isupper() and not n.startswith("_")
             and isinstance(v, str)]
    assert names  # the scripts were found
    missing += [n for n in names if f"`{n}`" not in text]
    assert missing == []


# -- benchmarks: a command for each ----------------------------------------------------------

def test_every_benchmark_has_its_command_on_the_benchmarks_page() -> None:
    """A script under bench/ whose docstring says how to run it ("Run:") is a benchmark;
    the others (the feed server, the harness, the corpus reader) serve them."""
    commands = [line.split("|")[2] for line in page("benchmarks.md").splitlines()
                if line.startswith("| [")]
    benches = [path.name for path in sorted((ROOT / "bench").glob("*.py"))
               if "Run:" in (ast.get_docstring(ast.parse(path.read_text("utf-8"))) or "")]
    assert "extract.py" in benches
    assert [b for b in benches if not any(f"python bench/{b}" in c for c in commands)] == []


# -- delivery: the signature examples against a real webhook ---------------------------------

async def real_webhook(aredis: aioredis.Redis, http_server: HTTPServer,
                       smtp_server: SMTPServer) -> Request:
    """A webhook the delivery worker sent to a loopback server, as a receiver gets it."""
    http_server.routes["/hook"] = Route(204)
    alert = make_alert("hook")
    match = dataclasses.replace(alert.matches[0], breakdown=(
        Contribution("keyword Haftar", 2.0, "weight 1 x title 2"),))
    alert = dataclasses.replace(alert, matches=(match,), story=alert.item.id,
                                sources=(alert.item.url,))
    async with WebhookSender(timeout=5) as client:
        store, worker = await worker_for(aredis, http_server, smtp_server.port, client)
        assert await store.commit_item("item-1", [alert]) == 1
        await worker.drain()
    (request,) = http_server.received("/hook")
    return request


def shape(value: Any) -> Any:
    """The keys of a JSON value, nested; a list by its first element."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return None


async def test_the_signature_examples_verify_a_real_webhook(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer,
) -> None:
    request = await real_webhook(aredis, http_server, smtp_server)
    text = page("delivery.md")
    timestamp = request.headers["X-Monitor-Timestamp"]
    signature = request.headers["X-Monitor-Signature"]
    old = str(int(time.time()) - 301)
    cases = [  # secret, timestamp, body, signature, valid
        (SECRET, timestamp, request.body, signature, True),
        (SECRET, timestamp, request.body + b" ", signature, False),
        ("another-secret", timestamp, request.body, signature, False),
        (SECRET, old, request.body, sign(SECRET, old, request.body), False),
    ]
    namespace: dict[str, Any] = {}
    exec(compile(marked_block(text, "verify-python"), "delivery.md", "exec"), namespace)
    assert [namespace["verify"](*case[:4]) for case in cases] == [c[4] for c in cases]

    assert shape(json.loads(marked_block(text, "payload-example"))) == \
        shape(json.loads(request.body))


@pytest.mark.parametrize("program", ["node", "openssl"])
async def test_the_other_signature_examples_verify_a_real_webhook(
    aredis: aioredis.Redis, http_server: HTTPServer, smtp_server: SMTPServer, tmp_path: Path,
    program: str,
) -> None:
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed")
    request = await real_webhook(aredis, http_server, smtp_server)
    text = page("delivery.md")
    timestamp = request.headers["X-Monitor-Timestamp"]
    signature = request.headers["X-Monitor-Signature"]

    def verify(body: bytes, secret: str = SECRET) -> bool:
        (tmp_path / "body").write_bytes(body)
        if program == "node":
            (tmp_path / "verify.js").write_text(marked_block(text, "verify-node"), "utf-8")
            run = ["node", "-e", "const {verify} = require(process.argv[1]);"
                   "const body = require('fs').readFileSync(process.argv[2]);"
                   "process.exit(verify(process.argv[3], process.argv[4], body, "
                   "process.argv[5]) ? 0 : 1)",
                   str(tmp_path / "verify.js"), str(tmp_path / "body"), secret, timestamp,
                   signature]
        else:
            (tmp_path / "verify.sh").write_text(marked_block(text, "verify-shell"), "utf-8")
            run = ["sh", str(tmp_path / "verify.sh"), secret, timestamp, signature]
        with (tmp_path / "body").open("rb") as stdin:
            result = subprocess.run(run, stdin=stdin, capture_output=True, timeout=30)
        assert result.returncode in (0, 1), result.stderr
        return result.returncode == 0

    assert [verify(request.body), verify(request.body + b" "),
            verify(request.body, "another-secret")] == [True, False, False]


# -- the examples' scores, the README ---------------------------------------------------------

def seed_score(yaml_text: str, tmp_path: Path) -> float:
    """The score of a watchlist file's text on the seed article, as `monitor check` has it."""
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "watchlists" / "libya.yaml").write_text(yaml_text, "utf-8")
    config = load_config(tmp_path, {"LIBYA_HOOK_SECRET": "example"})
    article = extract((ROOT / "seeds" / "libya-sirte.html").read_bytes(), None)
    (result,) = Matcher(config.watchlists).evaluate(article.title, article.text)
    assert result.matched
    return result.match.score


def example_watchlist(text: str) -> str:
    found = re.search(r"```yaml\n(# config/watchlists/libya\.yaml\n.*?)```", text, re.S)
    assert found, "no config/watchlists/libya.yaml example"
    return found.group(1)


def test_the_documented_example_scores_what_the_matching_page_says(tmp_path: Path) -> None:
    said = re.search(r'<span id="seed-score">([\d.]+)</span>', page("matching.md"))
    assert said
    assert seed_score(example_watchlist(page("configuration.md")), tmp_path) == \
        float(said.group(1))


def test_the_readme_example_scores_what_the_readme_shows(tmp_path: Path) -> None:
    text = README.read_text("utf-8")
    shown = re.search(r"\[libya\] MATCH: score ([\d.]+)", text)
    assert shown
    assert seed_score(example_watchlist(text), tmp_path) == float(shown.group(1))


def test_readme_is_short_and_holds_the_commands_ci_runs() -> None:
    text = README.read_text("utf-8")
    assert len(text.splitlines()) <= README_MAX_LINES
    ci = (ROOT / ".ci" / "run").read_text("utf-8").strip().splitlines()[-1]
    assert f"```sh\n{ci}\n```" in text
    assert "```sh\npython3 -m venv .venv && .venv/bin/pip install -e . && " \
           ".venv/bin/monitor run\n```" in text


def test_readme_links_lead_to_files_that_exist() -> None:
    targets = [t.partition("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", README.read_text("utf-8"))
               if not re.match(r"[a-z]+://", t)]
    assert "docs/configuration.md" in targets
    assert [t for t in targets if not (ROOT / t).is_file()] == []
