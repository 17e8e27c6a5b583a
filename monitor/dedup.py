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

The signature is defined here with numpy (vectorised over shingles and permutations),
and computed by the C extension monitor._minhash where it was built, to the same values
in a fifth of the time; datasketch's MinHash would do what numpy does, but its Redis LSH
keeps keys of its own outside monitor's store module and hash tag, and pulls in scipy.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt

from monitor.feeds import canonical_url
from monitor.text import fold

NUM_PERM = 126
BANDS = 42
ROWS = NUM_PERM // BANDS
SHINGLE = 3
MIN_WORDS = 30
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

_c_signature: Callable[[list[str], bytes, bytes], bytes] | None
try:
    from monitor._minhash import signature as _c_signature
except ImportError:  # built without a C compiler: numpy alone, to the same values
    _c_signature = None
C_SIGNATURE = _c_signature is not None


def story_url(url: str) -> str:
    """The URL that every copy of one page shares (rule 1)."""
    if not url:
        return ""
    parts = urlsplit(canonical_url(url))
    host = (parts.hostname or "").lower()
    for prefix in ("www.", "amp.", "m.", "mobile."):
        if host.startswith(prefix) and host.count(".") >= 2:
            host = host[len(prefix):]
    path = _AMP_PATH.sub("", parts.path).rstrip("/") or "/"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k.lower() not in _AMP_PARAMS]
    return urlunsplit(("", host, path, urlencode(query), ""))


def url_key(url: str) -> str:
    return hashlib.sha256(story_url(url).encode()).hexdigest()[:24] if url else ""


def signature(text: str) -> Signature | None:
    """The MinHash signature of a text, or None when it is too short to judge (rule 2).
    Its last value is the number of distinct shingles, which containment needs."""
    words = fold(text).split()
    if len(words) < MIN_WORDS:
        return None
    if _c_signature is not None:
        return np.frombuffer(_c_signature(words, _A_BYTES, _B_BYTES), dtype=np.uint32)
    return signature_numpy(words)


def signature_numpy(words: list[str]) -> Signature:
    """The signature of the folded `words` (MIN_WORDS or more), with numpy: its definition,
    which the C extension follows."""
    shingles = set(map(" ".join, zip(*(words[i:] for i in range(SHINGLE)), strict=False)))
    hashes = np.fromiter((zlib.crc32(s.encode()) for s in shingles), dtype=np.uint64,
                         count=len(shingles))
    values = (_A[:, None] * hashes[None, :] + _B[:, None]) % _PRIME
    result: Signature = np.append(values.min(axis=1), len(shingles)).astype(np.uint32)
    return result


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
