"""The store protocol: the one extension point of flask-serverside.

A store moves opaque bytes under a session id. Everything else (ids, cookies, signing,
serialization, expiry arithmetic, the write and concurrency policy) belongs to the core, so a
store is three required operations plus the optional capabilities it declares:

=======================  ==========================================  =============================
capability               methods                                     what the core does without it
=======================  ==========================================  =============================
``TOUCH``                :meth:`Touchable.touch`                     rewrites the record
``LOAD_AND_TOUCH``       :meth:`LoadAndTouchable.load_and_touch`     loads, then touches
``CONDITIONAL_SAVE``     :meth:`ConditionallySavable.save_if`        last writer wins
``SAVE_IF_OR_LOAD``      :meth:`SavableOrLoadable.save_if_or_load`   loads after a lost ``save_if``
``PURGE``                :meth:`Purgeable.purge_expired`             nothing (native expiry)
``ENUMERATE``            :meth:`Enumerable.count`, ``iter_sids``     the CLI cannot count or list
``USER_INDEX``           :meth:`UserIndexed.user_sids`               no "log out everywhere"
=======================  ==========================================  =============================

A store also has a ``from_settings`` class method (see :class:`StoreFactory`), which is what the
entry point names, and may have a ``close()`` method, called when the application is done with it.
:mod:`~flask_serverside.loader` checks a store against what it declares; the helpers a store
author needs (typed configuration readers, client error translation, the client ownership rule)
are in :mod:`~flask_serverside.settings` and :mod:`~flask_serverside.clients`.

Errors: a store raises :class:`~flask_serverside.exceptions.StoreError` (or a subclass) when the
backend is unreachable, times out or fails; the core applies the configured fault policy. A miss
is never an error. A store never returns an expired record, whatever the lag of its backend's
native expiry.
"""

from __future__ import annotations

import dataclasses
import enum
import typing as t

if t.TYPE_CHECKING:
    import collections.abc as c

    from .settings import StoreSettings


class Capability(enum.Flag):
    """Optional operations a store declares in its ``capabilities`` class attribute.

    .. versionadded:: 0.1
    """

    NONE = 0
    #: Refresh the time to live without rewriting the data.
    TOUCH = enum.auto()
    #: Load a record and refresh its time to live in one round trip.
    LOAD_AND_TOUCH = enum.auto()
    #: Compare-and-set on the record's version token.
    CONDITIONAL_SAVE = enum.auto()
    #: A compare-and-set that, when it loses, returns the record it lost to, in the same round
    #: trip (with :attr:`CONDITIONAL_SAVE`).
    #:
    #: .. versionadded:: 0.2
    SAVE_IF_OR_LOAD = enum.auto()
    #: Delete expired records (for backends without native expiry).
    PURGE = enum.auto()
    #: Count and iterate the session ids of this store's key prefix.
    ENUMERATE = enum.auto()
    #: Keep an index of session ids by user id.
    USER_INDEX = enum.auto()


@dataclasses.dataclass(frozen=True)
class Record:
    """A stored session as a store returns it.

    :param data: the bytes last saved under the session id, unchanged.
    :param version: an opaque token that changes with every save; stores with
        :attr:`Capability.CONDITIONAL_SAVE` compare it in :meth:`ConditionallySavable.save_if`.
        Stores without it may leave it ``None``.
    """

    data: bytes
    version: object = None


class SessionStore(t.Protocol):
    """The three operations every store implements.

    Implementations must be safe to call from several threads at once, and several processes
    may share one backend.
    """

    #: The optional operations this store implements.
    capabilities: t.ClassVar[Capability]

    def load(self, sid: str) -> Record | None:
        """Return the record saved under ``sid``.

        :param sid: a validated session id, without the key prefix.
        :returns: the record, or ``None`` when there is none or it has expired.
        :raises StoreError: when the backend cannot answer.
        """
        ...

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        """Store ``data`` under ``sid``, replacing any record, expiring in ``ttl`` seconds.

        The write is atomic: a concurrent :meth:`load` sees the old record or the new one,
        never a mixture. It has happened when this returns.

        :param ttl: time to live in seconds, at least 1.
        :param user_id: the user the session belongs to; stores with
            :attr:`Capability.USER_INDEX` index it, the others ignore it.
        :raises StoreError: when the write did not happen or its outcome is unknown.
        """
        ...

    def delete(self, sid: str) -> None:
        """Remove the record under ``sid``; deleting a missing record is not an error.

        :raises StoreError: when the backend cannot answer.
        """
        ...


class Touchable(SessionStore, t.Protocol):
    """:attr:`Capability.TOUCH`."""

    def touch(self, sid: str, ttl: int) -> bool:
        """Set the record's time to live to ``ttl`` seconds without rewriting it.

        A store whose refresh is a write (an SQL ``UPDATE``) may skip it while the record
        still has more than ``ttl`` minus a bounded, documented interval to live; the record
        then expires at most that interval early.

        :returns: ``False`` when there is no live record under ``sid``.
        """
        ...


