"""Story identity: URL keys and MinHash signatures that find one story under many URLs.

Rules, in order:
1. A story URL is the canonical URL (monitor.feeds: no fragment, no tracking parameters,
   a feed proxy's redirect resolved) with what differs between copies of one page dropped:
   `www.`, `m.` and `amp.` hosts, AMP paths and parameters, a trailing slash. The same
   story URL from any feed is the same story.
2. Otherwise the text decides: folded words (monitor.text, so Arabic and Latin alike) in
   overlapping 3-word shingles, hashed with CRC32 (stable across processes and machines),
   summarised by a 128-value MinHash signature. Texts under MIN_WORDS words get none:
   too short to tell copies from look-alikes.
3. Locality-sensitive hashing: the signature is cut into 42 bands of 3 values; stories
   sharing any band are candidates (at Jaccard similarity 0.34, a copy cut to a third,
   with probability 0.81; at 0.5 with 0.996; unrelated texts, near 0.02, almost never).
   A candidate is the same story when its containment reaches `threshold`: the share of
   the smaller text's shingles found in the other, estimated from the signatures' Jaccard
   similarity J and the two shingle counts as J (a + b) / ((1 + J) min(a, b)), so a copy
   cut short or a summary of the article counts as the article.
4. Text a feed repeats in many of its items (its template: a sponsor list, a teaser, a
   widget's leaked script, "The post ... appeared first on ...") is no evidence that two
   texts are one story: the shingles found in TEMPLATE_ITEMS items of one poll of a feed
   (its feed text, all items read) are kept as the feed's `Template`, and a signature
   leaves them out. A text with too little left of its own gets no signature.
5. Two items of one feed (different GUIDs, so distinct items to the feed) are one story
   only on far stronger evidence than copies in two feeds (`same_feed_story`): at one
   story URL, titles alike (a page republished under a new GUID, maybe with a rewritten
   text: a developing story); at two, titles all but equal and texts too (Jaccard, not
   containment: neither merely a part of the other). A link several items of a document
   share (a podcast's home page) is none of theirs (monitor.poller.shared_links).

The signature is defined here with numpy (vectorised over shingles and permutations),
and computed by the C extension monitor.dedup._minhash where it was built, to the same values
in a fifth of the time; datasketch's MinHash would do what numpy does, but its Redis LSH
keeps keys of its own outside monitor's store module and hash tag, and pulls in scipy.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt

from monitor import speedups
from monitor.text import fold
from monitor.urls import canonical_url

NUM_PERM = 126
BANDS = 42
ROWS = NUM_PERM // BANDS
SHINGLE = 3
MIN_WORDS = 30
MIN_SHINGLES = MIN_WORDS - SHINGLE + 1  # what 30 distinct words give
# Rule 4: a shingle in this many items of one poll of a feed is the feed's template
# (two could be one story told twice); one no item of the feed showed for this many days
# is dropped; at most this many are kept per feed (8 base64 characters each in Redis).
TEMPLATE_ITEMS = 3
TEMPLATE_DAYS = 30
TEMPLATE_MAX = 1024
# Rule 5: two items of one feed are one story at one URL if their titles' words are at
# least this alike (Jaccard: a headline reworded as the story develops), at two URLs if
# their titles are this alike and their texts this (two posts of one series with one
# standing intro, "League Update: The Early Leader" and "League Update: Early Trades",
# are 0.57 and 1.0).
SAME_FEED_PAGE_TITLE = 0.5
SAME_FEED_TITLE = 0.8
SAME_FEED_JACCARD = 0.9
# The same page (story URL) whose text now shares less than this with the first version
# has changed substantially: a developing story, for subscribers who want updates.
CHANGED_BELOW = 0.7
_PRIME = (1 << 31) - 1  # a * h + b stays below 2**63 for 31-bit a, b and 32-bit h
_RNG = np.random.default_rng(20261128)  # fixed: every instance must hash alike
_A = _RNG.integers(1, _PRIME, NUM_PERM, dtype=np.uint64)
_B = _RNG.integers(0, _PRIME, NUM_PERM, dtype=np.uint64)
_AMP_PATH = re.compile(r"(/amp/?$|/amp(?=/)|\.amp(?=\.html?$|$))")
_AMP_PARAMS = frozenset({"amp", "outputtype", "amp_js_v", "usqp"})

_A_BYTES, _B_BYTES = _A.tobytes(), _B.tobytes()

Signature = npt.NDArray[np.uint32]

_c_signature: Callable[[list[str], bytes, bytes, bytes], bytes] | None
_c_shingles: Callable[[list[str]], bytes] | None
_c_minhash = speedups.load("monitor.dedup._minhash")  # None: numpy alone, the same values
_c_signature = None if _c_minhash is None else _c_minhash.signature
_c_shingles = None if _c_minhash is None else _c_minhash.shingles


def story_url(url: str) -> str:
    """The URL that every copy of one page shares (rule 1). `url` is an item's canonical
    URL: a fragment it kept names an item of its own (monitor.feeds.item_urls) and stays.
    Never raises: a URL that does not parse is its own key."""
    if not url:
        return ""
    try:
        parts = urlsplit(canonical_url(url, fragment=True))
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url
    if not host:
        return url
    try:  # an IDN host as its ASCII form: bücher.de is xn--bcher-kva.de
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    for prefix in ("www.", "amp.", "m.", "mobile."):
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix):]
    if ":" in host:
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    path = _AMP_PATH.sub("", parts.path).rstrip("/") or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in _AMP_PARAMS]
    return urlunsplit(("", host, path, urlencode(query), parts.fragment))


def url_key(url: str) -> str:
    return hashlib.sha256(story_url(url).encode("utf-8", "replace")).hexdigest()[:24] \
        if url else ""


def signature(text: str, template: Template | None = None) -> Signature | None:
    """The MinHash signature of a text, or None when it is too short to judge (rule 2):
    under MIN_WORDS words, or, once the shingles of its feed's `template` are left out
    (rule 4), under MIN_SHINGLES distinct shingles of its own. Its last value is the
    number of distinct shingles, which containment needs."""
    words = fold(text).split()
    if len(words) < MIN_WORDS:
        return None
    excluded = template.excluded if template is not None else _NONE
    if _c_signature is not None:
        sig = np.frombuffer(_c_signature(words, _A_BYTES, _B_BYTES, excluded.tobytes()),
                            dtype=np.uint32)
    else:
        sig = signature_numpy(words, excluded)
    if len(excluded) and sig[NUM_PERM] < MIN_SHINGLES:
        return None
    return sig


def _shingles(words: list[str]) -> set[str]:
    return set(map(" ".join, zip(*(words[i:] for i in range(SHINGLE)), strict=False)))


def _crc(shingle: str) -> int:
    return zlib.crc32(shingle.encode("utf-8", "surrogatepass"))


def signature_numpy(words: list[str], excluded: npt.NDArray[np.uint32] | None = None
                    ) -> Signature:
    """The signature of the folded `words` (three or more) over their distinct shingles
    but those whose CRC is in `excluded` (sorted), with numpy: its definition, which the
    C extension follows."""
    hashes = np.fromiter(map(_crc, _shingles(words)), dtype=np.uint64)
    if excluded is not None and len(excluded):
        hashes = hashes[~np.isin(hashes, excluded.astype(np.uint64))]
    if not len(hashes):
        return np.append(np.full(NUM_PERM, np.iinfo(np.uint32).max), 0).astype(np.uint32)
    values = (_A[:, None] * hashes[None, :] + _B[:, None]) % _PRIME
    result: Signature = np.append(values.min(axis=1), len(hashes)).astype(np.uint32)
    return result


def shingles(text: str) -> npt.NDArray[np.uint32]:
    """The CRC of each distinct shingle of the folded text (none under three words), as
    signatures hash them: what a feed's template is learned from (rule 4)."""
    words = fold(text).split()
    if len(words) < SHINGLE:
        return _NONE
    if _c_shingles is not None:
        return np.frombuffer(_c_shingles(words), dtype=np.uint32)
    return shingles_numpy(words)


