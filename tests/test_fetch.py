from __future__ import annotations

import asyncio
import gzip
import socket
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from monitor import fetch as fetch_module
from monitor.errors import PermanentFetchError, RetryableFetchError
from monitor.fetch import HOST_PAUSE, Fetcher, is_public
from monitor.http import retry_after
from tests.servers import HTTPServer, Request, Route

LIMIT = 256 * 1024


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    f = Fetcher(timeout=1.0, connect_timeout=1.0, max_bytes=LIMIT, allow_private=False)
    yield f
    await f.close()


async def test_conditional_get_sends_validators(fetcher: Fetcher, http_server: HTTPServer) -> None:
    http_server.routes["/f"] = Route(304, headers={"ETag": '"a"'})
    resp = await fetcher.get(http_server.url("/f"), etag='"a"', last_modified="Mon, 01 Jan 2024")
    assert resp.not_modified and resp.body == b""
    (request,) = http_server.received("/f", "GET")
    assert request.headers["If-None-Match"] == '"a"'
    assert request.headers["If-Modified-Since"] == "Mon, 01 Jan 2024"
    assert request.headers["User-Agent"].startswith("monitor/")


async def test_oversized_body_is_cut_at_the_limit(fetcher: Fetcher, http_server: HTTPServer) -> None:
    http_server.routes["/big"] = Route(200, b"x" * (LIMIT * 4))
    resp = await fetcher.get(http_server.url("/big"))
    assert resp.truncated and len(resp.body) == LIMIT


async def test_gzip_bomb_is_cut_after_decompression(fetcher: Fetcher,
                                                    http_server: HTTPServer) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MB inflated, ~64 KB on the wire
    http_server.routes["/bomb"] = Route(200, bomb, {"Content-Encoding": "gzip"})
    started = time.monotonic()
    resp = await fetcher.get(http_server.url("/bomb"))
    assert resp.truncated and len(resp.body) == LIMIT
    assert time.monotonic() - started < 2


async def test_endless_body_is_cut(fetcher: Fetcher, http_server: HTTPServer) -> None:
    def endless() -> Iterator[bytes]:
        while True:
            yield b"<item>" * 4096
    http_server.routes["/endless"] = Route(200, chunks=endless)
    resp = await fetcher.get(http_server.url("/endless"))
    assert resp.truncated and len(resp.body) == LIMIT


