"""A subscriber is its recipient (channel and address), not its name (issue 23, point 6)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.models import Hit, Item, Match
from monitor.poller import alerts_for


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def watchlist(name: str, subscribers: str) -> str:
    return f"name: {name}\nkeywords: [Haftar]\nsubscribers:\n{textwrap.dedent(subscribers)}"


def matches(*watchlists: str) -> list[Match]:
    hit = Hit("keyword", "Haftar", "Haftar", "Haftar", "title", 0, 1.0)
    return [Match(name, 1.0, (hit,)) for name in watchlists]


def problems(config_dir: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(config_dir, {})
    return err.value.problems


ITEM = Item("item-1", "f", "Feed", "Haftar advances", "https://example.org/a")


def test_one_address_under_two_names_is_one_subscriber_alerted_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    libya = write(tmp_path / "watchlists" / "libya.yaml", watchlist("libya", """\
        - {name: desk, email: Desk@Example.org}
        - {webhook: "https://Hooks.example.org:443/libya?t=1", secret: s}
    """))
    sahel = write(tmp_path / "watchlists" / "sahel.yaml", watchlist("sahel", """\
        - {name: newsroom, email: desk@example.org}
        - {name: the-hook, webhook: "https://hooks.example.org/libya?t=1", secret: s}
    """))
    config = load_config(tmp_path, {})

    assert len(config.subscribers) == 2
    desk, hook = config.subscribers
    assert (desk.name, desk.watchlists) == ("desk", ("libya", "sahel"))
    assert hook.watchlists == ("libya", "sahel")
    # Alerts queued under the other names (before an edit merged them) still find it.
    assert config.subscriber("newsroom") is desk and config.subscriber("the-hook") is hook
    alerts = alerts_for(ITEM, matches("libya", "sahel"), config, False, datetime.now(UTC))
    assert sorted(a.subscriber for a in alerts) == sorted([desk.name, hook.name])
    assert all(len(a.matches) == 2 for a in alerts)  # one alert naming both watchlists

    assert config.notes == (
        f"{sahel}:4: subscribers[0]: duplicate: email desk@example.org is subscriber 'desk' "
        f"at {libya}:4 too; merged into 'desk', which gets one alert per item",
        f"{sahel}:5: subscribers[1]: duplicate: {hook.name} is subscriber {hook.name!r} "
        f"at {libya}:5 too; merged into {hook.name!r}, which gets one alert per item",
    )
    assert main(["--config-dir", str(tmp_path), "validate"]) == 0
    out = capsys.readouterr()
    assert "2 subscribers" in out.out
    assert out.err.splitlines() == list(config.notes)
    assert "t=1" not in out.err  # a webhook's path and query may hold its token


def test_the_same_subscriber_in_several_watchlists_is_no_duplicate(tmp_path: Path) -> None:
    write(tmp_path / "watchlists" / "libya.yaml", watchlist("libya", "- email: desk@example.org\n"))
    write(tmp_path / "watchlists" / "sahel.yaml", watchlist("sahel", "- email: desk@example.org\n"))
    write(tmp_path / "subscribers.yaml", """\
        subscribers:
          - {email: desk@example.org, watchlists: [sahel], min_score: 3}
    """)
    config = load_config(tmp_path, {})
    (desk,) = config.subscribers
    assert desk.watchlists == ("sahel", "libya") and desk.min_score == 0
    assert config.notes == ()


def test_two_addresses_under_one_name_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    first = write(tmp_path / "watchlists" / "libya.yaml", watchlist("libya", """\
        - {name: desk, email: desk@example.org}
    """))
    second = write(tmp_path / "subscribers.yaml", """\
        subscribers:
          - name: desk
            email: night-desk@example.org
            watchlists: [libya]
    """)
    found = problems(tmp_path)
    # The top level of a file is read first: the watchlist's entry is the second one.
    assert found == [
        f"{first}:4: subscribers[0].name: subscriber 'desk' is email "
        f"night-desk@example.org at {second}:2 and email desk@example.org here: one name "
        "names one recipient; give each its own name"]
    assert main(["--config-dir", str(tmp_path), "validate"]) == 1
    assert capsys.readouterr().err.splitlines() == found


def test_one_webhook_with_two_secrets_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "watchlists" / "libya.yaml", watchlist("libya", """\
        - {name: a, webhook: "https://hooks.example.org/x", secret: s3cret-one}
        - name: b
          webhook: "https://hooks.example.org/x#frag"
          secret: s3cret-two
    """))
    (problem,) = problems(tmp_path)
    assert problem.startswith(f"{path}:7: subscribers[1].secret: webhook:hooks.example.org#")
    assert f"is written at {path}:4 too, with another `secret`" in problem
    assert "s3cret" not in problem


def test_update_settings_must_agree(tmp_path: Path) -> None:
    write(tmp_path / "watchlists" / "libya.yaml", watchlist("libya", """\
        - {email: desk@example.org, update_sources: 3}
    """))
    path = write(tmp_path / "watchlists" / "sahel.yaml", watchlist("sahel", """\
        - {email: desk@example.org}
    """))
    assert problems(tmp_path) == [
        f"{path}:4: subscribers[0].update_sources: email desk@example.org is written at "
        f"{tmp_path}/watchlists/libya.yaml:4 too, with another `update_sources`: one "
        "recipient is one subscriber; give it the same value everywhere"]
