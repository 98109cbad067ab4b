"""The value this store keeps under a session's key, and the Lua scripts that read and write it.

A value is a header (:data:`HEADER`: :data:`MAGIC`, an 8-byte random version, the user index
deadline and the length of the user id), the user id, then the session bytes. ``0xC1`` is never
the first byte of a MessagePack map, JSON text or pickle, so a value Flask-Session 0.7/0.8 wrote
under the same prefix (no header) is told apart and still loads; its version is the SHA-1 of the
value, which the compare-and-set script computes the same way. In the compatibility write mode
every value is written that way, without header (:func:`pack`), and a value with one is
rewritten without it when it is read (:data:`STRIP`).
"""

from __future__ import annotations

import hashlib
import os
import struct
import typing as t

from redis.exceptions import NoScriptError

from flask_serverside import Record
from flask_serverside import StoreError

#: The first bytes of every value this store writes.
MAGIC = b"\xc1\x01"
#: The header: :data:`MAGIC`, an 8-byte random version, the user index deadline (Unix time,
#: 0 without a user) and the length of the user id that follows it.
HEADER = struct.Struct(">2s8sIH")
#: Seconds of clock difference between application servers that the user index tolerates.
CLOCK_SKEW = 60


class Version(t.NamedTuple):
    """The version of a record this store returns (opaque to the core): what its header says."""

    #: The random version of the save, or ``sha1:`` and the value's SHA-1 for a record without
    #: header (Flask-Session's); what the compare-and-set script compares.
    token: bytes
    #: The user id the record is indexed under, or empty.
    user: bytes = b""
    #: Until when (Unix time) the record's user index entry is good.
    deadline: int = 0


def parse(raw: bytes) -> Record:
    """Return the record a stored value holds, with its :class:`Version`."""
    if len(raw) >= HEADER.size and raw[:2] == MAGIC:
        _, token, deadline, size = HEADER.unpack_from(raw)
        start = HEADER.size + size
        return Record(raw[start:], Version(token, raw[HEADER.size : start], deadline))
    return Record(raw, Version(b"sha1:" + hashlib.sha1(raw).hexdigest().encode()))


def pack(data: bytes, user: bytes, deadline: int, *, compat: bool = False) -> bytes:
    """Return the value to store: a header with a new random version, ``user`` and ``data``;
    in the compatibility write mode (``compat``), ``data`` alone, as Flask-Session 0.8 writes
    it (its version is then the value's SHA-1, as for any record without header).

    :raises StoreError: when the user id is too long for the header.
    """
    if compat:
        return data
    try:
        head = HEADER.pack(MAGIC, os.urandom(8), deadline, len(user))
    except struct.error:
        raise StoreError(f"a user id of {len(user)} bytes is too long to index") from None
    return head + user + data


def index_deadline(head: bytes) -> int | None:
    """Return the user index deadline a value's first :data:`HEADER` bytes carry, or ``None``
    when the value has no user (or no header)."""
    if len(head) == HEADER.size and head[:2] == MAGIC:
        _, _, deadline, size = HEADER.unpack(head)
        if size:
            return int(deadline)
    return None


# Keep sid in the user index set `key` (scored by the time until which the entry is good),
# drop entries past their time and let the set expire with its last entry.
_INDEX_FUNCTION = """
local function index(key, sid, deadline, now)
  local score = redis.call('ZSCORE', key, sid)
  if not score or tonumber(score) < tonumber(deadline) then
    redis.call('ZADD', key, deadline, sid)
  end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (tonumber(now) - SKEW))
  local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  redis.call('EXPIREAT', key, tonumber(last[2]) + SKEW)
end
""".replace("SKEW", str(CLOCK_SKEW))

# The compare-and-set; LOST is what a save that loses returns.
_SAVE_TEMPLATE = """
if ARGV[1] == '' then
  if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[3]) then LOST end
else
  if ARGV[1] ~= '*' then
    local version
    local head = redis.call('GETRANGE', KEYS[1], 0, 15)
    if #head == 16 and string.sub(head, 1, 2) == '\\193\\001' then
      version = string.sub(head, 3, 10)
    else
      local value = redis.call('GET', KEYS[1])
      if not value then LOST end
      version = 'sha1:' .. redis.sha1hex(value)
    end
    if version ~= ARGV[1] then LOST end
  end
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
if KEYS[2] then index(KEYS[2], ARGV[4], ARGV[5], ARGV[6]) end
return 1
"""
#: KEYS[1] the session key, KEYS[2] (optional) the user's index in the same slot; ARGV: the
#: expected version (``''`` for no live record, ``'*'`` for none expected), the value, the time
#: to live, and with KEYS[2] the session id, the index deadline, the time now. Returns 1 when
#: saved, 0 when the stored version differs.
SAVE = _INDEX_FUNCTION + _SAVE_TEMPLATE.replace("LOST", "return 0")
#: :data:`SAVE`, returning the stored value (nil when none) instead of 0 when the save loses.
SAVE_OR_LOAD = _INDEX_FUNCTION + _SAVE_TEMPLATE.replace("LOST", "return redis.call('GET', KEYS[1])")
#: KEYS[1] the user's index; ARGV: the session id, the index deadline, the time now.
INDEX = _INDEX_FUNCTION + "index(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) return 1"
#: Move a record's index deadline on, unless it was saved again meanwhile. KEYS[1] the session
#: key, KEYS[2] (optional) the user's index; ARGV: the version, the packed deadline, the session
#: id, the deadline, the time now.
REFRESH = (
    _INDEX_FUNCTION
    + """
if redis.call('GETRANGE', KEYS[1], 2, 9) ~= ARGV[1] then return 0 end
redis.call('SETRANGE', KEYS[1], 10, ARGV[2])
if KEYS[2] then index(KEYS[2], ARGV[3], ARGV[4], ARGV[5]) end
return 1
"""
)
#: Rewrite a value without its header, keeping its expiry, if it still has the header it was
#: read with (the compatibility write mode converts this store's records as it reads them).
#: KEYS[1] the session key; ARGV: the 8-byte version the header must carry, the session bytes.
STRIP = """
if redis.call('GETRANGE', KEYS[1], 0, 9) ~= '\\193\\001' .. ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
"""
#: ``EXPIRE`` that also returns the record's header.
TOUCH = """
if redis.call('EXPIRE', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('GETRANGE', KEYS[1], 0, 15)
"""
#: ``GETEX`` for servers older than Redis 6.2.
GET_AND_EXPIRE = """
local value = redis.call('GET', KEYS[1])
if value then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return value
"""


class Script:
    """A Lua script run with ``EVALSHA``, loaded when the server does not know it yet (first
    use, a restart, a failover).

    redis-py's own ``Script`` (``register_script``) does the same with more work per call; it
    was measured against this class in one process on one ``redis-server``
    (``backends/redis/benchmarks/bench_scripts.py``: 20,000 calls each, 40 alternating rounds):
    over six runs the median of the rounds' ratios was 1.05 to 1.11, redis-py's ``Script``
    costing 3 to 11 µs more per call at 60 to 113 µs per call. So the store keeps this one.
    """

    __slots__ = ("client", "sha", "source")

    def __init__(self, client: t.Any, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: list[t.Any], args: list[t.Any]) -> t.Any:
        try:
            return self.client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.client.script_load(self.source)
            return self.client.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)
