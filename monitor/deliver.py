"""Sends rendered alerts: email over SMTP and JSON webhooks signed with HMAC-SHA256.

A send either returns (the endpoint confirmed it) or raises a DeliveryError that says
whether trying again can help, and what failed: the host, the endpoint, or the alert
(its `scope`); the caller decides about retries and dead letters. Each sender also names
the `Route` of a send: the circuits it goes through (monitor.circuits), host first.

Webhook signature, for receivers: the request carries `X-Monitor-Timestamp: <unix time>`
and `X-Monitor-Signature: sha256=<hex>`, where hex is HMAC-SHA256 with the subscriber's
secret over `<timestamp>.<raw body>`. Recompute it, compare in constant time, and reject
timestamps older than a few minutes (replay). `Idempotency-Key` is the same on every retry
of one alert: drop repeats by it. `verify_signature` below does all of that.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import aiosmtplib
import orjson
from yarl import URL

from monitor import USER_AGENT
from monitor.errors import PermanentDeliveryError, RetryableDeliveryError
from monitor.http import RETRYABLE_STATUS, EnvProxies, retry_after
from monitor.models import Alert
from monitor.render import email_bytes, envelope_address, webhook_payload

SIGNATURE_HEADER = "X-Monitor-Signature"
TIMESTAMP_HEADER = "X-Monitor-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE = 300.0


@dataclass(frozen=True, slots=True)
class Route:
    """Where a send goes: the circuits it passes, outermost first (`channel@host:port`,
    then for a webhook `...#<hash of its URL>`, one host serving many webhooks), and the
    gate it queues at for the host's concurrency limit (the first)."""

    channel: str
    circuits: tuple[str, ...]

    @property
    def gate(self) -> str:
        return self.circuits[0]

    def circuit(self, scope: str) -> str | None:
        """The circuit a failure of `scope` opens; None for an alert's own failure."""
        return {"host": self.circuits[0], "endpoint": self.circuits[-1]}.get(scope)


def gate_of(circuit: str) -> str:
    """The host circuit (and gate) of a circuit id."""
    return circuit.partition("#")[0]


def _host_port(host: str | None, port: int) -> str:
    host = (host or "").lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str,
                     tolerance: float = DEFAULT_TOLERANCE, now: float | None = None) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    try:
        age = abs((time.time() if now is None else now) - float(timestamp))
    except ValueError:
        return False
    return age <= tolerance and hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookSender:
    """Signed POSTs over one aiohttp session (the same client as monitor.fetch)."""

    def __init__(self, timeout: float = 15.0, connections: int = 64,
                 connect_timeout: float | None = None) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._proxies = EnvProxies()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:  # made on first use, inside the loop that runs it
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections),
                timeout=aiohttp.ClientTimeout(total=self.timeout,
                                              sock_connect=self.connect_timeout),
                cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @staticmethod
    def route(url: str) -> Route:
        """The webhook's host, then the webhook: a host that cannot be reached holds all
        its webhooks; one webhook answering 5xx holds only itself."""
        parts = urlsplit(url)
        host = "webhook@" + _host_port(parts.hostname, parts.port or
                                       (443 if parts.scheme == "https" else 80))
        digest = hashlib.sha256(url.encode()).hexdigest()[:8]
        return Route("webhook", (host, f"{host}#{digest}"))

    async def send(self, alert: Alert, url: str, secret: str) -> None:
        body = orjson.dumps(webhook_payload(alert))
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            IDEMPOTENCY_HEADER: alert.key,
        }
        try:
            async with self._client().post(url, data=body, headers=headers,
                                           allow_redirects=False,
                                           proxy=self._proxies.get(URL(url))) as resp:
                status, after = resp.status, resp.headers.get("Retry-After")
                await resp.read()  # drain, so the connection is reused
        except aiohttp.ConnectionTimeoutError as exc:
            raise RetryableDeliveryError(
                "webhook: timed out connecting", scope="host") from exc
        except TimeoutError as exc:  # the host answers, this webhook does not
            raise RetryableDeliveryError(f"webhook: timed out after {self.timeout:g}s") from exc
        except aiohttp.ClientConnectorError as exc:
            raise RetryableDeliveryError(
                f"webhook: cannot connect to {exc.host}:{exc.port}", scope="host") from exc
        except aiohttp.ClientError as exc:
            raise RetryableDeliveryError(f"webhook: {type(exc).__name__}: {exc}") from exc
        if 200 <= status < 300:
            return
        if status in RETRYABLE_STATUS:
            raise RetryableDeliveryError(f"webhook: HTTP {status}", retry_after(after))
        raise PermanentDeliveryError(f"webhook: HTTP {status}")