def shingles_numpy(words: list[str]) -> npt.NDArray[np.uint32]:
    """`shingles` with Python's CRC (sorted: the C one keeps the order of the text)."""
    return np.unique(np.fromiter(map(_crc, _shingles(words)), dtype=np.uint32))


@dataclass(frozen=True, slots=True)
class Template:
    """The shingles a feed repeats in many of its items (rule 4), sorted, each with the
    day (since the epoch) an item of the feed last showed it."""

    excluded: npt.NDArray[np.uint32]
    days: npt.NDArray[np.uint16]

    def learn(self, items: Sequence[npt.NDArray[np.uint32]], today: int) -> Template:
        """This template after a poll whose items have these shingles (`shingles`): with
        those found in TEMPLATE_ITEMS of them, the day of those it had and the items
        showed moved to `today`, and without those no item showed for TEMPLATE_DAYS;
        the TEMPLATE_MAX most recently shown at most."""
        seen, counts = (np.unique(np.concatenate(items), return_counts=True) if items
                        else (_NONE, _NONE))
        found = seen[counts >= TEMPLATE_ITEMS]
        kept = (self.days >= today - TEMPLATE_DAYS) | np.isin(self.excluded, seen)
        excluded = np.union1d(self.excluded[kept], found).astype(np.uint32)
        if not len(excluded):
            return EMPTY_TEMPLATE if len(self.excluded) else self
        days = np.full(len(excluded), today, dtype=np.uint16)
        old = ~np.isin(excluded, seen)  # kept from before and not shown now
        days[old] = self.days[kept][np.searchsorted(self.excluded[kept], excluded[old])]
        if len(excluded) > TEMPLATE_MAX:
            keep = np.sort(np.argsort(-days.astype(np.int32), kind="stable")[:TEMPLATE_MAX])
            excluded, days = excluded[keep], days[keep]
        return Template(excluded, days)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and np.array_equal(self.excluded, other.excluded) \
            and np.array_equal(self.days, other.days)

    __hash__ = None  # type: ignore[assignment]

    def to_text(self) -> str:
        """As kept in Redis: base64 of the little-endian shingles, then their days."""
        raw = self.excluded.astype("<u4").tobytes() + self.days.astype("<u2").tobytes()
        return base64.b64encode(raw).decode("ascii")

    @classmethod
    def from_text(cls, text: str) -> Template:
        """The template `to_text` wrote; empty when `text` is not one."""
        try:
            raw = base64.b64decode(text, validate=True)
        except ValueError:
            return EMPTY_TEMPLATE
        n = len(raw) // 6
        if not n or len(raw) != 6 * n:
            return EMPTY_TEMPLATE
        excluded = np.frombuffer(raw[: 4 * n], dtype="<u4").astype(np.uint32)
        if np.any(np.diff(excluded.astype(np.int64)) <= 0):  # not sorted: not ours
            return EMPTY_TEMPLATE
        return cls(excluded, np.frombuffer(raw[4 * n:], dtype="<u2").astype(np.uint16))


