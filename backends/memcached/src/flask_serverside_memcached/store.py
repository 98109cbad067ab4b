"""The ``memcached`` store: sessions in one or several memcached servers, through pymemcache.

Configuration (``SESSION_TYPE = "memcached"``, or ``"memcache"``)::

    SESSION_MEMCACHED = pymemcache.PooledClient(...)      # or Client, HashClient
    SESSION_MEMCACHED = ["10.0.0.1:11211", "10.0.0.2:11211"]
    SESSION_MEMCACHED = "memcached://10.0.0.1:11211,10.0.0.2:11211?timeout=0.5"
    SESSION_MEMCACHED = memcache.Client(["10.0.0.1:11211"])  # python-memcached, as Flask-Session
    SESSION_TYPE = "memcached://10.0.0.1:11211"              # the URL alone is enough

A list or URL builds a :class:`~pymemcache.client.base.PooledClient` (one server) or a
:class:`~pymemcache.client.hash.HashClient` (several) with TCP no-delay, connect and read
timeouts (``SESSION_MEMCACHED_TIMEOUT``, 1 s) and, across servers, fail-over: a server that
fails is left out for ``SESSION_MEMCACHED_DEAD_TIMEOUT`` seconds (10), its sessions become
misses (fresh sessions) and new sessions go to the others; then it is tried again.

Keys are ``SESSION_KEY_PREFIX + sid``, as Flask-Session writes them, whenever that is a valid
memcached key (at most 250 bytes of printable ASCII without spaces). Otherwise the prefix is
replaced by ``"fss:" + sha256(prefix)[:32] + ":"`` and, if the key is still too long or the id
is not printable ASCII, the id by its sha256: deterministic, so every process finds the key.

Time to live: memcached reads an expiry over 30 days as an absolute Unix time, so longer ones
are sent as ``now + ttl``. memcached never returns an item past its expiry.

Capabilities with pymemcache (:class:`MemcachedStore`): ``TOUCH`` (``touch``), ``LOAD_AND_TOUCH``
(``gats``: the record and its cas token in one round trip) and ``CONDITIONAL_SAVE``
(``gets``/``cas``; ``add`` to create). A python-memcached style client
(``get``/``set``/``delete``/``touch``) gets its sibling :class:`PythonMemcachedStore`, with
``TOUCH`` only; such clients report errors as misses. memcached cannot list keys: no
``ENUMERATE``, ``USER_INDEX`` or ``PURGE`` (expiry is native).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import threading
import time
import typing as t
import urllib.parse

from pymemcache.client.base import Client  # type: ignore[import-untyped]
from pymemcache.client.base import PooledClient
from pymemcache.client.hash import HashClient  # type: ignore[import-untyped]
from pymemcache.exceptions import MemcacheError  # type: ignore[import-untyped]
from pymemcache.exceptions import MemcacheUnexpectedCloseError
from pymemcache.exceptions import MemcacheUnknownCommandError

from flask_serverside import Capability
from flask_serverside import ClientErrors
from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError
from flask_serverside import Record
from flask_serverside import StoreError
from flask_serverside import StoreUnavailable

from ._client import build_client
from ._client import drop_idle_connections
from ._client import get_and_touch
from ._client import parse_servers

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask_serverside import StoreSettings

log = logging.getLogger("flask_serverside.memcached")

#: Longest expiry memcached reads as relative seconds; longer values are Unix times.
THIRTY_DAYS = 30 * 24 * 3600
#: Longest key memcached accepts, in bytes.
MAX_KEY_LENGTH = 250
_VALID_KEY = re.compile(r"[!-~]+")  # printable ASCII, no space, no control character
T = t.TypeVar("T")
#: Errors of a connection: it could not be made, timed out, or the server closed it.
_CONNECTION_ERRORS = (OSError, MemcacheUnexpectedCloseError)
#: Errors of a connection that was open: the server closed it (restart, death) or reset it.
_STALE_CONNECTION = (MemcacheUnexpectedCloseError, ConnectionResetError, BrokenPipeError)
_errors = ClientErrors("memcached", unavailable=_CONNECTION_ERRORS, failed=(MemcacheError,))


def expiry_time(ttl: int, now: float | None = None) -> int:
    """Return the memcached ``exptime`` for a time to live of ``ttl`` seconds: ``ttl`` itself
    up to 30 days, the absolute Unix time ``now + ttl`` beyond."""
    if ttl <= THIRTY_DAYS:
        return ttl
    return int(time.time() if now is None else now) + ttl


def memcached_key(prefix: str, sid: str, limit: int = MAX_KEY_LENGTH) -> str:
    """Return the memcached key of ``sid`` under ``prefix``: ``prefix + sid`` when that is a
    valid key of at most ``limit`` bytes, else a key with the prefix (and, if still needed, the
    id) replaced by sha256 digests. Never returns an invalid key, whatever the arguments."""
    key = prefix + sid
    if len(key) <= limit and _VALID_KEY.fullmatch(key):
        return key
    head = "fss:" + hashlib.sha256(prefix.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ":"
    if len(head) + len(sid) <= limit and _VALID_KEY.fullmatch(sid):
        return head + sid
    return head + hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


class _Memcached:
    """What both memcached stores share: configuration, keys, the plain writes and ``touch``,
    and the handling of failed servers. Each store adds its client's reads.

    :param client: the memcached client; a plain pymemcache ``Client`` (or a ``HashClient``
        without pooling) is not thread-safe, so the store serializes its calls to it.
    :param key_prefix: prepended to every session id (see :func:`memcached_key`).
    :param owns_client: close the client in :meth:`close`; true for clients the store built.
    """

    capabilities: t.ClassVar[Capability] = Capability.TOUCH
    #: Keyword arguments of every write.
    _write_options: t.ClassVar[dict[str, t.Any]] = {}
    url_schemes = ("memcached", "memcache")
    config_keys = (
        "SESSION_MEMCACHED",
        "SESSION_MEMCACHED_TIMEOUT",
        "SESSION_MEMCACHED_DEAD_TIMEOUT",
    )

    def __init__(
        self, client: t.Any, *, key_prefix: str = "session:", owns_client: bool = False
    ) -> None:
        #: The memcached client.
        self.client = client
        #: Prepended to every session id.
        self.key_prefix = key_prefix
        self._handle = ClientHandle(client, owned=owns_client, closer=self._close_client)
        self._hashed = isinstance(client, HashClient)
        unsafe = isinstance(client, Client) or (self._hashed and not client.use_pooling)
        self._lock: contextlib.AbstractContextManager[t.Any] | None = (
            threading.RLock() if unsafe else None
        )
        # A PooledClient's commands are run on a connection checked out of its pool here, as
        # its own methods do, without their per-call context manager.
        self._pool = client.client_pool if type(client) is PooledClient else None
        client_prefix = getattr(client, "key_prefix", b"")
        self._key_limit = MAX_KEY_LENGTH - len(client_prefix)

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> _Memcached:
        """Build the store from ``SESSION_MEMCACHED`` or the ``memcached://`` URL of
        ``SESSION_TYPE``, with ``SESSION_MEMCACHED_TIMEOUT`` and
        ``SESSION_MEMCACHED_DEAD_TIMEOUT`` for the clients it builds.

        :raises ConfigurationError: when no server is named, or badly.
        """
        value = settings.config.get("SESSION_MEMCACHED")
        if settings.url is not None and value is not None:
            raise ConfigurationError(
                "SESSION_TYPE names memcached by URL and SESSION_MEMCACHED is set too: keep one"
                " (SESSION_TYPE = 'memcached' with SESSION_MEMCACHED, or the URL alone)."
            )
        value = settings.url if value is None else value
        if value is None:
            raise ConfigurationError(
                "The memcached session store needs servers: set SESSION_MEMCACHED to a list of"
                " 'host:port' strings, a 'memcached://host:port,host:port' URL or a pymemcache"
                " client (or set SESSION_TYPE = 'memcached://host:port')."
            )
        if not isinstance(value, (str, list, tuple)):
            return cls.for_client(value, key_prefix=settings.key_prefix)
        options = {
            "timeout": settings.seconds("SESSION_MEMCACHED_TIMEOUT", 1.0),
            "dead_timeout": settings.seconds("SESSION_MEMCACHED_DEAD_TIMEOUT", 10.0),
        }
        try:
            if isinstance(value, str) and "://" in value:
                url = urllib.parse.urlsplit(value)
                if url.scheme not in ("memcached", "memcache"):
                    raise ValueError(f"the scheme must be memcached://, not {url.scheme}://")
                for name, given in urllib.parse.parse_qsl(url.query, strict_parsing=False):
                    if name not in options:
                        raise ValueError(f"unknown URL option {name!r}")
                    options[name] = float(given)
                value = url.netloc
            servers = parse_servers(value)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"Bad memcached servers {value!r}: {exc}. Name them as 'host:port' strings in"
                " a list, or as 'memcached://host:port,host:port?timeout=1&dead_timeout=10'."
            ) from exc
        client = build_client(servers, **options)
        return MemcachedStore(client, key_prefix=settings.key_prefix, owns_client=True)

    @classmethod
    def for_client(cls, client: object, *, key_prefix: str = "session:") -> _Memcached:
        """Return a :class:`MemcachedStore` for a pymemcache client, a
        :class:`PythonMemcachedStore` for a python-memcached style one.

        :raises ConfigurationError: when ``client`` is neither.
        """
        if isinstance(client, (Client, PooledClient, HashClient)):
            return MemcachedStore(client, key_prefix=key_prefix)
        if all(callable(getattr(client, name, None)) for name in ("get", "set", "delete", "touch")):
            return PythonMemcachedStore(client, key_prefix=key_prefix)
        raise ConfigurationError(
            f"SESSION_MEMCACHED is a {type(client).__name__}, not a memcached client: set it to"
            " a pymemcache Client, PooledClient or HashClient, a memcache.Client, a list of"
            " 'host:port' strings or a 'memcached://host:port' URL."
        )

    def key(self, sid: str) -> str:
        """Return the memcached key of ``sid`` (see :func:`memcached_key`)."""
        return memcached_key(self.key_prefix, sid, self._key_limit)

    def _call(self, run: c.Callable[[t.Any], T]) -> T:
        """Run ``run`` with a client: a connection of the pool (destroyed when the command
        fails, as :class:`PooledClient` does), or the client itself, serialized when it is
        not thread-safe."""
        pool = self._pool
        if pool is not None:
            one = pool.get()
            try:
                result = run(one)
            except BaseException:
                pool.destroy(one)
                raise
            pool.release(one)
            return result
        if self._lock is None:
            return run(self.client)
        with self._lock:
            return run(self.client)

    def _run(self, doing: str, key: str, run: c.Callable[[t.Any], T]) -> T:
        """Run one client command (one round trip) for ``key``, translating its errors.

        A broken connection is retried once on a new one and, on a ``HashClient``, as long as
        a server is left for the key (the failed one is then left out): so the sessions of a
        dead server are misses, and writes go to the server that now owns the key.
        """
        attempts = 3 if self._hashed else 2
        with _errors(doing):
            for attempt in range(1, attempts + 1):
                try:
                    return self._call(run)
                except _CONNECTION_ERRORS as exc:
                    node = self.client.hasher.get_node(key) if self._hashed else None
                    stale = isinstance(exc, _STALE_CONNECTION)
                    if stale:  # the other pooled connections to that server are likely stale
                        drop_idle_connections(self.client.clients[node] if node else self.client)
                    if attempt == attempts or not (stale or node is not None):
                        raise
                    log.warning("memcached failed to %s (%r); trying again", doing, exc)
                except MemcacheError as exc:
                    if self._hashed and self.client.hasher.get_node(key) is None:
                        raise StoreUnavailable(f"no memcached server is up: {exc}") from exc
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        key, exptime, options = self.key(sid), expiry_time(ttl), self._write_options
        if not self._run(
            "save a session", key, lambda client: client.set(key, data, exptime, **options)
        ):
            raise StoreError("memcached did not store the session (too large, or out of memory)")

    def delete(self, sid: str) -> None:
        key = self.key(sid)
        options = self._write_options
        self._run("delete a session", key, lambda client: client.delete(key, **options))

    def touch(self, sid: str, ttl: int) -> bool:
        key, exptime, options = self.key(sid), expiry_time(ttl), self._write_options
        return bool(
            self._run(
                "refresh a session", key, lambda client: client.touch(key, exptime, **options)
            )
        )

    def close(self) -> None:
        """Close the client when the store built it; a client passed in is the caller's."""
        self._handle.close()

    def _close_client(self, client: t.Any) -> None:
        client.close()


