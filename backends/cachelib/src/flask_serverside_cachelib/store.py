"""The ``cachelib`` store: sessions in any cachelib cache, Flask-Session 0.8's ``cachelib`` type.

Configuration (``SESSION_TYPE = "cachelib"``)::

    SESSION_CACHELIB = FileSystemCache("/var/lib/myapp/sessions", threshold=10_000)
    SESSION_CACHELIB = RedisCache(redis.Redis(...), key_prefix="myapp:")
    SESSION_CACHELIB = MemcachedCache(pymemcache.PooledClient(..., default_noreply=False))

Without ``SESSION_CACHELIB`` the store does what Flask-Session 0.8 does and documents:
``FileSystemCache("flask_session", threshold=500)`` in the working directory; it logs that
choice (as a warning) once, at start-up.

**Records.** A session is stored under ``SESSION_KEY_PREFIX + sid`` as ``b"fss\\x01"``, its
expiry (Unix time, a big-endian double) and the session's bytes. The expiry is checked on
every read, so an expired record is never returned whatever the cache's own expiry does; a
value without that header (a pickled Flask-Session record, another application's value) is
treated as missing, never decoded.

**No pickle.** cachelib's caches pickle values by default (``FileSystemCache``,
``RedisCache``, ``SimpleCache``, ``MongoDbCache``, ...), and unpickling a value that someone
else put into the cache runs their code. The store therefore talks to a shallow copy of the
cache whose ``serializer`` is :class:`BytesSerializer`, which never pickles nor unpickles: the
application's own cache object is left unchanged. A cache without a ``serializer`` attribute
(``MemcachedCache``) hands values to its client library as they are, and what that library
does with a stored item's flags is its own business (see the README).

**Capabilities: none.** cachelib has no touch, no compare-and-set and no key listing: a
read-only request rewrites the record to refresh its expiry (the core's fallback), the last
writer wins, and the CLI cannot count or list sessions.

**Errors.** cachelib reports many backend errors as ``False`` or ``None``: a ``set`` that
returns false raises :class:`~flask_serverside.StoreError`, a ``get`` that failed is a miss.
Exceptions of the client libraries cachelib wraps (redis-py, pymemcache, pymongo, botocore,
``OSError``) are translated with :class:`~flask_serverside.ClientErrors`.
"""

from __future__ import annotations

import copy
import logging
import os
import struct
import sys
import time
import typing as t

from cachelib import BaseCache
from cachelib import FileSystemCache
from cachelib import NullCache
from cachelib.serializers import BaseSerializer

from flask_serverside import Capability
from flask_serverside import ClientErrors
from flask_serverside import ConfigurationError
from flask_serverside import Record
from flask_serverside import StoreError

if t.TYPE_CHECKING:
    from flask_serverside import StoreSettings

log = logging.getLogger("flask_serverside.cachelib")

#: Flask-Session 0.8's default cache, in the working directory, and its threshold.
DEFAULT_DIRECTORY = "flask_session"
DEFAULT_THRESHOLD = 500

#: The header of a record: a magic number and the expiry, in Unix time.
MAGIC = b"fss\x01"
HEADER = struct.Struct(">4sd")

#: Client libraries whose exceptions are translated, when the cache's client has imported
#: them: (module, classes meaning "unavailable", classes meaning "failed").
_CLIENT_EXCEPTIONS = (
    (
        "redis.exceptions",
        ("ConnectionError", "TimeoutError"),
        ("AuthenticationError", "RedisError"),
    ),
    ("pymemcache.exceptions", ("MemcacheUnexpectedCloseError",), ("MemcacheError",)),
    ("pymongo.errors", ("ConnectionFailure",), ("PyMongoError",)),
    (
        "botocore.exceptions",
        ("ConnectionError", "ReadTimeoutError"),
        ("BotoCoreError", "ClientError"),
    ),
)


class BytesSerializer(BaseSerializer):
    """A cachelib serializer that never pickles: it stores bytes (tagged ``b``) and whole
    numbers (tagged ``i``, for cachelib's own counters) and refuses anything else.

    Reading a value it did not write (a pickle) gives ``None``: a miss, never an unpickling.
    A ``str`` comes back unchanged, so that the store can report a client that decodes
    responses.
    """

    def dumps(self, value: t.Any, protocol: int | None = None) -> bytes:
        """:raises TypeError: for anything but bytes and ints."""
        if isinstance(value, (bytes, bytearray, memoryview)):
            return b"b" + bytes(value)
        if type(value) is int:
            return b"i" + str(value).encode("ascii")
        raise TypeError(f"{type(self).__name__} stores bytes and ints only, not {type(value)}")

    def loads(self, bvalue: t.Any) -> t.Any:
        if isinstance(bvalue, str):
            return bvalue
        if not isinstance(bvalue, (bytes, bytearray, memoryview)):
            return None
        raw = bytes(bvalue)
        if raw[:1] == b"b":
            return raw[1:]
        if raw[:1] == b"i" and raw[1:].lstrip(b"-").isdigit():
            return int(raw[1:])
        return None

    def dump(self, value: t.Any, f: t.IO[bytes], protocol: int | None = None) -> None:
        f.write(self.dumps(value))

    def load(self, f: t.BinaryIO) -> t.Any:
        return self.loads(f.read())


