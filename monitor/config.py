"""Loads config/*.yaml (feeds, watchlists, subscribers) into validated models with file:line errors.

Rules, in order:
1. Every `*.yaml`/`*.yml` file below the config dir is read, sorted by path. A file inside a
   `watchlists/` folder holds one watchlist (or a list of them); any other file is a mapping
   with optional `feeds`, `watchlists` and `subscribers` lists.
2. `${VAR}` and `${VAR:-default}` in any string are replaced from the environment given to
   `load_config`, so secrets stay out of YAML. An unset variable without default is an error.
3. Each file is validated on its own, so an error names the file and the line of the node.
4. Then across files: names are unique, subscribers name existing watchlists. Subscribers
   written inside a watchlist subscribe to it. A subscriber is its recipient, its channel
   and address: the same address in several places, under one name or several, is one
   subscriber of all those watchlists (under the first name written), so it gets one alert
   per item; the other names are noted, and alerts queued under them still find it. One
   name for two addresses, or one address with two secrets or update settings, is an error.
5. A file over MAX_FILE_BYTES, nested deeper than MAX_DEPTH, of more than MAX_NODES
   values, or whose aliases bring in more than MAX_ALIAS_NODES nodes is refused with the
   line where it went over, before it costs more than a few megabytes; so is a value YAML
   cannot construct (a timestamp such as 2024-13-45, an unknown tag). Every error is one
   `file:line: field: message` line, with the URLs in it redacted (monitor.urls); past
   MAX_PROBLEMS in one file, one line counts the rest.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic import model_validator as _model_validator

from monitor.errors import ConfigError
from monitor.urls import redact_text

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
_DEFAULT_PORTS = {"http": 80, "https": 443}

Path_ = tuple[str | int, ...]


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string such as `90`, `30s`, `15m`, `2h`, `1d`."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 15m")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        found = _DURATION.match(str(value))
        if not found:
            raise ValueError(f"expected a duration such as 90, 30s, 15m, 2h or 1d, got {value!r}")
        seconds = float(found.group(1)) * _DURATION_UNITS[found.group(2)]
    if seconds <= 0:
        raise ValueError("must be positive")
    return seconds


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return value


def _webhook_key(url: str) -> str:
    """A webhook URL as its receiver tells URLs apart: scheme and host in lower case, no
    default port, no fragment (never sent); path and query exactly as written."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = f"[{host}]" if ":" in host else host
    port = parts.port if parts.port not in (None, _DEFAULT_PORTS.get(parts.scheme.lower())) \
        else None
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + host + (f":{port}" if port else "")
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def _webhook_name(url: str) -> str:
    """A name for logs that does not spell the URL: many webhook URLs carry a token."""
    digest = hashlib.sha256(_webhook_key(url).encode()).hexdigest()[:8]
    return f"webhook:{urlsplit(url).hostname}#{digest}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# `sensitive`: the term's letters match only in the case written ("UN", not French "un").
Case = Literal["insensitive", "sensitive"]


class Term(_Model):
    """A keyword or phrase with its weight; a bare string means weight 1."""

    term: str = Field(min_length=1)
    weight: float = 1.0
    case: Case = "insensitive"

    @_model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"term": data} if isinstance(data, str) else data


class Alias(_Model):
    """An alias with a case of its own: `{alias: UN, case: sensitive}`."""

    alias: str = Field(min_length=1)
    case: Case = "insensitive"


class Entity(_Model):
    """A person, place or organisation: its name and aliases in any script all count as it.
    `case` is that of its name and of the aliases written as plain strings."""

    name: str = Field(min_length=1)
    aliases: tuple[str | Alias, ...] = ()
    weight: float = 1.0
    case: Case = "insensitive"

    @property
    def spellings(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.name, *(
            a if isinstance(a, str) else a.alias for a in self.aliases))))

    @property
    def cased_spellings(self) -> tuple[tuple[str, bool], ...]:
        """Each spelling (the name, then the aliases) and whether its case must match."""
        return ((self.name, self.case == "sensitive"), *(
            (a, self.case == "sensitive") if isinstance(a, str) else (a.alias, a.case == "sensitive")
            for a in self.aliases))


