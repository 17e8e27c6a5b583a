"""Process settings from the environment and `.env` (prefix MONITOR_), read once by the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything about the process, nothing about what to watch (that is config/*.yaml).

    Precedence: init arguments > environment (MONITOR_*) > .env file > defaults.
    """

    model_config = SettingsConfigDict(env_prefix="MONITOR_", env_file=".env", extra="ignore")

    redis_url: str | None = Field(
        default=None, description="Redis or Valkey URL; unset runs an embedded redis-server"
    )
    redis_prefix: str = "monitor"
    redis_connections: int = Field(default=64, description="connection pool size")
    config_dir: Path = Path("config")
    speedups: Literal["auto", "off"] = Field(
        default="auto", description="auto runs the C speed-ups that were built, off the "
        "Python paths alone (same results); read from the environment when monitor is "
        "imported (monitor.speedups)")
    data_dir: Path = Path("data")

    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_from: str = "monitor@localhost"
    smtp_timeout: float = 30.0

    http_timeout: float = Field(default=20.0, description="seconds for a whole request")
    http_connect_timeout: float = 10.0
    http_read_timeout: float = Field(
        default=5.0, gt=0, description="seconds a response may send nothing (before its "
        "headers or amid its body) before the request fails")
    http_max_bytes: int = Field(default=10 * 1024 * 1024, description="body size limit")
    http_concurrency: int = 16
    http_per_host: int = 2
    http_host_delay: float = Field(
        default=0.25, description="seconds between the starts of two requests to one host")
    scrape_concurrency: int = 8
    items_in_flight: int | None = Field(
        default=None, ge=1, description="new items scraped, matched and queued at once "
        "across polls; while this many are under way no more feeds are claimed, so an item "
        "waits in no queue between its poll and its alert (default: 2 x scrape_concurrency)")
    cpu_threads: int = Field(
        default=1, ge=0, description="threads that parse feeds, extract pages and match "
        "inputs over 512 KB (smaller ones run on the event loop, which costs less CPU); a "
        "huge page then shares time with the polls; 0 runs everything on the loop")
    allow_private_urls: bool = Field(
        default=False, description="let article links reach loopback and private addresses"
    )

    tick_seconds: float = Field(default=1.0, description="how often due feeds are claimed")
    poll_lease_seconds: float | None = Field(
        default=None,
        description="how long a claimed feed stays claimed; a crashed instance's feeds come "
        "due again after it (default: 3 x http_timeout + 30 s)")
    reload_seconds: float = Field(default=2.0, description="how often config/ is checked")
    max_age_days: float = Field(default=7.0, description="older items are not alerted")
    max_new_items: int = Field(
        default=200, description="new items taken per poll; the rest wait for the next poll"
    )
    seen_ttl_days: float = 90.0
    archive_days: float = Field(
        default=14.0, gt=0, description="days each new item's title and text are kept for "
        "`monitor backtest`")
    archive_max_mb: float = Field(
        default=512.0, ge=0, description="megabytes the archive of items may take in "
        "Redis; the oldest items go first past it (0: no archive)")
    dedup_window_hours: float = Field(
        default=48.0, description="copies of a story within this window never alert again"
    )
    dedup_threshold: float = Field(
        default=0.5, description="estimated Jaccard similarity above which texts are one story"
    )

    delivery_concurrency: int = 8
    delivery_per_endpoint: int = Field(default=4, description="sends at once to one webhook host")
    delivery_retry_hours: float = Field(
        default=24.0, gt=0, description="an alert is retried this long after it was queued, "
        "then dead-lettered")
    delivery_max_attempts: int | None = Field(
        default=None, ge=1, description="deprecated: sets the retry window to the time this "
        "many attempts took (unless delivery_retry_hours is set)")
    delivery_backoff_base: float = Field(
        default=5.0, gt=0, description="first retry delay of an alert that fails alone")
    delivery_backoff_max: float = Field(
        default=3600.0, gt=0, le=3600.0, description="longest retry delay and Retry-After")
    delivery_probe_seconds: float = Field(
        default=5.0, gt=0, description="seconds between probes of an endpoint that is down")
    delivery_visibility_timeout: float = Field(
        default=120.0, description="an entry unacknowledged this long is retried by any worker"
    )
    webhook_timeout: float = 15.0

    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"
