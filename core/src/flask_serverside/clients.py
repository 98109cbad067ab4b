"""What every store does with its client library: translate its errors, and own (or not) the
client.

**Errors.** A store raises :class:`~flask_serverside.StoreUnavailable` when its backend cannot
be reached or timed out and :class:`~flask_serverside.StoreError` when it failed otherwise; the
core turns both into the configured fault policy. :class:`ClientErrors` does that translation
for a client library's exception classes, once per store::

    errors = ClientErrors(
        "Redis",
        unavailable=(redis.ConnectionError, redis.TimeoutError),
        failed=(redis.AuthenticationError, redis.RedisError),
    )

    def load(self, sid):
        with errors("load a session"):
            return self.client.get(self.key_prefix + sid)

When an exception is an instance of classes of both lists, the most specific class wins
(``AuthenticationError``, a ``ConnectionError`` in redis-py, is a failure, not an outage).

**Ownership.** A client the application passed in is the application's: the store uses it and
never closes it. A client the store built (from a URL) is the store's, and its ``close()``
closes it. :class:`ClientHandle` keeps that rule and can build the client on first use, so an
application starts while its store is still down.

.. versionadded:: 0.2
"""

from __future__ import annotations

import threading
import types
import typing as t

from .exceptions import StoreError
from .exceptions import StoreUnavailable

if t.TYPE_CHECKING:
    import collections.abc as c

C = t.TypeVar("C")

#: The longest client message kept in a store error; the rest is cut.
MAX_MESSAGE = 300


def describe(exc: BaseException) -> str:
    """The default description of a client exception in a store error: its class and its
    message, cut at :data:`MAX_MESSAGE` characters."""
    text = str(exc)
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Translation:
    """The context manager :class:`ClientErrors` returns for one operation."""

    __slots__ = ("doing", "errors")

    def __init__(self, errors: ClientErrors, doing: str) -> None:
        self.errors = errors
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> t.Literal[False]:
        if exc is None or exc_type is None or issubclass(exc_type, StoreError):
            return False
        translated = self.errors.translate(exc, self.doing)
        if translated is None:
            return False
        raise translated from exc


class ClientErrors:
    """Translates a client library's exceptions into store errors.

    :param backend: the backend's name for messages (``"Redis"``).
    :param unavailable: exception classes meaning the backend could not be reached or timed
        out; raised again as :class:`~flask_serverside.StoreUnavailable`.
    :param failed: exception classes meaning the operation failed otherwise; raised again as
        :class:`~flask_serverside.StoreError`.
    :param describe: turns the client's exception into the text of the store error; override
        it when the client's messages can carry secrets (SQL parameters, URLs with passwords).

    Other exceptions pass through unchanged: they are bugs, not faults of the backend.
    """

    def __init__(
        self,
        backend: str,
        *,
        unavailable: tuple[type[BaseException], ...],
        failed: tuple[type[BaseException], ...] = (),
        describe: c.Callable[[BaseException], str] = describe,
    ) -> None:
        #: The backend's name for messages.
        self.backend = backend
        self._classes: dict[type[BaseException], type[StoreError]] = {
            **dict.fromkeys(failed, StoreError),
            **dict.fromkeys(unavailable, StoreUnavailable),
        }
        self._describe = describe
        self._by_type: dict[type[BaseException], type[StoreError] | None] = {}
        self._translations: dict[str, _Translation] = {}

    def __call__(self, doing: str) -> _Translation:
        """Return a context manager that translates the errors of one operation.

        :param doing: what the operation does, for the message (``"load a session"``).
        """
        translation = self._translations.get(doing)
        if translation is None:
            translation = self._translations[doing] = _Translation(self, doing)
        return translation

    def kind(self, exc_type: type[BaseException]) -> type[StoreError] | None:
        """Return the store error class for ``exc_type``, or ``None`` when it is none of the
        listed classes: the listed class nearest in its method resolution order decides."""
        try:
            return self._by_type[exc_type]
        except KeyError:
            pass
        found = next((self._classes[k] for k in exc_type.__mro__ if k in self._classes), None)
        self._by_type[exc_type] = found
        return found

    def translate(self, exc: BaseException, doing: str) -> StoreError | None:
        """Return the store error for ``exc``, or ``None`` when it is not a client error."""
        kind = self.kind(type(exc))
        if kind is None:
            return None
        detail = self._describe(exc)
        if kind is StoreUnavailable:
            return StoreUnavailable(f"{self.backend} is unavailable, could not {doing}: {detail}")
        return kind(f"{self.backend} failed to {doing}: {detail}")


class ClientHandle(t.Generic[C]):
    """A store's client, and whether the store may close it.

    :param client: the client, or ``None`` with ``connect``.
    :param connect: builds the client on first use of :attr:`client` (thread-safe), for a
        client the store makes from a URL.
    :param owned: whether :meth:`close` closes the client: true for a client the store built,
        false for one the application passed in.
    :param closer: how to close the client (default: its ``close()`` method).
    """

    def __init__(
        self,
        client: C | None = None,
        *,
        connect: c.Callable[[], C] | None = None,
        owned: bool = False,
        closer: c.Callable[[C], None] | None = None,
    ) -> None:
        if (client is None) == (connect is None):
            raise TypeError("give either a client or a connect function")
        self._client = client
        self._connect = connect
        self._lock = threading.Lock()
        #: Whether :meth:`close` closes the client.
        self.owned = owned
        self._closer = closer

    @classmethod
    def given(cls, client: C) -> ClientHandle[C]:
        """A client the application passed in: used, never closed."""
        return cls(client, owned=False)

    @classmethod
    def built(
        cls,
        client: C | None = None,
        *,
        connect: c.Callable[[], C] | None = None,
        closer: c.Callable[[C], None] | None = None,
    ) -> ClientHandle[C]:
        """A client the store made (now, or on first use): closed by :meth:`close`."""
        return cls(client, connect=connect, owned=True, closer=closer)

    @property
    def connected(self) -> bool:
        """Whether the client exists yet."""
        return self._client is not None

    @property
    def client(self) -> C:
        """The client, built first when it was given as a connect function.

        :raises Exception: whatever ``connect`` raises; the store translates it.
        """
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    assert self._connect is not None
                    self._client = self._connect()
                client = self._client
        return client

    def close(self) -> None:
        """Close the client if the store owns it and it was built; else do nothing."""
        client = self._client
        if not self.owned or client is None:
            return
        if self._closer is not None:
            self._closer(client)
        else:
            t.cast(t.Any, client).close()
