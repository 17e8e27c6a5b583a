"""Why a page has no article: a wall in front of it, or text the extractor did not find.

The daemon falls back to an item's feed summary when a page yields no text, and counts the
pages per feed (`monitor feeds`). Only a wall says the site blocks scraping: a page whose
visible text (without JavaScript: no scripts, styles or templates) is short and is, or
holds, a JavaScript, consent, sign-in or bot-check notice, or is nothing at all (an app
that draws itself with JavaScript), or that a meta refresh or a script sends elsewhere.
A page with more text than that, or short text that is none of these, is a page where the
extractor found no article.
"""

from __future__ import annotations

import re

import lxml.etree

from monitor.extract.clean import parse
from monitor.page import decode_html
from monitor.text import fold

WALL_MAX_CHARS = 1500  # visible text of a wall: a notice and a menu, not an article
SHELL_MAX_CHARS = 80  # an app's empty shell: a loading label at most
# Folded phrases of walls, anywhere in the short visible text; the notices of
# data/boilerplate.yaml start blocks, these are looked for inside them too.
WALL_PHRASES: dict[str, tuple[str, ...]] = {
    "javascript": (
        "enable javascript", "javascript is disabled", "javascript is required",
        "requires javascript", "support javascript", "turn on javascript", "javascript to run",
        "activer javascript", "javascript aktivieren", "aktivieren sie javascript",
        "habilite javascript", "habilitar javascript", "attiva javascript", "جافا سكريبت",
        "الجافاسكربت"),
    "consent": (
        "we use cookies", "uses cookies", "accept all cookies", "accept cookies",
        "cookie settings", "cookie consent", "your privacy choices", "consent to the use",
        "nous utilisons des cookies", "utilise des cookies", "wir verwenden cookies",
        "verwendet cookies", "utilizamos cookies", "utiliza cookies", "ملفات تعريف الارتباط"),
    "bot check or sign-in": (
        "verify you are human", "are you a robot", "not a robot", "captcha", "checking your browser",
        "access denied", "unusual traffic", "please wait while we", "just a moment",
        "sign in to continue", "log in to continue", "subscribe to continue", "to continue reading"),
}
_FOLDED = {kind: tuple(fold(p) for p in phrases) for kind, phrases in WALL_PHRASES.items()}
_REDIRECT = re.compile(r"(?:window\.|document\.)?location(?:\.href)?\s*=|location\.replace\(",
                       re.I)


def wall(html: str | bytes) -> str:
    """The kind of wall that `html` is ("javascript", "consent", "bot check or sign-in",
    "redirect"), or "" when it is a page of its own."""
    text = decode_html(html) if isinstance(html, bytes) else html
    doc = parse(text.replace("\x00", ""), None)
    if doc is None:
        return "javascript" if not text.strip() else ""
    refresh = any("url=" in (m.get("content") or "").lower() for m in doc.iter("meta")
                  if (m.get("http-equiv") or "").lower() == "refresh")
    redirect = any(_REDIRECT.search(s.text or "") for s in doc.iter("script"))
    lxml.etree.strip_elements(doc, "script", "style", "template", "head", "svg",
                              lxml.etree.Comment, with_tail=False)
    visible = " ".join(doc.text_content().split())
    if len(visible) > WALL_MAX_CHARS:
        return ""
    folded = fold(visible)
    for kind, phrases in _FOLDED.items():
        if any(phrase in folded for phrase in phrases):
            return kind
    if refresh or redirect and len(visible) <= WALL_MAX_CHARS // 5:
        return "redirect"
    if len(visible) <= SHELL_MAX_CHARS:
        return "javascript"
    return ""
