"""The ``memcached`` store: sessions in one or several memcached servers, through pymemcache.

Configuration (``SESSION_TYPE = "memcached"``, or ``"memcache"``)::

    SESSION_MEMCACHED = pymemcache.PooledClient(...)      # or Client, HashClient
    SESSION_MEMCACHED = ["10.0.0.1:11211", "10.0.0.2:11211"]
    SESSION_MEMCACHED = "memcached://10.0.0.1:11211,10.0.0.2:11211?timeout=0.5"
    SESSION_MEMCACHED = memcache.Client(["10.0.0.1:11211"])  # python-memcached, as Flask-Session
    SESSION_TYPE = "memcached://10.0.0.1:11211"              # the URL alone is enough

A list or URL builds a :class:`~pymemcache.client.base.PooledClient` (one server) or a
:class:`~pymemcache.client.hash.HashClient` (several) with TCP no-delay and connect and read
timeouts (``SESSION_MEMCACHED_TIMEOUT``, 1 s). A python-memcached ``memcache.Client`` is read
for its servers and replaced by such a client (python-memcached reports a server that fails as
a missing key, and has no compare-and-set); the store logs it once, at start-up.

Several servers: a key always goes to the server that holds it (:mod:`._ring`). A server that
fails makes its sessions unavailable (:class:`~flask_serverside.NodeUnavailable`, handled by
``SESSION_ON_STORE_ERROR``), never missing; it is left alone for
``SESSION_MEMCACHED_DEAD_TIMEOUT`` seconds (10), then probed by one call. New sessions get ids
that land on the servers that answer.

Keys are ``SESSION_KEY_PREFIX + sid``, as Flask-Session writes them, whenever that is a valid
memcached key (at most 250 bytes of printable ASCII without spaces). Otherwise the prefix is
replaced by ``"fss:" + sha256(prefix)[:32] + ":"`` and, if the key is still too long or the id
is not printable ASCII, the id by its sha256: deterministic, so every process finds the key.

Time to live: memcached reads an expiry over 30 days as an absolute Unix time, so longer ones
are sent as ``now + ttl``. memcached never returns an item past its expiry.

Capabilities: ``TOUCH`` (``touch``), ``LOAD_AND_TOUCH`` (``gats``: the record and its cas token
in one round trip) and ``CONDITIONAL_SAVE`` (``gets``/``cas``; ``add`` to create). memcached
cannot list keys: no ``ENUMERATE``, ``USER_INDEX`` or ``PURGE`` (expiry is native).
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

from ._client import build_client
from ._client import drop_idle_connections
from ._client import get_and_touch
from ._client import node_name
from ._client import parse_servers
from ._client import python_memcached_servers
from ._ring import NodeRing

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask_serverside import StoreSettings

log = logging.getLogger("flask_serverside.memcached")

#: Longest expiry memcached reads as relative seconds; longer values are Unix times.
THIRTY_DAYS = 30 * 24 * 3600
#: Longest key memcached accepts, in bytes.
MAX_KEY_LENGTH = 250
#: The server when nothing names one: Flask-Session's default.
DEFAULT_SERVER = "127.0.0.1:11211"
#: Seconds of the connect and read timeouts of the clients the store builds.
DEFAULT_TIMEOUT = 1.0
#: Seconds a server that failed is left alone before one call probes it.
DEFAULT_DEAD_TIMEOUT = 10.0
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


class MemcachedStore:
    """Sessions in memcached through a pymemcache ``Client``, ``PooledClient`` or
    ``HashClient``, with the record's cas token as its version.

    :param client: the memcached client; a plain ``Client`` (or a ``HashClient`` without
        pooling) is not thread-safe, so the store serializes its calls to it. A ``HashClient``
        is used for its servers and its ring only: the store routes each key itself and never
        moves a key to another server (see :mod:`._ring`).
    :param key_prefix: prepended to every session id (see :func:`memcached_key`).
    :param owns_client: close the client in :meth:`close`; true for clients the store built.
    :param dead_timeout: with several servers, seconds a server that failed is left alone
        before one call probes it.

    .. versionchanged:: 0.2
        A key whose server is down raises :class:`~flask_serverside.NodeUnavailable` instead
        of reading as a miss; ``dead_timeout``. ``PythonMemcachedStore`` is gone: a
        python-memcached client is replaced by a pymemcache client on its servers
        (:meth:`for_client`).
    """

    capabilities: t.ClassVar[Capability] = (
        Capability.TOUCH | Capability.LOAD_AND_TOUCH | Capability.CONDITIONAL_SAVE
    )
    url_schemes = ("memcached", "memcache")
    config_keys = (
        "SESSION_MEMCACHED",
        "SESSION_MEMCACHED_TIMEOUT",
        "SESSION_MEMCACHED_DEAD_TIMEOUT",
    )
    #: Keyword arguments of every write: wait for the reply (pymemcache's default is not to).
    _write_options: t.ClassVar[dict[str, t.Any]] = {"noreply": False}

    def __init__(
        self,
        client: t.Any,
        *,
        key_prefix: str = "session:",
        owns_client: bool = False,
        dead_timeout: float = DEFAULT_DEAD_TIMEOUT,
    ) -> None:
        #: The memcached client.
        self.client = client
        #: Prepended to every session id.
        self.key_prefix = key_prefix
        self._handle = ClientHandle(client, owned=owns_client)
        hashed = isinstance(client, HashClient)
        #: With several servers: which one holds a key, and which ones are down.
        self.ring = NodeRing(client, dead_timeout) if hashed else None
        unsafe = isinstance(client, Client) or (hashed and not client.use_pooling)
        self._lock: contextlib.AbstractContextManager[t.Any] = (
            threading.RLock() if unsafe else contextlib.nullcontext()
        )
        client_prefix = getattr(client, "key_prefix", b"")
        self._key_limit = MAX_KEY_LENGTH - len(client_prefix)
        self._has_gats = True

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> MemcachedStore:
        """Build the store from ``SESSION_MEMCACHED`` or the ``memcached://`` URL of
        ``SESSION_TYPE``, with ``SESSION_MEMCACHED_TIMEOUT`` and
        ``SESSION_MEMCACHED_DEAD_TIMEOUT``; with neither, on :data:`DEFAULT_SERVER`, as
        Flask-Session does, with a warning.

        :raises ConfigurationError: when the servers are named badly.

        .. versionchanged:: 0.2
            Nothing set means Flask-Session's default server (logged), no longer an error.
        """
        value = settings.config.get("SESSION_MEMCACHED")
        if settings.url is not None and value is not None:
            raise ConfigurationError(
                "SESSION_TYPE names memcached by URL and SESSION_MEMCACHED is set too: keep one"
                " (SESSION_TYPE = 'memcached' with SESSION_MEMCACHED, or the URL alone)."
            )
        value = settings.url if value is None else value
        options = {
            "timeout": settings.seconds("SESSION_MEMCACHED_TIMEOUT", DEFAULT_TIMEOUT),
            "dead_timeout": settings.seconds(
                "SESSION_MEMCACHED_DEAD_TIMEOUT", DEFAULT_DEAD_TIMEOUT
            ),
        }
        if value is None:
            log.warning(
                "SESSION_MEMCACHED is not set: sessions go to the memcached at %s,"
                " Flask-Session's default. Set SESSION_MEMCACHED to a list of 'host:port'"
                " strings or a client, or SESSION_TYPE to a URL such as"
                " 'memcached://host:11211', to choose the servers and silence this message.",
                DEFAULT_SERVER,
            )
            value = [DEFAULT_SERVER]
        if not isinstance(value, (str, list, tuple)):
            return cls.for_client(value, key_prefix=settings.key_prefix, **options)
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
        client = build_client(servers, timeout=options["timeout"])
        return cls(
            client,
            key_prefix=settings.key_prefix,
            owns_client=True,
            dead_timeout=options["dead_timeout"],
        )

    @classmethod
    def for_client(
        cls,
        client: object,
        *,
        key_prefix: str = "session:",
        timeout: float = DEFAULT_TIMEOUT,
        dead_timeout: float = DEFAULT_DEAD_TIMEOUT,
    ) -> MemcachedStore:
        """Return a store on a pymemcache client, used as it is; or, for a python-memcached
        ``memcache.Client`` (Flask-Session's documented configuration), on a pymemcache client
        the store builds for the same servers (same weights, same choice of server for a key)
        and owns. That replacement is logged (warning) once, here.

        python-memcached cannot serve sessions safely: its ``get`` returns ``None`` when a
        server fails or times out, so a fault reads as "no such session" (the user would get a
        new session and lose the cookie), and its ``cas`` takes no token from the caller: it
        uses one its last ``gets`` cached (only with ``cache_cas=True``, per thread) and
        becomes a plain ``set`` without one, so a write racing a logout would bring the
        session back.

        :param timeout: connect and read timeout of a client built here, in seconds.
        :param dead_timeout: see :class:`MemcachedStore`.
        :raises ConfigurationError: when ``client`` is neither.

        .. versionchanged:: 0.2
            A python-memcached client is replaced by a pymemcache one; other clients with
            python-memcached's methods are refused.
        """
        if isinstance(client, (Client, PooledClient, HashClient)):
            return cls(client, key_prefix=key_prefix, dead_timeout=dead_timeout)
        kind = f"{type(client).__module__}.{type(client).__qualname__}"
        if not _is_python_memcached(client):
            raise ConfigurationError(
                f"SESSION_MEMCACHED is a {kind}, not a client this store can use: the"
                " memcached store works through pymemcache. Set SESSION_MEMCACHED to a"
                " pymemcache Client, PooledClient or HashClient, a python-memcached"
                " memcache.Client (its servers are used), a list of 'host:port' strings or a"
                " 'memcached://host:port' URL."
            )
        try:
            servers, weights = python_memcached_servers(client)
        except ValueError as exc:
            raise ConfigurationError(
                f"SESSION_MEMCACHED is a python-memcached client, but {exc}: set it to a list"
                " of 'host:port' strings instead."
            ) from exc
        names = [node_name(server) for server in servers]
        log.warning(
            "SESSION_MEMCACHED is a python-memcached %s: sessions go through a pymemcache"
            " client of the store's own on its servers (%s; timeout %g s), because"
            " python-memcached reads a server that fails as a missing session and has no"
            " compare-and-set. The memcache.Client itself is not used; set SESSION_MEMCACHED"
            " to %r to say so and silence this message.",
            type(client).__name__,
            ", ".join(names),
            timeout,
            names,
        )
        return cls(
            build_client(servers, timeout=timeout, weights=weights),
            key_prefix=key_prefix,
            owns_client=True,
            dead_timeout=dead_timeout,
        )

    def key(self, sid: str) -> str:
        """Return the memcached key of ``sid`` (see :func:`memcached_key`)."""
        return memcached_key(self.key_prefix, sid, self._key_limit)

    # -- calls ------------------------------------------------------------------------------

    def _run(self, doing: str, key: str, run: c.Callable[[t.Any], T]) -> T:
        """Run one client command (one round trip) for ``key`` on the client of the server
        that holds it, translating its errors.

        :raises NodeUnavailable: when that server is down and others are not.
        :raises StoreUnavailable: when the server (every server) is down.
        """
        with _errors(doing):
            ring = self.ring
            if ring is None:
                return self._call(self.client, doing, run)
            name, client = ring.route(key)
            try:
                result = self._call(client, doing, run)
            except _CONNECTION_ERRORS as exc:
                raise ring.failed(name, exc, doing) from exc
            except MemcacheError:
                ring.answered(name)  # with an error, but it answered
                raise
            ring.answered(name)
            return result

    def _call(self, client: t.Any, doing: str, run: c.Callable[[t.Any], T]) -> T:
        """Run ``run(client)``; a connection found broken (the server restarted, or closed
        it) is retried once on a new one."""
        try:
            with self._lock:
                return _on_connection(client, run)
        except _STALE_CONNECTION as exc:
            drop_idle_connections(client)  # the other pooled connections are likely stale
            log.warning("memcached failed to %s (%r); trying again", doing, exc)
        with self._lock:
            return _on_connection(client, run)

    # -- the protocol -----------------------------------------------------------------------

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

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        key, exptime, options = self.key(sid), expiry_time(ttl), self._write_options
        if not self._run(
            "save a session", key, lambda client: client.set(key, data, exptime, **options)
        ):
            raise StoreError("memcached did not store the session (too large, or out of memory)")

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

    def delete(self, sid: str) -> None:
        key, options = self.key(sid), self._write_options
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


def _on_connection(client: t.Any, run: c.Callable[[t.Any], T]) -> T:
    """Run ``run(client)``; for a ``PooledClient``, ``run`` gets a connection (a ``Client``)
    checked out of its pool, as every ``PooledClient`` method does, without the method's
    context manager (a generator per call). As there, a connection that fails is destroyed,
    and the pool's connections never swallow errors (``ignore_exc=False``), whatever the
    ``PooledClient`` was built with: a fault is never read as a miss."""
    if type(client) is not PooledClient:
        return run(client)
    pool = client.client_pool
    connection = pool.get()
    try:
        result = run(connection)
    except BaseException:
        pool.destroy(connection)
        raise
    pool.release(connection)
    return result


def _is_python_memcached(client: object) -> bool:
    """Whether ``client`` is python-memcached's ``memcache.Client`` (or a subclass)."""
    return any(
        kind.__module__ == "memcache" and kind.__name__ == "Client" for kind in type(client).__mro__
    )


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
