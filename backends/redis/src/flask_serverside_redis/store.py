"""The ``redis`` store: sessions in Redis, Redis Sentinel or Redis Cluster.

Configuration, as in Flask-Session 0.8::

    SESSION_TYPE = "redis"
    SESSION_REDIS = redis.Redis.from_url("redis://localhost:6379/0")  # or a RedisCluster,
                                                  # a Sentinel master_for(...) client, or a URL

or a URL in ``SESSION_TYPE`` (or ``SESSION_REDIS``): ``redis://``, ``rediss://``, ``unix://``,
``redis+sentinel://host:port,host:port/service_name[/db]`` and
``redis+cluster://host:port[,host:port]`` (``rediss+...`` for TLS).

Records: one string key per session, ``SESSION_KEY_PREFIX + sid``, expiring through Redis's own
expiry. Its value is a header (the version and the user index entry) followed by the session
bytes (see :mod:`._record`); a record Flask-Session 0.7/0.8 wrote under the same prefix still
loads. Flask-Session cannot read this store's header, so with ``SESSION_COMPAT_FLASK_SESSION``
(while Flask-Session workers still serve some requests, or before a rollback) the store writes
Flask-Session's own layout instead: the session bytes alone under the same key, with the
value's SHA-1 as the version of the conditional save (computed by the save script, so
Flask-Session's writes are seen too), and a value with a header is rewritten without it when
read. The user index then has no header to carry its deadline: every save of a session with
a user writes its entry, good for twice the time to live after that save.

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

With ``SESSION_REDIS_CACHE`` (``True`` or a number of records) each process keeps the records it
read in a cache that Redis keeps coherent (``CLIENT TRACKING``): a read of an unchanged session
costs no round trip. See :class:`SessionCache`; not on a Redis Cluster.
"""

from __future__ import annotations

import collections.abc as c
import logging
import time
import typing as t

import redis
from redis.cluster import RedisCluster
from redis.exceptions import AuthenticationError
from redis.exceptions import AuthorizationError
from redis.exceptions import ClusterDownError
from redis.exceptions import RedisClusterException
from redis.exceptions import TryAgainError

from flask_serverside import Capability
from flask_serverside import ClientErrors
from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError
from flask_serverside import Record
from flask_serverside import StoreError

from . import _record
from ._cache import DEFAULT_SIZE
from ._cache import SessionCache
from ._record import CLOCK_SKEW
from ._record import Script
from ._record import Version
from .urls import Client
from .urls import connect_url

if t.TYPE_CHECKING:
    from flask_serverside import StoreSettings


log = logging.getLogger("flask_serverside.redis")

#: The server when neither ``SESSION_REDIS`` nor a URL names one: Flask-Session's default
#: (``redis.Redis()``), with the timeouts of every client built from a URL.
DEFAULT_URL = "redis://127.0.0.1:6379/0"

#: redis-py's exceptions in the core's terms: a server that cannot be reached, timed out or is
#: a Cluster without quorum is unavailable; a refused login (an ``AuthenticationError`` is a
#: ``ConnectionError`` in redis-py) and every other error is a failure.
_errors = ClientErrors(
    "Redis",
    unavailable=(
        redis.ConnectionError,
        redis.TimeoutError,
        ClusterDownError,
        TryAgainError,
        RedisClusterException,
    ),
    failed=(AuthenticationError, AuthorizationError, redis.RedisError),
)


class _Bound:
    """A client and the scripts for it.

    :raises ConfigurationError: when the client decodes responses.
    """

    def __init__(self, client: Client) -> None:
        if client.get_encoder().decode_responses:
            raise ConfigurationError(
                "SESSION_REDIS must not decode responses: sessions are bytes. Make the client"
                " without decode_responses=True."
            )
        self.client: t.Any = client
        self.cluster = isinstance(client, RedisCluster)
        self.save = Script(client, _record.SAVE)
        self.save_or_load = Script(client, _record.SAVE_OR_LOAD)
        self.index = Script(client, _record.INDEX)
        self.refresh = Script(client, _record.REFRESH)
        self.touch = Script(client, _record.TOUCH)
        self.strip = Script(client, _record.STRIP)
        self.get_and_expire = Script(client, _record.GET_AND_EXPIRE)


