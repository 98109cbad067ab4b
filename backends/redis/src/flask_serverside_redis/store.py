"""The ``redis`` store: sessions in Redis, Redis Sentinel or Redis Cluster.

Configuration, as in Flask-Session 0.8::

    SESSION_TYPE = "redis"
    SESSION_REDIS = redis.Redis.from_url("redis://localhost:6379/0")  # or a RedisCluster,
                                                  # a Sentinel master_for(...) client, or a URL

or a URL in ``SESSION_TYPE`` (or ``SESSION_REDIS``): ``redis://``, ``rediss://``, ``unix://``,
``redis+sentinel://host:port,host:port/service_name[/db]`` and
``redis+cluster://host:port[,host:port]`` (``rediss+...`` for TLS).

Records: one string key per session, ``SESSION_KEY_PREFIX + sid``, expiring through Redis's own
expiry. Its value is a header (:data:`HEADER`: ``0xC1 0x01``, an 8-byte random version, the user
index deadline and the user id) followed by the session bytes. ``0xC1`` is never the first byte
of a MessagePack map, JSON text or pickle, so a record written by Flask-Session 0.7/0.8 under the
same prefix (no header) is told apart and still loads; its version is the SHA-1 of its value,
which the compare-and-set script computes the same way. Flask-Session cannot read this store's
records, so moving to it is one way.

Round trips: ``load``, ``load_and_touch`` (``GETEX``), ``touch``, ``delete``, ``save`` and
``save_if`` (one Lua script that compares the version and writes) cost one each.

The user index of ``user_id`` is a sorted set, ``SESSION_KEY_PREFIX + "user:" + user_id``, of
session ids scored by a deadline: the Unix time until which the entry is good, twice the time to
live after the session's last save. The record's header carries the same deadline, so a request
that slides a session's expiry past it moves it on, with one more call about once per time to
live; an entry therefore outlives its session, and entries past their deadline can be dropped
without looking at the sessions. The save script updates the index, unless the record it replaces
had a good entry for the same user already; on a Redis Cluster, where the index lives in another
hash slot than the session, a second call updates it first, so it never misses a session.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import hashlib
import logging
import os
import struct
import threading
import time
import typing as t

import redis
from redis.cluster import RedisCluster
from redis.exceptions import AuthenticationError
from redis.exceptions import AuthorizationError
from redis.exceptions import ClusterDownError
from redis.exceptions import NoScriptError
from redis.exceptions import RedisClusterException
from redis.exceptions import TryAgainError

from flask_serverside import Capability
from flask_serverside import ConfigurationError
from flask_serverside import Record
from flask_serverside import StoreError
from flask_serverside import StoreUnavailable

from .urls import Client
from .urls import connect_url

if t.TYPE_CHECKING:
    from flask_serverside import StoreSettings


log = logging.getLogger("flask_serverside")

#: The first bytes of every value this store writes.
MAGIC = b"\xc1\x01"
#: The header: :data:`MAGIC`, an 8-byte random version, the user index deadline (Unix time,
#: 0 without a user) and the length of the user id that follows it.
HEADER = struct.Struct(">2s8sIH")
#: Seconds of clock difference between application servers that the user index tolerates.
CLOCK_SKEW = 60

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
# KEYS[1] the session key, KEYS[2] (optional) the user's index in the same slot; ARGV: the
# expected version ('' for no live record, '*' for none expected), the value, the time to live,
# and with KEYS[2] the session id, the index deadline, the time now.
_SAVE = (
    _INDEX_FUNCTION
    + """
if ARGV[1] == '' then
  if not redis.call('SET', KEYS[1], ARGV[2], 'NX', 'EX', ARGV[3]) then return 0 end
else
  if ARGV[1] ~= '*' then
    local version
    local head = redis.call('GETRANGE', KEYS[1], 0, 15)
    if #head == 16 and string.sub(head, 1, 2) == '\\193\\001' then
      version = string.sub(head, 3, 10)
    else
      local value = redis.call('GET', KEYS[1])
      if not value then return 0 end
      version = 'sha1:' .. redis.sha1hex(value)
    end
    if version ~= ARGV[1] then return 0 end
  end
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
if KEYS[2] then index(KEYS[2], ARGV[4], ARGV[5], ARGV[6]) end
return 1
"""
)
# KEYS[1] the user's index; ARGV: the session id, the index deadline, the time now.
_INDEX = _INDEX_FUNCTION + "index(KEYS[1], ARGV[1], ARGV[2], ARGV[3]) return 1"
# Move a record's index deadline on, unless it was saved again meanwhile. KEYS[1] the session
# key, KEYS[2] (optional) the user's index; ARGV: the version, the packed deadline, the session
# id, the deadline, the time now.
_REFRESH = (
    _INDEX_FUNCTION
    + """
