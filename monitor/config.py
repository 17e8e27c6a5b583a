"""Loads config/*.yaml (feeds, watchlists, subscribers) into validated models with file:line errors.

Rules, in order:
1. Every `*.yaml`/`*.yml` file below the config dir is read, sorted by path. A file inside a
   `watchlists/` folder holds one watchlist (or a list of them); any other file is a mapping
   with optional `feeds`, `watchlists` and `subscribers` lists.
2. `${VAR}` and `${VAR:-default}` in any string are replaced from the environment given to
   `load_config`, so secrets stay out of YAML. An unset variable without default is an error.
3. Each file is validated on its own, so an error names the file and the line of the node.
4. Then across files: names are unique, subscribers name existing watchlists. Subscribers
   written inside a watchlist subscribe to it; the same address in several places is one
   subscriber of all those watchlists, so it gets one alert per item.
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
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic import model_validator as _model_validator

from monitor.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")

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


def _webhook_name(url: str) -> str:
    """A name for logs that does not spell the URL: many webhook URLs carry a token."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
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
        if not self.name:
            parts = urlsplit(self.url)
            object.__setattr__(self, "name", parts.netloc + parts.path.rstrip("/"))
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """The range adaptive polling keeps to (monitor.cadence rule 4)."""
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

    def subscriber(self, name: str) -> SubscriberConfig | None:
        return next((s for s in self.subscribers if s.name == name), None)


def _expand_env(text: str, env: Mapping[str, str]) -> str:
    def replace(found: re.Match[str]) -> str:
        name, default = found.group(1), found.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ValueError(f"environment variable {name} is not set")

    return _ENV_REF.sub(replace, text)


class _Document:
    """One YAML file turned into plain data plus the line of every node in it."""

    def __init__(self, path: Path, env: Mapping[str, str]) -> None:
        self.path = path
        self.lines: dict[Path_, int] = {}
        self.problems: list[str] = []
        self.env = env
        self._scalars = yaml.SafeLoader("")
        try:
            text = path.read_text(encoding="utf-8")
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except (OSError, UnicodeDecodeError) as exc:
            self.data: Any = None
            self.problems.append(f"{path}:1: (file): cannot read: {exc}")
            return
        except yaml.MarkedYAMLError as exc:
            self.data = None
            line = exc.problem_mark.line + 1 if exc.problem_mark else 1
            self.problems.append(f"{path}:{line}: (yaml): {exc.problem or exc}")
            return
        self.data = self._convert(node, ()) if node is not None else None

    def _convert(self, node: yaml.Node, at: Path_) -> Any:
        self.lines[at] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = str(key_node.value)
                out[key] = self._convert(value_node, (*at, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._convert(child, (*at, i)) for i, child in enumerate(node.value)]
        value = self._scalars.construct_object(node)
        if isinstance(value, str):
            try:
                return _expand_env(value, self.env)
            except ValueError as exc:
                self.problems.append(self.locate(at, str(exc)))
        return value

    def line_of(self, at: Path_) -> int:
        for cut in range(len(at), -1, -1):
            if at[:cut] in self.lines:
                return self.lines[at[:cut]]
        return 1

    def locate(self, at: Path_, message: str) -> str:
        name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in at).lstrip(".")
        return f"{self.path}:{self.line_of(at)}: {name or '(file)'}: {message}"


def _validate_file(doc: _Document, single_watchlist: bool) -> _FileConfig | None:
    data = doc.data
    prefix: Path_ = ()
    if data is None:
        return _FileConfig()
    if single_watchlist:
        data = {"watchlists": data if isinstance(data, list) else [data]}
        prefix = () if isinstance(doc.data, list) else ("watchlists", 0)
    if not isinstance(data, dict):
        doc.problems.append(doc.locate((), "expected a mapping with feeds, watchlists, subscribers"))
        return None
    try:
        return _FileConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            loc: Path_ = tuple(p for p in error["loc"] if not isinstance(p, str) or p != "__root__")
            if prefix and loc[:2] == ("watchlists", 0):
                loc = loc[2:]
            doc.problems.append(doc.locate(loc, error["msg"].removeprefix("Value error, ")))
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
    return problems


def _merge(parsed: list[tuple[_Document, _FileConfig]]) -> Config:
    feeds = [feed for _, _, feed in _each_named(parsed, "feeds")]
    watchlists = [wl for _, _, wl in _each_named(parsed, "watchlists")]
    subscribers: dict[str, SubscriberConfig] = {}

    def add(sub: SubscriberConfig, extra: tuple[str, ...]) -> None:
        known = subscribers.get(sub.name)
        names = tuple(dict.fromkeys((*(known.watchlists if known else ()), *sub.watchlists, *extra)))
        base = known or sub
        subscribers[sub.name] = base.model_copy(
            update={"watchlists": names, "min_score": min(base.min_score, sub.min_score)}
        )

    for _, _, sub in _each_named(parsed, "subscribers"):
        add(sub, ())
    for wl in watchlists:
        for sub in wl.subscribers:
            add(sub, (wl.name,))
    return Config(
        feeds=tuple(feeds),
        watchlists=tuple(watchlists),
        subscribers=tuple(subscribers.values()),
        files=tuple(str(doc.path) for doc, _ in parsed),
    )
