"""Alerts -> webhook JSON and email (text + HTML); pure, so delivery only sends bytes."""

from __future__ import annotations

import re
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from typing import Any, cast

import jinja2
from markupsafe import Markup, escape

from monitor.models import Alert, Hit, Match

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("monitor", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,  # package files: get_template need not stat them on every alert
)
SUBJECT_MAX = 200


def best_match(alert: Alert) -> Match:
    return max(alert.matches, key=lambda m: m.score)


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """The JSON a webhook receives: the best match at the top, every match below."""
    best = best_match(alert)
    data = alert.to_dict()
    return {
        "event": alert.kind,
        "id": alert.key,
        "subscriber": alert.subscriber,
        "watchlist": best.watchlist,
        "score": best.score,
        "hits": data["matches"][alert.matches.index(best)]["hits"],
        "snippet": best.snippet,
        "item": data["item"],
        "matches": data["matches"],
        "scraped": alert.scraped,
        "story": {"id": alert.story, "sources": list(alert.sources)},
        "created": data["created"],
    }


def one_line(text: str, limit: int = SUBJECT_MAX) -> str:
    """Header-safe text: CR, LF and every other control or space run become one space."""
    flat = " ".join(re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", " ", text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def highlight(text: str, hits: tuple[Hit, ...]) -> Markup:
    """HTML of `text` with every matched string in <mark>; everything else escaped."""
    needles = sorted({h.matched for h in hits if h.matched}, key=len, reverse=True)
    if not needles:
        return escape(text)
    pattern = re.compile("|".join(re.escape(n) for n in needles))
    out = Markup()
    last = 0
    for found in pattern.finditer(text):
        out += escape(text[last:found.start()]) + Markup("<mark>%s</mark>") % found.group(0)
        last = found.end()
    return out + escape(text[last:])


def email_bytes(alert: Alert, sender: str, recipient: str) -> bytes:
    """The alert as the email sent: text and HTML alternatives, UTF-8, headers encoded
    where they are not ASCII.

    Built with the email package's classic MIME classes: its modern EmailMessage parses
    every header it is given through the header registry, three times the CPU per alert
    (bench/poll.py sends hundreds of alerts a second)."""
    best = best_match(alert)
    context = {
        "alert": alert,
        "item": alert.item,
        "matches": sorted(alert.matches, key=lambda m: -m.score),
        "highlight": highlight,
    }
    # Both parts are base64 (UTF-8 text), whose lines never hold "-": a boundary starting
    # with one cannot occur in them. Without it, the generator picks a random boundary and
    # compiles a regular expression to check the parts for it, 15% of each email's CPU.
    msg = MIMEMultipart("alternative", boundary=f"--monitor-{alert.key[:32]}")
    tag = f"{best.watchlist}, update" if alert.kind == "update" else best.watchlist
    msg["Subject"] = _header(one_line(f"[{tag}] {alert.item.title or alert.item.url}"))
    msg["From"] = _address(sender)
    msg["To"] = _address(recipient)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(idstring=alert.key[:16], domain="monitor.local")
    msg["X-Monitor-Alert"] = alert.key
    msg.attach(MIMEText(_ENV.get_template("alert.txt").render(context), "plain", "utf-8"))
    msg.attach(MIMEText(_ENV.get_template("alert.html").render(context), "html", "utf-8"))
    return msg.as_bytes()


def _header(text: str) -> str:
    """`text`, RFC 2047-encoded when it is not ASCII. (Message takes a Header where it
    takes a str, and folds it when the message is written; typeshed knows only str.)"""
    return text if text.isascii() else cast(str, Header(text, "utf-8"))


def _address(value: str) -> str:
    """`Name <addr>` with a non-ASCII name encoded; CR and LF cannot get through."""
    name, addr = parseaddr(one_line(value))
    return formataddr((name, addr), charset="utf-8")