class Group(_Model):
    """A condition over terms, nestable, that adds `weight` to the score when it holds.

    Exactly one of: `all_of` (every part), `any_of` (at least one), `none_of` (none), or
    `near` (all named terms within `within` words of each other in one field). A part is
    a term (an entity's name or alias, a keyword, or any other word or phrase) or a group.
    """

    name: str = ""
    weight: float = 0.0
    all_of: tuple[str | Group, ...] | None = None
    any_of: tuple[str | Group, ...] | None = None
    none_of: tuple[str | Group, ...] | None = None
    near: tuple[str, ...] | None = None
    within: int = Field(default=10, ge=1)

    @_model_validator(mode="after")
    def _one_kind(self) -> Group:
        kinds = [k for k in ("all_of", "any_of", "none_of", "near") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of all_of, any_of, none_of or near")
        parts = getattr(self, kinds[0])
        if not parts:
            raise ValueError(f"{kinds[0]} needs at least one term")
        if kinds[0] == "near" and len(parts) < 2:
            raise ValueError("near needs at least two terms")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("all_of", "any_of", "none_of", "near") if getattr(self, k))

    @property
    def parts(self) -> tuple[str | Group, ...]:
        return tuple(getattr(self, self.kind))

    def describe(self) -> str:
        inner = ", ".join(p if isinstance(p, str) else f"({p.describe()})" for p in self.parts)
        tail = f" within {self.within} words" if self.kind == "near" else ""
        return f"{self.kind}: {inner}{tail}"


