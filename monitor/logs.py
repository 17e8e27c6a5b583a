"""Structured logging: stable keys (feed, item, watchlist, subscriber, channel, duration_ms).

Every URL in an event, its message, its values and its formatted exception included, is
redacted (monitor.urls) before it is rendered: a feed URL with a password or a token in its
query is logged as `http://user:***@host/feed?token=***`, whichever stage logged it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from monitor.urls import redact_text


def configure(level: str = "INFO", fmt: str = "console") -> None:
    """Called once by the CLI; JSON for machines, aligned key=value for people."""
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_urls,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        # Resolved per logger, not once: whoever replaced sys.stderr since (a test runner,
        # a daemoniser) gets the lines, and a closed old stream is never written to.
        logger_factory=lambda *args: structlog.PrintLogger(sys.stderr),
        cache_logger_on_first_use=False,
    )


def _redacted(value: Any) -> Any:
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, str):
        return redact_text(value) if "://" in value else value
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    text = str(value)  # an exception, a yarl.URL, a path: rendered as its text anyway
    return redact_text(text) if "://" in text else value


def redact_urls(logger: Any, method: str,
                event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The processor that masks credentials in every URL of an event (monitor.urls)."""
    for key in list(event):
        event[key] = _redacted(event[key])
    return event


def get(name: str) -> Any:
    return structlog.get_logger(name)
