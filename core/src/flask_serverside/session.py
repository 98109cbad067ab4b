"""The session object behind :data:`flask.session`.

It is a dict with Flask's session attributes (``permanent``, ``modified``, ``accessed``,
``new``). Beyond Flask's own session it tracks every kind of read (``in``, iteration, ``len``,
``keys``, ``values``, ``items``, ``get``) as access, so the ``Vary: Cookie`` header is never
missing, and it carries what the interface needs to save it: its id, the record it was loaded
from, and the id it replaced after :meth:`ServerSideSession.regenerate`.
"""

from __future__ import annotations

import datetime
import typing as t
import uuid

from flask.sessions import SessionMixin
from markupsafe import Markup
from werkzeug.datastructures import CallbackDict

from .exceptions import SessionUnavailable

if t.TYPE_CHECKING:
    import collections.abc as c

    from .store import Record

#: The key Flask keeps ``session.permanent`` under.
PERMANENT_KEY = "_permanent"

# Values that cannot change in place: handing one out cannot change the session.
_IMMUTABLE_TYPES = frozenset(
    [str, int, float, bool, type(None), bytes, Markup, uuid.UUID, datetime.datetime]
)


class ServerSideSession(CallbackDict[str, t.Any], SessionMixin):
    """A session whose data lives in a store.

    :param initial: the decoded data, for a session loaded from the store.
    :param sid: its id; ``None`` until the session is first saved.
    :param record: the record it was loaded from, ``None`` for a new session.
    """

    def __init__(
        self,
        initial: c.Mapping[str, t.Any] | None = None,
        *,
        sid: str | None = None,
        record: Record | None = None,
    ) -> None:
        def on_update(self: ServerSideSession) -> None:
            self.modified = True
            self.accessed = True

        super().__init__(initial, on_update)
        #: The session id, without prefix or signature; ``None`` until first saved.
        self.sid = sid
        #: The record the session was loaded from; ``None`` for a new session.
        self.record = record
        #: ``True`` for a session not loaded from the store.
        self.new = record is None
        #: Set when the top-level dict changed. Changes inside nested values are found when
        #: the session is saved, so they need no ``modified = True`` by hand.
        self.modified = False
        #: Set by any read or write, for the ``Vary: Cookie`` header.
        self.accessed = False
        #: The id this session had before :meth:`regenerate`, deleted when it is saved.
        self.replaced_sid: str | None = None
        #: Set by :meth:`destroy`.
        self.destroyed = False
        #: Set when the request's cookie named no usable session; the cookie is removed
        #: unless the session gets data.
        self.stale_cookie = False
        #: Set when the store refreshed the record's expiry while loading it.
        self.touched = False
        #: Set when a value that can change in place (a list, a dict) was handed out, so
        #: only encoding the session can tell whether it changed.
        self.exposed = False

    def _read(self) -> None:
        self.accessed = True

    def _expose(self, value: t.Any) -> t.Any:
        """Note when a value the caller could change in place leaves the session."""
        if type(value) not in _IMMUTABLE_TYPES:
            self.exposed = True
        return value

    def __getitem__(self, key: str) -> t.Any:
        self._read()
        return self._expose(super().__getitem__(key))

    def get(self, key: str, default: t.Any = None) -> t.Any:
        self._read()
        return self._expose(super().get(key, default))

    def __contains__(self, key: object) -> bool:
        self._read()
        return super().__contains__(key)

    def __iter__(self) -> c.Iterator[str]:
        self._read()
        return super().__iter__()

    def __len__(self) -> int:
        self._read()
        return super().__len__()

    def keys(self) -> t.Any:
        self._read()
        return super().keys()

    def values(self) -> t.Any:
        self._read()
        self.exposed = True
        return super().values()

    def items(self) -> t.Any:
        self._read()
        self.exposed = True
        return super().items()

    def copy(self) -> dict[str, t.Any]:
        self._read()
        self.exposed = True
        return dict(super().items())

    def setdefault(self, key: str, default: t.Any = None) -> t.Any:
        self._read()
        return self._expose(super().setdefault(key, default))

    def unchanged(self) -> bool:
        """Return whether the session provably holds what it was loaded with: nothing was
        set or deleted, and no value that can change in place (a list, a dict) was handed
        out. Saving such a session needs no encoding to find out whether it changed."""
        return not self.modified and not self.exposed and self.replaced_sid is None

    def data(self) -> dict[str, t.Any]:
        """Return the session's contents as a plain dict, without counting as access."""
        return dict(super().items())

    def is_empty(self) -> bool:
        """Return whether the session holds nothing but its ``permanent`` flag. An empty
        session is never stored, and a stored one that becomes empty is deleted."""
        size = super().__len__()
        return size == 0 or (size == 1 and super().__contains__(PERMANENT_KEY))

    def regenerate(self) -> None:
        """Give the session a new id at its next save, keeping its data; the record under the
        old id is deleted then. Call it on login, to defeat session fixation.

        .. versionadded:: 0.1
        """
        if self.sid is not None and self.replaced_sid is None:
            self.replaced_sid = self.sid
        self.sid = None
        self.modified = True
        self.accessed = True

    def destroy(self) -> None:
        """Empty the session and drop its id; at the end of the request its record is
        deleted from the store and its cookie removed. Data set afterwards in the same request
        (a flash message after logout) goes to a new session with a new id. Call it on logout.

        .. versionadded:: 0.1
        """
        super().clear()
        if self.sid is not None and self.replaced_sid is None:
            self.replaced_sid = self.sid
        self.sid = None
        self.destroyed = True
        self.modified = True
        self.accessed = True


class UnavailableSession(ServerSideSession):
    """Stands in for a session the store could not load (``SESSION_ON_STORE_ERROR =
    "unavailable"``). Requests that never touch the session are served as usual; touching it
    raises :class:`~flask_serverside.exceptions.SessionUnavailable`, an HTTP 503."""

    def _fail(self, *args: t.Any, **kwargs: t.Any) -> t.NoReturn:
        raise SessionUnavailable()

    _read = _fail
    __setitem__ = __delitem__ = clear = pop = popitem = update = _fail
    regenerate = destroy = _fail