if redis.call('GETRANGE', KEYS[1], 2, 9) ~= ARGV[1] then return 0 end
redis.call('SETRANGE', KEYS[1], 10, ARGV[2])
if KEYS[2] then index(KEYS[2], ARGV[3], ARGV[4], ARGV[5]) end
return 1
"""
)
# EXPIRE that also returns the record's header.
_TOUCH = """
if redis.call('EXPIRE', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('GETRANGE', KEYS[1], 0, 15)
"""
# GETEX for servers older than Redis 6.2.
_GET_AND_EXPIRE = """
local value = redis.call('GET', KEYS[1])
if value then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return value
"""


@contextlib.contextmanager
def _errors(what: str) -> c.Iterator[None]:
    """Translate the client's exceptions into the store's."""
    try:
        yield
    except (AuthenticationError, AuthorizationError) as exc:
        raise StoreError(f"Redis refused to {what}: {exc}") from exc
    except (
        redis.ConnectionError,
        redis.TimeoutError,
        ClusterDownError,
        TryAgainError,
        RedisClusterException,
    ) as exc:
        raise StoreUnavailable(f"Redis is unavailable, could not {what}: {exc}") from exc
    except redis.RedisError as exc:
        raise StoreError(f"Redis failed to {what}: {exc}") from exc


class Version(t.NamedTuple):
    """The version of a record this store returns (opaque to the core): what its header says."""

    #: The random version of the save, or ``sha1:`` and the value's SHA-1 for a record without
    #: header (Flask-Session's); what the compare-and-set script compares.
    token: bytes
    #: The user id the record is indexed under, or empty.
    user: bytes = b""
    #: Until when (Unix time) the record's user index entry is good.
    deadline: int = 0


def _parse(raw: bytes) -> Record:
    if len(raw) >= HEADER.size and raw[:2] == MAGIC:
        _, token, deadline, size = HEADER.unpack_from(raw)
        start = HEADER.size + size
        return Record(raw[start:], Version(token, raw[HEADER.size : start], deadline))
    return Record(raw, Version(b"sha1:" + hashlib.sha1(raw).hexdigest().encode()))


class _Script:
    """A Lua script run with ``EVALSHA``, loaded when the server does not know it yet (first
    use, a restart, a failover): redis-py's ``Script`` without its per-call overhead."""

    def __init__(self, client: t.Any, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def __call__(self, keys: list[t.Any], args: list[t.Any]) -> t.Any:
        try:
            return self.client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            self.client.script_load(self.source)
            return self.client.evalsha(self.sha, len(keys), *keys, *args)


class _Bound:
    """A client and the scripts for it."""

    def __init__(self, client: Client) -> None:
        self.client: t.Any = client
        self.cluster = isinstance(client, RedisCluster)
        self.save = _Script(client, _SAVE)
        self.index = _Script(client, _INDEX)
        self.refresh = _Script(client, _REFRESH)
        self.touch = _Script(client, _TOUCH)
        self.get_and_expire = _Script(client, _GET_AND_EXPIRE)


class RedisStore:
    """Sessions in Redis (a server, a Sentinel-managed master or a Cluster).

    :param client: a ``redis.Redis`` (also what ``Sentinel.master_for`` returns) or a
        ``redis.cluster.RedisCluster``, without ``decode_responses``; or a callable returning
        one, called on first use (so an application starts while Redis is down).
    :param key_prefix: prepended to every session id.
    :param closing: what :meth:`close` closes: the clients this store owns (a client the
        application passed in is its own to close). It is read when :meth:`close` runs, so a
        connect function may add the client it makes.
    :param clock: returns the Unix time, for the user index deadlines; tests pass a fake one.

    .. versionadded:: 0.1
    """

    capabilities: t.ClassVar[Capability] = (
        Capability.TOUCH
        | Capability.LOAD_AND_TOUCH
        | Capability.CONDITIONAL_SAVE
        | Capability.ENUMERATE
        | Capability.USER_INDEX
    )
    url_schemes = (
        "redis",
        "rediss",
        "unix",
        "redis+sentinel",
        "rediss+sentinel",
        "redis+cluster",
        "rediss+cluster",
    )
    config_keys = ("SESSION_REDIS",)

    def __init__(
        self,
        client: Client | c.Callable[[], Client],
        *,
        key_prefix: str = "session:",
        closing: list[t.Any] | None = None,
        clock: c.Callable[[], float] = time.time,
    ) -> None:
        #: Prepended to every session id.
        self.key_prefix = key_prefix
        self._closing = closing if closing is not None else []
        self._clock = clock
        self._lock = threading.Lock()
        self._bound: _Bound | None = None
        self._connect: c.Callable[[], Client] | None = None
        #: Whether the server knows GETEX (Redis 6.2+); found out on first use.
        self.has_getex = True
        if isinstance(client, (redis.Redis, RedisCluster)):
            self._bound = _bind(client)
        else:
            self._connect = client

    @classmethod
    def from_url(cls, url: str, *, key_prefix: str = "session:") -> RedisStore:
        """Build a store on a client made from ``url`` (see the module docs for the forms);
        :meth:`close` closes that client.

        :raises ConfigurationError: when the URL is malformed.
        """
        connect, closing = connect_url(url)
        return cls(connect, key_prefix=key_prefix, closing=closing)

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> RedisStore:
        """Build the store from ``SESSION_REDIS`` (a client or a URL) or a ``SESSION_TYPE`` URL.

        :raises ConfigurationError: when neither is set, both are, or the value is wrong.
        """
        value = settings.config.get("SESSION_REDIS")
        if settings.url is not None and value is not None:
            raise ConfigurationError(
                f"SESSION_TYPE is the URL {settings.url!r} and SESSION_REDIS is set too: set"
                " only one (SESSION_TYPE = 'redis' with SESSION_REDIS, or the URL alone)."
            )
        source = value if value is not None else settings.url
        if source is None:
            raise ConfigurationError(
                "The redis session store needs a Redis: set SESSION_REDIS to a client"
                " (redis.Redis.from_url('redis://localhost:6379/0')) or a URL, or set"
                " SESSION_TYPE to a URL such as 'redis://localhost:6379/0'."
            )
        if isinstance(source, str):
            return cls.from_url(source, key_prefix=settings.key_prefix)
        if isinstance(source, (redis.Redis, RedisCluster)):
            return cls(source, key_prefix=settings.key_prefix)
        raise ConfigurationError(
            "SESSION_REDIS must be a redis.Redis, a redis.cluster.RedisCluster or a URL string,"
            f" not {type(source).__name__}."
        )

    def __repr__(self) -> str:
        return f"<RedisStore {self.key_prefix!r} {self._bound.client if self._bound else ''}>"

    @property
    def bound(self) -> _Bound:
        """The client and its scripts, connecting first when built from a URL."""
        if self._bound is None:
            with self._lock, _errors("connect"):
                if self._bound is None and self._connect is not None:
                    self._bound = _bind(self._connect())
        assert self._bound is not None
        return self._bound

    @property
    def client(self) -> Client:
        """The Redis client (connected on first use when built from a URL)."""
        return t.cast(Client, self.bound.client)

    # -- the three operations ------------------------------------------------------------------

    def load(self, sid: str) -> Record | None:
        """``GET``; see :meth:`flask_serverside.SessionStore.load`."""
        with _errors("load a session"):
            raw = self.bound.client.get(self.key_prefix + sid)
        return None if raw is None else _parse(raw)

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        """``SET ... EX`` and the user index entry, in one script (two calls on a Cluster)."""
        self._write(sid, data, ttl, user_id, "*")

    def delete(self, sid: str) -> None:
        """``DEL``; the user index entry stays until its deadline (the core checks entries)."""
        with _errors("delete a session"):
            self.bound.client.delete(self.key_prefix + sid)

    # -- capabilities --------------------------------------------------------------------------

    def touch(self, sid: str, ttl: int) -> bool:
        """``EXPIRE``, in a script that also returns the header, so that the rare request that
        slides the session past its user index entry can move the entry on.

        :returns: ``False`` when there is no record under ``sid``.
        """
        with _errors("refresh a session"):
            head = self.bound.touch(keys=[self.key_prefix + sid], args=[ttl])
        if head is None:
            return False
        if len(head) == HEADER.size and head[:2] == MAGIC:
            _, _, deadline, size = HEADER.unpack(head)
            if size and deadline < self._clock() + ttl:  # rare: the index entry is due
                self.load_and_touch(sid, ttl)
        return True

    def load_and_touch(self, sid: str, ttl: int) -> Record | None:
        """``GETEX key EX ttl`` (a ``GET`` and ``EXPIRE`` script on servers without it, found
        out on first use): one round trip, and one more about once per time to live for a
        session with a user, to move its index entry on."""
        key = self.key_prefix + sid
        bound = self.bound
        with _errors("load a session"):
            raw = None
            if self.has_getex:
                try:
                    raw = bound.client.getex(key, ex=ttl)
                except redis.ResponseError as exc:
                    if "unknown command" not in str(exc).lower():
                        raise
                    self.has_getex = False
            if not self.has_getex:
                raw = bound.get_and_expire(keys=[key], args=[ttl])
        if raw is None:
            return None
        record = _parse(raw)
        version = t.cast(Version, record.version)
        now = int(self._clock())
        if version.user and version.deadline < now + ttl:
            # The session now outlives its user index entry: move the entry on (once per time
            # to live, so this costs nothing on most requests). The session itself loaded, so
            # a failure here is logged and retried by the next request, not raised.
            try:
                with _errors("refresh a user index"):
                    self._refresh(sid, version, now, now + 2 * ttl)
            except StoreError:
                log.warning(
                    "could not refresh the user index of session %s…", sid[:6], exc_info=True
                )
        return record

    def _refresh(self, sid: str, version: Version, now: int, deadline: int) -> None:
        bound = self.bound
        keys: list[str | bytes] = [self.key_prefix + sid]
        index = self.key_prefix.encode() + b"user:" + version.user
        if bound.cluster:
            bound.index(keys=[index], args=[sid, deadline, now])
        else:
            keys.append(index)
        packed = deadline.to_bytes(4, "big")
        bound.refresh(keys=keys, args=[version.token, packed, sid, deadline, now])

    def save_if(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> bool:
        """One script that compares the stored version with ``expected``'s and writes; see
        :meth:`flask_serverside.store.ConditionallySavable.save_if`."""
        if expected is None:
            return self._write(sid, data, ttl, user_id, b"")
        if not isinstance(expected.version, Version):
            return False  # a record of another store: it cannot be current
        return self._write(sid, data, ttl, user_id, expected.version.token, expected.version)

    def _write(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        user_id: str | None,
        token: bytes | str,
        previous: Version | None = None,
    ) -> bool:
        """Save, if the stored record's version is ``token`` (``b""``: none, ``"*"``: any).

        The user index is left alone when the record replaced (``previous``, sure to be it when
        the save succeeds) was indexed for the same user with an entry good for longer than
        this save's time to live; otherwise the entry is written, before the session on a
        Cluster.
        """
        bound = self.bound
        keys = [self.key_prefix + sid]
        user = b"" if user_id is None else user_id.encode()
        now = int(self._clock())
        if not user:
            deadline = 0
        elif previous is not None and previous.user == user and previous.deadline >= now + ttl:
            deadline = previous.deadline
            user_id = None  # its entry is good
        else:
            deadline = now + 2 * ttl
        try:
            head = HEADER.pack(MAGIC, os.urandom(8), deadline, len(user))
        except struct.error:
            raise StoreError(f"the user id {user[:40]!r}... is too long to index") from None
        args: list[t.Any] = [token, head + user + data, ttl]
        with _errors("save a session"):
            if user_id is not None:
                index = self.user_key(user_id)
                if bound.cluster:  # another slot: index first, so it never misses a session
                    bound.index(keys=[index], args=[sid, deadline, now])
                else:
                    keys.append(index)
                    args += [sid, deadline, now]
            return bool(bound.save(keys=keys, args=args))

    def user_key(self, user_id: str) -> str:
        """Return the key of ``user_id``'s index: a sorted set of session ids, each scored by
        the Unix time until which it is good."""
        return f"{self.key_prefix}user:{user_id}"

    def iter_sids(self) -> c.Iterator[str]:
        """Yield the session ids of this prefix, scanning every primary of a cluster."""
        prefix = self.key_prefix.encode()
        pattern = _glob_escape(prefix) + b"*"
        seen: set[bytes] = set()
        with _errors("list sessions"):
            for key in self.bound.client.scan_iter(match=pattern, count=1000):
                rest = key[len(prefix) :]
                if b":" not in rest and rest not in seen:  # not a user index
                    seen.add(rest)
                    yield rest.decode()

    def count(self) -> int:
        """Count the session ids :meth:`iter_sids` yields."""
        return sum(1 for _ in self.iter_sids())

    def user_sids(self, user_id: str) -> list[str]:
        """Return the ids in ``user_id``'s index whose entry is still good: every live session
        of the user, and perhaps some since deleted or saved for another user."""
        since = self._clock() - CLOCK_SKEW
        with _errors("list a user's sessions"):
            members = self.bound.client.zrangebyscore(self.user_key(user_id), since, "+inf")
        return [member.decode() for member in members]

    def close(self) -> None:
        """Close the clients this store made; a client passed in is left open."""
        for resource in self._closing:
            resource.close()


def _bind(client: Client) -> _Bound:
    if client.get_encoder().decode_responses:
        raise ConfigurationError(
            "SESSION_REDIS must not decode responses: sessions are bytes. Make the client"
            " without decode_responses=True."
        )
    return _Bound(client)


def _glob_escape(text: bytes) -> bytes:
    for char in b"\\*?[]":
        text = text.replace(bytes([char]), b"\\" + bytes([char]))
    return text