_NONE: npt.NDArray[np.uint32] = np.zeros(0, dtype=np.uint32)
EMPTY_TEMPLATE = Template(_NONE, np.zeros(0, dtype=np.uint16))


def title_similarity(a: str, b: str) -> float:
    """The Jaccard similarity of two titles' folded words: 1.0 for two empty titles."""
    words_a, words_b = set(fold(a).split()), set(fold(b).split())
    return len(words_a & words_b) / len(words_a | words_b) if words_a | words_b else 1.0


def same_feed_story(title: str, other_title: str, sig: Signature | None,
                    other: Signature | None, *, same_url: bool) -> bool:
    """Whether two items of one feed are one story (rule 5)."""
    if same_url:
        return title_similarity(title, other_title) >= SAME_FEED_PAGE_TITLE
    return title_similarity(title, other_title) >= SAME_FEED_TITLE and sig is not None \
        and other is not None and jaccard(sig, other) >= SAME_FEED_JACCARD


def band_keys(sig: Signature) -> list[str]:
    """One value per band, in band order: stories that share one are candidates (rule 3)."""
    rows = sig[:NUM_PERM].reshape(BANDS, ROWS)
    return [hashlib.blake2b(rows[i].tobytes(), digest_size=8).hexdigest() for i in range(BANDS)]


def jaccard(a: Signature, b: Signature) -> float:
    """Estimated Jaccard similarity of the two texts' shingle sets."""
    return float(np.count_nonzero(a[:NUM_PERM] == b[:NUM_PERM])) / NUM_PERM


def similarity(a: Signature, b: Signature) -> float:
    """Estimated containment: the share of the smaller text's shingles in the other."""
    j = jaccard(a, b)
    size_a, size_b = int(a[NUM_PERM]), int(b[NUM_PERM])
    return min(1.0, j * (size_a + size_b) / ((1 + j) * max(1, min(size_a, size_b))))


def to_bytes(sig: Signature) -> bytes:
    return sig.astype("<u4").tobytes()


def from_bytes(raw: bytes) -> Signature:
    return np.frombuffer(raw, dtype="<u4").astype(np.uint32)
