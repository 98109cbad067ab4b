"""A worker-local cache of session records, kept coherent by Redis (``SESSION_REDIS_CACHE``).

A read-only request of a session whose record has not changed since this process last read it
costs no round trip: the record comes from a bounded, per-process LRU of records. Redis keeps the
cache coherent through server-assisted invalidation (``CLIENT TRACKING``, Redis 6.0+, RESP2):

* One connection per process, not from the application's pool, runs ``CLIENT TRACKING on
  REDIRECT <its own id> BCAST PREFIX <SESSION_KEY_PREFIX>`` and subscribes to
  ``__redis__:invalidate``. From then on Redis sends it the name of every key under the prefix
  that any client changes, refreshes, deletes or lets expire, and a flush notice on
  ``FLUSHALL``/``FLUSHDB``. The store's own commands keep using the application's client.
* Redis sends broadcast invalidations before the replies of the same event-loop turn (on 7.0,
  every key invalidation was readable here when the writer's reply arrived, in tens of
  thousands of tries; a ``FLUSHALL``/``FLUSHDB`` notice is the exception and follows its
  reply), so it is in this process's socket buffer by the time anything that follows the write
  (the writer's response, the browser's next request) reaches this process. Every read of the
  cache therefore first applies what is waiting on that socket (one ``select``, no round trip),
  so a request never sees a record that a write it follows has replaced. A background thread
  does the same between requests, sends a ``PING`` every :data:`HEARTBEAT` seconds and
  reconnects.
* A record fetched while an invalidation of its key arrives is not cached (each fill holds a
  ticket that the invalidation revokes), and neither is one fetched while the channel is down.
* When the channel drops (a reconnect, a restart, a failover, ``CLIENT KILL``) or stays silent
  for :data:`SILENCE` seconds, the cache is emptied at once and serves nothing until the channel
  is registered again (then it is emptied once more). Redis may have changed anything meanwhile.
* This process's own writes, refreshes and deletes remove its cached copy when they return; a
  conditional save that loses (a stale cached version) removes it too, so the core's merge
  reloads from Redis.

Sliding expiry without a round trip per read: a cached record is served while it has more than
``ttl - ttl / 10`` seconds to live (:data:`REFRESH_FRACTION`). Past that, the read goes to Redis
with a script that returns the record and refreshes its expiry in the same round trip. Each
session's expiry is so refreshed at most once per tenth of its lifetime, and a record expires at
most a tenth of the lifetime earlier than with a refresh on every request (the store protocol's
bounded refresh interval). A record is never served past the expiry Redis reported for it.

Not on a Redis Cluster: each primary tracks only its own keys and a failover or resharding moves
keys to a server this process is not registered with, so the store refuses the cache there.

.. versionadded:: 0.2
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import os
import select
import threading
import time
import typing as t
import weakref

import redis

from flask_serverside import StoreError

from . import _record
from ._record import Script

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask_serverside import ClientErrors
    from flask_serverside import Record

    from .store import RedisStore

log = logging.getLogger("flask_serverside.redis")

#: The entries of ``SESSION_REDIS_CACHE = True``.
DEFAULT_SIZE = 4096
#: A cached record is served without a refresh while it has more than this fraction of the
#: time to live less than the full time to live left: its expiry is refreshed at most once per
#: ``REFRESH_FRACTION`` of the lifetime.
REFRESH_FRACTION = 0.1
#: Seconds between two ``PING`` on the invalidation channel.
HEARTBEAT = 1.0
#: Seconds without a message on the channel (not even the reply to a ``PING``) after which
#: the channel counts as lost: the bound on staleness when a network drops packets silently.
SILENCE = 3 * HEARTBEAT
#: Socket timeout of the channel's connection: the longest a partly received message may wait.
SOCKET_TIMEOUT = 2.0
#: Seconds between reconnection attempts: the first, and the most.
RETRY_FIRST = 0.05
RETRY_MOST = 5.0
#: The channel Redis publishes invalidations on for RESP2 clients.
CHANNEL = b"__redis__:invalidate"

#: Connection settings that only exist for RESP3 connections (redis-py 8).
_RESP3_ONLY = (
    "maint_notifications_config",
    "maint_notifications_pool_handler",
    "oss_cluster_maint_notifications_handler",
)

#: KEYS[1] the session key; ARGV[1] the time to live to refresh to (0: no refresh), ARGV[2]
#: the milliseconds to live below which the refresh is due. Returns false, or the value, its
#: milliseconds to live (-1: none) and 1 when it refreshed the expiry.
FETCH = """
local value = redis.call('GET', KEYS[1])
if not value then return false end
local pttl = redis.call('PTTL', KEYS[1])
local ttl = tonumber(ARGV[1])
if ttl > 0 and pttl < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[1], ttl)
  return {value, ttl * 1000, 1}
