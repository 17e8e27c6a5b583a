"""Dates as feeds and pages write them. A leaf: it imports nothing of monitor."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from typing import Any


def parse_date(value: Any) -> datetime | None:
    """A date from ISO 8601 (Z allowed) or RFC 822 text; naive dates are taken as UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
