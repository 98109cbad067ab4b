"""The ``mongodb`` store: one document per session in a MongoDB collection, through pymongo.

A session is one document, in the shape Flask-Session 0.8 writes, plus two fields::

    {
        "_id": ObjectId(...),        # MongoDB's own
        "id": "session:<sid>",       # SESSION_KEY_PREFIX + sid; unique index
        "val": Binary(b"..."),       # the session's bytes, unchanged
        "expiration": datetime,      # UTC; TTL index with expireAfterSeconds=0
        "version": 123456789,        # random 63-bit int, new on every save
        "user": "alice",             # only when the session has a user; sparse index
    }

so a collection Flask-Session 0.8 filled keeps working: its documents are read (a document
without ``version`` has the version token ``None``), and are rewritten in this shape on their
next save. Flask-Session 0.8 reads this shape too (it reads ``val`` and ignores the rest), so
its workers and this store's can share the collection: with ``SESSION_COMPAT_FLASK_SESSION``
(where the core writes Flask-Session's encoding) a conditional save compares the stored
``val`` as well as ``version``, because Flask-Session's ``$set`` rewrites ``val`` and leaves
``version`` alone.

Each operation of the protocol is one round trip. Every read filters on ``expiration > now``, so
an expired document is never returned while the server's TTL monitor (which runs once a minute)
has not removed it yet. A conditional save is an ``update_one`` filtered on the version (or, for
a new session, an upsert filtered on "no live document" that the unique index on ``id`` turns
into a duplicate-key error when a live one exists). A read with sliding expiry is one
``find_one_and_update`` that sets ``expiration`` alone.

Errors: a server that cannot be reached or does not answer in time raises
:class:`~flask_serverside.exceptions.StoreUnavailable`; any other pymongo failure raises
:class:`~flask_serverside.exceptions.StoreError`; both chain pymongo's exception.

Failing fast: each operation may take ``SESSION_MONGODB_TIMEOUT`` seconds (2), finding a server
included. pymongo waits that long for a server even when the connection is refused at once, so
while every server of the client was last found unreachable (by an operation or by pymongo's
monitor) the store first opens a plain TCP connection to each: when all refuse (or none accepts
within :data:`DOWN_TIMEOUT`), the operation fails at once; when one accepts, the operation runs
as usual. On the clients the store builds, pymongo's own retries (which would wait for a server
that refuses connections the whole time) are off, and the store retries an operation whose
connection was lost (not one that timed out) once itself, under the same rule: a server that
restarted or a replica set that elected a new primary answers the second attempt.
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import datetime
import functools
import logging
import re
import secrets
import socket
import time
import typing as t
import urllib.parse

import pymongo
from bson.errors import BSONError
from pymongo.errors import AutoReconnect
from pymongo.errors import ConnectionFailure
from pymongo.errors import DuplicateKeyError
from pymongo.errors import NetworkTimeout
from pymongo.errors import OperationFailure
from pymongo.errors import PyMongoError
from pymongo.errors import ServerSelectionTimeoutError
from pymongo.server_type import SERVER_TYPE

from flask_serverside import Capability
from flask_serverside import ClientErrors
from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError
from flask_serverside import Record
from flask_serverside import StoreError
from flask_serverside import StoreUnavailable

if t.TYPE_CHECKING:
    from pymongo.collection import Collection

    from flask_serverside import StoreSettings

log = logging.getLogger("flask_serverside.mongodb")

Document: t.TypeAlias = dict[str, t.Any]

#: The database when neither ``SESSION_MONGODB_DB`` nor the URL names one (Flask-Session's).
DEFAULT_DB = "flask_session"
#: The collection when ``SESSION_MONGODB_COLLECT`` is unset (Flask-Session's).
DEFAULT_COLLECTION = "sessions"
#: Seconds a store operation may take before the store counts as down.
DEFAULT_TIMEOUT = 2.0
#: Seconds a server may take to accept a connection, while every server of the client was last
#: found unreachable, before the operation fails without waiting for pymongo's server selection.
DOWN_TIMEOUT = 0.5
#: The server when nothing names one: Flask-Session's default (``MongoClient()``).
DEFAULT_URL = "mongodb://localhost:27017/"
#: Options of a client built from a URL, unless the URL sets them: an outage is noticed in
#: two seconds, and datetimes come back timezone-aware.
URL_CLIENT_OPTIONS: c.Mapping[str, t.Any] = {
    "serverSelectionTimeoutMS": 2000,
    "connectTimeoutMS": 2000,
    "tz_aware": True,
    "appname": "flask-serverside",
    # The store retries itself (see _retried): pymongo's retry would wait for a server that
    # refuses connections until the operation's time is up.
    "retryReads": False,
    "retryWrites": False,
}

#: The indexes :meth:`MongoDBStore.create_indexes` creates.
INDEXES: tuple[pymongo.IndexModel, ...] = (
    pymongo.IndexModel("id", unique=True),
    pymongo.IndexModel("expiration", expireAfterSeconds=0),
    pymongo.IndexModel("user", sparse=True),
)

_PROJECTION = {"_id": False, "val": True, "version": True}
_DUP_KEY = re.compile(r"dup key: \{.*?\}( \}?)?", re.DOTALL)


def _describe(exc: BaseException) -> str:
    """pymongo's message without the values it quotes: a duplicate key's value (a session
    id) and the server's whole reply (``full error: {...}``)."""
    text = _DUP_KEY.sub("dup key: { … }", str(exc).split(", full error:", 1)[0])
    if len(text) > 300:
        text = text[:300] + "…"
    return f"{type(exc).__name__}: {text}"


