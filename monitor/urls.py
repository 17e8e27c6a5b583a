"""URLs as they may be shown: credentials masked before a URL reaches a log, an error or the CLI.

Rules, in order:
1. A URL's userinfo loses its password (`http://user:***@host/...`); userinfo without a
   password is masked whole (`http://***@host/`), since a lone user name is often a token.
2. Query (and fragment) parameters named like secrets keep their name and lose their value
   (`?token=***`): a name is split into words (`api_key`, `apiKey`, `X-Amz-Signature`), and
   it is a secret's when one of its words is in SECRET_WORDS, or it is written as one word
   ending with one of SECRET_ENDINGS (`accesstoken`, `awsaccesskey`).
3. Everything else is left exactly as written, and a URL with nothing to mask is returned
   unchanged, so a redacted URL still reads as the one configured.
4. `redact_text` does this to every URL inside a text (error messages, exception texts).
Redaction is for display only: requests always use the URL as configured.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote_plus, urlencode, urljoin, urlsplit, urlunsplit

from monitor.text import clean_text

MASK = "***"
SECRET_WORDS = frozenset({
    "token", "key", "secret", "password", "passwd", "pwd", "pass", "passphrase", "sig",
    "signature", "auth", "authorization", "credential", "credentials", "apikey", "session",
    "sessionid", "jwt", "bearer", "otp", "hmac", "private",
})
SECRET_ENDINGS = ("token", "secret", "password", "passwd", "signature", "apikey", "accesskey",
                  "secretkey", "privatekey", "authkey", "sessionkey")
# A URL inside free text: a scheme, "://", then anything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"""[A-Za-z][A-Za-z0-9+.\-]*://[^\s<>"'`\\]+""")
_TRAILING = ".,;:!?)]}"  # punctuation after a URL in a sentence, not part of it
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")
_WORD = re.compile(r"[a-z0-9]+")


def is_secret_name(name: str) -> bool:
    """Whether a query parameter of this name carries a secret (rule 2)."""
    words = _WORD.findall(_CAMEL.sub(r"\1_\2", name).lower())
    joined = "".join(words)
    return any(word in SECRET_WORDS for word in words) or joined.endswith(SECRET_ENDINGS)


def _params(text: str) -> str:
    """`a=1&token=x` with the values of secret-named parameters masked (rule 2)."""
    if "=" not in text:
        return text
    pieces = text.split("&")
    for i, piece in enumerate(pieces):
        name, eq, value = piece.partition("=")
        if eq and value and value != MASK and is_secret_name(unquote_plus(name)):
            pieces[i] = f"{name}={MASK}"
    return "&".join(pieces)


def redact(url: str) -> str:
    """`url` with its password and secret-named parameters masked (rules 1-3)."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a malformed authority ([::1 without its bracket): mask it whole
        head, sep, rest = url.partition("://")
        authority, slash, tail = rest.partition("/")
        if sep and "@" in authority:
            return f"{head}://{MASK}@{authority.rpartition('@')[2]}{slash}{tail}"
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{hostport}" if colon else f"{MASK}@{hostport}"
    query, fragment = _params(parts.query), _params(parts.fragment)
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    out = f"{url[:len(parts.scheme)]}:" if parts.scheme else ""  # the scheme as written
    if parts.netloc or url[len(out):].startswith("//"):
        out += f"//{netloc}"
    out += parts.path
    if query or "?" in url.partition("#")[0]:
        out += f"?{query}"
    if fragment or "#" in url:
        out += f"#{fragment}"
    return out


def redact_text(text: str) -> str:
    """`text` with every URL in it redacted (rule 4)."""
    if "://" not in text:
        return text

    def one(found: re.Match[str]) -> str:
        url = found.group()
        kept = url.rstrip(_TRAILING)
        return redact(kept) + url[len(kept):]

    return _URL_IN_TEXT.sub(one, text)


# Canonical URLs: what an item's link is compared and deduplicated by (monitor.feeds rule 3).
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "igshid", "yclid", "_ga",
     "ocid", "cmpid", "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee",
     "at_medium", "at_campaign", "spm", "ito", "xtor"}
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

_REDIRECTORS = {("google.com", "/url"), ("www.google.com", "/url"), ("news.google.com", "/url")}


def canonical_url(url: str, base: str | None = None, *, fragment: bool = False) -> str:
    """The http(s) URL without tracking parameters, and without its fragment unless
    `fragment` (rule 3); a feed proxy's redirect link (Google Alerts' google.com/url?...
    &url=TARGET) becomes its target. A link that is no http(s) URL (another scheme, a
    port out of range, a broken IPv6 literal) gives "": never an exception."""
    url = clean_text(url).strip()
    if not url:
        return ""
    try:
        return _canonical_url(url, base, fragment)
    except ValueError:  # urlsplit's "Invalid IPv6 URL", .port's "out of range"
        return ""


def _canonical_url(url: str, base: str | None, fragment: bool) -> str:
    parts = urlsplit(url)
    if ((parts.hostname or "").lower(), parts.path) in _REDIRECTORS:
        params = dict(parse_qsl(parts.query))
        target = params.get("url") or params.get("q")
        if target and target.startswith(("http://", "https://")):
            url = target
    if base and not urlsplit(url).scheme:
        url = urljoin(base, url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return ""
    if ":" in host:  # an IPv6 literal keeps its brackets (hostname drops them)
        host = f"[{host}]"
    port = parts.port  # before the host is rebuilt: ValueError when out of range
    if port and port != _DEFAULT_PORTS[scheme]:
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not k.lower().startswith("utm_") and k.lower() not in TRACKING_PARAMS]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query),
                       parts.fragment if fragment else ""))