end
return {value, pttl, 0}
"""


class _Entry:
    __slots__ = ("expires", "record")

    def __init__(self, record: Record, expires: float) -> None:
        self.record = record
        #: When the record expires in Redis, on the cache's clock (``math.inf``: never).
        self.expires = expires


class SessionCache:
    """The records of one :class:`~flask_serverside_redis.RedisStore`, cached in this process
    and kept coherent by Redis (``SESSION_REDIS_CACHE``; the store builds it).

    Contract: a record is served from the cache only while the invalidation channel (one
    connection of this process registered with ``CLIENT TRACKING ... BCAST PREFIX`` on the key
    prefix) is up and has been heard from within :data:`SILENCE` seconds, after applying every
    invalidation waiting on it, and only before the expiry Redis reported for it; so a read
    never returns a record that a write it follows (in this process or another) has replaced
    or deleted. A channel that drops empties the cache, which serves nothing until the channel
    is registered again. An expiry refresh to ``ttl`` is due once the record has less than
    ``ttl * (1 - REFRESH_FRACTION)`` seconds left; until then reads refresh nothing.

    Thread-safe; one lock guards the entries and the channel's connection (a cached read holds
    it for a dictionary lookup and a ``select`` with no wait). After a ``fork`` the child starts
    with an empty cache and its own channel.

    :param store: the store whose records are cached; its client's connection settings are
        used for the channel.
    :param size: the most records kept; the least recently used go first.
    :param errors: the store's translation of client errors.
    :param clock: monotonic seconds, for the expiry of cached records; tests pass a fake one.

    .. versionadded:: 0.2
    """

    def __init__(
        self,
        store: RedisStore,
        size: int,
        *,
        errors: ClientErrors,
        clock: c.Callable[[], float] = time.monotonic,
    ) -> None:
        if size < 1:
            raise ValueError("a session cache holds at least one record")
        #: The most records kept.
        self.size = size
        self._store = store
        self._errors = errors
        self._clock = clock
        self._closed = False
        self._fetch: Script | None = None
        self._encoder: t.Any = None
        self._reset()
        os.register_at_fork(after_in_child=functools.partial(_after_fork, weakref.ref(self)))

    def _reset(self) -> None:
        """Start empty, with no channel and no thread (at construction and after a fork)."""
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[bytes, _Entry] = collections.OrderedDict()
        self._fills: dict[bytes, object] = {}
        self._conn: t.Any = None
        self._fd: int | None = None
        self._up = False
        self._heard = -math.inf
        self._pinged = -math.inf
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        #: Counters: ``hits``, ``misses``, ``invalidations`` (keys), ``flushes``, ``drops``
        #: (channel losses).
        self.stats: collections.Counter[str] = collections.Counter()

    def __repr__(self) -> str:
        state = "up" if self._up else "down"
        return f"<SessionCache {len(self._entries)}/{self.size} {state}>"

    @property
    def serving(self) -> bool:
        """Whether the channel is up, so that cached records can be served."""
        return self._up

    def wait_serving(self, timeout: float) -> bool:
        """Start the channel if needed and wait until it is up (for tests and warm-up).

        :returns: whether it is up.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            self._start_locked()
        while not self._up and time.monotonic() < deadline:
            time.sleep(0.005)
        return self._up

    @property
    def cached(self) -> int:
        """How many records the cache holds."""
        return len(self._entries)

    # -- the store's read path -----------------------------------------------------------------

    def load(self, sid: str, ttl: int | None) -> Record | None:
        """Return the record of ``sid``: cached, or fetched (and cached) in one round trip.

        :param ttl: refresh the expiry to this many seconds when the refresh is due (see
            :data:`REFRESH_FRACTION`); ``None`` for a plain load.
        :raises StoreError: when Redis fails.
        """
        key = self._key(sid)
        now = self._clock()
        entry = self._lookup(key, now, ttl)
        if entry is not None:
            return entry.record
        ticket = self._begin(key)
        due_below = int(ttl * (1 - REFRESH_FRACTION) * 1000) if ttl else 0
        try:
            with self._errors("load a session"):
                reply = self._script()(keys=[key], args=[ttl or 0, due_below])
        except BaseException:
            self._finish(key, ticket, None)
            raise
        if reply is None:
            self._finish(key, ticket, None)
            return None
        raw, pttl, refreshed = reply
        record = _record.parse(raw)
        # A refresh is a change: its invalidation would drop the entry at once.
        expires = now + pttl / 1000 if pttl >= 0 else math.inf
        self._finish(key, ticket, None if refreshed else _Entry(record, expires))
        if refreshed and ttl:
            self._store.keep_index(sid, record, ttl)
        return record

    def fresh(self, sid: str, ttl: int) -> bool:
        """Whether a cached record of ``sid`` needs no expiry refresh to ``ttl`` yet (what
        ``touch`` may then skip)."""
        return self._lookup(self._key(sid), self._clock(), ttl, count=False) is not None

    def discard(self, sid: str) -> None:
        """Forget ``sid``'s record, and any fetch of it under way: this process changed it."""
        key = self._key(sid)
        with self._lock:
            self._entries.pop(key, None)
            self._fills.pop(key, None)

    def clear(self) -> None:
        """Empty the cache."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Stop the channel and its thread, and empty the cache for good."""
        self._stopping.set()
        with self._lock:
            self._closed = True
            self._drop_locked(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(HEARTBEAT + SOCKET_TIMEOUT)

    def _key(self, sid: str) -> bytes:
        """The key as Redis reports it: encoded as the client encodes the keys it sends."""
        encoder = self._encoder
        if encoder is None:
            encoder = self._encoder = self._store.bound.client.get_encoder()
        return bytes(encoder.encode(self._store.key_prefix + sid))

    def _script(self) -> Script:
        fetch = self._fetch
        if fetch is None:
            fetch = self._fetch = Script(self._store.bound.client, FETCH)
        return fetch

    # -- entries -------------------------------------------------------------------------------

    def _lookup(
        self, key: bytes, now: float, ttl: int | None, *, count: bool = True
    ) -> _Entry | None:
        """Return the cached entry of ``key`` if it may be served: the channel is up (after
        applying what waits on it), the record has not expired and, with ``ttl``, its expiry
        needs no refresh yet."""
        with self._lock:
            entry = None
            if not self._up:
                self._start_locked()
            else:
                self._drain_locked()
                if self._up and time.monotonic() - self._heard <= SILENCE:
                    entry = self._entries.get(key)
            if entry is not None and entry.expires <= now:
                del self._entries[key]
                entry = None
            if entry is not None and ttl is not None and _due(entry, ttl, now):
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
            if count:
                self.stats["hits" if entry is not None else "misses"] += 1
            return entry

    def _begin(self, key: bytes) -> object | None:
        """A ticket for caching what a fetch of ``key`` returns; an invalidation of the key,
        a write of this process or a flush revokes it."""
        with self._lock:
            if not self._up:
                return None
            ticket = self._fills[key] = object()
            return ticket

    def _finish(self, key: bytes, ticket: object | None, entry: _Entry | None) -> None:
        if ticket is None:
            return
        with self._lock:
            if self._fills.get(key) is not ticket:
                return  # revoked: the record may have changed after it was read
            del self._fills[key]
            if entry is None or not self._up:
                return
            entries = self._entries
            entries[key] = entry
            entries.move_to_end(key)
            while len(entries) > self.size:
                entries.popitem(last=False)

    def _flush_locked(self) -> None:
        if self._entries or self._fills:
            self.stats["flushes"] += 1
        self._entries.clear()
        self._fills.clear()

    # -- the invalidation channel --------------------------------------------------------------

    def _start_locked(self) -> None:
        thread = self._thread
        if (thread is None or not thread.is_alive()) and not self._closed:
            self._thread = threading.Thread(
                target=_listen,
                args=(weakref.ref(self), self._stopping),
                name="flask-serverside-redis-cache",
                daemon=True,
            )
            self._thread.start()

    def _drain_locked(self) -> None:
        """Apply every message waiting on the channel; drop the channel when it failed."""
        conn = self._conn
        if conn is None:
            return
        fd = self._fd
        if fd is not None:
            try:
                if not _readable(fd, 0):
                    return
            except (OSError, ValueError):
                pass  # let the read below report what is wrong
        try:
            while conn.can_read(timeout=0):
                self._apply_locked(conn.read_response())
        except (redis.RedisError, OSError, ValueError) as exc:
            self._drop_locked(f"{type(exc).__name__}: {exc}")

    def _apply_locked(self, message: t.Any) -> None:
        self._heard = time.monotonic()
        if not isinstance(message, list) or len(message) != 3 or message[0] != b"message":
            return  # the reply to a PING or to SUBSCRIBE
        if message[1] != CHANNEL:
            return
        keys = message[2]
        if keys is None:  # FLUSHALL / FLUSHDB
            self._flush_locked()
            return
        entries = self._entries
        fills = self._fills
        for key in keys:
            entries.pop(key, None)
            fills.pop(key, None)
        self.stats["invalidations"] += len(keys)

    def _drop_locked(self, reason: str | None) -> None:
        """Forget the channel and everything cached; the thread reconnects (unless closing)."""
        conn = self._conn
        was_up = self._up
        self._conn = self._fd = None
        self._up = False
        self._flush_locked()
        if conn is not None:
            try:
                conn.disconnect()  # its shutdown also wakes the thread's select
            except (redis.RedisError, OSError):
                pass
        if reason is not None and was_up:
            self.stats["drops"] += 1
            log.warning(
                "session cache: the invalidation channel was lost (%s); cache emptied, reads"
                " go to Redis until it is back",
                reason,
            )

    def _reconnect(self, failures: int) -> bool:
        """Register the channel (in the thread); log the first of a row of failures.

        :returns: whether it is up.
        """
        try:
            self._connect()
        except (redis.RedisError, StoreError, OSError) as exc:
            (log.warning if failures == 0 else log.debug)(
                "session cache: cannot register for invalidations (%s: %s); the cache serves"
                " nothing until it can, retrying",
                type(exc).__name__,
                exc,
            )
            return False
        return True

    def _tend(self, conn: t.Any) -> None:
        """Between requests (in the thread): apply waiting messages, drop a silent channel,
        send the heartbeat."""
        with self._lock:
            if self._conn is not conn:
                return
            self._drain_locked()
            if self._conn is not conn:
                return
            now = time.monotonic()
            if now - self._heard > SILENCE:
                self._drop_locked(f"no message for {now - self._heard:.1f} s")
            elif now - self._pinged >= HEARTBEAT:
                try:
                    conn.send_command("PING")
                except (redis.RedisError, OSError) as exc:
                    self._drop_locked(f"{type(exc).__name__}: {exc}")
                else:
                    self._pinged = now

    def _connect(self) -> None:
        """Open the channel: a RESP2 connection like the client's, tracking the key prefix in
        broadcast mode with invalidations redirected to itself, subscribed to them."""
        client = self._store.bound.client
        pool = client.connection_pool
        kwargs = dict(pool.connection_kwargs)
        for name in _RESP3_ONLY:
            kwargs.pop(name, None)
        kwargs.update(protocol=2, health_check_interval=0, socket_timeout=SOCKET_TIMEOUT)
        if kwargs.get("socket_connect_timeout") is None:
            kwargs["socket_connect_timeout"] = SOCKET_TIMEOUT
        conn = pool.connection_class(**kwargs)
        try:
            conn.connect()
            conn.send_command("CLIENT", "ID")
            client_id = conn.read_response()
            prefix = self._store.key_prefix
            # An empty SESSION_KEY_PREFIX tracks every key: BCAST without PREFIX.
            conn.send_command(
                "CLIENT", "TRACKING", "on", "REDIRECT", client_id, "BCAST",
                *(("PREFIX", prefix) if prefix else ()),
            )  # fmt: skip
            if conn.read_response() not in (b"OK", "OK"):
                raise redis.RedisError("CLIENT TRACKING was not accepted")
            conn.send_command("SUBSCRIBE", CHANNEL)
            reply = conn.read_response()
            if not isinstance(reply, list) or reply[:2] != [b"subscribe", CHANNEL]:
                raise redis.RedisError(f"unexpected reply to SUBSCRIBE: {reply!r}")
            # The socket's descriptor, for select(): redis-py has no public accessor.
            fd = conn._sock.fileno()
        except BaseException:
            conn.disconnect()
            raise
        with self._lock:
            if self._stopping.is_set():
                conn.disconnect()
                return
            self._conn, self._fd = conn, fd
            self._flush_locked()  # whatever was cached before may have changed meanwhile
            self._up = True
            self._heard = self._pinged = time.monotonic()
        log.info("session cache: invalidation channel up (%s…)", self._store.key_prefix[:20])

    def _forked(self) -> None:
        """In a child process: the parent's lock, connection and thread are not ours."""
        self._reset()


def _readable(fd: int, timeout: float) -> bool:
    """Whether ``fd`` has data (or an end of file) to read, waiting up to ``timeout`` seconds.
    ``poll`` where there is one: ``select`` refuses descriptors above ``FD_SETSIZE`` (1024),
    which a busy process reaches.

    :raises OSError, ValueError: for a closed descriptor.
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(timeout * 1000))
    return bool(select.select([fd], [], [], timeout)[0])


def _due(entry: _Entry, ttl: int, now: float) -> bool:
    """Whether the expiry of a cached record is due for a refresh to ``ttl`` seconds."""
    return entry.expires - now < ttl * (1 - REFRESH_FRACTION)


def _listen(ref: weakref.ref[SessionCache], stopping: threading.Event) -> None:
    """The channel's thread. It holds the cache only weakly, so a cache (and its store) that
    nothing else holds is collected, and the thread then ends."""
    delay = RETRY_FIRST
    failures = 0
    while not stopping.is_set():
        cache = ref()
        if cache is None:
            return
        conn, fd = cache._conn, cache._fd
        if conn is None or fd is None:
            up = cache._reconnect(failures)
            del cache
            if up:
                failures, delay = 0, RETRY_FIRST
            else:
                failures += 1
                stopping.wait(delay)
                delay = min(delay * 2, RETRY_MOST)
            continue
        del cache
        try:
            _readable(fd, HEARTBEAT)
        except (OSError, ValueError):
            pass  # closed under us: _tend finds the channel gone
        cache = ref()
        if cache is None:
            return
        cache._tend(conn)
        del cache, conn


def _after_fork(ref: weakref.ref[SessionCache]) -> None:
    cache = ref()
    if cache is not None:
        cache._forked()
