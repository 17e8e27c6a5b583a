"""Async HTTP for feeds and pages: conditional GET, time and size limits, polite concurrency.

Rules, in order:
1. Every request names the project in its User-Agent and asks for gzip.
2. A feed request sends the ETag and Last-Modified it was given; 304 means unchanged.
3. The whole request, redirects and body included, must finish within the total timeout,
   so a server that trickles bytes cannot hold a worker; and a response that sends nothing
   for `read_timeout` seconds (before its headers or amid its body) fails then, so a
   server that stalls does not hold the poll for the whole total.
4. The body is read as a stream and cut at the size limit (after decompression, so a gzip
   bomb is cut too); the result says it was truncated.
5. 408, 429 and 5xx, timeouts and connection errors are retryable (with the server's
   Retry-After when given); other 4xx are permanent.
6. At most `per_host` requests run against one host at a time, and their starts are at
   least `host_delay` seconds apart.
7. A request marked `public_only` (article links, which come from untrusted feeds) and each
   of its redirects must resolve to public addresses only: loopback, private, link-local
   (cloud metadata at 169.254.169.254 included), multicast and reserved addresses are
   refused, so a malicious feed cannot make the daemon read internal services such as
   Redis. `allow_private` lifts this (tests, demos, intranets). The check is made by the
   resolver of the connection pool these requests use (PublicResolver), which hands the
   pool only addresses it vetted: the address checked is the address connected to, so a
   name that answers a public address to the check and 127.0.0.1 to the connection (DNS
   rebinding) cannot reach loopback. Through an HTTP proxy the proxy resolves the name,
   so there the name is checked once before the request and the proxy's own rules decide.
8. A host that answers 429, or 503 with a Retry-After, is sent nothing more by this
   instance until that time has passed (HOST_PAUSE when a 429 names none, HOST_PAUSE_MAX
   at most): requests for it fail at once meanwhile, retryable with the time left, so a
   site that asks for a pause is not sent the rest of a burst of article links, or its
   other feeds' polls.
9. The pause is every instance's: `asked_pauses` hands the hosts that asked this one to
   the daemon, which shares them through Redis, and `pause` holds a host that asked
   another instance (monitor.service), so n instances do not each take their own 429.
10. What rules 6 and 8 keep per host is forgotten for hosts with no request under way,
   no spacing to keep and no pause left, once more than `hosts_kept` hosts are known: a
   daemon that reads article links from every site on the web would otherwise keep a
   gate per site it ever reached.
11. Every URL in an error is redacted (monitor.urls): a password or token in a feed URL
   never reaches the feed's state, the logs or `monitor feeds`.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import socket
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from monitor import USER_AGENT
from monitor.errors import PermanentFetchError, RetryableFetchError
from monitor.urls import redact, redact_text

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
MAX_HEADER_LINE = 64 * 1024  # some sites send cookies and CSP headers far over 8 KB
HOST_PAUSE = 30.0  # rule 8: after a 429 without Retry-After
HOST_PAUSE_MAX = 3600.0
HOSTS_KEPT = 4096  # rule 10


_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT, used inside clouds


def is_public(address: str) -> bool:
    """Whether an IP address may be fetched on behalf of an untrusted feed."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast \
            or ip.is_reserved or ip.is_unspecified:
        return False
    return not (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED)


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class RefusedAddress(OSError):
    """Raised by PublicResolver for a host with a non-public address (rule 7); aiohttp
    hands it on as the `os_error` of a ClientConnectorError."""

    def __init__(self, host: str, address: str) -> None:
        super().__init__(f"{host} resolves to non-public address {address}")
        self.host = host
        self.address = address


class PublicResolver(AbstractResolver):
    """Rule 7: the resolver of the pool that article links use. It resolves with `base`
    and gives the pool a host's addresses only when every one of them is public, so the
    pool connects to the very addresses checked, at every hop and every new connection
    (the pool caches what it was given, never anything unvetted)."""

    def __init__(self, base: AbstractResolver) -> None:
        self.base = base

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = await self.base.resolve(host, port, family)
        for result in results:
            if not is_public(result["host"]):
                raise RefusedAddress(host, result["host"])
        return results

    async def close(self) -> None:
        pass  # `base` belongs to the Fetcher, which closes it