async def test_trickling_server_hits_the_total_time_limit(fetcher: Fetcher,
                                                          http_server: HTTPServer) -> None:
    def trickle() -> Iterator[bytes]:
        for _ in range(100):
            time.sleep(0.2)  # each read is quick: only a total limit stops this
            yield b"x"
    http_server.routes["/slow"] = Route(200, chunks=trickle)
    started = time.monotonic()
    with pytest.raises(RetryableFetchError, match="timed out after 1"):
        await fetcher.get(http_server.url("/slow"))
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("stall", ["before-headers", "amid-body"])
async def test_a_server_that_stalls_hits_the_read_timeout_not_the_total(
    http_server: HTTPServer, stall: str
) -> None:
    """A server that sends nothing for longer than the read timeout (here 0.5 s of a
    total 20 s) fails the request then; one that keeps sending, more slowly than that in
    all, is held to the total limit only (test above)."""
    def stalling() -> Iterator[bytes]:
        yield b"<rss><channel>"
        time.sleep(3)  # silent: never mind how much may still come
        yield b"</channel></rss>"
    http_server.routes["/stall"] = (Route(200, b"<rss/>", delay=3) if stall == "before-headers"
                                    else Route(200, chunks=stalling))
    fetcher = Fetcher(timeout=20.0, read_timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(RetryableFetchError, match=r"no data for 0.5s \(MONITOR_HTTP_READ_"):
            await fetcher.get(http_server.url("/stall"))
    finally:
        await fetcher.close()
    spent = time.monotonic() - started
    print(f"\nstalled {stall}: failed after {spent:.2f}s (read timeout 0.5s, total 20s)")
    assert spent < 2.5, spent  # before the server would have answered at all


async def test_hanging_server_times_out(fetcher: Fetcher, http_server: HTTPServer) -> None:
    http_server.routes["/hang"] = Route(200, b"late", delay=5)
    with pytest.raises(RetryableFetchError, match="timed out"):
        await fetcher.get(http_server.url("/hang"))


@pytest.mark.parametrize(
    ("status", "headers", "error", "delay"),
    [
        (404, {}, PermanentFetchError, None),
        (410, {}, PermanentFetchError, None),
        (503, {"Retry-After": "120"}, RetryableFetchError, 120.0),
        (429, {}, RetryableFetchError, None),
        (500, {}, RetryableFetchError, None),
    ],
)
async def test_status_codes(fetcher: Fetcher, http_server: HTTPServer, status: int,
                           headers: dict[str, str], error: type[Exception],
                           delay: float | None) -> None:
    http_server.routes["/s"] = Route(status, b"", headers)
    with pytest.raises(error) as raised:
        await fetcher.get(http_server.url("/s"))
    assert f"HTTP {status}" in str(raised.value)
    if isinstance(raised.value, RetryableFetchError):
        assert raised.value.delay == delay


async def test_redirects_are_followed_but_not_forever(fetcher: Fetcher,
                                                      http_server: HTTPServer) -> None:
    http_server.routes["/old"] = Route(301, headers={"Location": "/new"})
    http_server.routes["/new"] = Route(200, b"here", {"Content-Type": "text/html; charset=koi8-r"})
    resp = await fetcher.get(http_server.url("/old"))
    assert resp.body == b"here" and resp.url.endswith("/new") and resp.charset == "koi8-r"
    http_server.routes["/loop"] = Route(302, headers={"Location": "/loop"})
    with pytest.raises(PermanentFetchError, match="too many redirects"):
        await fetcher.get(http_server.url("/loop"))


async def test_unreachable_host_is_retryable(fetcher: Fetcher) -> None:
    from tests.servers import free_port
    with pytest.raises(RetryableFetchError, match="cannot connect to 127.0.0.1:"):
        await fetcher.get(f"http://127.0.0.1:{free_port()}/")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
async def test_article_links_to_private_addresses_are_refused(
    fetcher: Fetcher, http_server: HTTPServer, host: str
) -> None:
    http_server.routes["/secret"] = Route(200, b"internal")
    url = http_server.url("/secret").replace("127.0.0.1", host)
    with pytest.raises(PermanentFetchError, match="refused: .* non-public address"):
        await fetcher.get(url, public_only=True)
    assert http_server.received("/secret", "GET") == []


async def test_redirect_to_a_private_address_is_refused(http_server: HTTPServer) -> None:
    # The first hop is allowed here (an operator's own feed); the guard still checks the
    # redirect, since it carries the request's public_only mark.
    fetcher = Fetcher(timeout=2.0, allow_private=False)
    try:
        http_server.routes["/secret"] = Route(200, b"internal")
        with pytest.raises(PermanentFetchError, match="refused"):
            await fetcher.get(http_server.url("/secret"), public_only=True)
        resp = await fetcher.get(http_server.url("/secret"))  # feeds: operator's choice
        assert resp.body == b"internal"
    finally:
        await fetcher.close()


def test_public_address_rules() -> None:
    for address in ["127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.0.1", "169.254.169.254",
                    "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:127.0.0.1",
                    "224.0.0.1"]:
        assert not is_public(address), address
    for address in ["8.8.8.8", "93.184.216.34", "2606:4700::1111"]:
        assert is_public(address), address


def test_retry_after_forms() -> None:
    assert retry_after("30") == 30.0
    assert retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


async def test_requests_to_one_host_are_spaced(http_server: HTTPServer) -> None:
    import asyncio

    http_server.routes["/p"] = Route(200, b"ok")
    fetcher = Fetcher(timeout=5.0, per_host=4, host_delay=0.2)
    try:
        await asyncio.gather(*(fetcher.get(http_server.url(f"/p?{i}")) for i in range(5)))
    finally:
        await fetcher.close()
    arrivals = sorted(r.at for r in http_server.requests if r.path.startswith("/p?"))
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert len(arrivals) == 5 and min(gaps) >= 0.15, gaps  # politeness, not speed


async def test_proxy_from_the_environment(http_server: HTTPServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY is honoured (the loopback server plays the proxy: it is sent the whole
    URL), and NO_PROXY hosts are reached directly."""
    target = "http://feeds.example.invalid/f.xml"
    http_server.routes[target] = Route(200, b"<rss/>")
    http_server.routes["/direct"] = Route(200, b"direct")
    monkeypatch.setenv("HTTP_PROXY", http_server.url(""))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    fetcher = Fetcher(timeout=2.0, allow_private=True)
    try:
        assert (await fetcher.get(target)).body == b"<rss/>"
        assert http_server.received(target, "GET")
        assert (await fetcher.get(http_server.url("/direct"))).body == b"direct"
        assert http_server.received("/direct", "GET")
    finally:
        await fetcher.close()


@pytest.mark.parametrize(("status", "headers", "pause"), [
    (429, {"Retry-After": "30"}, 30.0),
    (429, {}, HOST_PAUSE),  # a 429 that names no time
    (503, {"Retry-After": "30"}, 30.0),
])
async def test_a_host_that_asks_for_a_pause_is_sent_nothing_until_it_ends(
    fetcher: Fetcher, http_server: HTTPServer, status: int, headers: dict[str, str],
    pause: float,
) -> None:
    http_server.routes["/a"] = Route(status, b"", headers)
    http_server.routes["/b"] = Route(200, b"fine")
    with pytest.raises(RetryableFetchError):
        await fetcher.get(http_server.url("/a"))
    with pytest.raises(RetryableFetchError, match="asked for a pause") as refused:
        await fetcher.get(http_server.url("/b"))
    assert refused.value.delay is not None and pause - 5 < refused.value.delay <= pause
    assert not http_server.received("/b")
    # Another host (the same server under another name) is not held up.
    other = http_server.url("/b").replace("127.0.0.1", "localhost")
    assert (await fetcher.get(other)).body == b"fine"


async def test_pauses_asked_here_are_handed_on_once_and_pauses_from_elsewhere_hold(
    fetcher: Fetcher, http_server: HTTPServer,
) -> None:
    http_server.routes["/a"] = Route(429, b"", {"Retry-After": "30"})
    http_server.routes["/b"] = Route(200, b"fine")
    with pytest.raises(RetryableFetchError, match="HTTP 429"):
        await fetcher.get(http_server.url("/a"))
    asked = fetcher.asked_pauses()
    host = f"127.0.0.1:{http_server.port}"
    assert asked.keys() == {host} and 25 < asked[host] <= 30
    assert fetcher.asked_pauses() == {}  # handed on once
    # A pause another instance was asked for (the same server under another name): nothing
    # is sent to that host meanwhile, and it is not this instance's to hand on.
    fetcher.pause(f"localhost:{http_server.port}", 20)
    with pytest.raises(RetryableFetchError, match="asked for a pause") as refused:
        await fetcher.get(http_server.url("/b").replace("127.0.0.1", "localhost"))
    assert refused.value.delay is not None and 15 < refused.value.delay <= 20
    assert not http_server.received("/b", "GET")
    assert fetcher.asked_pauses() == {}


async def test_a_pause_ends_and_a_plain_503_pauses_nothing(fetcher: Fetcher,
                                                          http_server: HTTPServer) -> None:
    http_server.routes["/busy"] = Route(503)
    http_server.routes["/short"] = Route(429, b"", {"Retry-After": "1"})
    http_server.routes["/b"] = Route(200, b"fine")
    with pytest.raises(RetryableFetchError, match="HTTP 503"):
        await fetcher.get(http_server.url("/busy"))
    assert (await fetcher.get(http_server.url("/b"))).body == b"fine"
    with pytest.raises(RetryableFetchError, match="HTTP 429"):
        await fetcher.get(http_server.url("/short"))
    with pytest.raises(RetryableFetchError, match="asked for a pause"):
        await fetcher.get(http_server.url("/b"))
    await asyncio.sleep(1.1)
    assert (await fetcher.get(http_server.url("/b"))).body == b"fine"


async def test_what_is_kept_per_host_is_forgotten_for_idle_hosts(http_server: HTTPServer) -> None:
    """A daemon that follows article links to every site keeps a gate, a spacing and a
    pause per host: past `hosts_kept` hosts, those of idle hosts go, and a host with a
    pause left stays paused."""
    http_server.routes["/a"] = Route(200, b"fine")
    http_server.routes["/busy"] = Route(429, b"", {"Retry-After": "60"})
    fetcher = Fetcher(timeout=1.0, hosts_kept=4, host_delay=0.0)
    try:
        port = http_server.port
        with pytest.raises(RetryableFetchError, match="HTTP 429"):
            await fetcher.get(f"http://127.0.0.1:{port}/busy")  # paused for a minute
        for n in range(2, 12):  # ten more hosts: other names of loopback (refused)
            with pytest.raises(RetryableFetchError):
                await fetcher.get(f"http://127.0.0.{n}:{port}/a")
        assert len(fetcher._hosts) <= 4  # not 11
        # The paused host is still refused without a request.
        with pytest.raises(RetryableFetchError, match="asked for a pause"):
            await fetcher.get(f"http://127.0.0.1:{port}/a")
        assert not http_server.received("/a", "GET")
        assert (await fetcher.get(f"http://localhost:{port}/a")).body == b"fine"
    finally:
        await fetcher.close()


async def test_a_host_with_a_request_under_way_keeps_its_gate(http_server: HTTPServer) -> None:
    """Forgetting the gate of a host while a request holds it would let the next request
    past the per-host limit."""
    def slow(request: Request) -> Route:
        time.sleep(0.5)
        return Route(200, b"slow")
    http_server.routes["/slow"] = slow
    fetcher = Fetcher(timeout=5.0, hosts_kept=2, per_host=1)
    try:
        port = http_server.port
        under_way = asyncio.create_task(fetcher.get(f"http://127.0.0.1:{port}/slow"))
        await asyncio.sleep(0.1)
        gate = fetcher._hosts[f"127.0.0.1:{port}"]
        for n in range(2, 6):  # more hosts than kept, each refused at once
            with pytest.raises(RetryableFetchError):
                await fetcher.get(f"http://127.0.0.{n}:{port}/a")
        assert fetcher._hosts[f"127.0.0.1:{port}"] is gate
        assert (await under_way).body == b"slow"
    finally:
        await fetcher.close()


# -- DNS rebinding (rule 7) ----------------------------------------------------------------

class ScriptedDNS(AbstractResolver):
    """A name server that answers each name with its next scripted address, the last one
    ever after: a rebinding attacker's answers public first, 127.0.0.1 next."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = {name: list(addresses) for name, addresses in answers.items()}
        self.asked: list[str] = []

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        self.asked.append(host)
        addresses = self.answers.get(host)
        if not addresses:
            raise OSError(f"no such name {host}")
        address = addresses.pop(0) if len(addresses) > 1 else addresses[0]
        return [ResolveResult(hostname=host, host=address, port=port, family=socket.AF_INET,
                              proto=0, flags=0)]

    async def close(self) -> None:
        pass


@pytest.fixture
def public_and_internal(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[HTTPServer, HTTPServer]]:
    """Two servers on one port: 127.0.0.2 plays a public site (no traffic may leave
    loopback here, so this test counts it as public), 127.0.0.1 an internal service."""
    real = fetch_module.is_public
    monkeypatch.setattr(fetch_module, "is_public", lambda a: a == "127.0.0.2" or real(a))
    for _ in range(50):  # a port free on both addresses
        public = HTTPServer("127.0.0.2")
        try:
            internal = HTTPServer("127.0.0.1", public.port)
            break
        except OSError:
            public.server.server_close()
    else:
        raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")
    public.start()
    internal.start()
    for server, body in ((public, b"public page"), (internal, b"internal secret")):
        server.routes["/article"] = Route(200, body)
    yield public, internal
    public.stop()
    internal.stop()


async def test_a_name_that_rebinds_to_loopback_never_reaches_it(
    public_and_internal: tuple[HTTPServer, HTTPServer],
) -> None:
    public, internal = public_and_internal
    dns = ScriptedDNS({"news.example": ["127.0.0.2", "127.0.0.1"]})
    url = f"http://news.example:{public.port}/article"
    fetcher = Fetcher(timeout=2.0, resolver=dns)
    try:
        assert (await fetcher.get(url, public_only=True)).body == b"public page"
        assert dns.asked == ["news.example"]  # checked once, and that answer connected
        assert (await fetcher.get(url, public_only=True)).body == b"public page"
    finally:
        await fetcher.close()
    # A new pool (a restart, or the cached answer expired) is given the loopback answer
    # now: refused, not connected to.
    fetcher = Fetcher(timeout=2.0, resolver=dns)
    try:
        with pytest.raises(PermanentFetchError, match="non-public address 127.0.0.1"):
            await fetcher.get(url, public_only=True)
    finally:
        await fetcher.close()
    assert dns.asked == ["news.example", "news.example"]
    assert len(public.received("/article", "GET")) == 2
    assert internal.requests == []


async def test_every_redirect_hop_connects_only_to_what_was_checked(
    public_and_internal: tuple[HTTPServer, HTTPServer],
) -> None:
    public, internal = public_and_internal
    port = public.port
    public.routes["/to-rebinder"] = Route(302, headers={
        "Location": f"http://rebind.example:{port}/article"})
    public.routes["/to-internal"] = Route(302, headers={
        "Location": f"http://internal.example:{port}/article"})
    public.routes["/to-literal"] = Route(302, headers={"Location": f"http://127.0.0.1:{port}/x"})
    dns = ScriptedDNS({"news.example": ["127.0.0.2"], "rebind.example": ["127.0.0.2", "127.0.0.1"],
                       "internal.example": ["127.0.0.1"]})
    fetcher = Fetcher(timeout=2.0, resolver=dns)
    try:
        resp = await fetcher.get(f"http://news.example:{port}/to-rebinder", public_only=True)
        assert resp.body == b"public page" and "rebind.example" in resp.url
        for path, refused in (("/to-internal", "internal.example"), ("/to-literal", "127.0.0.1")):
            with pytest.raises(PermanentFetchError, match=f"refused: {refused} resolves to "
                                                          "non-public address 127.0.0.1"):
                await fetcher.get(f"http://news.example:{port}{path}", public_only=True)
        # Feeds (the operator's own) go through the other pool: any address.
        resp = await fetcher.get(f"http://internal.example:{port}/article")
        assert resp.body == b"internal secret"
    finally:
        await fetcher.close()
    assert len(internal.requests) == 1  # the feed request only
    assert dns.asked.count("rebind.example") == 1


async def test_allow_private_lets_article_links_reach_loopback_names(
    http_server: HTTPServer,
) -> None:
    http_server.routes["/article"] = Route(200, b"intranet page")
    dns = ScriptedDNS({"intranet.example": ["127.0.0.1"]})
    fetcher = Fetcher(timeout=2.0, resolver=dns, allow_private=True)
    try:
        resp = await fetcher.get(f"http://intranet.example:{http_server.port}/article",
                                 public_only=True)
    finally:
        await fetcher.close()
    assert resp.body == b"intranet page"


async def test_through_a_proxy_the_name_is_checked_before_the_request(
    http_server: HTTPServer, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proxy resolves the name itself, so it is checked here first (once)."""
    http_server.routes["http://internal.example/article"] = Route(200, b"internal")
    monkeypatch.setenv("HTTP_PROXY", http_server.url(""))
    dns = ScriptedDNS({"internal.example": ["127.0.0.1"]})
    fetcher = Fetcher(timeout=2.0, resolver=dns)
    try:
        with pytest.raises(PermanentFetchError, match="non-public address 127.0.0.1"):
            await fetcher.get("http://internal.example/article", public_only=True)
    finally:
        await fetcher.close()
    assert http_server.requests == [] and dns.asked == ["internal.example"]
