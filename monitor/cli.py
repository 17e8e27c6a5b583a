"""The `monitor` command: run the daemon, validate config, dry-run a page against watchlists."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import RedisError

from monitor import __version__, logs, speedups
from monitor.config import Config, load_config
from monitor.errors import ConfigError, FetchError
from monitor.extract import extract, extract_text
from monitor.fetch import Fetcher
from monitor.match import Matcher, Result
from monitor.models import Article
from monitor.page import decode_html
from monitor.settings import Settings
from monitor.urls import redact, redact_text

if TYPE_CHECKING:
    from monitor.backtest import Change
    from monitor.store.archive import ArchivedItem

T = TypeVar("T")
# The daemon allocates thousands of container objects per item (feedparser's dicts,
# lxml's element proxies, aiohttp's requests) and keeps almost none. At Python's default
# (700 allocations) the collector made 500 young passes and 4 full ones, each full one
# walking the ~92,000 objects loaded at start (80-95 ms), in a 2,000-item run of
# bench/e2e.py: 0.64-0.76 s of the run's 11-13 s of CPU. At 10,000, with the start's
# objects frozen out of the full passes, it made 220 and 2: 0.26-0.29 s.
GC_YOUNG_THRESHOLD = 10_000
# Exit statuses of `monitor run --once` (1: invalid config, or a crash): every feed's poll
# failed; an alert was not delivered (dead-lettered, or left queued for a later run).
ONCE_NO_FEED = 2
ONCE_UNDELIVERED = 3


def _parser() -> argparse.ArgumentParser:
    # Options every command takes, before or after its name: `monitor validate
    # --config-dir X` as well as `monitor --config-dir X validate` (the later one wins).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config-dir", type=Path, default=argparse.SUPPRESS,
                        help="overrides MONITOR_CONFIG_DIR")
    parser = argparse.ArgumentParser(
        prog="monitor", description=__doc__, parents=[common],
        epilog="Exit statuses: 0 done, 1 invalid config or input or Redis unreachable, "
        "2 bad command line (or `run --once`: no feed polled), 3 `run --once`: an alert "
        "undelivered. See docs/cli.md.")
    parser.add_argument("--version", action="version",
                        version=f"monitor {__version__} ({speedups.describe()})")
    sub = parser.add_subparsers(dest="command", required=True, title="commands")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, parents=[common])

    run = command("run", "poll feeds and deliver alerts until stopped")
    run.add_argument("--once", action="store_true",
                     help="poll every feed once, deliver what matched, and exit")
    command("validate", "check config/ and print a summary or every problem")
    check = command("check", "dry run: extract a page or text file and match it")
    check.add_argument("target", help="path to an HTML or text file, or an http(s) URL")
    check.add_argument("--json", action="store_true", help="print one JSON object")
    backtest = command("backtest", "run watchlists over the archived recent items")
    backtest.add_argument("--watchlist", action="append", default=[], metavar="NAME",
                          help="only this watchlist (repeatable; default: all)")
    backtest.add_argument("--since", default="7d", type=_since,
                          help="items archived this long ago or later (7d, 12h, 30m)")
    backtest.add_argument("--compare", type=Path, metavar="OTHER_DIR",
                          help="print what --config-dir matches that OTHER_DIR does not, "
                          "and the reverse")
    backtest.add_argument("--json", action="store_true", help="print one JSON object")
    feeds = command("feeds", "each feed's polling state; import and export OPML")
    feeds.add_argument("--json", action="store_true")
    feeds_sub = feeds.add_subparsers(dest="feeds_command", title="commands")
    opml_in = feeds_sub.add_parser("import", help="OPML subscription list -> feed YAML",
                                   parents=[common])
    opml_in.add_argument("file", type=Path, help="the OPML file")
    opml_in.add_argument("--output", type=Path,
                         help="the YAML file to write (default: CONFIG_DIR/feeds/imported.yaml)")
    opml_out = feeds_sub.add_parser("export", help="the configured feeds as OPML 2.0",
                                    parents=[common])
    opml_out.add_argument("file", type=Path, nargs="?", help="default: standard output")
    story = command("story", "the story an article URL belongs to: every source")
    story.add_argument("url", help="the URL of any copy of the article")
    story.add_argument("--json", action="store_true")
    alerts = command("alerts", "queued, retrying and dead alerts")
    alerts.add_argument("--json", action="store_true")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", title="commands")
    replay = alerts_sub.add_parser("replay", help="re-queue dead letters", parents=[common])
    replay.add_argument("--id", action="append", default=[], help="a dead letter's id")
    replay.add_argument("--subscriber", help="all dead letters of this subscriber")
    replay.add_argument("--watchlist", help="all dead letters of this watchlist")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    return parser


def _since(value: str) -> float:
    from monitor.backtest import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "completion":
        from monitor.completion import script

        print(script(parser, args.shell))
        return 0
    config_dir = getattr(args, "config_dir", None)
    overrides: dict[str, Any] = {"config_dir": config_dir} if config_dir else {}
    settings = Settings(**overrides)
    logs.configure(settings.log_level, settings.log_format)
    try:
        if args.command == "feeds" and args.feeds_command:
            return _opml(settings, args)
        if args.command == "backtest":
            return asyncio.run(_backtest(settings, args))
        if args.command == "run":
            return _run(settings, args.once)
        if args.command == "validate":
            return _validate(settings)
        if args.command in ("feeds", "alerts", "story"):
            return asyncio.run(_admin(settings, args))
        return _check(settings, args.target, args.json)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except RedisError as exc:  # `run` waits for Redis; one-off commands say it is not there
        where = redact(settings.redis_url) if settings.redis_url else "the embedded server"
        print(f"redis: cannot use {where}: {redact_text(str(exc))}", file=sys.stderr)
        return 1


def _run(settings: Settings, once: bool) -> int:
    from monitor.service import Service

    service = Service(settings)
    if once:
        results, report = _event_loop_run(service.run_once())
        failed = [r for r in results if r.status == "error"]
        for r in results:
            skipped = ", ".join(f"{n} {what}" for n, what in (
                (r.old, "older than the max age"), (r.seen, "seen before"),
                (r.bad, "failed (see the log)")) if n)
            print(f"{r.feed}: {r.status}, {r.items} items, {r.new} new, {r.alerts} alerts"
                  + (f"; {skipped}" if skipped else "")
                  + (f" ({redact_text(r.error)})" if r.error else ""))
        print(f"alerts: {report.sent} delivered, {report.dead} dead-lettered, "
              f"{report.left} left queued")
        for c in report.down:
            print(f"  endpoint down: {c.id} ({c.label}): {redact_text(c.error)}")
        if report.left or report.dead:
            return ONCE_UNDELIVERED
        return ONCE_NO_FEED if failed and len(failed) == len(results) else 0
    _event_loop_run(service.run(started=_long_run_gc))
    return 0


def _long_run_gc() -> None:
    """The collector tuned for the daemon, once its config and stages are loaded."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


