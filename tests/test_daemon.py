"""End to end: the real daemon against real Redis, SMTP and HTTP servers on loopback."""

from __future__ import annotations

import base64
import email
import json
import textwrap
from contextlib import suppress
from email.policy import default as default_policy
from pathlib import Path

import pytest

from monitor.deliver import verify_signature
from tests.daemon import Daemon, rss
from tests.servers import HTTPServer, Request, Route, SMTPServer, free_port, wait_for
from tests.test_config import HOSTILE

SEEDS = Path(__file__).resolve().parent.parent / "seeds"
NOTICE = "Sorry, you need to enable JavaScript to visit this website."
SECRET = "e2e-secret"
SMTP_PASSWORD = "smtp-pass-never-logged"


def write_config(config_dir: Path, feed_urls: list[str], hook_url: str) -> None:
    (config_dir / "watchlists").mkdir(parents=True, exist_ok=True)
    feeds = "\n".join(f"  - {{url: {u!r}, interval: 1s, scrape: true}}" for u in feed_urls)
    (config_dir / "feeds.yaml").write_text(f"feeds:\n{feeds}\n", "utf-8")
    (config_dir / "watchlists" / "libya.yaml").write_text(textwrap.dedent(f"""\
        name: libya
        threshold: 4
        entities:
          - name: Khalifa Haftar
            aliases: [Haftar, حفتر]
            weight: 3
          - name: Sirte
            aliases: [Sirt, سرت]
            weight: 2
        subscribers:
          - {{webhook: "{hook_url}", secret: "${{HOOK_SECRET}}"}}
          - {{email: desk@example.org}}
    """), "utf-8")


def serve_feed(http_server: HTTPServer, path: str, body: bytes, etag: str) -> None:
    """A feed that answers 304 to a request carrying its ETag, as real servers do."""
    def route(request: Request) -> Route:
        if request.headers.get("If-None-Match") == etag:
            return Route(304, headers={"ETag": etag})
        return Route(200, body, {"Content-Type": "application/rss+xml", "ETag": etag})
    http_server.routes[path] = route


@pytest.fixture
def site(http_server: HTTPServer) -> HTTPServer:
    page = (SEEDS / "libya-sirte.html").read_bytes()
    http_server.routes["/article/sirte"] = Route(200, page, {"Content-Type": "text/html; charset=utf-8"})
    link = http_server.url("/article/sirte?utm_source=rss")
    feed = rss([("sirte-1", "الجيش الوطني يؤكد صد هجوم الوفاق", link)])
    serve_feed(http_server, "/feed.xml", feed, '"v1"')
    http_server.routes["/hook"] = Route(200, b"ok")
    return http_server


def env_for(tmp_path: Path, redis_url: str | None, smtp: SMTPServer) -> dict[str, str]:
    env = {
        "MONITOR_CONFIG_DIR": str(tmp_path / "config"),
        "MONITOR_DATA_DIR": str(tmp_path / "data"),
        "MONITOR_SMTP_HOST": "127.0.0.1",
        "MONITOR_SMTP_PORT": str(smtp.port),
        "MONITOR_SMTP_FROM": "monitor@example.org",
        "HOOK_SECRET": SECRET,
        "MONITOR_SMTP_PASSWORD": SMTP_PASSWORD,  # no user: never sent, but must never show
    }
    if redis_url:
        env["MONITOR_REDIS_URL"] = redis_url
    return env


def feed_polls(server: HTTPServer, path: str = "/feed.xml") -> int:
    return len(server.received(path, "GET"))


def test_feed_to_webhook_and_email_exactly_once(
    tmp_path: Path, redis_url: str, site: HTTPServer, smtp_server: SMTPServer
) -> None:
    write_config(tmp_path / "config", [site.url("/feed.xml")], site.url("/hook"))
    env = env_for(tmp_path, redis_url, smtp_server)
    daemon = Daemon(tmp_path, env).start()
    try:
        wait_for(lambda: site.received("/hook") and smtp_server.messages, timeout=30)
        polls = feed_polls(site)
        wait_for(lambda: feed_polls(site) >= polls + 3, timeout=30)  # more polls: nothing new
        assert daemon.running()
    finally:
        assert daemon.stop() == 0, daemon.log

    (hook,) = site.received("/hook")
    assert verify_signature(SECRET, hook.headers["X-Monitor-Timestamp"], hook.body,
                            hook.headers["X-Monitor-Signature"])
    payload = json.loads(hook.body)
    matched = {h["matched"] for h in payload["hits"]}
    assert {"حفتر", "سرت"} <= matched
    assert payload["watchlist"] == "libya" and payload["score"] >= 4
    assert payload["item"]["url"] == site.url("/article/sirte")  # tracking parameter gone
    assert payload["scraped"] is True
    assert NOTICE not in hook.body.decode() and "المزيد من العالم العربي" not in payload["snippet"]
    assert hook.headers["Idempotency-Key"] == payload["id"]

    (mail,) = smtp_server.messages
    message = email.message_from_bytes(mail[2], policy=default_policy)
    assert message["Subject"].startswith("[libya] ")
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    assert "<mark>حفتر</mark>" in html or "<mark>سرت</mark>" in html
    assert NOTICE not in html and NOTICE not in text
    assert site.url("/article/sirte") in text

    # Conditional GET: after the first poll the daemon sends the ETag and gets 304s.
    feed_requests = site.received("/feed.xml", "GET")
    assert "If-None-Match" not in feed_requests[0].headers
    assert all(r.headers.get("If-None-Match") == '"v1"' for r in feed_requests[1:])
    assert len(site.received("/article/sirte", "GET")) == 1

    # A restart remembers what was seen: more polls, nothing more sent.
    site.routes["/feed.xml"] = Route(200, rss([("sirte-1", "الجيش الوطني يؤكد صد هجوم الوفاق",
                                                 site.url("/article/sirte"))]))
    before = feed_polls(site)
    daemon = Daemon(tmp_path, env).start()
    try:
        wait_for(lambda: feed_polls(site) >= before + 3, timeout=30)
    finally:
        assert daemon.stop() == 0, daemon.log
    assert len(site.received("/hook")) == 1 and len(smtp_server.messages) == 1
    assert '"monitor stopped"' in daemon.log
    for log in (daemon.log, Daemon(tmp_path, env).log_path.with_name("daemon-0.log").read_text()):
        assert SECRET not in log and SMTP_PASSWORD not in log