@dataclass(kw_only=True)
class EmailSender:
    """SMTP with a few connections kept open between sends: a burst of alerts costs one
    connection, greeting and login, not one per message (SMTP servers also limit how
    many connections a client may open). A kept connection idle longer than
    `idle_timeout` is closed rather than reused; one that the server closed meanwhile is
    replaced once, transparently."""

    host: str
    port: int
    sender: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)  # never in logs or reprs
    security: str = "none"
    timeout: float = 30.0
    keep: int = 4  # idle connections kept open
    idle_timeout: float = 30.0
    _idle: list[tuple[aiosmtplib.SMTP, float]] = field(default_factory=list, repr=False)

    def route(self, recipient: str) -> Route:
        """Every email goes through the one SMTP server: its circuit is the only one. A
        recipient's own temporary refusal is the alert's failure, retried alone."""
        return Route("email", ("smtp@" + _host_port(self.host, self.port),))

    async def send(self, alert: Alert, recipient: str) -> None:
        message = email_bytes(alert, self.sender, recipient)
        envelope = (envelope_address(self.sender), envelope_address(recipient))
        try:
            client, reused = await self._connection()
            try:
                await self._send(client, envelope, message)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                if not reused:
                    raise
                client, _ = await self._connection(fresh=True)  # the server hung up idle
                await self._send(client, envelope, message)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [err.code for err in exc.recipients]
            raise _smtp_error(min(codes) if codes else 550, "recipient refused",
                              scope="alert") from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _smtp_error(exc.code, exc.message) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise RetryableDeliveryError(f"email: {type(exc).__name__}: {exc}",
                                         scope="host") from exc

    async def _send(self, client: aiosmtplib.SMTP, envelope: tuple[str, str],
                    message: bytes) -> None:
        """Sends on `client`, which goes back to the pool on success and is closed on any
        failure (its state mid-transaction is unknown)."""
        try:
            await client.sendmail(envelope[0], [envelope[1]], message)
        except BaseException:
            client.close()
            raise
        if client.is_connected and len(self._idle) < self.keep:
            self._idle.append((client, time.monotonic()))
        else:
            client.close()

    async def _connection(self, fresh: bool = False) -> tuple[aiosmtplib.SMTP, bool]:
        now = time.monotonic()
        while self._idle and not fresh:
            client, since = self._idle.pop()
            if client.is_connected and now - since < self.idle_timeout:
                return client, True
            client.close()
        client = aiosmtplib.SMTP(
            hostname=self.host, port=self.port, username=self.user, password=self.password,
            use_tls=self.security == "ssl", start_tls=self.security == "starttls",
            timeout=self.timeout)
        try:
            await client.connect()
        except BaseException:
            client.close()
            raise
        return client, False

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client, _ in idle:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


def _smtp_error(code: int, message: str,
                scope: str = "host") -> RetryableDeliveryError | PermanentDeliveryError:
    """An SMTP answer as a delivery error: 4xx is for now, of the server (`scope` "host")
    unless it refused the recipient; 5xx is for good."""
    text = f"email: SMTP {code} {message}".strip()
    if 400 <= code < 500:
        return RetryableDeliveryError(text, scope=scope)
    return PermanentDeliveryError(text, scope=scope)
