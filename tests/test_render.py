from __future__ import annotations

import email
import email.policy
import json
from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage

from monitor.deliver import sign, verify_signature
from monitor.models import Alert, Hit, Item, Match
from monitor.render import email_bytes, highlight, one_line, webhook_payload


def alert(title: str = "Haftar near Sirte",
          snippet: str = "forces of Haftar <b>near</b> Sirte") -> Alert:
    item = Item(id="i1", feed_id="f1", feed_name="Feed", title=title,
                url="https://example.org/a", summary="s",
                published=datetime(2026, 11, 1, tzinfo=UTC))
    hits = (Hit("entity", "Khalifa Haftar", "Haftar", "Haftar", "body", 10, 3.0),)
    return Alert("k" * 32, "desk@example.org", item,
                 (Match("libya", 3.0, hits, snippet),), datetime(2026, 11, 2, tzinfo=UTC))


def test_alert_round_trips_through_json() -> None:
    a = alert()
    assert Alert.from_dict(a.to_dict()) == a
    assert Alert.from_json(a.to_json()) == a
    assert json.loads(a.to_json()) == a.to_dict()  # orjson writes what to_dict says
    local = replace(a, item=replace(a.item, published=datetime.fromisoformat(
        "2026-11-01T08:30:00.250000+05:30"), language="ar"), kind="update")
    assert json.loads(local.to_json()) == local.to_dict()
    assert Alert.from_json(local.to_json()) == local
    assert Alert.from_json(replace(a, item=replace(a.item, published=None)).to_json()) \
        .item.published is None


def test_webhook_payload_shape() -> None:
    payload = webhook_payload(alert())
    assert payload["id"] == "k" * 32
    assert payload["watchlist"] == "libya"
    assert payload["score"] == 3.0
    assert payload["hits"][0]["matched"] == "Haftar"
    assert payload["item"]["url"] == "https://example.org/a"
    assert payload["item"]["published"] == "2026-11-01T00:00:00+00:00"


def test_signature_verifies_and_tampering_fails() -> None:
    body = b'{"a": 1}'
    sig = sign("secret", "1700000000", body)
    assert verify_signature("secret", "1700000000", body, sig, now=1700000100)
    assert not verify_signature("secret", "1700000000", body + b" ", sig, now=1700000100)
    assert not verify_signature("other", "1700000000", body, sig, now=1700000100)
    assert not verify_signature("secret", "1700000000", body, sig, now=1700009999)  # replay
    assert not verify_signature("secret", "nope", body, sig)


def test_email_escapes_feed_text_and_highlights_hits() -> None:
    raw = email_bytes(alert(title="Haftar <script>alert(1)</script>\r\nBcc: x@evil.org"),
                      "monitor@example.org", "desk@example.org")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
    assert msg["Subject"].startswith("[libya] Haftar <script>")
    assert msg["Bcc"] is None
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<mark>Haftar</mark>" in html
    assert "&lt;b&gt;near&lt;/b&gt;" in html
    text = msg.get_body(("plain",)).get_content()
    assert "https://example.org/a" in text and "Khalifa Haftar" in text


def test_email_headers_in_any_script_and_names_with_commas() -> None:
    raw = email_bytes(alert(title="حفتر يتقدم نحو سرت"), "Veille Médias <monitor@example.org>",
                      '"Desk, Libya" <desk@example.org>')
    assert raw.isascii()  # headers encoded, bodies in base64
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    assert msg["Subject"] == "[libya] حفتر يتقدم نحو سرت"
    assert msg["From"].addresses[0].display_name == "Veille Médias"
    assert msg["To"].addresses[0].addr_spec == "desk@example.org"
    assert msg["To"].addresses[0].display_name == "Desk, Libya"
    text = msg.get_body(("plain",))
    assert text is not None and "حفتر" in text.get_content()


def test_one_line_and_highlight() -> None:
    assert one_line("a\r\nb\tc\x00d") == "a b c d"
    assert len(one_line("x" * 500)) == 200
    hits = (Hit("keyword", "t", "t", "<Sirte>", "body", 0, 1.0),)
    assert str(highlight("at <Sirte> & more", hits)) == "at <mark>&lt;Sirte&gt;</mark> &amp; more"


def test_email_text_holding_the_boundary_cannot_end_a_part() -> None:
    """The boundary is fixed per alert (no per-message regex search for a free one); the
    parts are base64, whose lines never start with "-", so even feed text that spells
    the boundary out stays inside its part."""
    boundary = "--monitor-" + "k" * 32
    title = f"Haftar\n--{boundary}\nContent-Type: text/html\n\n<p>forged</p>\n--{boundary}--"
    raw = email_bytes(alert(title=title, snippet=title), "monitor@example.org",
                      "desk@example.org")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p["Content-Transfer-Encoding"] == "base64" for p in parts)
    assert "forged" in parts[0].get_content() and "&lt;p&gt;forged" in parts[1].get_content()
    delimiters = [line for line in raw.splitlines() if line.startswith(b"--")]
    assert delimiters == [f"--{boundary}".encode()] * 2 + [f"--{boundary}--".encode()]


def test_long_subjects_are_folded_and_read_back_whole() -> None:
    for title in ("Haftar's forces near Sirte, officials say; " * 4,
                  "قوات حفتر تتقدم نحو سرت حسب مسؤولين " * 4):
        raw = email_bytes(alert(title=title), "monitor@example.org", "desk@example.org")
        head = raw.split(b"\n\n", 1)[0].decode("ascii")
        subject = head[head.index("Subject:"):head.index("\nFrom:")].splitlines()
        assert len(subject) > 1 and max(len(line) for line in subject) <= 78
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert msg["Subject"] == one_line(f"[libya] {title}")
        assert msg.get_content_type() == "multipart/alternative"
        assert msg["X-Monitor-Alert"] == "k" * 32 and msg["Message-ID"].endswith("@monitor.local>")
