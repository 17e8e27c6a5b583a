"""URLs as shown: passwords and secret-named parameters masked, everything else as written."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from monitor import logs
from monitor.urls import is_secret_name, redact, redact_text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:PASSWORD@host/feed.xml", "http://user:***@host/feed.xml"),
        ("https://TOKEN@api.example.org/feed", "https://***@api.example.org/feed"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("https://x.org/f?token=abc&lang=ar", "https://x.org/f?token=***&lang=ar"),
        ("https://x.org/f?api_key=1&apiKey=2&access_token=3&X-Amz-Signature=4&sig=5&auth=6",
         "https://x.org/f?api_key=***&apiKey=***&access_token=***&X-Amz-Signature=***&sig=***"
         "&auth=***"),
        ("https://x.org/f?password=&key=v#access_token=t&state=s",
         "https://x.org/f?password=&key=***#access_token=***&state=s"),
        ("HTTPS://u:p@X.org:8443/a%20b?q=a+b&Secret=z", "HTTPS://u:***@X.org:8443/a%20b?q=a+b&Secret=***"),
        # Nothing to mask: exactly as written.
        ("https://medium.com/@user/feed?id=7&monkey=1&sort_by=date",
         "https://medium.com/@user/feed?id=7&monkey=1&sort_by=date"),
        ("https://x.org/f?", "https://x.org/f?"),
        ("http://[::1/x@y", "http://[::1/x@y"),  # malformed: no authority to mask
        ("http://u:p@[::1/x", "http://***@[::1/x"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown
    assert redact(shown) == shown  # idempotent


@pytest.mark.parametrize("name", ["token", "api_key", "apiKey", "api-key", "APIKEY",
                                  "access_token", "accesstoken", "client_secret", "passwd",
                                  "X-Goog-Signature", "AWSAccessKeyId", "sessionid", "auth"])
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["id", "q", "page", "monkey", "keyword", "format", "lang",
                                  "utm_source", "author", "signup"])
def test_names_that_are_no_secrets(name: str) -> None:
    assert not is_secret_name(name)


def test_redact_text_finds_urls_in_sentences() -> None:
    text = ("fetch: http://u:pw@h.org/f?token=abc: HTTP 500 (redirected from "
            "'https://h.org/old?sig=x'), see https://h.org/doc.")
    assert redact_text(text) == ("fetch: http://u:***@h.org/f?token=***: HTTP 500 (redirected "
                                 "from 'https://h.org/old?sig=***'), see https://h.org/doc.")
    assert redact_text("no url here: user:pw@host") == "no url here: user:pw@host"


def test_every_log_event_is_redacted_by_the_configured_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The processors logs.configure sets up, as the daemon runs them: message, values,
    lists, objects (a yarl URL) and a formatted exception all come out redacted."""
    from yarl import URL

    out = io.StringIO()
    monkeypatch.setattr("sys.stderr", out)
    logs.configure("DEBUG", "json")
    try:
        log = logs.get("test")
        log.warning("moved to http://u:pw@h.org/x", url="http://u:pw@h.org/f?token=t",
                    hosts=["https://h.org/?key=k"], target=URL("http://u:pw@h.org/"), n=3)
        try:
            raise ValueError("bad http://u:pw@h.org/?sig=s")
        except ValueError:
            log.exception("crashed")
    finally:
        structlog.reset_defaults()
    text = out.getvalue()
    assert "pw" not in text and "token=t" not in text and "key=k" not in text and "sig=s" not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["event"] == "moved to http://u:***@h.org/x"
    assert first["url"] == "http://u:***@h.org/f?token=***" and first["n"] == 3
    assert first["hosts"] == ["https://h.org/?key=***"] and first["target"] == "http://u:***@h.org/"
    assert "bad http://u:***@h.org/?sig=***" in second["exception"]