class LoadAndTouchable(SessionStore, t.Protocol):
    """:attr:`Capability.LOAD_AND_TOUCH`."""

    def load_and_touch(self, sid: str, ttl: int) -> Record | None:
        """Like :meth:`~SessionStore.load`, and set the time to live of a record found to
        ``ttl`` seconds, in one round trip to the backend. The refresh may be skipped within a
        bounded interval, as for :meth:`Touchable.touch`."""
        ...


class ConditionallySavable(SessionStore, t.Protocol):
    """:attr:`Capability.CONDITIONAL_SAVE`."""

    def save_if(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> bool:
        """Save like :meth:`~SessionStore.save`, but only if the stored record is still
        ``expected``: the same version token, or no live record at all when ``expected`` is
        ``None``. The comparison and the write are atomic.

        :returns: ``True`` when saved, ``False`` when the stored record differs (a conflict).
        """
        ...


class SavableOrLoadable(ConditionallySavable, t.Protocol):
    """:attr:`Capability.SAVE_IF_OR_LOAD`, declared with :attr:`Capability.CONDITIONAL_SAVE`.

    .. versionadded:: 0.2
    """

    def save_if_or_load(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> tuple[bool, Record | None]:
        """Save like :meth:`ConditionallySavable.save_if` and, when the save loses, read the
        record it lost to, in the same atomic step and the same round trip to the backend.
        When two requests of one session race, the loser needs that record to merge its
        changes into, so this saves it a :meth:`~SessionStore.load`.

        :returns: ``(True, None)`` when saved; ``(False, current)`` when the stored record
            differs, ``current`` being what :meth:`~SessionStore.load` would have returned at
            that moment (``None`` when there is no live record).
        """
        ...


class Purgeable(SessionStore, t.Protocol):
    """:attr:`Capability.PURGE`."""

    def purge_expired(self) -> int:
        """Delete expired records of this store's key prefix.

        :returns: how many records were deleted.
        """
        ...


class Enumerable(SessionStore, t.Protocol):
    """:attr:`Capability.ENUMERATE`."""

    def count(self) -> int:
        """Return how many live sessions this store's key prefix holds."""
        ...

    def iter_sids(self) -> c.Iterator[str]:
        """Yield the ids (without prefix) of the live sessions of this store's key prefix."""
        ...


class UserIndexed(SessionStore, t.Protocol):
    """:attr:`Capability.USER_INDEX`."""

    def user_sids(self, user_id: str) -> c.Iterable[str]:
        """Return the ids of sessions last saved with ``user_id``.

        Every live session saved with that user id is included. Ids of sessions since
        deleted, expired or saved for another user may be included too: the core loads each
        one and checks before it acts.
        """
        ...


class StoreFactory(t.Protocol):
    """What a ``flask_serverside.stores`` entry point names: a store class with a
    ``from_settings`` class method and its declared capabilities.

    Two more class attributes are optional; ``flask session stores``, the "not installed"
    message and ``init_app``'s check of the configuration read them:

    ``url_schemes: tuple[str, ...]``
        Which of the class's entry-point names are URL schemes (``SESSION_TYPE =
        "redis://..."``) rather than store names (``SESSION_TYPE = "redis"``). A name may be
        both: list it here and it is shown as a scheme, and as the store's name when the class
        has no other. Without it, the store's main name (the one its distribution is named
        after, else the first in alphabetical order) is its store name and every other name a
        URL scheme, as ``docs/authoring.md`` recommends registering them.
    ``config_keys: tuple[str, ...]``
        Every configuration key the store reads (``("SESSION_REDIS",)``). ``init_app`` logs a
        warning for a ``SESSION_*`` key that neither the core, Flask nor the store reads but is
        close to one that is (``SESSION_REDIS_URL``: did you mean ``SESSION_REDIS``?). Without
        it, only the core's and Flask's keys are known.

    Both must be tuples of strings when present; anything else is refused like a missing
    ``from_settings``.

    ``flask_session_encoding: str``
        For a store with a Flask-Session 0.8 counterpart, how Flask-Session stores a session
        there, which the compatibility write mode (:attr:`.StoreSettings.compat_flask_session`)
        must match: ``"msgspec"`` (the default; its redis, memcached, mongodb, sqlalchemy and
        dynamodb types), and the core hands the store Flask-Session's own encoding
        (:mod:`~flask_serverside.compat`); or ``"pickle"`` (its filesystem and cachelib types
        pickle the session dict), and the core hands the store its own records, which the
        store turns into Flask-Session's pickles with :func:`~flask_serverside.
        dump_legacy_pickle` (and reads back with :func:`~flask_serverside.load_legacy_pickle`,
        which never unpickles). Anything else is refused like a missing ``from_settings``.

    .. versionchanged:: 0.2
        The optional ``url_schemes``, ``config_keys`` and ``flask_session_encoding``
        attributes.
    """

    capabilities: Capability

    def from_settings(self, settings: StoreSettings) -> SessionStore:
        """Build the store from the application's settings.

        :raises ConfigurationError: when the settings are missing or wrong; the message says
            which key to set and how.
        """
        ...
