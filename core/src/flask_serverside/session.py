"""The session object behind :data:`flask.session`.

It is a dict with Flask's session attributes (``permanent``, ``modified``, ``accessed``,
``new``), and it carries what the interface needs to save it: its id (the cookie's), the key its
record is stored under (:mod:`~flask_serverside.keys`), the record it was loaded from, and the
key it replaced after :meth:`ServerSideSession.regenerate`.

**Loaded on first access.** A session opened from a cookie holds only its id until the view
first touches it; then its record is loaded, in one round trip. A view that never touches the
session costs no store call (so an outage of the store does not reach it). Touching means any
access through :data:`flask.session` (Flask marks it ``accessed``) or any read or write of the
object itself.

**Truthiness.** As in Flask-Session, a session that holds nothing but internal keys
(:data:`INTERNAL_KEYS`: ``_permanent``) is false. Flask-Login relies on it: its session
protection skips an empty session, so an anonymous visit stores nothing and sends no cookie.
"""

from __future__ import annotations

import datetime
import decimal
import typing as t
import uuid

from flask.sessions import SessionMixin
from markupsafe import Markup
from werkzeug.datastructures import CallbackDict

if t.TYPE_CHECKING:
    import collections.abc as c

    from .store import Record

#: The key Flask keeps ``session.permanent`` under.
PERMANENT_KEY = "_permanent"
#: Keys that do not make a session worth keeping on their own.
INTERNAL_KEYS = frozenset([PERMANENT_KEY])

# Values that cannot change in place: handing one out cannot change the session.
_IMMUTABLE_TYPES = frozenset(
    [
        str,
        int,
        float,
        bool,
        type(None),
        bytes,
        Markup,
        uuid.UUID,
        datetime.datetime,
        datetime.date,
        datetime.time,
        datetime.timedelta,
        decimal.Decimal,
        frozenset,
    ]
)


_new_dict = dict.__new__
_S = t.TypeVar("_S", bound="ServerSideSession")


def _on_update(session: ServerSideSession) -> None:
    session.modified = True
    session.accessed = True