class FeedConfig(_Model):
    url: str
    name: str = ""
    interval: float = Field(default=900.0, gt=0, description="seconds between polls")
    min_interval: float | None = Field(
        default=None, gt=0, description="adaptive polling never goes below this "
        "(default: interval / 3, at least 60 s, at most interval)")
    max_interval: float | None = Field(
        default=None, gt=0, description="adaptive polling never goes above this "
        "(default: 4 x interval, at most 1 day unless interval is longer)")
    adaptive: bool = Field(
        default=True, description="learn the poll interval from the feed's cadence and hints")
    scrape: bool = True
    watchlists: tuple[str, ...] | None = None
    tags: tuple[str, ...] = Field(
        default=(), description="labels for the operator, such as the OPML folder a feed "
        "came from (`News/World` for a nested one); `monitor feeds export` writes them back")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value)

    @field_validator("interval", "min_interval", "max_interval", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float | None:
        return None if value is None else parse_duration(value)

    @_model_validator(mode="after")
    def _default_name(self) -> FeedConfig:
        low, high = self.bounds
        if low > high:
            raise ValueError(f"min_interval ({low:g}s) is above max_interval ({high:g}s)")
        if not self.name:  # without userinfo: the name is shown in logs and alerts
            parts = urlsplit(self.url)
            host = parts.netloc.rpartition("@")[2]
            object.__setattr__(self, "name", host + parts.path.rstrip("/"))
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """The range adaptive polling keeps to (monitor.feeds.cadence rule 4)."""
        low = self.min_interval if self.min_interval is not None else \
            min(self.interval, max(self.interval / 3, 60.0))
        high = self.max_interval if self.max_interval is not None else \
            max(self.interval, min(self.interval * 4, 86400.0))
        return low, high

    @cached_property  # every poll reads it a few times
    def id(self) -> str:
        """Stable across restarts and instances: derived from the URL only."""
        return hashlib.sha1(self.url.encode()).hexdigest()[:16]


class SubscriberConfig(_Model):
    name: str = ""
    email: str | None = None
    webhook: str | None = None
    secret: SecretStr | None = None
    watchlists: tuple[str, ...] = ()
    min_score: float = 0.0
    update_sources: int | None = Field(
        default=None, ge=1,
        description="send an update when an alerted story is picked up by this many more sources")
    update_on_change: bool = Field(
        default=False, description="alert again when an alerted story's text changes substantially")

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL.match(value):
            raise ValueError(f"not an email address: {value!r}")
        return value

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return None if value is None else _check_http_url(value)

    @_model_validator(mode="after")
    def _one_channel(self) -> SubscriberConfig:
        if (self.email is None) == (self.webhook is None):
            raise ValueError("give exactly one of `email` or `webhook`")
        if self.webhook is not None and not (self.secret and self.secret.get_secret_value()):
            raise ValueError("a webhook needs a `secret` to sign its requests")
        if not self.name:
            object.__setattr__(self, "name", self.email or _webhook_name(self.webhook or ""))
        return self

    @property
    def channel(self) -> str:
        return "email" if self.email else "webhook"

    @property
    def recipient(self) -> tuple[str, str]:
        """Who receives the alerts: the channel and the address, compared as the far end
        does (email addresses and URL hosts without case, a URL without its default port)."""
        if self.email:
            return "email", self.email.casefold()
        return "webhook", _webhook_key(self.webhook or "")

    @property
    def label(self) -> str:
        """The recipient in messages: the address, or for a webhook its host and a hash
        (its path often carries a token)."""
        return f"email {self.email}" if self.email else _webhook_name(self.webhook or "")


class WatchlistConfig(_Model):
    name: str = Field(min_length=1)
    threshold: float = 1.0
    title_weight: float = Field(default=2.0, description="a hit in the title counts this many times")
    entities: tuple[Entity, ...] = ()
    keywords: tuple[Term, ...] = ()
    phrases: tuple[Term, ...] = ()
    exclude: tuple[Term, ...] = ()
    rules: tuple[Group, ...] = ()
    require: Group | None = None
    subscribers: tuple[SubscriberConfig, ...] = ()

    @_model_validator(mode="after")
    def _has_terms(self) -> WatchlistConfig:
        if not (self.entities or self.keywords or self.phrases or self.rules):
            raise ValueError("a watchlist needs at least one entity, keyword, phrase or rule")
        return self

    def case_warnings(self) -> list[str]:
        """Terms written in capitals of up to 4 letters (UN, US, IS, NATO) that match in any
        case, so also the words "un", "us", "is": `monitor validate` prints these."""
        spellings = [(f"entity {e.name!r}", s, sensitive) for e in self.entities
                     for s, sensitive in e.cased_spellings]
        spellings += [(f"{kind} {t.term!r}", t.term, t.case == "sensitive") for kind, terms in
                      (("keyword", self.keywords), ("phrase", self.phrases),
                       ("exclude", self.exclude)) for t in terms]
        out = []
        for where, spelling, sensitive in spellings:
            letters = [c for c in spelling if c.isalpha()]
            if not sensitive and 0 < len(letters) <= 4 and all(c.isupper() for c in letters):
                out.append(f"watchlist {self.name}: {where}: {spelling!r} is in capitals but "
                           f"matches in any case (also {spelling.lower()!r}); add "
                           f"`case: sensitive` to match it only as written")
        return out


class _FileConfig(_Model):
    feeds: tuple[FeedConfig, ...] = ()
    watchlists: tuple[WatchlistConfig, ...] = ()
    subscribers: tuple[SubscriberConfig, ...] = ()


@dataclass(frozen=True)
class Config:
    """The whole validated config: what to poll, what to look for, whom to tell."""

    feeds: tuple[FeedConfig, ...] = ()
    watchlists: tuple[WatchlistConfig, ...] = ()
    subscribers: tuple[SubscriberConfig, ...] = ()
    files: tuple[str, ...] = field(default=())
    # Other names written for a subscriber's recipient (rule 4): name -> the name it has.
    aliases: tuple[tuple[str, str], ...] = ()
    # What `monitor validate` notes without refusing the config, `file:line: field: note`.
    notes: tuple[str, ...] = ()

    @cached_property
    def _by_name(self) -> dict[str, SubscriberConfig]:
        found = {s.name: s for s in self.subscribers}
        for alias, name in self.aliases:
            if name in found:
                found.setdefault(alias, found[name])
        return found

    def subscriber(self, name: str) -> SubscriberConfig | None:
        """The subscriber of this name, or whose recipient was also written under it."""
        return self._by_name.get(name)


def _expand_env(text: str, env: Mapping[str, str]) -> str:
    def replace(found: re.Match[str]) -> str:
        name, default = found.group(1), found.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ValueError(f"environment variable {name} is not set")

    return _ENV_REF.sub(replace, text)


# Rule 5: what one config file may hold. The daemon reloads any file dropped into config/,
# so these keep a hostile or broken one from exhausting it: a 300-byte file of nine
# anchors of nine aliases each expands to 387 million nodes, a file nested 100,000 deep
# overflowed the parser's stack, and a 23 MB file took 86 s and 1.8 GB to load. A real
# watchlist of 100,000 terms is 4 MB of YAML and 100,000 to 700,000 nodes (keywords to
# entities with three aliases), a rule nested 30 groups deep 90 levels.
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_DEPTH = 100
MAX_NODES = 1_000_000  # values (not keys), aliases' included: each one invalid costs
                       # pydantic about a kilobyte to report
MAX_ALIAS_NODES = 100_000  # nodes that aliases bring in, in all, per file
MAX_PROBLEMS = 20  # reported per file, then how many more: the daemon logs each one
_READ_CHUNK = 1024 * 1024
# libyaml's parser where PyYAML was built with it (5-10 times faster); the pure-Python
# parser reads the same events, and reports a syntax error in more words, so a file of up
# to _REPARSE_MAX characters with one is read again by it (a 256 KB file in ~0.5 s).
_REPARSE_MAX = 256 * 1024
_PARSERS: tuple[type[Any], ...] = (
    (yaml.CSafeLoader, yaml.SafeLoader) if getattr(yaml, "__with_libyaml__", False)
    else (yaml.SafeLoader,))
_END = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


class _Refused(Exception):
    """A node that cannot be read, or a limit of rule 5, at a line of the file."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class _Open:
    """A sequence or mapping being read: its data so far, and where it is."""

    data: list[Any] | dict[str, Any]
    at: Path_
    first: int  # index of its own entry in _Composer.entries
    anchor: str | None
    key: str | None = None  # a mapping's key waiting for its value

    def child(self) -> Path_:
        """The path of the node that comes next in it."""
        if isinstance(self.data, list):
            return (*self.at, len(self.data))
        assert self.key is not None
        return (*self.at, self.key)


@dataclass(frozen=True)
class _Anchor:
    value: Any
    at: Path_
    first: int  # its entries are _Composer.entries[first:end]
    end: int
    text: str | None  # a scalar's text, for an alias used as a mapping key


class _Composer:
    """A loader's parse events -> plain data and the line of every node, without
    recursion (rule 5 limits the depth, not Python's stack). An alias is the anchored
    node's data again, and each node it brings in counts against MAX_ALIAS_NODES."""

    def __init__(self, doc: _Document, loader: Any) -> None:
        self.doc = doc
        self.loader = loader
        self.entries: list[tuple[Path_, int]] = []  # (path, line) of every node, in order
        self.anchors: dict[str, _Anchor] = {}
        self.reading: set[str] = set()  # anchors of the collections being read
        self.brought = 0  # nodes brought in by aliases so far

    def document(self) -> Any:
        loader = self.loader
        try:
            loader.get_event()  # stream start
            if loader.check_event(yaml.StreamEndEvent):
                return None
            loader.get_event()  # document start
            data = self._node()
            loader.get_event()  # document end
            if not loader.check_event(yaml.StreamEndEvent):
                raise _Refused(loader.get_event().start_mark.line + 1,
                               "expected a single document in the stream, found another")
            return data
        finally:
            loader.dispose()

    def _record(self, at: Path_, line: int) -> None:
        self.entries.append((at, line))
        self.doc.lines[at] = line
        if len(self.entries) > MAX_NODES:
            raise _Refused(line, f"more than {MAX_NODES:,} values; split it into several files")

    def _node(self) -> Any:
        stack: list[_Open] = []
        while True:
            event = self.loader.get_event()
            line = event.start_mark.line + 1
            top = stack[-1] if stack else None
            if isinstance(event, _END):
                assert top is not None
                stack.pop()
                value: Any = top.data
                if top.anchor is not None:
                    self.reading.discard(top.anchor)
                    self.anchors[top.anchor] = _Anchor(value, top.at, top.first,
                                                       len(self.entries), None)
            elif isinstance(top, _Open) and isinstance(top.data, dict) and top.key is None:
                top.key = self._key(event, line)
                continue
            else:
                at = () if top is None else top.child()
                if isinstance(event, yaml.CollectionStartEvent):
                    if len(stack) >= MAX_DEPTH:
                        raise _Refused(line, f"nested more than {MAX_DEPTH} levels deep")
                    stack.append(_Open({} if isinstance(event, yaml.MappingStartEvent) else [],
                                       at, len(self.entries), event.anchor))
                    if event.anchor is not None:
                        self.reading.add(event.anchor)
                    self._record(at, line)
                    continue
                value = self._alias(event, at, line) if isinstance(event, yaml.AliasEvent) \
                    else self._scalar(event, at, line)
            if not stack:
                return value
            parent = stack[-1]
            if isinstance(parent.data, dict):
                assert parent.key is not None
                parent.data[parent.key] = value
                parent.key = None
            else:
                parent.data.append(value)

    def _key(self, event: Any, line: int) -> str:
        if isinstance(event, yaml.ScalarEvent):
            return str(event.value)
        if isinstance(event, yaml.AliasEvent):
            anchor = self.anchors.get(str(event.anchor))
            if anchor is not None and anchor.text is not None:
                return anchor.text
        raise _Refused(line, "a mapping key must be a plain value, not a list or mapping")

    def _alias(self, event: Any, at: Path_, line: int) -> Any:
        name = str(event.anchor)
        anchor = self.anchors.get(name)
        if name in self.reading:
            raise _Refused(line, f"alias *{name} is inside the node it names (&{name})")
        if anchor is None:
            raise _Refused(line, f"alias *{name} names no anchor before it (&{name})")
        size = anchor.end - anchor.first
        self.brought += size
        if self.brought > MAX_ALIAS_NODES:
            raise _Refused(line, f"aliases bring in more than {MAX_ALIAS_NODES:,} nodes "
                                 f"(*{name} here adds {size:,}): write the values out instead")
        cut = len(anchor.at)
        for path, where in self.entries[anchor.first:anchor.end]:
            self._record((*at, *path[cut:]), where)
        return anchor.value

    def _scalar(self, event: Any, at: Path_, line: int) -> Any:
        loader = self.loader
        tag = event.tag
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        construct = loader.yaml_constructors.get(tag) or loader.yaml_constructors[None]
        try:
            value = construct(loader, node)
        except Exception as exc:  # PyYAML's constructors raise what they meet: '!!int ' IndexError
            problem = exc.problem if isinstance(exc, yaml.MarkedYAMLError) else exc
            raise _Refused(line, f"cannot read {event.value[:40]!r}: {problem}") from exc
        if isinstance(value, Iterator):  # a collection's tag on a plain value
            raise _Refused(line, f"cannot read {event.value[:40]!r} as {tag}")
        self._record(at, line)
        if event.anchor is not None:
            n = len(self.entries)
            self.anchors[event.anchor] = _Anchor(value, at, n - 1, n, str(event.value))
        if isinstance(value, str):
            try:
                return _expand_env(value, self.doc.env)
            except ValueError as exc:
                self.doc.report(at, str(exc))
        return value


def _where(exc: yaml.YAMLError, text: str) -> tuple[int, str]:
    """The line and the problem of a syntax error, or of a character YAML does not allow
    (a ReaderError: a position, no mark)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        return (exc.problem_mark.line + 1 if exc.problem_mark else 1), str(exc.problem or exc)
    if isinstance(exc, yaml.reader.ReaderError):
        return text.count("\n", 0, exc.position) + 1, str(exc).split("\n")[0]
    return 1, str(exc).split("\n")[0]


class _Document:
    """One YAML file turned into plain data plus the line of every node in it."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.lines: dict[Path_, int] = {}
        self.problems: list[str] = []
        self.hidden = 0  # problems past MAX_PROBLEMS, counted only
        self.env = env
        self.data: Any = None
        text = self._read()
        if text is None:
            return
        for parser in _PARSERS:
            self.lines, self.problems, self.hidden = {}, [], 0
            try:
                self.data = _Composer(self, parser(text)).document()
                return
            except yaml.YAMLError as exc:
                line, problem = _where(exc, text)
                if "maximum nesting depth" in problem:  # libyaml's own limit, 1,000
                    self._refuse(line, f"(yaml): nested more than {MAX_DEPTH} levels deep")
                    return
                if parser is not _PARSERS[-1] and len(text) <= _REPARSE_MAX:
                    continue  # the next parser says what it found, not only what it expected
                self._refuse(line, f"(yaml): {problem}")
                return
            except _Refused as exc:
                self._refuse(exc.line, f"(yaml): {exc}")
                return

    def _refuse(self, line: int, message: str) -> None:
        self.data, self.lines, self.hidden = None, {}, 0
        self.problems = [_one_line(f"{self.path}:{line}: {message}")]

    def report(self, at: Path_, message: str) -> None:
        """A problem at node `at`; past MAX_PROBLEMS, only counted (rule 5)."""
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(self.locate(at, message))
        else:
            self.hidden += 1

    def _read(self) -> str | None:
        """The file's text, unless it cannot be read or is over MAX_FILE_BYTES (rule 5):
        never more than that much of it is read."""
        try:
            with self.path.open("rb") as f:
                chunks: list[bytes] = []
                got = 0
                while got <= MAX_FILE_BYTES and (chunk := f.read(_READ_CHUNK)):
                    chunks.append(chunk)
                    got += len(chunk)
                size = max(got, os.fstat(f.fileno()).st_size)
            if got > MAX_FILE_BYTES:
                self._refuse(1, f"(file): {size / 2**20:.1f} MiB, over the "
                                f"{MAX_FILE_BYTES / 2**20:g} MiB a config file may hold; "
                                "split it into several files")
                return None
            return b"".join(chunks).decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self._refuse(1, f"(file): cannot read: {exc}")
            return None

    def line_of(self, at: Path_) -> int:
        for cut in range(len(at), -1, -1):
            if at[:cut] in self.lines:
                return self.lines[at[:cut]]
        return 1

    def locate(self, at: Path_, message: str) -> str:
        name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" if p.isprintable() and p
                       else f"[{p!r}]" for p in at).lstrip(".")
        return _one_line(f"{self.path}:{self.line_of(at)}: {name or '(file)'}: {message}")


def _one_line(problem: str) -> str:
    """A problem as logs and stderr show it: one line, its URLs redacted (rule 5)."""
    return redact_text(" ".join(problem.splitlines()))


def _validate_file(doc: _Document, single_watchlist: bool) -> _FileConfig | None:
    data = doc.data
    prefix: Path_ = ()
    if data is None:
        return _FileConfig()
    if single_watchlist:
        data = {"watchlists": data if isinstance(data, list) else [data]}
        prefix = () if isinstance(doc.data, list) else ("watchlists", 0)
    if not isinstance(data, dict):
        doc.report((), "expected a mapping with feeds, watchlists, subscribers")
        return None
    try:
        return _FileConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_context=False, include_input=False):
            loc: Path_ = tuple(p for p in error["loc"] if not isinstance(p, str) or p != "__root__")
            if prefix and loc[:2] == ("watchlists", 0):
                loc = loc[2:]
            doc.report(loc, error["msg"].removeprefix("Value error, "))
        return None


