"""A loopback server for the polling benchmarks: thousands of feeds on many hosts, the
articles they link to, and a webhook receiver that notes when each alert arrived.

Feeds are spread over `hosts` loopback addresses (127.0.1.1, 127.0.1.2, ...), so that
per-host politeness applies to them as it would to real sites. Feed n lives at
http://127.0.1.h:PORT/feed/n.xml with 20 items, at first all 10 days old (so the first poll
alerts nothing, as a first poll of an old feed should). Every tenth feed (`busy_every`) is
"busy": each round (`/_advance`) adds `new` items to it and changes its ETag; the others keep their ETag and
answer a conditional GET with 304. Articles are real text: sentences of the corpus pages,
shuffled per article (so no two are one story), with names the benchmark's watchlist
watches. The server runs in its own process (on the machine's other core) with a minimal
HTTP/1.1 keep-alive protocol on asyncio, so that it costs far less than any client.

`latency` delays each feed and article answer by that many seconds (a real site's round
trip and time to first byte); control and webhook answers are never delayed.

Control, on any host: GET /_advance starts the next round; GET /_stats returns request
counts; POST /hook receives a webhook (its item's URL, with the time the feed first
listed that item, gives the poll-to-delivery delay); GET /_hooks returns those delays.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import random
import socket
import time
from collections import Counter
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from xml.sax.saxutils import escape

ITEMS = 20
BUSY_EVERY = 10
NAMES = ("Haftar", "Sirte", "Tripoli", "Benghazi", "Misrata")


def host(n: int, hosts: int) -> str:
    return f"127.0.1.{n % hosts + 1}"


class State:
    def __init__(self, feeds: int, new: int, sentences: list[str],
                 busy_every: int = BUSY_EVERY, latency: float = 0.0) -> None:
        self.feeds = feeds
        self.latency = latency
        self.new = new
        self.busy_every = busy_every
        self.round = 0
        self.sentences = sentences
        self.requests: Counter[str] = Counter()
        self.first_listed: dict[str, float] = {}
        self.delays: list[float] = []
        self.hook_ids: Counter[str] = Counter()
        self.started = datetime.now(UTC)

    def busy(self, n: int) -> bool:
        return n % self.busy_every == 0

    def etag(self, n: int) -> str:
        return f'"{n}-{self.round if self.busy(n) else 0}"'

    def feed(self, n: int, base: str) -> bytes:
        newest = ITEMS + (self.round * self.new if self.busy(n) else 0)
        now = time.time()
        items = []
        for i in range(newest, newest - ITEMS, -1):
            link = f"{base}/a/{n}-{i}.html"
            self.first_listed.setdefault(link, now)
            # The first round's items are 10 days old: a first poll stays quiet.
            age = 10 * 86400 if i <= ITEMS else 0
            date = format_datetime(
                datetime.fromtimestamp(self.started.timestamp() + i - age, UTC), usegmt=True)
            items.append(f"<item><guid>{n}-{i}</guid><title>Report {n}-{i} from "
                         f"{NAMES[i % len(NAMES)]}</title><link>{link}</link>"
                         f"<description>{escape(self.summary(n, i))}"
                         f"</description><pubDate>{date}</pubDate></item>")
        return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
                f"<title>Feed {n}</title><link>{base}/</link>{''.join(items)}"
                "</channel></rss>").encode()

    def summary(self, n: int, i: int) -> str:
        """A sentence per item; new items' sentences are all different (up to the number
        of sentences), so that no two new items read as copies of one story."""
        if i <= ITEMS:
            return self.sentences[(n * 31 + i) % len(self.sentences)]
        round_, k = divmod(i - ITEMS - 1, self.new)
        busy_feeds = -(-self.feeds // self.busy_every)
        index = (round_ * busy_feeds + n // self.busy_every) * self.new + k
        return self.sentences[index % len(self.sentences)]

    def article(self, key: str) -> bytes:
        rng = random.Random(key)
        paragraphs = [" ".join(rng.sample(self.sentences, 4)) for _ in range(6)]
        paragraphs[1] += f" Officials in {rng.choice(NAMES)} said Haftar's forces moved."
        body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
        return (f"<!doctype html><html lang='en'><head><title>Report {key}</title></head><body>"
                "<header><nav><a href='/'>Home</a> <a href='/world'>World</a></nav></header>"
                f"<main><article><h1>Report {key}</h1>{body}</article></main>"
                "<footer>Sorry, you need to enable JavaScript to visit this website.</footer>"
                "</body></html>").encode()


class Protocol(asyncio.Protocol):
    def __init__(self, state: State, base: str) -> None:
        self.state = state
        self.base = base
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4:end + 4 + length]
            self.buffer = self.buffer[end + 4 + length:]
            method, path, _ = head[0].split(" ", 2)
            self.respond(method, path, headers, body)

    def respond(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        state = self.state
        status, extra, payload = 200, "", b""
        if path.startswith("/feed/"):
            n = int(path[6:].split(".")[0])
            state.requests["feed"] += 1
            etag = state.etag(n)
            if headers.get("if-none-match") == etag:
                status = 304
                state.requests["304"] += 1
            else:
                payload = state.feed(n, self.base)
                state.requests["200"] += 1
            extra = f"ETag: {etag}\r\nContent-Type: application/rss+xml\r\n"
        elif path.startswith("/a/"):
            state.requests["article"] += 1
            payload = state.article(path[3:].split(".")[0])
            extra = "Content-Type: text/html; charset=utf-8\r\n"
        elif path == "/hook" and method == "POST":
            url = json.loads(body)["item"]["url"]
            state.hook_ids[url] += 1
            if state.hook_ids[url] == 1:
                state.delays.append(time.time() - state.first_listed.get(url, time.time()))
            payload = b"ok"
        elif path == "/_advance":
            state.round += 1
            payload = str(state.round).encode()
        elif path == "/_stats":
            payload = json.dumps({**state.requests, "round": state.round,
                                  "hooks": sum(state.hook_ids.values()),
                                  "hooked_items": len(state.hook_ids)}).encode()
        elif path == "/_hooks":
            payload = json.dumps(state.delays).encode()
        else:
            status = 404
        reason = {200: "OK", 304: "Not Modified", 404: "Not Found"}[status]
        assert self.transport is not None
        data = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(payload)}\r\n" \
               f"{extra}\r\n".encode() + payload
        if state.latency and path.startswith(("/feed/", "/a/")):
            # A real site's round trip and time to first byte, without blocking the server.
            asyncio.get_running_loop().call_later(state.latency, self.transport.write, data)
        else:
            self.transport.write(data)


def _serve(port: int, hosts: int, feeds: int, new: int, sentences: list[str],
           busy_every: int, latency: float, ready: Any) -> None:
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        state = State(feeds, new, sentences, busy_every, latency)
        loop = asyncio.get_running_loop()
        for h in range(hosts):
            address = f"127.0.1.{h + 1}"
            base = f"http://{address}:{port}"
            await loop.create_server(lambda b=base: Protocol(state, b), address, port,
                                     reuse_address=True, backlog=1024)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.1.1", 0))
        return int(s.getsockname()[1])


class FeedServer:
    def __init__(self, feeds: int, hosts: int = 200, new: int = 2,
                 sentences: list[str] | None = None, busy_every: int = BUSY_EVERY,
                 latency: float = 0.0) -> None:
        self.feeds, self.hosts, self.new, self.busy_every = feeds, hosts, new, busy_every
        self.port = free_port()
        self.sentences = sentences or [f"Sentence number {i} about the news." for i in range(50)]
        self._ready = multiprocessing.Event()
        self._proc = multiprocessing.Process(
            target=_serve, args=(self.port, hosts, feeds, new, self.sentences, busy_every, latency,
                  self._ready),
            daemon=True)

    def __enter__(self) -> FeedServer:
        self._proc.start()
        if not self._ready.wait(30):
            raise RuntimeError("feed server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.terminate()
        self._proc.join(5)

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None
        return self._proc.pid

    def url(self, n: int) -> str:
        return f"http://{host(n, self.hosts)}:{self.port}/feed/{n}.xml"

    @property
    def hook(self) -> str:
        return f"http://127.0.1.1:{self.port}/hook"

    def control(self, what: str) -> Any:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.1.1:{self.port}/{what}", timeout=30) as r:
            return json.loads(r.read())
