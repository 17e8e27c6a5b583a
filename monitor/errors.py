"""The one exception tree of monitor; retryable errors are distinct from permanent ones."""

from __future__ import annotations


class MonitorError(Exception):
    """Base class of every error monitor raises on purpose."""


class ConfigError(MonitorError):
    """Raised when a config file cannot be read, parsed or validated.

    Each problem is one line `file:line: field: message` in `problems`.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class FetchError(MonitorError):
    """Raised when an HTTP fetch does not yield a usable body."""

    retryable = True


class RetryableFetchError(FetchError):
    """Raised on timeouts, connection errors, 408/429/5xx: the same request may work later.

    `delay` is the server's Retry-After in seconds when it sent one.
    """

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentFetchError(FetchError):
    """Raised on 4xx (other than 408/429), refused URLs and oversized bodies.

    `status` is the HTTP status when there was one (410 means: gone for good).
    """

    retryable = False

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DeliveryError(MonitorError):
    """Raised when an alert could not be delivered to its endpoint.

    `delay` is the endpoint's Retry-After in seconds when it sent one. `scope` says what
    failed, and so what waits (monitor.circuits): "host", the server (it cannot be
    reached: every endpoint on it waits); "endpoint", this address of it (a webhook URL
    answering 5xx); "alert", this alert alone (a mailbox refusing for now).
    """

    retryable = True

    def __init__(self, message: str, delay: float | None = None, scope: str = "endpoint") -> None:
        super().__init__(message)
        self.delay = delay
        self.scope = scope


class RetryableDeliveryError(DeliveryError):
    """Raised on 408/429/5xx, timeouts, connection errors, SMTP 4xx: try again later."""


class PermanentDeliveryError(DeliveryError):
    """Raised on other 4xx answers and SMTP 5xx: retrying will not help; dead-letter it."""

    retryable = False