def config_files(config_dir: Path) -> list[Path]:
    found = [p for p in config_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    return sorted(found)


def fingerprint(config_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detector for reloads: path, size and mtime of every config file."""
    out = []
    for path in config_files(config_dir):
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(out)


def load_config(config_dir: Path, env: Mapping[str, str] | None = None) -> Config:
    """Reads and validates every config file; raises ConfigError listing every problem found."""
    env = os.environ if env is None else env
    if not config_dir.is_dir():
        raise ConfigError([f"{config_dir}:1: (dir): config directory not found"])
    problems: list[str] = []
    parsed: list[tuple[_Document, _FileConfig]] = []
    for path in config_files(config_dir):
        doc = _Document(path, env)
        single = "watchlists" in path.relative_to(config_dir).parts[:-1]
        result = _validate_file(doc, single) if doc.data is not None or not doc.problems else None
        problems.extend(doc.problems)
        if doc.hidden:
            problems.append(doc.locate((), f"and {doc.hidden:,} more problems in this file"))
        if result is not None:
            parsed.append((doc, result))
    if not problems:
        problems.extend(_cross_check(parsed))
    if problems:
        raise ConfigError(problems)
    return _merge(parsed)


def _each_named(
    parsed: list[tuple[_Document, _FileConfig]], kind: str
) -> Iterator[tuple[_Document, int, Any]]:
    for doc, result in parsed:
        for i, entry in enumerate(getattr(result, kind)):
            yield doc, i, entry


def _cross_check(parsed: list[tuple[_Document, _FileConfig]]) -> list[str]:
    problems: list[str] = []
    watchlists: set[str] = set()
    for doc, i, wl in _each_named(parsed, "watchlists"):
        if wl.name in watchlists:
            problems.append(doc.locate(("watchlists", i, "name"), f"duplicate watchlist {wl.name!r}"))
        watchlists.add(wl.name)
    urls: set[str] = set()
    for doc, i, feed in _each_named(parsed, "feeds"):
        if feed.url in urls:
            problems.append(doc.locate(("feeds", i, "url"), f"duplicate feed {feed.url!r}"))
        urls.add(feed.url)
        for name in feed.watchlists or ():
            if name not in watchlists:
                problems.append(doc.locate(("feeds", i, "watchlists"), f"no watchlist {name!r}"))
    for doc, i, sub in _each_named(parsed, "subscribers"):
        if not sub.watchlists:
            problems.append(doc.locate(("subscribers", i, "watchlists"), "names no watchlist"))
        for name in sub.watchlists:
            if name not in watchlists:
                at = ("subscribers", i, "watchlists")
                problems.append(doc.locate(at, f"no watchlist {name!r}"))
    problems.extend(_subscriber_clashes(_written_subscribers(parsed)))
    return problems


@dataclass(frozen=True)
class _Written:
    """One subscriber as written: its file and path there, and the watchlist it is
    written inside (None at the top level of a file)."""

    doc: _Document
    at: Path_
    sub: SubscriberConfig
    watchlist: str | None

    def locate(self, key: str, message: str) -> str:
        return self.doc.locate((*self.at, key) if key else self.at, message)

    @property
    def where(self) -> str:
        return f"{self.doc.path}:{self.doc.line_of(self.at)}"


def _watchlist_at(doc: _Document, index: int) -> Path_:
    """Where the `index`th watchlist of a file is in its YAML: a file of `watchlists/`
    holds one watchlist, or a list of them; any other file a `watchlists:` list."""
    if isinstance(doc.data, list):
        return (index,)
    if isinstance(doc.data, dict) and "watchlists" in doc.data:
        return ("watchlists", index)
    return ()


def _written_subscribers(parsed: list[tuple[_Document, _FileConfig]]) -> list[_Written]:
    """Every subscriber as written, those at the top level of a file first."""
    out = [_Written(doc, ("subscribers", i), sub, None)
           for doc, i, sub in _each_named(parsed, "subscribers")]
    for doc, i, wl in _each_named(parsed, "watchlists"):
        out += [_Written(doc, (*_watchlist_at(doc, i), "subscribers", j), sub, wl.name)
                for j, sub in enumerate(wl.subscribers)]
    return out


# Settings of a subscriber that must agree wherever its recipient is written: one
# recipient is one subscriber, and taking one of two values would drop the other silently.
_AGREED = ("secret", "update_sources", "update_on_change")


def _subscriber_clashes(written: list[_Written]) -> list[str]:
    """One name for two recipients, or one recipient written with two values of a
    setting in `_AGREED` (rule 4)."""
    problems: list[str] = []
    by_name: dict[str, _Written] = {}
    by_recipient: dict[tuple[str, str], _Written] = {}
    for w in written:
        first = by_name.setdefault(w.sub.name, w)
        if first.sub.recipient != w.sub.recipient:
            problems.append(w.locate("name", (
                f"subscriber {w.sub.name!r} is {first.sub.label} at {first.where} and "
                f"{w.sub.label} here: one name names one recipient; give each its own name")))
        same = by_recipient.setdefault(w.sub.recipient, w)
        for key in _AGREED:
            if getattr(same.sub, key) != getattr(w.sub, key):
                problems.append(w.locate(key, (
                    f"{w.sub.label} is written at {same.where} too, with another `{key}`: "
                    "one recipient is one subscriber; give it the same value everywhere")))
    return problems


def _merge(parsed: list[tuple[_Document, _FileConfig]]) -> Config:
    feeds = [feed for _, _, feed in _each_named(parsed, "feeds")]
    watchlists = [wl for _, _, wl in _each_named(parsed, "watchlists")]
    subscribers, aliases, notes = _merge_subscribers(_written_subscribers(parsed))
    return Config(
        feeds=tuple(feeds),
        watchlists=tuple(watchlists),
        subscribers=subscribers,
        files=tuple(str(doc.path) for doc, _ in parsed),
        aliases=aliases,
        notes=notes,
    )


def _merge_subscribers(written: list[_Written]) -> tuple[
        tuple[SubscriberConfig, ...], tuple[tuple[str, str], ...], tuple[str, ...]]:
    """One subscriber per recipient (rule 4), of every watchlist it is written for, at the
    lowest `min_score` written; the other names it was written under, and a note for each."""
    merged: dict[tuple[str, str], tuple[_Written, SubscriberConfig]] = {}
    aliases: dict[str, str] = {}
    notes: list[str] = []
    for w in written:
        extra = (w.watchlist,) if w.watchlist else ()
        first, known = merged.get(w.sub.recipient, (w, w.sub))
        if known.name != w.sub.name and w.sub.name not in aliases:
            aliases[w.sub.name] = known.name
            notes.append(w.locate("", (
                f"duplicate: {w.sub.label} is subscriber {known.name!r} at {first.where} "
                f"too; merged into {known.name!r}, which gets one alert per item")))
        names = (*known.watchlists, *w.sub.watchlists, *extra) if known is not w.sub \
            else (*w.sub.watchlists, *extra)
        merged[w.sub.recipient] = first, known.model_copy(update={
            "watchlists": tuple(dict.fromkeys(names)),
            "min_score": min(known.min_score, w.sub.min_score)})
    return tuple(sub for _, sub in merged.values()), tuple(aliases.items()), tuple(notes)
