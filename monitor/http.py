"""What every HTTP client of monitor shares: the statuses worth a retry, the Retry-After
header read, and the proxies of the environment. Feed and page fetches (monitor.fetch) and
webhook sends (monitor.deliver) use them alike. A leaf: it imports nothing of monitor."""

from __future__ import annotations

import email.utils
import urllib.request
from datetime import UTC, datetime

from yarl import URL

# 408, 425, 429 and the 5xx a server sends when it may answer later (monitor.fetch rule 5).
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


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