def without_pickle(cache: BaseCache) -> BaseCache:
    """Return ``cache`` itself when it has no ``serializer`` (or already uses
    :class:`BytesSerializer`), else a shallow copy of it (sharing its client, directory or
    dict) that uses :class:`BytesSerializer`."""
    serializer = getattr(cache, "serializer", None)
    if serializer is None or isinstance(serializer, BytesSerializer):
        return cache
    own = copy.copy(cache)
    own.serializer = BytesSerializer()  # type: ignore[attr-defined]
    return own


def client_errors(backend: str) -> ClientErrors:
    """The translation of ``OSError`` and of the exceptions of the client libraries that are
    imported (a cache's client imported its own), for a cache named ``backend``."""
    unavailable: list[type[BaseException]] = [ConnectionError, TimeoutError]
    # UnicodeDecodeError: a client that decodes responses met the record's binary header.
    failed: list[type[BaseException]] = [OSError, UnicodeDecodeError]
    for name, down, other in _CLIENT_EXCEPTIONS:
        module = sys.modules.get(name)
        if module is not None:
            unavailable += [getattr(module, cls) for cls in down]
            failed += [getattr(module, cls) for cls in other]
    return ClientErrors(backend, unavailable=tuple(unavailable), failed=tuple(failed))


class CacheLibStore:
    """Sessions in a cachelib cache.

    :param cache: any :class:`cachelib.BaseCache` but ``NullCache``; the store uses it
        through :func:`without_pickle` and never closes it.
    :param key_prefix: prepended to every session id (after the cache's own prefix, if any).
    """

    capabilities: t.ClassVar[Capability] = Capability.NONE
    config_keys: t.ClassVar[tuple[str, ...]] = ("SESSION_CACHELIB",)

    def __init__(self, cache: BaseCache, *, key_prefix: str = "session:") -> None:
        #: The cache the store talks to: ``cache``, or its copy without pickle.
        self.cache = without_pickle(cache)
        #: Prepended to every session id.
        self.key_prefix = key_prefix
        self._errors = client_errors(f"cachelib {type(cache).__name__}")

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> CacheLibStore:
        """Build the store on ``SESSION_CACHELIB``, or on Flask-Session's default
        ``FileSystemCache("flask_session", threshold=500)`` when it is unset.

        :raises ConfigurationError: when ``SESSION_CACHELIB`` is not a cachelib cache, or is a
            ``NullCache`` (which keeps nothing).
        """
        cache = settings.config.get("SESSION_CACHELIB")
        if cache is None:
            directory = os.path.abspath(DEFAULT_DIRECTORY)
            try:
                cache = FileSystemCache(directory, threshold=DEFAULT_THRESHOLD)
            except OSError as exc:
                raise ConfigurationError(
                    f"SESSION_CACHELIB is not set and the default session directory {directory!r}"
                    f" cannot be made ({exc}): set SESSION_CACHELIB to a cachelib cache."
                ) from exc
            log.warning(
                "SESSION_CACHELIB is not set: sessions go to FileSystemCache(%r, threshold=%d),"
                " Flask-Session's default, which evicts the oldest sessions beyond %d. Set"
                " SESSION_CACHELIB (or use SESSION_TYPE = 'filesystem') in production.",
                directory,
                DEFAULT_THRESHOLD,
                DEFAULT_THRESHOLD,
            )
        elif not isinstance(cache, BaseCache) or isinstance(cache, NullCache):
            what = "a NullCache, which keeps nothing"
            if not isinstance(cache, NullCache):
                what = f"a {type(cache).__name__}"
            raise ConfigurationError(
                "SESSION_CACHELIB must be a cachelib cache such as FileSystemCache('sessions')"
                f" or RedisCache(redis.Redis(...)), not {what}."
            )
        return cls(cache, key_prefix=settings.key_prefix)

    def load(self, sid: str) -> Record | None:
        with self._errors("load a session"):
            value = self.cache.get(self.key_prefix + sid)
        if value is None:
            return None
        if isinstance(value, str):
            raise StoreError(
                f"{self._errors.backend} returned text, not the bytes the store saved: give it a"
                " client that does not decode responses (redis: decode_responses=False)."
            )
        if isinstance(value, (bytearray, memoryview)):
            value = bytes(value)
        if not isinstance(value, bytes) or len(value) < HEADER.size:
            log.warning("session %s… holds a value this store did not write: ignored", sid[:6])
            return None
        magic, expires = HEADER.unpack_from(value)
        if magic != MAGIC:
            log.warning("session %s… holds a value this store did not write: ignored", sid[:6])
            return None
        if expires <= time.time():
            return None
        return Record(value[HEADER.size :])

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        record = HEADER.pack(MAGIC, time.time() + ttl) + data
        with self._errors("save a session"):
            stored = self.cache.set(self.key_prefix + sid, record, timeout=ttl)
        if not stored:
            raise StoreError(
                f"{self._errors.backend} did not store the session (cachelib reports backend"
                " errors as a false result: see its log)"
            )

    def delete(self, sid: str) -> None:
        key = self.key_prefix + sid
        with self._errors("delete a session"):
            # False means a failure or, for some caches (Redis), a missing key: ask which.
            if self.cache.delete(key) or not self.cache.has(key):
                return
        raise StoreError(f"{self._errors.backend} did not delete the session")