def _event_loop_run(main: Coroutine[Any, Any, T]) -> T:
    """Runs the daemon on uvloop where it is installed (it is a dependency except on
    Windows): its C event loop and sockets cut the CPU time of each poll, which bounds how
    many feeds one process can poll (bench/poll.py)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _admin(settings: Settings, args: argparse.Namespace) -> int:
    from monitor import admin
    from monitor.store.connect import store_for

    config = load_config(settings.config_dir) if args.command == "feeds" else None
    async with store_for(settings) as store:
        if args.command == "story":
            info = await admin.story_report(store, args.url)
            if info is None:
                print(f"story: no story known for {redact(args.url)} (within the dedup window)",
                      file=sys.stderr)
                return 1
            print(json.dumps(info, indent=2, ensure_ascii=False) if args.json
                  else admin.format_story(info))
            return 0
        if config is not None:
            rows = await admin.feeds_report(store, config)
            print(json.dumps(rows, indent=2) if args.json else admin.format_feeds(rows))
            return 0
        if args.alerts_command == "replay":
            if not (args.id or args.subscriber or args.watchlist or args.all):
                print("alerts replay: name --id, --subscriber, --watchlist or --all",
                      file=sys.stderr)
                return 2
            done = await admin.replay(store, ids=args.id, subscriber=args.subscriber,
                                      watchlist=args.watchlist, everything=args.all)
            print(f"re-queued {len(done)} dead letters" + (f": {', '.join(done)}" if done else ""))
            return 0
        report = await admin.alerts_report(store)
        print(json.dumps(report, indent=2, ensure_ascii=False) if args.json
              else admin.format_alerts(report))
    return 0


def _validate(settings: Settings) -> int:
    config = load_config(settings.config_dir)
    for note in config.notes:  # not refused, but worth knowing
        print(note, file=sys.stderr)
    print(f"config OK: {len(config.feeds)} feeds, {len(config.watchlists)} watchlists, "
          f"{len(config.subscribers)} subscribers, from {len(config.files)} files")
    for wl in config.watchlists:
        terms = sum(len(e.spellings) for e in wl.entities) + len(wl.keywords) + len(wl.phrases)
        print(f"  watchlist {wl.name}: {terms} terms, threshold {wl.threshold}")
    for wl in config.watchlists:
        for warning in wl.case_warnings():
            print(f"warning: {warning}")
    return 0


def _load_target(settings: Settings, target: str) -> Article:
    if target.startswith(("http://", "https://")):
        async def fetch() -> tuple[bytes, str | None, str]:
            fetcher = Fetcher(timeout=settings.http_timeout, max_bytes=settings.http_max_bytes,
                              read_timeout=settings.http_read_timeout)
            try:
                resp = await fetcher.get(target, accept="text/html,*/*;q=0.8")
            finally:
                await fetcher.close()
            return resp.body, resp.charset, resp.url

        body, charset, url = asyncio.run(fetch())
        return extract(decode_html(body, charset), url)
    data = Path(target).read_bytes()
    head = data[:2048].lower()
    if b"<html" in head or b"<!doctype" in head or b"<body" in head or b"<p" in head:
        return extract(data, None)
    return extract_text(decode_html(data))


def _check(settings: Settings, target: str, as_json: bool) -> int:
    config: Config = load_config(settings.config_dir)
    try:
        article = _load_target(settings, target)
    except (OSError, FetchError) as exc:
        print(f"check: {redact(target)}: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    results = Matcher(config.watchlists).evaluate(article.title, article.text)
    if as_json:
        print(json.dumps({"title": article.title, "text": article.text,
                          "language": article.language,
                          "matches": [_result_json(r) for r in results]},
                         ensure_ascii=False, indent=2))
        return 0
    print(f"Title: {article.title}\n")
    print(article.text or "(no article text found)")
    print()
    for r in results:
        print("\n".join(_result_lines(r)))
    return 0


def _result_lines(r: Result) -> list[str]:
    """A watchlist's verdict as `check` prints it (and `backtest`, indented)."""
    verdict = "MATCH" if r.matched else "no match"
    extra = f", vetoed by {', '.join(r.excluded_by)}" if r.excluded_by else ""
    extra += "" if r.required else ", required condition not met"
    lines = [f"[{r.match.watchlist}] {verdict}: score {r.match.score} "
             f"(threshold {r.threshold}){extra}"]
    lines += [f"  +{c.points:g}  {c.rule} ({c.detail})" for c in r.match.breakdown]
    for h in r.match.hits:
        alias = f" as {h.alias!r}" if h.alias != h.term else ""
        lines.append(f"    {h.kind} {h.term!r}{alias}: {h.matched!r} in {h.field} at {h.offset}")
    if r.match.snippet:
        lines.append(f"  snippet: {r.match.snippet}")
    return lines