class MemcachedStore(_Memcached):
    """Sessions in memcached through a pymemcache ``Client``, ``PooledClient`` or
    ``HashClient`` (see :class:`_Memcached` for the parameters), with the record's cas token
    as its version.

    .. versionchanged:: 0.2
        :class:`PythonMemcachedStore` is its sibling, no longer a subclass.
    """

    capabilities: t.ClassVar[Capability] = (
        Capability.TOUCH | Capability.LOAD_AND_TOUCH | Capability.CONDITIONAL_SAVE
    )
    _write_options: t.ClassVar[dict[str, t.Any]] = {"noreply": False}

    def __init__(
        self, client: t.Any, *, key_prefix: str = "session:", owns_client: bool = False
    ) -> None:
        super().__init__(client, key_prefix=key_prefix, owns_client=owns_client)
        self._has_gats = True

    def load(self, sid: str) -> Record | None:
        key = self.key(sid)
        return _record(self._run("load a session", key, lambda client: client.gets(key)))

    def load_and_touch(self, sid: str, ttl: int) -> Record | None:
        """Load and touch with ``gats``: one round trip; two (``gets`` then ``touch``) on a
        memcached older than 1.5.3, which lacks the command."""
        key, exptime = self.key(sid), expiry_time(ttl)
        if self._has_gats:
            try:
                found = self._run(
                    "load a session", key, lambda client: get_and_touch(client, key, exptime)
                )
            except StoreError as exc:
                if not isinstance(exc.__cause__, MemcacheUnknownCommandError):
                    raise
                log.warning("memcached has no gats command: loading and touching separately")
                self._has_gats = False
            else:
                return _record(found)
        record = self.load(sid)
        return record if record is not None and self.touch(sid, ttl) else None

    def save_if(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> bool:
        key, exptime, options = self.key(sid), expiry_time(ttl), self._write_options
        if expected is None:
            return bool(
                self._run(
                    "create a session",
                    key,
                    lambda client: client.add(key, data, exptime, **options),
                )
            )
        if expected.version is None:
            return False
        version = expected.version
        cas = self._run(
            "save a session",
            key,
            lambda client: client.cas(key, data, version, exptime, **options),
        )
        return bool(cas)  # None when the record is gone, False when it changed


class PythonMemcachedStore(_Memcached):
    """Sessions in memcached through a python-memcached style client (``memcache.Client``, as
    Flask-Session's seeds configure it): ``get``, ``set``, ``delete`` and ``touch``.

    Such clients do not expose cas tokens, so there is no conditional save (the last writer
    wins) and no load-and-touch. python-memcached reports a server error as a miss on reads;
    a write it could not make raises :class:`StoreError`.

    .. versionchanged:: 0.2
        A sibling of :class:`MemcachedStore` over a shared base, no longer its subclass.
    """

    def load(self, sid: str) -> Record | None:
        key = self.key(sid)
        value = self._run("load a session", key, lambda client: client.get(key))
        return None if value is None else Record(_as_bytes(value))

    def _close_client(self, client: t.Any) -> None:
        client.disconnect_all()


def _record(found: tuple[t.Any, t.Any] | None) -> Record | None:
    if found is None or found[0] is None:
        return None
    value, cas = found
    return Record(_as_bytes(value), cas)


def _as_bytes(value: object) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise StoreError(
        f"memcached returned a {type(value).__name__} for a session record: the client's serde"
        " must return stored bytes unchanged"
    )