def test_bad_yaml_and_unreachable_feed_leave_the_daemon_running(
    tmp_path: Path, redis_url: str, site: HTTPServer, smtp_server: SMTPServer
) -> None:
    dead_feed = f"http://127.0.0.1:{free_port()}/feed.xml"
    config = tmp_path / "config"
    write_config(config, [dead_feed, site.url("/feed.xml")], site.url("/hook"))
    daemon = Daemon(tmp_path, env_for(tmp_path, redis_url, smtp_server)).start()
    try:
        wait_for(lambda: site.received("/hook"), timeout=30)
        wait_for(lambda: "feed poll failed" in daemon.log, timeout=10)

        (config / "feeds.yaml").write_text("feeds:\n  - url: [broken\n", "utf-8")
        wait_for(lambda: "config invalid" in daemon.log, timeout=10)
        polls = feed_polls(site)
        wait_for(lambda: feed_polls(site) >= polls + 2, timeout=10)  # old config still polls

        # A valid edit is picked up without a restart: a new feed starts being polled.
        serve_feed(site, "/feed2.xml", rss([]), '"empty"')
        write_config(config, [site.url("/feed.xml"), site.url("/feed2.xml")], site.url("/hook"))
        wait_for(lambda: feed_polls(site, "/feed2.xml") >= 1, timeout=10)
        assert daemon.running()
    finally:
        assert daemon.stop() == 0, daemon.log

    log = daemon.log
    assert f"{config}/feeds.yaml:3: (yaml)" in log
    assert dead_feed in log and "cannot connect" in log
    assert "config reloaded" in log
    assert len(site.received("/hook")) == 1


def test_secrets_stay_out_of_check_output(tmp_path: Path, site: HTTPServer,
                                          smtp_server: SMTPServer) -> None:
    write_config(tmp_path / "config", [site.url("/feed.xml")], site.url("/hook"))
    for args in (("validate",), ("check", str(SEEDS / "libya-sirte.html"), "--json"),
                 ("check", str(SEEDS / "libya-sirte.html"))):
        run = Daemon(tmp_path, env_for(tmp_path, None, smtp_server), args).start()
        assert run.wait() == 0, run.log
        assert SECRET not in run.log and SMTP_PASSWORD not in run.log


def test_invalid_config_at_start_exits_1(tmp_path: Path, smtp_server: SMTPServer) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "feeds.yaml").write_text("feeds:\n  - url: nope\n", "utf-8")
    daemon = Daemon(tmp_path, env_for(tmp_path, None, smtp_server)).start()
    assert daemon.wait() == 1
    assert f"{tmp_path}/config/feeds.yaml:2: feeds[0].url: expected an http(s) URL" in daemon.log


def test_embedded_redis_remembers_across_runs(
    tmp_path: Path, site: HTTPServer, smtp_server: SMTPServer
) -> None:
    write_config(tmp_path / "config", [site.url("/feed.xml")], site.url("/hook"))
    env = env_for(tmp_path, None, smtp_server)  # no MONITOR_REDIS_URL: embedded redis-server
    first = Daemon(tmp_path, env, ("run", "--once")).start()
    assert first.wait() == 0, first.log
    assert len(site.received("/hook")) == 1 and len(smtp_server.messages) == 1
    assert (tmp_path / "data" / "monitor.rdb").exists() or list((tmp_path / "data").glob("*.aof"))

    second = Daemon(tmp_path, env, ("run", "--once")).start()
    assert second.wait() == 0, second.log
    assert "0 new, 0 alerts" in second.log or "not-modified" in second.log
    assert len(site.received("/hook")) == 1 and len(smtp_server.messages) == 1