class ServerSideSession(CallbackDict[str, t.Any], SessionMixin):
    """A session whose data lives in a store.

    :param initial: the decoded data, for a session loaded from the store.
    :param sid: its id; ``None`` until the session is first saved.
    :param key: the key its record is stored under (``None`` with ``sid``).
    :param record: the record it was loaded from, ``None`` for a new session.
    :param loader: called with the session on its first access, to fill it from the store;
        ``None`` for a session that is complete already.

    .. versionchanged:: 0.2
        Loaded on first access (``loader``); false while it holds only internal keys.
    """

    # Defaults of the per-session state, kept on the class: a new session only writes what
    # differs (most requests set none of these), which keeps opening a session cheap.
    #: The key the session's record is stored under (a keyed hash of :attr:`sid`, or the
    #: id itself); ``None`` until first saved.
    key: str | None = None
    #: The record the session was loaded from; ``None`` for a new session.
    record: Record | None = None
    #: The plain (decrypted) bytes of :attr:`record`, which a save compares with.
    plain: bytes | None = None
    #: For a record found under an older key (a raw id, a rotated hashing key; then
    #: :attr:`key` is that older key): its current key, where the end of this request moves it.
    rekey: str | None = None
    #: Set when the top-level dict changed. Changes inside nested values are found when
    #: the session is saved, so they need no ``modified = True`` by hand.
    modified = False
    #: The key this session had before :meth:`regenerate` or :meth:`destroy`, retired
    #: when it is saved.
    replaced_key: str | None = None
    #: Set by :meth:`destroy`.
    destroyed = False
    #: Set when the request's cookie named no usable session; the cookie is removed
    #: unless the session gets data.
    stale_cookie = False
    #: Set when the cookie named a session another request had regenerated: the view got
    #: an empty session, which must not replace the renewed one.
    superseded = False
    #: Set when the store refreshed the record's expiry while loading it.
    touched = False
    #: Set when a value that can change in place (a list, a dict) was handed out, so
    #: only encoding the session can tell whether it changed.
    exposed = False
    _accessed = False
    #: ``True`` for a session not loaded from the store.
    new = True
    #: The cookie value the request carried, ``None`` without one. When it is not what the
    #: application would send now (Flask-Session's signature, a fallback key's, or this
    #: project's own while the compatibility write mode signs as Flask-Session), the cookie is
    #: set again when the session is saved or kept, even where Flask would not refresh it.
    cookie: str | None = None
    #: What :class:`~werkzeug.datastructures.CallbackDict` calls on every change.
    on_update = staticmethod(_on_update)

    def __init__(
        self,
        initial: c.Mapping[str, t.Any] | None = None,
        *,
        sid: str | None = None,
        key: str | None = None,
        record: Record | None = None,
        loader: c.Callable[[ServerSideSession], None] | None = None,
    ) -> None:
        self._loader = loader
        if initial:
            dict.update(self, initial)
        #: The session id, without prefix or signature; ``None`` until first saved.
        self.sid = sid
        if key is not None:
            self.key = key
        if record is not None:
            self.record = record
            self.new = False

    @classmethod
    def opened(
        cls: type[_S], sid: str, cookie: str, loader: c.Callable[[ServerSideSession], None]
    ) -> _S:
        """Return the session a request's cookie names, not loaded yet: ``loader`` fills it on
        its first access. Equal to ``cls(sid=sid, loader=loader)`` with :attr:`cookie` set,
        built without calling ``__init__`` (every other attribute is its class default),
        since most such sessions are never touched and this runs on every request that
        carries a session cookie."""
        session: _S = _new_dict(cls)
        session._loader = loader
        session.sid = sid
        session.cookie = cookie
        return session

    # -- loading on first access ---------------------------------------------------------------

    @property
    def accessed(self) -> bool:
        """Set by any access (Flask sets it on every use of :data:`flask.session`), for the
        ``Vary: Cookie`` header; setting it loads the session first."""
        return self._accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        if value and self._loader is not None:
            self._load()
        self._accessed = value

    @property
    def loaded(self) -> bool:
        """Whether the session's data is here: it was touched, or it needed no load."""
        return self._loader is None

    def _load(self) -> None:
        loader, self._loader = self._loader, None
        assert loader is not None
        try:
            loader(self)
        except BaseException:
            self._loader = loader  # a failed load fails every later access too
            raise

    def fill(
        self,
        data: c.Mapping[str, t.Any],
        *,
        sid: str | None,
        key: str | None = None,
        record: Record | None = None,
        plain: bytes | None = None,
    ) -> None:
        """Set the data, id, key and record of a session being loaded, without counting it as
        a change. For loaders only."""
        dict.clear(self)
        dict.update(self, data)
        self.sid = sid
        self.key = key
        self.record = record
        self.plain = plain
        self.new = record is None

    # -- reads ---------------------------------------------------------------------------------

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

    def __bool__(self) -> bool:
        self._read()
        return not self.is_empty()

    def __eq__(self, other: object) -> bool:
        self._read()
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

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

    # -- writes: load first, so that the write applies to the stored data ------------------------

    def __setitem__(self, key: str, value: t.Any) -> None:
        self._read()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._read()
        super().__delitem__(key)

    def clear(self) -> None:
        self._read()
        super().clear()

    def pop(self, key: str, *args: t.Any) -> t.Any:
        self._read()
        return super().pop(key, *args)

    def popitem(self) -> tuple[str, t.Any]:
        self._read()
        return super().popitem()

    def update(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._read()
        super().update(*args, **kwargs)

    # -- for the interface and the writer --------------------------------------------------------

    def unchanged(self) -> bool:
        """Return whether the session provably holds what it was loaded with: nothing was
        set or deleted, and no value that can change in place (a list, a dict) was handed
        out. Saving such a session needs no encoding to find out whether it changed."""
        return not self.modified and not self.exposed and self.replaced_key is None

    def data(self) -> dict[str, t.Any]:
        """Return the session's contents as a plain dict, without counting as access."""
        return dict(super().items())

    def is_empty(self) -> bool:
        """Return whether the session holds nothing but internal keys
        (:data:`INTERNAL_KEYS`). An empty session is never stored, and a stored one that
        becomes empty is deleted."""
        return dict.keys(self) <= INTERNAL_KEYS

    def regenerate(self) -> None:
        """Give the session a new id at its next save, keeping its data; the record under the
        old id is deleted then. Call it on login, to defeat session fixation.

        .. versionadded:: 0.1
        """
        self._read()
        if self.key is not None and self.replaced_key is None:
            self.replaced_key = self.key
        self.sid = self.key = self.rekey = None
        self.modified = True

    def destroy(self) -> None:
        """Empty the session and drop its id; at the end of the request its record is
        deleted from the store and its cookie removed. Data set afterwards in the same request
        (a flash message after logout) goes to a new session with a new id. Call it on logout.

        .. versionadded:: 0.1
        """
        self._read()
        dict.clear(self)
        if self.key is not None and self.replaced_key is None:
            self.replaced_key = self.key
        self.sid = self.key = self.rekey = None
        self.destroyed = True
        self.modified = True
