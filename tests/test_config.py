from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor import config as config_module
from monitor.cli import main
from monitor.config import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_PROBLEMS,
    load_config,
    parse_duration,
)
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


WATCHLIST = """\
    name: libya
    threshold: 5
    entities:
      - name: Khalifa Haftar
        aliases: [Haftar, حفتر]
        weight: 3
    keywords:
      - {term: وقف إطلاق النار, weight: 2}
      - ceasefire
    subscribers:
      - {webhook: "https://hooks.example.org/libya", secret: "${HOOK_SECRET}"}
      - email: desk@example.org
"""


def test_example_config_is_valid() -> None:
    config = load_config(ROOT / "config", {})
    assert config.feeds and config.watchlists and config.subscribers


def test_split_files_merge_and_inline_subscribers_subscribe(tmp_path: Path) -> None:
    write(tmp_path / "watchlists" / "libya.yaml", WATCHLIST)
    write(tmp_path / "feeds.yaml", """\
        feeds:
          - {url: "https://example.org/feed.xml", interval: 15m}
        subscribers:
          - {email: desk@example.org, watchlists: [libya], min_score: 3}
    """)
    config = load_config(tmp_path, {"HOOK_SECRET": "s3cret"})
    assert config.feeds[0].interval == 900
    assert config.feeds[0].name == "example.org/feed.xml"
    desk = config.subscriber("desk@example.org")
    assert desk is not None and desk.watchlists == ("libya",)
    (hook,) = [s for s in config.subscribers if s.webhook]
    assert hook.name.startswith("webhook:hooks.example.org#")  # no token-bearing path in logs
    assert hook.secret is not None
    assert hook.secret.get_secret_value() == "s3cret"
    assert [s.name for s in config.subscribers].count("desk@example.org") == 1
    assert config.watchlists[0].keywords[1].term == "ceasefire"
    assert config.watchlists[0].keywords[1].weight == 1.0