def _refused(url: str, exc: RefusedAddress) -> PermanentFetchError:
    return PermanentFetchError(f"fetch: {redact(url)}: refused: {exc} "
                               "(MONITOR_ALLOW_PRIVATE_URLS=true allows it)")


def host_key(url: str) -> str:
    """The host (and port, when one is written) that rules 6, 8 and 9 keep apart: the
    URL's authority without its userinfo, which is no part of the host and may hold a
    password."""
    return urlsplit(url).netloc.rpartition("@")[2].lower()


class EnvProxies:
    """HTTP_PROXY / HTTPS_PROXY / NO_PROXY, read once, as most HTTP tools honour them."""

    def __init__(self) -> None:
        self._proxies = {k: v for k, v in urllib.request.getproxies().items()
                         if k in ("http", "https")}
        self._bypass: dict[str, bool] = {}

    def get(self, url: URL) -> str | None:
        proxy = self._proxies.get(url.scheme)
        if proxy is None:
            return None
        host = url.raw_host or ""
        if host not in self._bypass:
            self._bypass[host] = bool(urllib.request.proxy_bypass(host))
        return None if self._bypass[host] else proxy


@dataclass(frozen=True, slots=True)
class Response:
    url: str
    status: int
    body: bytes
    content_type: str | None = None
    charset: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    truncated: bool = False
    moved_to: str | None = None  # where a permanent redirect (301, 308) sent the request

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class Fetcher:
    """One shared connection pool; `get` is safe to call from many tasks at once.

    aiohttp, not httpx: on loopback it makes about seven times the requests per second on
    one core (bench/poll.py), and at thousands of feeds the client's CPU time per request
    is what bounds polling. Redirects are followed here, hop by hop, so that each hop's
    address can be checked (rule 7) and permanent moves recognised.
    """

    def __init__(self, *, timeout: float = 20.0, connect_timeout: float = 10.0,
                 read_timeout: float | None = 5.0,
                 max_bytes: int = 10 * 1024 * 1024, concurrency: int = 16, per_host: int = 2,
                 host_delay: float = 0.0, allow_private: bool = False,
                 hosts_kept: int = HOSTS_KEPT, resolver: AbstractResolver | None = None) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.concurrency = concurrency
        self.allow_private = allow_private
        self.host_delay = host_delay
        self._next_start: dict[str, float] = {}
        self._spacing: dict[str, asyncio.Lock] = {}
        self.max_bytes = max_bytes
        self.per_host = per_host
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._paused: dict[str, float] = {}  # host -> monotonic time its pause ends (rule 8)
        self._under_way: dict[str, int] = {}  # host -> requests started, not finished
        self.hosts_kept = hosts_kept
        self._forget_at = hosts_kept  # rule 10: known hosts past which idle ones go
        self._asked: set[str] = set()  # hosts that asked this instance, not yet handed on
        # One pool for requests that may reach any address, one whose resolver lets
        # only public addresses through (rule 7): a pool caches the addresses it
        # resolved, so the two kinds of request cannot share one.
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._resolver = resolver
        self._own_resolver: AbstractResolver | None = None
        self._proxies = EnvProxies()

    def _base_resolver(self) -> AbstractResolver:
        if self._resolver is None:
            self._resolver = self._own_resolver = aiohttp.DefaultResolver()
        return self._resolver

    def _client(self, public_only: bool = False) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the event loop that runs it.
        session = self._sessions.get(public_only)
        if session is None:
            base = self._base_resolver()
            session = self._sessions[public_only] = aiohttp.ClientSession(
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
                connector=aiohttp.TCPConnector(
                    limit=self.concurrency, ttl_dns_cache=300,
                    resolver=PublicResolver(base) if public_only else base),
                timeout=aiohttp.ClientTimeout(total=self.timeout,
                                              sock_connect=self.connect_timeout,
                                              sock_read=self.read_timeout),
                cookie_jar=aiohttp.DummyCookieJar(),  # no tracking across sites or polls
                # Proxies come from EnvProxies: aiohttp's trust_env re-reads the
                # environment and ~/.netrc on every request.
                max_line_size=MAX_HEADER_LINE, max_field_size=MAX_HEADER_LINE,
            )
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()
        if self._own_resolver is not None:
            await self._own_resolver.close()
            self._resolver = self._own_resolver = None

    async def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
                  accept: str | None = None, public_only: bool = False) -> Response:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        if accept:
            headers["Accept"] = accept
        host = host_key(url)
        self._check_pause(url, host)
        if len(self._hosts) >= self._forget_at and host not in self._hosts:
            self._forget_idle_hosts()
        gate = self._hosts.setdefault(host, asyncio.Semaphore(self.per_host))
        self._under_way[host] = self._under_way.get(host, 0) + 1
        try:
            return await self._gated(url, host, gate, headers, public_only)
        finally:
            self._under_way[host] -= 1

    def _forget_idle_hosts(self) -> None:
        """Rule 10: drops what is kept for hosts with nothing under way, to keep or left."""
        now = time.monotonic()
        for host in list(self._hosts):
            if not self._under_way.get(host) and self._next_start.get(host, 0.0) <= now \
                    and self._paused.get(host, 0.0) <= now:
                for kept in (self._hosts, self._under_way, self._next_start, self._spacing):
                    kept.pop(host, None)
        for host, ends in list(self._paused.items()):  # some came from other instances
            if ends <= now:
                del self._paused[host]
        # The next pass once as many hosts again are known: a constant cost per host.
        self._forget_at = max(self.hosts_kept, 2 * len(self._hosts))

    async def _gated(self, url: str, host: str, gate: asyncio.Semaphore,
                     headers: dict[str, str], public_only: bool) -> Response:
        async with gate:
            await self._space(host)
            self._check_pause(url, host)  # asked while this request waited its turn
            started = time.monotonic()
            shown = redact(url)
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._get(url, headers, public_only and not self.allow_private)
            except aiohttp.SocketTimeoutError as exc:  # rule 3: the read timeout
                raise RetryableFetchError(
                    f"fetch: {shown}: no data for {self.read_timeout:g}s "
                    "(MONITOR_HTTP_READ_TIMEOUT)") from exc
            except TimeoutError as exc:
                spent = time.monotonic() - started
                raise RetryableFetchError(f"fetch: {shown}: timed out after {spent:.1f}s") from exc
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, RefusedAddress):
                    raise _refused(url, exc.os_error) from exc
                raise RetryableFetchError(
                    f"fetch: {shown}: cannot connect to {exc.host}:{exc.port}: "
                    f"{redact_text(str(exc.os_error.strerror or exc.os_error))}") from exc
            except (aiohttp.ClientError, ValueError) as exc:
                raise RetryableFetchError(
                    f"fetch: {shown}: {type(exc).__name__}: {redact_text(str(exc))}") from exc

    def _check_pause(self, url: str, host: str) -> None:
        left = self._paused.get(host, 0.0) - time.monotonic()
        if left > 0:
            raise RetryableFetchError(
                f"fetch: {redact(url)}: {host} asked for a pause (HTTP 429 or 503); "
                f"{left:.0f}s left", left)

    def _pause(self, resp: aiohttp.ClientResponse, delay: float | None) -> None:
        """Rule 8: no more requests to the host that answered `resp` for a while."""
        if resp.status != 429 and delay is None:
            return  # a 503 without Retry-After: one failed request, not a request to wait
        host = host_key(str(resp.url))
        self.pause(host, HOST_PAUSE if delay is None else delay)
        self._asked.add(host)

    def pause(self, host: str, seconds: float) -> None:
        """No requests to `host` (as `host:port` when not the default) for `seconds`, or
        until a longer pause already set ends (rules 8 and 9)."""
        until = time.monotonic() + min(seconds, HOST_PAUSE_MAX)
        self._paused[host] = max(self._paused.get(host, 0.0), until)

    def asked_pauses(self) -> dict[str, float]:
        """The hosts that asked this instance for a pause since the last call, with the
        seconds left of each (rule 9)."""
        now = time.monotonic()
        asked = {host: self._paused[host] - now for host in self._asked
                 if self._paused.get(host, 0.0) > now}
        self._asked.clear()
        return asked

    async def _space(self, host: str) -> None:
        """Waits until `host_delay` has passed since the last request to `host` started."""
        if self.host_delay <= 0:
            return
        async with self._spacing.setdefault(host, asyncio.Lock()):
            wait = self._next_start.get(host, 0.0) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next_start[host] = time.monotonic() + self.host_delay

    async def _check_public(self, url: str, target: URL) -> None:
        """Raises unless every address `target`'s host has is public (rule 7): done here
        for an address written in the URL, which no resolver sees, and for a request
        through a proxy, whose pool resolves only the proxy's name."""
        host = target.raw_host or ""
        if _ip_literal(host):
            if not is_public(host):
                raise _refused(url, RefusedAddress(host, host))
            return
        try:
            await PublicResolver(self._base_resolver()).resolve(
                host, target.port or 443, socket.AF_UNSPEC)
        except RefusedAddress as exc:
            raise _refused(url, exc) from exc
        except OSError as exc:
            raise RetryableFetchError(
                f"fetch: {redact(url)}: cannot resolve {host}: {exc}") from exc

    async def _get(self, url: str, headers: dict[str, str], public_only: bool) -> Response:
        target = URL(url)
        permanent = True
        for hop in range(MAX_REDIRECTS + 1):
            if target.scheme not in ("http", "https"):
                raise PermanentFetchError(
                    f"fetch: {redact(url)}: unsupported URL {redact(str(target))}")
            proxy = self._proxies.get(target)
            vetted = public_only and proxy is None  # the pool's resolver checks (rule 7)
            if public_only and (proxy is not None or _ip_literal(target.raw_host or "")):
                await self._check_public(url, target)
            async with self._client(vetted).get(target, headers=headers, allow_redirects=False,
                                                proxy=proxy) as resp:
                if resp.status in REDIRECT_STATUS and "Location" in resp.headers:
                    if hop == MAX_REDIRECTS:
                        raise PermanentFetchError(f"fetch: {redact(url)}: too many redirects")
                    permanent = permanent and resp.status in (301, 308)
                    target = target.join(URL(resp.headers["Location"]))
                    continue
                moved = str(resp.url) if hop and permanent else None
                return await self._read(url, resp, moved)
        raise AssertionError("unreachable")

    async def _read(self, url: str, resp: aiohttp.ClientResponse, moved: str | None) -> Response:
        if resp.status == 304:
            return self._response(resp, b"", False, moved)
        if resp.status in RETRYABLE_STATUS:
            delay = retry_after(resp.headers.get("Retry-After"))
            if resp.status in (429, 503):
                self._pause(resp, delay)
            raise RetryableFetchError(f"fetch: {redact(url)}: HTTP {resp.status}", delay)
        if resp.status >= 400:
            raise PermanentFetchError(f"fetch: {redact(url)}: HTTP {resp.status}", resp.status)
        chunks: list[bytes] = []
        size = 0
        truncated = False
        async for chunk in resp.content.iter_chunked(64 * 1024):  # decompressed (rule 4)
            size += len(chunk)
            if size > self.max_bytes:
                chunks.append(chunk[: len(chunk) - (size - self.max_bytes)])
                truncated = True
                break
            chunks.append(chunk)
        return self._response(resp, b"".join(chunks), truncated, moved)

    @staticmethod
    def _response(resp: aiohttp.ClientResponse, body: bytes, truncated: bool,
                  moved: str | None) -> Response:
        try:
            charset = resp.charset
        except (LookupError, ValueError):
            charset = None
        return Response(
            url=str(resp.url),
            status=resp.status,
            body=body,
            content_type=resp.headers.get("Content-Type"),
            charset=charset,
            etag=resp.headers.get("ETag"),
            last_modified=resp.headers.get("Last-Modified"),
            truncated=truncated,
            moved_to=moved,
        )
