"""Every Redis key name and TTL of monitor, with why each value is what it is.

All keys share one hash tag (`{prefix}`), so every multi-key script also runs on Redis
Cluster; the price is that one monitor deployment lives in one slot, which is what its
atomic "mark seen and queue alerts" step needs anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

# Seen item ids live this long: longer than any feed keeps an item listed, so an item
# never comes back as new, yet memory stays bounded.
DEFAULT_SEEN_TTL = 90 * 86400
# One consumer group delivers each alert once across every instance.
DELIVERY_GROUP = "deliver"
# Copies of one story arrive within hours (syndication, regional editions); two days
# catches nearly all and keeps the signatures bounded.
DEFAULT_STORY_WINDOW = 48 * 3600
# A feed's state and known items expire this long after its last poll, or three times
# the wait for its next poll when that is longer (a 410 Gone pauses a feed for a year,
# and `monitor feeds` still shows why): every poll sets the expiry again, so only a feed
# no longer polled, because it left the config, loses them.
FEED_TTL = 30 * 86400
# Band hashes are cut into this many time buckets per window; a bucket expires once the
# newest story in it is older than the window.
STORY_BUCKETS_PER_WINDOW = 2
# Alerts waiting for an endpoint (its circuit is open, or this instance holds as many of
# its alerts as it may) stay pending in DELIVERY_GROUP, held by a consumer named this
# prefix and the circuit's id: never lost, never taken over by the visibility timeout,
# and taken back by any instance (monitor.circuits, monitor.worker).
WAITING_CONSUMER = "wait:"
# Archived items (monitor.store.archive) are kept this long by default: two weeks of items
# is what an operator needs to judge a watchlist edit (`monitor backtest --since`), and at
# ~1 KB per item compressed a thousand feeds' two weeks fit in a few hundred MB. The
# stream and its byte count expire this long after the last item archived, too.
DEFAULT_ARCHIVE_TTL = 14 * 86400
# ...and they take at most this many bytes; the oldest go first past it, so the archive
# cannot fill Redis whatever the feeds send.
DEFAULT_ARCHIVE_MAX_BYTES = 512 * 1024 * 1024


def waiting_consumer(circuit: str) -> str:
    return WAITING_CONSUMER + circuit


@dataclass(frozen=True, slots=True)
class Keys:
    """Key names, built from one prefix; nothing else in monitor spells a key."""

    prefix: str = "monitor"

    @property
    def _base(self) -> str:
        return "{" + self.prefix + "}"

    def seen(self, item_id: str) -> str:
        return f"{self._base}:seen:{item_id}"

    @property
    def schedule(self) -> str:
        """Sorted set: feed id -> unix time it is next due."""
        return f"{self._base}:schedule"

    @property
    def host_pauses(self) -> str:
        """Sorted set: host that asked for a pause -> unix time the pause ends."""
        return f"{self._base}:host_pauses"

    @property
    def host_pauses_version(self) -> str:
        """Counter raised whenever `host_pauses` gains a pause (never expires: a counter
        that started again could match a version an instance read before)."""
        return f"{self._base}:host_pauses:version"

    def feed(self, feed_id: str) -> str:
        """Hash of one feed's polling state (ETag, Last-Modified, status, failures)."""
        return f"{self._base}:feed:{feed_id}"

    def feed_known(self, feed_id: str) -> str:
        """String: digests and dates of the items the feed's last poll read. Not a field of
        the state hash: a value over 64 bytes turns Redis's compact encoding of the whole
        hash into a hash table, 394 -> 2,033 bytes per feed; apart, 394 + 632."""
        return f"{self._base}:feed:{feed_id}:known"

    def feed_template(self, feed_id: str) -> str:
        """String: the shingles the feed repeats in many of its items, which are no
        evidence that two texts are one story (monitor.dedup rule 4); only feeds that
        have such a template have one. Apart from the state hash, as `feed_known`."""
        return f"{self._base}:feed:{feed_id}:template"

    @property
    def alerts(self) -> str:
        """Stream of alerts waiting for delivery, read by DELIVERY_GROUP."""
        return f"{self._base}:alerts"

    @property
    def dead(self) -> str:
        """Stream of alerts that failed for good, kept for `monitor alerts replay`."""
        return f"{self._base}:alerts:dead"

    def story_url(self, key: str) -> str:
        """String: story URL key -> story id, for the dedup window."""
        return f"{self._base}:story:url:{key}"

    def story_bands(self, bucket: int) -> str:
        """Hash: "band index:band value" -> story id, for the stories first seen in time
        bucket `bucket`. One hash per bucket, not one key per story and band (a key costs
        ~200 bytes of overhead, a field ~70), nor one per band: a story's 42 bands are then
        read with one HMGET and written with one HSET, not 42 commands each."""
        return f"{self._base}:story:bands:{bucket}"

    def story(self, story_id: str) -> str:
        """Hash: a story's signature, first title and first URL."""
        return f"{self._base}:story:{story_id}"

    def story_sources(self, story_id: str) -> str:
        """List: every (feed, url) the story came from, as JSON."""
        return f"{self._base}:story:{story_id}:sources"

    def story_alerted(self, story_id: str) -> str:
        """Hash: subscriber -> the story's source count when it last alerted them."""
        return f"{self._base}:story:{story_id}:alerted"

    @property
    def circuits(self) -> str:
        """Hash: circuit id -> its state (JSON: since, next probe, lease, last error), for
        the endpoints that are down; a circuit that closes leaves it."""
        return f"{self._base}:circuits"

    @property
    def archive(self) -> str:
        """Stream of recent items, one entry each (field `z`: zlib-compressed JSON), its ids
        the times they were archived, oldest first (monitor.store.archive)."""
        return f"{self._base}:archive"

    @property
    def archive_bytes(self) -> str:
        """Integer: the bytes the archive's entries are counted to take, against its budget."""
        return f"{self._base}:archive:bytes"

    @property
    def errors(self) -> str:
        """Hash: alert entry id -> its last failed attempt (JSON: attempts, error)."""
        return f"{self._base}:alerts:errors"
