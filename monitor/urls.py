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
from urllib.parse import unquote_plus, urlsplit

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