class RedisStore:
    """Sessions in Redis (a server, a Sentinel-managed master or a Cluster).

    :param client: a ``redis.Redis`` (also what ``Sentinel.master_for`` returns) or a
        ``redis.cluster.RedisCluster``, without ``decode_responses``: the application's, never
        closed by the store. Or a :class:`~flask_serverside.ClientHandle` of one, which may
        make it on first use (so an application starts while Redis is down) and says whether
        :meth:`close` closes it (:func:`connect_url` returns such a handle).
    :param key_prefix: prepended to every session id.
    :param clock: returns the Unix time, for the user index deadlines; tests pass a fake one.
    :param compat: write Flask-Session 0.8's layout (``SESSION_COMPAT_FLASK_SESSION``).
    :param cache: keep up to this many records in a :class:`SessionCache` of this process,
        kept coherent by Redis; ``0`` (the default) for none. Not on a Redis Cluster.
    :raises ConfigurationError: for a cache on a Redis Cluster.

    .. versionadded:: 0.1

    .. versionchanged:: 0.2
        ``client`` may be a :class:`~flask_serverside.ClientHandle`, which replaces the
        connect function and the ``closing`` list; the ``compat`` and ``cache`` parameters.
    """

    capabilities: t.ClassVar[Capability] = (
        Capability.TOUCH
        | Capability.LOAD_AND_TOUCH
        | Capability.CONDITIONAL_SAVE
        | Capability.SAVE_IF_OR_LOAD
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
    config_keys = ("SESSION_REDIS", "SESSION_REDIS_CACHE")

    def __init__(
        self,
        client: Client | ClientHandle[Client],
        *,
        key_prefix: str = "session:",
        clock: c.Callable[[], float] = time.time,
        compat: bool = False,
        cache: int = 0,
    ) -> None:
        #: Prepended to every session id.
        self.key_prefix = key_prefix
        #: Whether records are written in Flask-Session 0.8's layout.
        self.compat = compat
        self._clock = clock
        self._handle = client if isinstance(client, ClientHandle) else ClientHandle.given(client)
        self._bound = _Bound(self._handle.client) if self._handle.connected else None
        #: Whether the server knows GETEX (Redis 6.2+); found out on first use.
        self.has_getex = True
        if cache and self._bound is not None and self._bound.cluster:
            raise ConfigurationError(_NO_CLUSTER_CACHE)
        if cache and compat:
            raise ConfigurationError(
                "SESSION_REDIS_CACHE is not available with SESSION_COMPAT_FLASK_SESSION: the"
                " compatibility write mode is for the migration; turn the cache on after it."
            )
        #: This process's cache of records (``SESSION_REDIS_CACHE``), or ``None``.
        self.cache = SessionCache(self, cache, errors=_errors) if cache else None

    @classmethod
    def from_url(
        cls, url: str, *, key_prefix: str = "session:", compat: bool = False, cache: int = 0
    ) -> RedisStore:
        """Build a store on a client made from ``url`` (see the module docs for the forms);
        :meth:`close` closes that client.

        :raises ConfigurationError: when the URL is malformed, or asks for a cache on a
            Cluster.

        .. versionchanged:: 0.2
            The ``cache`` parameter.
        """
        if cache and url.partition("://")[0].lower().endswith("+cluster"):
            raise ConfigurationError(_NO_CLUSTER_CACHE)
        return cls(connect_url(url), key_prefix=key_prefix, compat=compat, cache=cache)

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> RedisStore:
        """Build the store from ``SESSION_REDIS`` (a client or a URL) or a ``SESSION_TYPE`` URL;
        with neither, from :data:`DEFAULT_URL`, as Flask-Session does, with a warning.

        :raises ConfigurationError: when both are set, or the value is wrong.

        .. versionchanged:: 0.2
            Neither set means Flask-Session's default server (logged), no longer an error.
        """
        value = settings.config.get("SESSION_REDIS")
        if settings.url is not None and value is not None:
            raise ConfigurationError(
                f"SESSION_TYPE is the URL {settings.url!r} and SESSION_REDIS is set too: set"
                " only one (SESSION_TYPE = 'redis' with SESSION_REDIS, or the URL alone)."
            )
        source = value if value is not None else settings.url
        cache = _cache_size(settings.config.get("SESSION_REDIS_CACHE"))
        if source is None:
            log.warning(
                "SESSION_REDIS is not set: sessions go to the Redis at %s, Flask-Session's"
                " default. Set SESSION_REDIS to a client or a URL, or SESSION_TYPE to a URL"
                " such as 'redis://host:6379/0', to choose the server and silence this message.",
                DEFAULT_URL,
            )
            source = DEFAULT_URL
        compat = settings.compat_flask_session
        if isinstance(source, str):
            return cls.from_url(source, key_prefix=settings.key_prefix, compat=compat, cache=cache)
        if isinstance(source, (redis.Redis, RedisCluster)):
            return cls(source, key_prefix=settings.key_prefix, compat=compat, cache=cache)
        raise ConfigurationError(
            "SESSION_REDIS must be a redis.Redis, a redis.cluster.RedisCluster or a URL string,"
            f" not {type(source).__name__}."
        )

    def __repr__(self) -> str:
        return f"<RedisStore {self.key_prefix!r} {self._bound.client if self._bound else ''}>"

    @property
    def bound(self) -> _Bound:
        """The client and its scripts, connecting first when built from a URL."""
        bound = self._bound
        if bound is None:
            with _errors("connect"):
                bound = _Bound(self._handle.client)
            if bound.cluster and self.cache is not None:
                raise ConfigurationError(_NO_CLUSTER_CACHE)
            self._bound = bound
        return bound

    @property
    def client(self) -> Client:
        """The Redis client (connected on first use when built from a URL)."""
        return t.cast(Client, self.bound.client)

    # -- the three operations ------------------------------------------------------------------

    def load(self, sid: str) -> Record | None:
        """``GET``; see :meth:`flask_serverside.SessionStore.load`."""
        if self.cache is not None:
            return self.cache.load(sid, None)
        with _errors("load a session"):
            raw = self.bound.client.get(self.key_prefix + sid)
        return None if raw is None else self._parse(sid, raw)

    def _parse(self, sid: str, raw: bytes) -> Record:
        """The record a value holds; in the compatibility write mode, a value with this
        store's header is first rewritten without it (one more call, once per record), so
        that Flask-Session workers can read it."""
        record = _record.parse(raw)
        version = t.cast(Version, record.version)
        if not self.compat or version.token.startswith(b"sha1:"):
            return record
        with _errors("rewrite a session for Flask-Session"):
            stripped = self.bound.strip(
                keys=[self.key_prefix + sid], args=[version.token, record.data]
            )
        # Not stripped: saved again meanwhile, and a conditional save against this version fails.
        return _record.parse(record.data) if stripped else record

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        """``SET ... EX`` and the user index entry, in one script (two calls on a Cluster)."""
        self._write(sid, data, ttl, user_id, "*")

    def delete(self, sid: str) -> None:
        """``DEL``; the user index entry stays until its deadline (the core checks entries)."""
        try:
            with _errors("delete a session"):
                self.bound.client.delete(self.key_prefix + sid)
        finally:
            if self.cache is not None:
                self.cache.discard(sid)

    # -- capabilities --------------------------------------------------------------------------

    def touch(self, sid: str, ttl: int) -> bool:
        """``EXPIRE``, in a script that also returns the header, so that the rare request that
        slides the session past its user index entry can move the entry on.

        :returns: ``False`` when there is no record under ``sid``.

        With the cache, a record it holds is left alone until its refresh is due (see
        a tenth of the lifetime, see :class:`SessionCache`).
        """
        if self.cache is not None:
            if self.cache.fresh(sid, ttl):
                return True
            self.cache.discard(sid)  # the refresh below invalidates it anyway
        with _errors("refresh a session"):
            head = self.bound.touch(keys=[self.key_prefix + sid], args=[ttl])
        if head is None:
            return False
        deadline = _record.index_deadline(head)
        if deadline is not None and deadline < self._clock() + ttl:  # rare: the entry is due
            record = self.load(sid)
            if record is not None:
                self.keep_index(sid, record, ttl)
        return True

    def load_and_touch(self, sid: str, ttl: int) -> Record | None:
        """``GETEX key EX ttl`` (a ``GET`` and ``EXPIRE`` script on servers without it, found
        out on first use): one round trip, and one more about once per time to live for a
        session with a user, to move its index entry on. With the cache: no round trip for a
        record it holds, until the refresh is due (see :class:`SessionCache`)."""
        if self.cache is not None:
            return self.cache.load(sid, ttl)
        key = self.key_prefix + sid
        bound = self.bound
        with _errors("load a session"):
            raw = None
            if self.has_getex:
                try:
                    # The command itself: redis-py's getex() only adds argument checks.
                    raw = bound.client.execute_command("GETEX", key, "EX", ttl)
                except redis.ResponseError as exc:
                    if "unknown command" not in str(exc).lower():
                        raise
                    self.has_getex = False
            if not self.has_getex:
                raw = bound.get_and_expire(keys=[key], args=[ttl])
        if raw is None:
            return None
        record = self._parse(sid, raw)
        self.keep_index(sid, record, ttl)
        return record

    def keep_index(self, sid: str, record: Record, ttl: int) -> None:
        """Move the user index entry of ``record`` (just refreshed to ``ttl``) on when the
        session would now outlive it."""
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
            return bool(self._write(sid, data, ttl, user_id, b""))
        if not isinstance(expected.version, Version):
            return False  # a record of another store: it cannot be current
        version = expected.version
        return bool(self._write(sid, data, ttl, user_id, version.token, version))

    def save_if_or_load(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> tuple[bool, Record | None]:
        """The script of :meth:`save_if`, which returns the stored value when the save loses;
        see :meth:`flask_serverside.store.SavableOrLoadable.save_if_or_load`."""
        previous: Version | None = None
        if expected is None:
            token = b""
        elif isinstance(expected.version, Version):
            token, previous = expected.version.token, expected.version
        else:
            return False, self.load(sid)  # a record of another store: it cannot be current
        reply = self._write(sid, data, ttl, user_id, token, previous, returning=True)
        if isinstance(reply, int):
            return True, None
        return False, None if reply is None else self._parse(sid, reply)

    def _write(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        user_id: str | None,
        token: bytes | str,
        previous: Version | None = None,
        *,
        returning: bool = False,
    ) -> t.Any:
        """Save, if the stored record's version is ``token`` (``b""``: none, ``"*"``: any).
        Returns the script's reply: 1 when saved; when not, 0, or with ``returning`` the
        stored value (``None`` for none).

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
        args: list[t.Any] = [token, _record.pack(data, user, deadline, compat=self.compat), ttl]
        try:
            with _errors("save a session"):
                if user_id is not None:
                    index = self.user_key(user_id)
                    if bound.cluster:  # another slot: index first, so it never misses a session
                        bound.index(keys=[index], args=[sid, deadline, now])
                    else:
                        keys.append(index)
                        args += [sid, deadline, now]
                return (bound.save_or_load if returning else bound.save)(keys=keys, args=args)
        finally:
            if self.cache is not None:  # saved, lost the compare-and-set, or unknown
                self.cache.discard(sid)

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
        """Close the client when the store made it (from a URL); a client passed in is left
        open. The cache's channel is closed either way."""
        if self.cache is not None:
            self.cache.close()
        self._handle.close()


_NO_CLUSTER_CACHE = (
    "SESSION_REDIS_CACHE is not available on a Redis Cluster: each primary only reports"
    " changes of its own keys, and a failover or resharding would move sessions to a server"
    " this process does not listen to. Use it with a single Redis or a Sentinel-managed one."
)


def _cache_size(value: object) -> int:
    """``SESSION_REDIS_CACHE``: ``True`` (``DEFAULT_SIZE`` records), a number of
    records, or ``False``/``None``/``0`` (no cache).

    :raises ConfigurationError: for anything else.
    """
    if value is None or value is False or value == 0 and isinstance(value, int):
        return 0
    if value is True:
        return DEFAULT_SIZE
    if isinstance(value, int) and value > 0:
        return value
    raise ConfigurationError(
        "SESSION_REDIS_CACHE must be True (a cache of"
        f" {DEFAULT_SIZE} session records per process), a number of records of at least 1, or"
        f" False (default: no cache), not {value!r}."
    )


def _glob_escape(text: bytes) -> bytes:
    for char in b"\\*?[]":
        text = text.replace(bytes([char]), b"\\" + bytes([char]))
    return text