def test_env_default_and_missing_env(tmp_path: Path) -> None:
    write(tmp_path / "watchlists" / "libya.yaml", WATCHLIST.replace("${HOOK_SECRET}",
                                                                   "${HOOK_SECRET:-dflt}"))
    assert load_config(tmp_path, {}).watchlists[0].name == "libya"
    write(tmp_path / "watchlists" / "libya.yaml", WATCHLIST)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, {})
    assert err.value.problems == [
        f"{tmp_path}/watchlists/libya.yaml:11: subscribers[0].secret: "
        "environment variable HOOK_SECRET is not set"
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feeds:\n  - url: [unclosed\n", ":3: (yaml): expected ',' or ']'"),
        ("feeds:\n  - url: ftp://x.org/feed\n", ":2: feeds[0].url: expected an http(s) URL"),
        ("feeds:\n  - url: https://x.org/f\n    interval: soon\n",
         ":3: feeds[0].interval: expected a duration"),
        ("feeds:\n  - url: https://x.org/f\n    scarpe: true\n",
         ":3: feeds[0].scarpe: Extra inputs are not permitted"),
        ("subscribers:\n  - email: not-an-address\n    watchlists: [x]\n",
         ":2: subscribers[0].email: not an email address"),
        ("subscribers:\n  - webhook: https://h.org/x\n    watchlists: [x]\n",
         ":2: subscribers[0]: a webhook needs a `secret`"),
        ("subscribers:\n  - email: a@b.org\n    watchlists: [nope]\n",
         ":3: subscribers[0].watchlists: no watchlist 'nope'"),
        ("- just a list\n", ":1: (file): expected a mapping"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    assert only_problem(tmp_path, text).startswith(expected)


def only_problem(directory: Path, text: str) -> str:
    """The one problem of `text` as directory/bad.yaml, after the file's path."""
    path = write(directory / "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(directory, {})
    (problem,) = err.value.problems
    assert problem.startswith(str(path)), problem
    return problem.removeprefix(str(path))


def test_watchlist_errors_point_into_the_watchlist_file(tmp_path: Path) -> None:
    path = write(tmp_path / "watchlists" / "w.yaml",
                 "name: w\nentities:\n  - name: A\n    weight: heavy\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, {})
    assert err.value.problems == [
        f"{path}:4: entities[0].weight: Input should be a valid number, "
        "unable to parse string as a number"
    ]


def test_duplicate_names_are_reported(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "feeds:\n  - url: https://x.org/f\n")
    path = write(tmp_path / "b.yaml", "feeds:\n  - url: https://x.org/f\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, {})
    assert err.value.problems == [f"{path}:2: feeds[0].url: duplicate feed 'https://x.org/f'"]


def test_validate_command_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path / "watchlists" / "libya.yaml", WATCHLIST.replace("${HOOK_SECRET}", "s"))
    assert main(["--config-dir", str(tmp_path), "validate"]) == 0
    assert "1 watchlists" in capsys.readouterr().out
    write(tmp_path / "feeds.yaml", "feeds:\n  - url: nope\n")
    assert main(["--config-dir", str(tmp_path), "validate"]) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path}/feeds.yaml:2: feeds[0].url: expected an http(s) URL" in err


@pytest.mark.parametrize(("value", "seconds"),
                         [(90, 90), ("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["0", "-5m", "soon", True])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


# -- hostile files (rule 5) ------------------------------------------------------------------

def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """The red team's file: each anchor a list of `width` aliases of the one before, so
    the last stands for width ** levels values (387 million) in 414 bytes."""
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def huge_file(size: int) -> str:
    """A plausible feeds file of about `size` bytes."""
    line = "  - {url: 'https://example.org/feeds/%07d.xml', interval: 15m, scrape: false}\n"
    return "feeds:\n" + "".join(line % i for i in range(size // len(line % 0) + 1))


HOSTILE = {
    "alias-bomb": (alias_bomb, ":6: (yaml): aliases bring in more than 100,000 nodes"),
    "deep": (lambda: "feeds: " + "[" * 100_000 + "]" * 100_000 + "\n",
             ":1: (yaml): nested more than 100 levels deep"),
    "huge": (lambda: huge_file(23 * 1024 * 1024), ":1: (file): 23.0 MiB, over the 8 MiB"),
}
GOOD_FEEDS = "feeds:\n  - {url: 'https://example.org/feed.xml'}\n"


# `monitor validate` in a process that then prints its peak RSS. Its own VmHWM, not
# getrusage: Linux counts into a child's ru_maxrss the memory of the process it was
# forked from (here pytest, holding a 23 MB file), up to its exec.
VALIDATE = """\
import sys
from monitor.cli import main
code = main(["--config-dir", sys.argv[1], "validate"])
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(int(hwm.split()[1]) / 1024)
sys.exit(code)
"""


def validate_run(config_dir: Path) -> tuple[int, str, float]:
    """`monitor validate` as a process: its exit status, stderr and peak RSS in MB."""
    run = subprocess.run([sys.executable, "-c", VALIDATE, str(config_dir)],
                         capture_output=True, text=True, timeout=60)
    return run.returncode, run.stderr, float(run.stdout.split()[-1])


@pytest.mark.parametrize("kind", HOSTILE)
def test_a_hostile_file_is_one_located_error_in_little_time_and_memory(
    tmp_path: Path, kind: str
) -> None:
    make, expected = HOSTILE[kind]
    good, bad = tmp_path / "good", tmp_path / "bad"
    write(good / "feeds.yaml", GOOD_FEEDS)
    write(bad / "feeds.yaml", GOOD_FEEDS)
    path = bad / f"{kind}.yaml"
    path.write_text(make(), "utf-8")

    started = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_config(bad, {})
    spent = time.perf_counter() - started
    (problem,) = err.value.problems
    assert problem.startswith(f"{path}{expected}"), problem
    tracemalloc.start()
    with pytest.raises(ConfigError):
        load_config(bad, {})
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()

    base_status, _, base_rss = validate_run(good)
    status, stderr, rss = validate_run(bad)
    assert (base_status, status) == (0, 1)
    assert stderr.splitlines() == [problem]
    print(f"\n{kind} ({path.stat().st_size:,} bytes): {spent * 1000:.0f} ms in process, "
          f"peak {peak:.1f} MB traced; `monitor validate` peak RSS {rss:.0f} MB against "
          f"{base_rss:.0f} MB on a good config (+{rss - base_rss:.0f} MB)")
    assert spent < 2.0 and peak < 100 and rss - base_rss < 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # One level too deep, written in block style, and flow style at libyaml's limit.
        ("".join("  " * i + "- \n" for i in range(MAX_DEPTH + 1)),
         f":{MAX_DEPTH + 1}: (yaml): nested more than {MAX_DEPTH} levels deep"),
        ("a: " + "[" * 2000 + "]" * 2000, f":1: (yaml): nested more than {MAX_DEPTH} levels"),
        # Aliases: one past the limit, counted over the whole file.
        (f"a: &a [{', '.join(['x'] * 1000)}]\n"
         + "".join(f"b{i}: *a\n" for i in range(MAX_ALIAS_NODES // 1001 + 1)),
         f":{MAX_ALIAS_NODES // 1001 + 2}: (yaml): aliases bring in more than 100,000 nodes"),
        ("a: &a [x, *a]\n", ":1: (yaml): alias *a is inside the node it names (&a)"),
        ("a: *nowhere\n", ":1: (yaml): alias *nowhere names no anchor before it"),
        ("feeds: [" + "1, " * MAX_NODES + "]\n", ":1: (yaml): more than 1,000,000 values"),
        # Values YAML cannot construct, which raised from the loader before.
        ("feeds:\n  - url: https://x.org/f\n    interval: 2024-13-45\n",
         ":3: (yaml): cannot read '2024-13-45': month must be in 1..12"),
        ("feeds:\n  - url: https://x.org/f\n    interval: " + "9" * 5000 + "\n",
         ":3: (yaml): cannot read '9999"),
        ("feeds: !!python/object:os.system x\n", ":1: (yaml): cannot read 'x': could not "
         "determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'"),
        ("feeds: !!map x\n", ":1: (yaml): cannot read 'x' as tag:yaml.org,2002:map"),
        ("? [a, b]\n: c\n", ":1: (yaml): a mapping key must be a plain value"),
        ("feeds: []\n---\nfeeds: []\n", ":2: (yaml): expected a single document"),
    ],
    ids=["block-depth", "flow-depth", "aliases", "recursive-alias", "undefined-alias",
         "nodes", "timestamp", "long-int", "python-tag", "map-tag", "list-key", "two-docs"],
)
def test_limits_and_unreadable_values_are_located_errors(tmp_path: Path, text: str,
                                                          expected: str) -> None:
    assert only_problem(tmp_path, text).startswith(expected)


def test_aliases_within_the_limits_read_as_written_out(tmp_path: Path) -> None:
    path = write(tmp_path / "feeds.yaml", """\
        watchlists:
          - name: libya
            keywords: &terms [Haftar, Sirte]
            subscribers:
              - &desk {email: desk@example.org, min_score: 2}
          - name: sirte
            keywords: *terms
            exclude: *terms
            subscribers: [*desk]
    """)
    config = load_config(tmp_path, {})
    assert [[t.term for t in w.exclude or w.keywords] for w in config.watchlists] == \
        [["Haftar", "Sirte"], ["Haftar", "Sirte"]]
    (desk,) = config.subscribers
    assert desk.watchlists == ("libya", "sirte") and desk.min_score == 2
    # An error in an aliased node points at the anchor, where the value is written.
    path.write_text(path.read_text().replace("min_score: 2", "min_score: high"))
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, {})
    assert [p.split(": ")[:2] for p in err.value.problems] == [
        [f"{path}:5", "watchlists[0].subscribers[0].min_score"],
        [f"{path}:5", "watchlists[1].subscribers[0].min_score"]]


def test_problems_past_the_limit_are_counted_on_one_line(tmp_path: Path) -> None:
    path = write(tmp_path / "feeds.yaml", "feeds:\n" + "  - url: nope\n" * 1000)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, {})
    assert len(err.value.problems) == MAX_PROBLEMS + 1
    assert err.value.problems[-1] == f"{path}:1: (file): and {1000 - MAX_PROBLEMS:,} more " \
                                     "problems in this file"


def test_a_file_at_the_size_limit_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = huge_file(64 * 1024)
    monkeypatch.setattr(config_module, "MAX_FILE_BYTES", len(text.encode()))
    write(tmp_path / "feeds.yaml", text)
    assert len(load_config(tmp_path, {}).feeds) == text.count("url:")
    (tmp_path / "feeds.yaml").write_text(text + " ", "utf-8")
    with pytest.raises(ConfigError, match=r"over the 0.0\d+ MiB a config file may hold"):
        load_config(tmp_path, {})


def test_syntax_errors_in_a_large_file_are_still_located(tmp_path: Path) -> None:
    """Past _REPARSE_MAX, a syntax error is reported in libyaml's words, at its line."""
    text = huge_file(config_module._REPARSE_MAX + 1) + "  - url: [unclosed\n"
    path = write(tmp_path / "feeds.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, {})
    line = text.count("\n") + 1
    assert err.value.problems == [f"{path}:{line}: (yaml): did not find expected ',' or ']'"]


def test_errors_carry_no_password_of_a_url(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "feeds:\n  - url: https://u:hunter2@x.org/f?token=abc\n")
    b = write(tmp_path / "b.yaml", "feeds:\n  - url: https://u:hunter2@x.org/f?token=abc\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, {})
    assert err.value.problems == [
        f"{b}:2: feeds[0].url: duplicate feed 'https://u:***@x.org/f?token=***'"]
    b.write_text("feeds:\n  - url: ftp://u:hunter2@x.org/f?sig=abc\n")
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, {})
    assert err.value.problems == [
        f"{b}:2: feeds[0].url: expected an http(s) URL, got 'ftp://u:***@x.org/f?sig=***'"]


def test_feed_names_leave_out_the_userinfo(tmp_path: Path) -> None:
    write(tmp_path / "feeds.yaml", "feeds:\n  - url: https://u:hunter2@X.org:8443/f.xml\n")
    assert load_config(tmp_path, {}).feeds[0].name == "X.org:8443/f.xml"


# -- the loader as a fuzz target ------------------------------------------------------------

# Fragments that steer random text into YAML's corners: anchors, aliases, tags, flow and
# block collections, indentation, documents, env references, the schema's own keys.
YAML_PIECES = st.sampled_from([
    "feeds:", "watchlists:", "subscribers:", "url: ", "https://example.org/f", "name: ",
    "interval: ", "15m", "keywords: ", "entities:", "aliases: ", "rules:", "any_of: ",
    "- ", "\n", "\n  ", "\n    ", "  ", ": ", ", ", "[", "]", "{", "}", "? ", "&a ", "*a",
    "&b ", "*b", "!!str ", "!!int ", "!!map ", "!!python/object ", "!foo ", "<<: ", "---\n",
    "...\n", "'", '"', "|\n  ", ">\n  ", "#", "${X}", "${UNSET}", "${Y:-d}", "2024-13-45",
    "0x1F", "1e999", ".nan", "null", "~", "true", "\t", "\ufeff", "\x00", "é", "حفتر",
])
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(st.characters(exclude_characters="$", exclude_categories=["Cs"])),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
                      children, max_size=5),
    max_leaves=40)
# Documents of the schema's shape with values of any kind: they get past YAML and into
# validation, cross-checks and merging.
SCHEMA_VALUES = st.one_of(JSONISH, st.sampled_from([
    "https://example.org/f", "https://u:p@example.org/f?token=t", "15m", "0", "-1h",
    "desk@example.org", "w", "${X}", "${UNSET}", ["w"], ["Haftar", "حفتر"], {"any_of": ["a"]},
    {"near": ["a", "b"], "within": 0}]))
SCHEMA_KEYS = st.sampled_from([
    "url", "name", "interval", "min_interval", "max_interval", "adaptive", "scrape",
    "watchlists", "email", "webhook", "secret", "min_score", "update_sources", "threshold",
    "title_weight", "entities", "keywords", "phrases", "exclude", "rules", "require",
    "subscribers", "aliases", "weight", "term", "all_of", "any_of", "none_of", "near"])
ENTRY = st.dictionaries(SCHEMA_KEYS, SCHEMA_VALUES | st.lists(
    st.dictionaries(SCHEMA_KEYS, SCHEMA_VALUES, max_size=4), max_size=3), max_size=6)
SCHEMA_SHAPED = st.dictionaries(
    st.sampled_from(["feeds", "watchlists", "subscribers", "name", "keywords", "entities"]),
    st.lists(ENTRY, max_size=4) | SCHEMA_VALUES, max_size=4)
FUZZ_TEXT = st.one_of(
    st.lists(st.one_of(YAML_PIECES, st.text(max_size=8)), max_size=60).map("".join),
    SCHEMA_SHAPED.map(lambda d: yaml.safe_dump(d, allow_unicode=True)))
LOCATED = re.compile(r"^\S+:\d+: \S")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=FUZZ_TEXT, in_watchlists=st.booleans())
def test_fuzz_the_loader_returns_a_config_or_located_errors(
    tmp_path_factory: pytest.TempPathFactory, text: str, in_watchlists: bool
) -> None:
    root = tmp_path_factory.mktemp("fuzz", numbered=True)
    path = root / ("watchlists" if in_watchlists else "") / "f.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    try:
        load_config(root, {"X": "x", "Y": "y"})
    except ConfigError as exc:
        assert 1 <= len(exc.problems) <= MAX_PROBLEMS + 1
        for problem in exc.problems:
            assert problem.startswith(f"{path}:") and LOCATED.match(problem), problem
            assert "\n" not in problem, problem  # one line each, in logs and on stderr


@settings(max_examples=300, deadline=None)
@given(data=JSONISH, shared=st.booleans(), flow=st.booleans())
def test_the_loader_reads_what_pyyaml_reads(tmp_path_factory: pytest.TempPathFactory,
                                            data: Any, shared: bool, flow: bool) -> None:
    """The composer against PyYAML's own safe_load, anchors and aliases included (the
    same object twice in the data is dumped as an anchor and an alias)."""
    document = {"one": data, "two": data} if shared else data
    text = yaml.safe_dump(document, default_flow_style=flow, allow_unicode=True)
    expected = yaml.safe_load(text)
    for parser in config_module._PARSERS:
        doc = config_module._Document.__new__(config_module._Document)
        doc.path, doc.lines, doc.problems, doc.hidden, doc.env = Path("f.yaml"), {}, [], 0, {}
        got = config_module._Composer(doc, parser(text)).document()
        assert got == expected and not doc.problems