def _quotes_values(exc: PyMongoError) -> bool:
    """Whether the text of ``exc`` (and so a traceback through it) quotes stored values."""
    if not isinstance(exc, OperationFailure):
        return False
    return exc.code == 11000 or "keyValue" in (exc.details or {})


_errors = ClientErrors(
    "MongoDB",
    unavailable=(ConnectionFailure,),
    failed=(PyMongoError, BSONError),
    describe=_describe,
)


@contextlib.contextmanager
def _translated(doing: str) -> c.Iterator[None]:
    """pymongo's errors in the core's terms. A timeout is an outage whatever its class:
    pymongo marks it on the exception (``exc.timeout``), and a write past its time limit is
    an ``OperationFailure``."""
    with _errors(doing):
        try:
            yield
        except PyMongoError as exc:
            if exc.timeout and not isinstance(exc, ConnectionFailure):
                detail = _describe(exc)
                raise StoreUnavailable(f"MongoDB timed out, could not {doing}: {detail}") from exc
            if _quotes_values(exc):  # not chained: tracebacks get into logs
                raise t.cast(StoreError, _errors.translate(exc, doing)) from None
            raise


P = t.ParamSpec("P")
R = t.TypeVar("R")


def _retried(
    method: c.Callable[t.Concatenate[MongoDBStore, P], R],
) -> c.Callable[t.Concatenate[MongoDBStore, P], R]:
    """Run a store operation once more when its connection was lost (closed, reset, refused;
    not a timeout), within the operation's time: a server that restarted, or a replica set
    that elected a new primary, answers the second attempt; a server that went away fails it
    at once (see :meth:`MongoDBStore._call`). Only for clients that do not retry themselves
    (the store turns pymongo's retries off on the clients it builds, since pymongo's retry
    waits for a server that refuses connections until the operation's time is up).

    Every operation may run twice: a conditional save whose first
    attempt landed fails the second (the core reloads and merges), and a new session whose
    first attempt landed is created again under another id (the unused record expires)."""

    @functools.wraps(method)
    def run(self: MongoDBStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        if not self._retries:
            return method(self, *args, **kwargs)
        with pymongo.timeout(self.timeout):
            try:
                return method(self, *args, **kwargs)
            except StoreUnavailable as exc:
                cause = exc.__cause__
                if not isinstance(cause, AutoReconnect) or isinstance(
                    cause, (NetworkTimeout, ServerSelectionTimeoutError)
                ):
                    raise
                log.info("MongoDB connection lost (%s); trying once more", type(cause).__name__)
            return method(self, *args, **kwargs)

    return run


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class MongoDBStore:
    """Sessions in a MongoDB collection.

    :param collection: the collection to keep sessions in.
    :param key_prefix: prepended to every session id (the ``id`` field).
    :param timeout: seconds each operation may take (``pymongo.timeout``), or ``None`` to
        leave it to the client's own timeouts.
    :param create_indexes: create the indexes the store needs now (see :meth:`create_indexes`);
        when the server is down they are created by the first operation that reaches it.
    :param owns_client: close the collection's client in :meth:`close`; true when the store
        built the client from a URL, false for a client the application passed in.
    :param compat: the compatibility write mode (``SESSION_COMPAT_FLASK_SESSION``): a
        conditional save also compares the stored ``val``, since Flask-Session's writes leave
        ``version`` as it was.

    .. versionchanged:: 0.2
        The ``compat`` parameter.
    """

    capabilities: t.ClassVar[Capability] = (
        Capability.TOUCH
        | Capability.LOAD_AND_TOUCH
        | Capability.CONDITIONAL_SAVE
        | Capability.PURGE
        | Capability.ENUMERATE
        | Capability.USER_INDEX
    )
    url_schemes = ("mongodb", "mongodb+srv")
    config_keys = (
        "SESSION_MONGODB",
        "SESSION_MONGODB_DB",
        "SESSION_MONGODB_COLLECT",
        "SESSION_MONGODB_TIMEOUT",
        "SESSION_MONGODB_CREATE_INDEXES",
    )

    def __init__(
        self,
        collection: Collection[Document],
        *,
        key_prefix: str = "session:",
        timeout: float | None = DEFAULT_TIMEOUT,
        create_indexes: bool = True,
        owns_client: bool = False,
        compat: bool = False,
    ) -> None:
        #: Whether a conditional save also compares the stored data.
        self.compat = compat
        #: The collection sessions live in.
        self.collection = collection
        #: Prepended to every session id.
        self.key_prefix = key_prefix
        #: Seconds each operation may take, or ``None``.
        self.timeout = timeout
        self._client = ClientHandle(collection.database.client, owned=owns_client)
        options = collection.database.client.options
        # Retry once where pymongo does not (see _retried); pymongo.timeout bounds both.
        self._retries = timeout is not None and not (options.retry_reads or options.retry_writes)
        self._indexes_pending = False
        if create_indexes:
            try:
                self.create_indexes()
            except StoreUnavailable as exc:
                self._indexes_pending = True
                log.warning("MongoDB is unavailable, indexes will be created later: %s", exc)
            except StoreError as exc:
                raise ConfigurationError(
                    f"creating the session indexes on {collection.full_name} failed ({exc});"
                    " fix the cause, or create them yourself and set"
                    " SESSION_MONGODB_CREATE_INDEXES = False"
                ) from exc

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> MongoDBStore:
        """Build the store from ``SESSION_MONGODB`` (a ``pymongo.MongoClient`` or a
        ``mongodb://`` URL) or from a URL in ``SESSION_TYPE``, and the keys
        ``SESSION_MONGODB_DB``, ``SESSION_MONGODB_COLLECT``, ``SESSION_MONGODB_TIMEOUT`` and
        ``SESSION_MONGODB_CREATE_INDEXES`` (see the README).

        The database is ``SESSION_MONGODB_DB``, else the URL's database, else
        ``"flask_session"``. A client passed in is used as it is and never closed by the store;
        a URL gets a client of the store's own with :data:`URL_CLIENT_OPTIONS`. With neither,
        the store uses :data:`DEFAULT_URL`, as Flask-Session does, with a warning.

        :raises ConfigurationError: when a key is wrong.

        .. versionchanged:: 0.2
            Nothing set means Flask-Session's default server (logged), no longer an error.
        """
        config = settings.config
        value = config.get("SESSION_MONGODB")
        url = settings.url
        if value is not None and url is not None:
            raise ConfigurationError(
                "SESSION_TYPE is a MongoDB URL and SESSION_MONGODB is set too: set"
                " SESSION_TYPE = 'mongodb' to use SESSION_MONGODB, or remove SESSION_MONGODB."
            )
        if isinstance(value, str):
            url, value = value, None
        if url is not None:
            client: pymongo.MongoClient[Document] = _client_from_url(url)
            database = client.get_default_database(DEFAULT_DB).name
        elif isinstance(value, pymongo.MongoClient):
            client, database = value, DEFAULT_DB
        elif value is None:
            log.warning(
                "SESSION_MONGODB is not set: sessions go to the MongoDB at %s, Flask-Session's"
                " default. Set SESSION_MONGODB to a MongoClient or a URL, or SESSION_TYPE to a"
                " URL such as 'mongodb://host:27017/myapp', to choose the server and silence"
                " this message.",
                DEFAULT_URL,
            )
            url = DEFAULT_URL
            client, database = _client_from_url(url), DEFAULT_DB
        else:
            raise ConfigurationError(
                "SESSION_MONGODB must be a pymongo.MongoClient or a 'mongodb://' URL, not"
                f" {type(value).__name__}."
            )
        owns = url is not None
        try:
            database = settings.text("SESSION_MONGODB_DB", database)
            collection = settings.text("SESSION_MONGODB_COLLECT", DEFAULT_COLLECTION)
            # None, set explicitly, leaves the time limit to the client's own timeouts.
            timeout = (
                None
                if "SESSION_MONGODB_TIMEOUT" in config and config["SESSION_MONGODB_TIMEOUT"] is None
                else settings.seconds("SESSION_MONGODB_TIMEOUT", DEFAULT_TIMEOUT)
            )
            return cls(
                client[database][collection],
                key_prefix=settings.key_prefix,
                timeout=timeout,
                create_indexes=settings.flag("SESSION_MONGODB_CREATE_INDEXES", True),
                compat=settings.compat_flask_session,
                owns_client=owns,
            )
        except BaseException:
            if owns:
                client.close()
            raise

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _call(self, doing: str) -> c.Iterator[None]:
        """Run one operation under the timeout, translating pymongo's errors. While every
        server of the client was last found unreachable, the operation runs only if one of
        them accepts a connection again (see :func:`_expect_a_server`)."""
        deadline: t.ContextManager[None] = (
            contextlib.nullcontext() if self.timeout is None else pymongo.timeout(self.timeout)
        )
        with _translated(doing):
            client = self.collection.database.client
            if self.timeout is not None and _known_down(client):
                _expect_a_server(client, min(self.timeout, DOWN_TIMEOUT))
            with deadline:
                if self._indexes_pending:
                    self._create_late_indexes()
                yield

    def create_indexes(self) -> None:
        """Create the indexes the store relies on (a no-op for those that exist): a unique
        index on ``id``, the TTL index on ``expiration`` that Flask-Session also creates, and a
        sparse index on ``user``.

        :raises StoreError: when they cannot be created (for instance, when a collection
            Flask-Session filled holds two documents with one ``id``).
        """
        with _translated("create the session indexes"):
            self.collection.create_indexes(list(INDEXES))
        self._indexes_pending = False

    def _create_late_indexes(self) -> None:
        try:
            self.create_indexes()
        except StoreUnavailable:
            raise  # still down: so is the operation; the next one tries again
        except StoreError as exc:
            self._indexes_pending = False
            log.error(
                "creating the session indexes on %s failed, sessions work on without them: %s",
                self.collection.full_name,
                exc,
            )

    @staticmethod
    def _update(
        key: str, data: bytes, now: datetime.datetime, ttl: int, user_id: str | None
    ) -> Document:
        """The update that writes a whole session: a ``$set`` of its fields, as Flask-Session
        writes them, and ``$unset`` of a user it no longer has."""
        fields: Document = {
            "id": key,
            "val": data,
            "expiration": now + datetime.timedelta(seconds=ttl),
            # From the OS's random source, so that forked workers never share a sequence.
            "version": secrets.randbits(63),
        }
        if user_id is None:
            return {"$set": fields, "$unset": {"user": ""}}
        fields["user"] = user_id
        return {"$set": fields}

    def _prefix_filter(self) -> Document:
        if not self.key_prefix:
            return {}
        return {"id": {"$regex": "^" + re.escape(self.key_prefix)}}

    @staticmethod
    def _record(document: Document | None) -> Record | None:
        if document is None:
            return None
        data = document["val"]
        return Record(data if isinstance(data, bytes) else bytes(data), document.get("version"))

    # -- the protocol -----------------------------------------------------------------------

    @_retried
    def load(self, sid: str) -> Record | None:
        with self._call("load a session"):
            document = self.collection.find_one(
                {"id": self.key_prefix + sid, "expiration": {"$gt": _now()}}, _PROJECTION
            )
        return self._record(document)

    @_retried
    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        key = self.key_prefix + sid
        update = self._update(key, data, _now(), ttl, user_id)
        with self._call("save a session"):
            try:
                self.collection.update_one({"id": key}, update, upsert=True)
            except DuplicateKeyError:
                # A concurrent save inserted the document first; now it can be updated.
                self.collection.update_one({"id": key}, update, upsert=True)

    @_retried
    def delete(self, sid: str) -> None:
        with self._call("delete a session"):
            self.collection.delete_many({"id": self.key_prefix + sid})

    @_retried
    def touch(self, sid: str, ttl: int) -> bool:
        now = _now()
        with self._call("refresh a session"):
            result = self.collection.update_one(
                {"id": self.key_prefix + sid, "expiration": {"$gt": now}},
                {"$set": {"expiration": now + datetime.timedelta(seconds=ttl)}},
            )
        return result.matched_count > 0

    @_retried
    def load_and_touch(self, sid: str, ttl: int) -> Record | None:
        now = _now()
        with self._call("load a session"):
            document = self.collection.find_one_and_update(
                {"id": self.key_prefix + sid, "expiration": {"$gt": now}},
                {"$set": {"expiration": now + datetime.timedelta(seconds=ttl)}},
                projection=_PROJECTION,
            )
        return self._record(document)

    @_retried
    def save_if(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> bool:
        key = self.key_prefix + sid
        now = _now()
        update = self._update(key, data, now, ttl, user_id)
        with self._call("save a session"):
            if expected is None:
                # Replaces an expired document or inserts; a live one makes the insert hit
                # the unique index on ``id``.
                try:
                    self.collection.update_one(
                        {"id": key, "expiration": {"$lte": now}}, update, upsert=True
                    )
                except DuplicateKeyError:
                    return False
                return True
            current: Document = {"id": key, "version": expected.version, "expiration": {"$gt": now}}
            if self.compat:  # Flask-Session rewrites val and expiration, never version
                current["val"] = expected.data
            result = self.collection.update_one(current, update)
        return result.matched_count > 0

    @_retried
    def purge_expired(self) -> int:
        with self._call("purge expired sessions"):
            result = self.collection.delete_many(
                {**self._prefix_filter(), "expiration": {"$lte": _now()}}
            )
        return result.deleted_count

    def _live_filter(self, **fields: t.Any) -> Document:
        return {**self._prefix_filter(), **fields, "expiration": {"$gt": _now()}}

    @_retried
    def count(self) -> int:
        with self._call("count sessions"):
            return self.collection.count_documents(self._live_filter())

    def iter_sids(self) -> c.Iterator[str]:
        start = len(self.key_prefix)
        cursor = self.collection.find(self._live_filter(), {"_id": False, "id": True})
        try:
            while True:
                # Each batch is fetched under the timeout; none is held across a yield.
                with self._call("list sessions"):
                    document = next(cursor, None)
                if document is None:
                    return
                yield document["id"][start:]
        finally:
            cursor.close()

    @_retried
    def user_sids(self, user_id: str) -> list[str]:
        start = len(self.key_prefix)
        with self._call("list a user's sessions"):
            documents = list(
                self.collection.find(self._live_filter(user=user_id), {"_id": False, "id": True})
            )
        return [document["id"][start:] for document in documents]

    def close(self) -> None:
        """Close the client when the store built it from a URL; a client the application
        passed in stays open."""
        self._client.close()


def _known_down(client: pymongo.MongoClient[Document]) -> bool:
    """Whether every server of ``client`` was last found unreachable: checked (by pymongo's
    monitor or a failed operation) and left unknown with an error. A topology not yet checked
    (just started, just forked) is not down."""
    servers = client.topology_description.server_descriptions().values()
    return bool(servers) and all(
        server.server_type == SERVER_TYPE.Unknown and server.error is not None for server in servers
    )


def _expect_a_server(client: pymongo.MongoClient[Document], timeout: float) -> None:
    """Return when one of the servers of ``client`` accepts a TCP connection within
    ``timeout`` seconds in all; raise pymongo's :class:`~pymongo.errors.ConnectionFailure` at
    once when none does (the store turns it into :class:`StoreUnavailable`).

    pymongo's server selection would wait for such a server until the operation's time is up
    (its monitor checks a server at most every half second, and a refused connection changes
    nothing it waits for); a refused connection answers at once. A server that accepts
    connections but does not answer (hung) is left to the operation's timeout.
    """
    deadline = time.monotonic() + timeout
    errors = []
    for host, port in client.topology_description.server_descriptions():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            if port is None:  # a Unix domain socket, named by its path
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
                    unix.settimeout(remaining)
                    unix.connect(host)
            else:
                socket.create_connection((host, port), timeout=remaining).close()
        except OSError as exc:
            errors.append(f"{host}:{port}: {type(exc).__name__}: {exc}")
        else:
            return
    raise ConnectionFailure(f"no server accepts connections ({'; '.join(errors) or 'timed out'})")


def _client_from_url(url: str) -> pymongo.MongoClient[Document]:
    query = urllib.parse.urlsplit(url).query
    given = {name.lower() for name in urllib.parse.parse_qs(query)}
    options = {k: v for k, v in URL_CLIENT_OPTIONS.items() if k.lower() not in given}
    try:
        return pymongo.MongoClient(url, **options)
    except (PyMongoError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"the MongoDB URL {_redact(url)!r} is not usable ({exc}); write it as"
            " 'mongodb://host:27017/database' or 'mongodb+srv://cluster.example.com/database'"
        ) from exc


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()