def events(log: str) -> list[dict]:  # type: ignore[type-arg]
    """The daemon's log events (JSON lines), without the command's own output."""
    out = []
    for line in log.splitlines():
        with suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and "event" in event:
                out.append(event)
    return out


def peak_rss_mb(pid: int) -> float:
    """A running process's peak resident memory so far (VmHWM), in MB."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_hostile_config_files_leave_the_daemon_polling_on_its_last_good_config(
    tmp_path: Path, redis_url: str, site: HTTPServer, smtp_server: SMTPServer
) -> None:
    config = tmp_path / "config"
    write_config(config, [site.url("/feed.xml")], site.url("/hook"))
    daemon = Daemon(tmp_path, env_for(tmp_path, redis_url, smtp_server)).start()
    assert daemon.proc is not None
    figures = []
    try:
        wait_for(lambda: site.received("/hook"), timeout=30)
        for kind, (make, expected) in HOSTILE.items():
            before = peak_rss_mb(daemon.proc.pid)
            path = config / f"{kind}.yaml"
            # Written whole, then moved in: a reload may read a file half written (then
            # that is the error reported, and the whole one the next).
            (tmp_path / "next").write_text(make(), "utf-8")
            (tmp_path / "next").replace(path)
            wait_for(lambda path=path, expected=expected: f"{path}{expected}" in daemon.log,
                     timeout=20)
            polls = feed_polls(site)
            wait_for(lambda polls=polls: feed_polls(site) >= polls + 2, timeout=20)
            figures.append(f"{kind} +{peak_rss_mb(daemon.proc.pid) - before:.0f} MB")
            path.unlink()  # the good config again, reloaded
            wait_for(lambda kind=kind: [e for e in events(daemon.log)
                                        if e["event"] == "config reloaded"][len(figures) - 1:],
                     timeout=20)
        assert daemon.running()
    finally:
        assert daemon.stop() == 0, daemon.log
    refused = [e for e in events(daemon.log)
               if e["event"] == "config invalid; keeping the last good config"]
    assert [e["problem"].split(": (")[0].rsplit("/", 1)[-1] for e in refused] == \
        ["alias-bomb.yaml:6", "deep.yaml:1", "huge.yaml:1"]  # one line each, file:line
    assert "Traceback" not in daemon.log
    print(f"\nthe daemon's peak RSS while refusing each: {', '.join(figures)}")
    assert all(int(f.split("+")[1].split()[0]) < 100 for f in figures), figures
    assert len(site.received("/hook")) == 1  # the same item, never alerted again


PASSWORD = "hunter2-feed-password"
TOKEN = "tok-6f1c-secret"


def test_credentials_in_feed_and_article_urls_reach_no_log_or_output(
    tmp_path: Path, redis_url: str, http_server: HTTPServer, smtp_server: SMTPServer
) -> None:
    port = http_server.port
    failing = f"http://reader:{PASSWORD}@127.0.0.1:{port}/private/feed.xml?token={TOKEN}&lang=ar"
    link = f"http://127.0.0.1:{port}/article?api_key={TOKEN}&id=7"
    http_server.routes["/private/feed.xml"] = Route(500, b"down")
    http_server.routes["/feed.xml"] = Route(200, rss([("g1", "Haftar in Sirte", link)]))
    http_server.routes["/article"] = Route(503, b"busy")
    http_server.routes["/hook"] = Route(200, b"ok")
    write_config(tmp_path / "config", [failing, http_server.url("/feed.xml")],
                 http_server.url("/hook"))
    env = env_for(tmp_path, redis_url, smtp_server)
    once = Daemon(tmp_path, env, ("run", "--once")).start()
    assert once.wait() == 0, once.log
    outputs = [once.log]
    for args in (("feeds",), ("feeds", "--json")):
        run = Daemon(tmp_path, env, args).start()
        assert run.wait() == 0, run.log
        outputs.append(run.log)
    # The real URLs were used: the password as Basic auth, the token in the query.
    (request,) = [r for r in http_server.requests if r.path.startswith("/private/")]
    assert request.path == f"/private/feed.xml?token={TOKEN}&lang=ar"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(
        f"reader:{PASSWORD}".encode()).decode()
    assert http_server.received(f"/article?api_key={TOKEN}&id=7", "GET")
    for output in outputs:
        assert PASSWORD not in output and TOKEN not in output, output
    shown = f"http://reader:***@127.0.0.1:{port}/private/feed.xml?token=***&lang=ar"
    (failed,) = [e for e in events(once.log) if e["event"] == "feed poll failed"]
    assert failed["error"] == f"fetch: {shown}: HTTP 500"
    assert failed["feed"] == f"127.0.0.1:{port}/private/feed.xml"
    (scrape,) = [e for e in events(once.log) if e["event"].startswith("scrape failed")]
    assert scrape["item"] == f"http://127.0.0.1:{port}/article?api_key=***&id=7"
    assert f"({failed['error']})" in once.log  # the --once summary line
    assert f"error: fetch: {shown}: HTTP 500" in outputs[1]
    rows = json.loads(outputs[2][outputs[2].index("["):])
    assert {r["url"] for r in rows} == {shown, http_server.url("/feed.xml")}