async def _backtest(settings: Settings, args: argparse.Namespace) -> int:
    """`monitor backtest`: reads the archive only (monitor.backtest rule 4)."""
    from monitor import backtest
    from monitor.store.connect import store_for

    config = load_config(settings.config_dir)
    other = load_config(args.compare) if args.compare else None
    known = {wl.name for c in (config, other) if c is not None for wl in c.watchlists}
    unknown = [n for n in args.watchlist if n not in known]
    if unknown:
        print(f"backtest: no watchlist named {', '.join(unknown)}", file=sys.stderr)
        return 1
    async with store_for(settings) as store:
        since = store.now() - args.since
        items = [item async for item in store.archive.items(since)]
    if other is not None:
        diff = backtest.compare(config, other, items, args.watchlist)
        if args.json:
            print(json.dumps({"since": since, "items": diff.items,
                              "gained": [_change_json(c) for c in diff.gained],
                              "lost": [_change_json(c) for c in diff.lost]},
                             ensure_ascii=False, indent=2))
            return 0
        print(f"{diff.items} archived items since {_utc(since)}: {len(diff.gained)} gained, "
              f"{len(diff.lost)} lost (by {settings.config_dir} against {args.compare})")
        for label, changes in (("gained", diff.gained), ("lost", diff.lost)):
            for c in changes:
                print(f"{label} [{c.watchlist}] {backtest.when(c.item)}  {c.item.title}\n"
                      f"  {redact(c.item.link)}  ({c.item.feed})\n  because: {c.reason}")
        return 0
    report = backtest.run(config, items, args.watchlist)
    if args.json:
        print(json.dumps({"since": since, "items": report.items, "watchlists": {
            name: {"matched": len(hits), "items": [
                {**_item_json(h.item), "match": _result_json(h.result)} for h in hits]}
            for name, hits in report.watchlists.items()}}, ensure_ascii=False, indent=2))
        return 0
    for name, hits in report.watchlists.items():
        print(f"== {name}: {len(hits)} of {report.items} items")
        for h in hits:
            print(f"{backtest.when(h.item)}  {h.item.title}\n  {redact(h.item.link)}  "
                  f"({h.item.feed})")
            print("\n".join("  " + line for line in _result_lines(h.result)))
    print(f"totals since {_utc(since)}, {report.items} archived items: " + ", ".join(
        f"{name} {len(hits)}" for name, hits in report.watchlists.items()))
    return 0


