from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import load_config, parse_duration
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
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path, {})
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith(str(path) + expected), err.value.problems


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