def _utc(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M") + "Z"


def _item_json(item: ArchivedItem) -> dict[str, Any]:
    return {"id": item.id, "title": item.title, "link": redact(item.link), "feed": item.feed,
            "language": item.language, "published": item.published,
            "archived": item.archived}


def _change_json(c: Change) -> dict[str, Any]:
    return {"watchlist": c.watchlist, **_item_json(c.item), "reason": c.reason,
            "now": _result_json(c.now) if c.now else None,
            "before": _result_json(c.before) if c.before else None}


def _opml(settings: Settings, args: argparse.Namespace) -> int:
    """`monitor feeds import` and `monitor feeds export`."""
    from monitor import opml

    config = load_config(settings.config_dir)
    if args.feeds_command == "export":
        data = opml.export(config.feeds)
        if args.file:
            args.file.write_bytes(data)
            print(f"exported {len(config.feeds)} feeds to {args.file}", file=sys.stderr)
        else:
            sys.stdout.write(data.decode("utf-8"))
        return 0
    output = args.output or settings.config_dir / "feeds" / "imported.yaml"
    try:
        found = opml.read(args.file.read_bytes())
    except (OSError, opml.OPMLError) as exc:
        print(f"feeds import: {args.file}: {exc}", file=sys.stderr)
        return 1
    if output.exists():
        print(f"feeds import: {output} exists; name another file with --output",
              file=sys.stderr)
        return 1
    new, skipped = opml.new_feeds(found.feeds, config.feeds)
    for feed, existing in skipped:
        print(f"skipped (already configured as {existing}): {redact(feed.url)}",
              file=sys.stderr)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(opml.to_yaml(new, args.file.name), "utf-8")
    print(f"imported {len(new)} feeds to {output}; {len(skipped)} already configured"
          + (f"; {found.problem}" if found.problem else ""))
    return 0


def _result_json(r: Result) -> dict[str, Any]:
    return {
        "watchlist": r.match.watchlist,
        "score": r.match.score,
        "threshold": r.threshold,
        "matched": r.matched,
        "excluded_by": list(r.excluded_by),
        "required": r.required,
        "snippet": r.match.snippet,
        "breakdown": [asdict(c) for c in r.match.breakdown],
        "hits": [asdict(h) for h in r.match.hits],
    }


if __name__ == "__main__":
    raise SystemExit(main())
