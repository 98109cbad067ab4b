"""Every write decision: what a request's session does to its store when the request ends.

:meth:`SessionWriter.commit` applies the write policy:

* nothing is stored for an empty session; a stored session that became empty (or was
  destroyed) is deleted, with the record of the id it replaced;
* the data is written only when it changed, nested changes included (the encoded session is
  compared with the record it was loaded from); a new session is created under a fresh id
  (another one when the first falls on a store node that is down);
* an unchanged session only has its expiry refreshed, when ``SESSION_REFRESH_EACH_REQUEST``
  asks for it and the load did not already do it: with ``touch`` where the store has it, else
  by writing the same bytes again (conditionally, so it cannot erase a concurrent write).

**Concurrency.** Two requests of one session often run at once (two tabs, parallel XHRs). Each
loads the record, changes some keys and saves. Saving the whole dict blindly makes the slower
request erase what the faster one wrote; that is the lost update Flask-Session has. With a store
that offers :attr:`~flask_serverside.Capability.CONDITIONAL_SAVE`, the writer saves only if the
record is still the version the request loaded. When another request saved in between, it
reloads the record, re-applies this request's own changes key by key (keys it set or changed,
keys it deleted) on top of the other request's data, and tries again. So two requests changing
different keys both land; when both change the same key, the later save wins. A store with
:attr:`~flask_serverside.Capability.SAVE_IF_OR_LOAD` returns the record a save lost to in the
same round trip, so the merge needs no reload (a retry after a pause loads it again: the record
returned before the pause is likely outdated). Within one process
the commits of one session take turns (a lock per session, striped, held only around the
commit, never across the view), so threads do not make each other retry; across processes a
losing save is retried at once (twice, :data:`IMMEDIATE_RETRIES`), then after a jittered,
exponentially growing pause, until :attr:`deadline <SessionWriter.deadline>` seconds have passed
(then :class:`~flask_serverside.WriteConflict`, a 503). A save that lost to a request which
stored the same changes is not made again. A session deleted by another request meanwhile
(logout) is not brought back, and the request leaves the cookie alone. Without the capability
the save is unconditional: the last writer wins, as in Flask-Session.

**Regeneration.** On a store with conditional saves, the id a session had before
:meth:`~flask_serverside.ServerSideSession.regenerate` is not simply deleted: its record is
replaced, for :data:`FORWARD_SECONDS`, by a forwarding record naming the new id. A request that
loaded the old record before the regeneration and saves after it follows the forward and merges
its changes into the session under the new id (and sends no cookie change, so it never undoes the
new cookie). A request that *loads* a forwarding record is never shown the new session (that
would defeat regeneration against session fixation): it sees an empty session, and if it tries
to store anything it answers 409 (:class:`~flask_serverside.SessionRenewed`) without touching
the cookie. A destroyed session is deleted outright and stays destroyed.

**Compatibility write mode** (``SESSION_COMPAT_FLASK_SESSION``). Flask-Session 0.8 workers
may read any record, so the writer leaves nothing behind that they cannot read: the id a
session had before a regeneration is deleted, as Flask-Session deletes it, never replaced by
a forwarding record. Where the core encodes records as Flask-Session does
(:attr:`.SessionSerializer.compat`), a session the view did not modify is encoded too, and a
record that still holds this project's own encoding (written before the mode was on) is
rewritten in Flask-Session's: a rollback then finds every session its workers can read.

:meth:`SessionWriter.revoke_user` deletes every session of a user ("log out everywhere");
:meth:`SessionWriter.rewrite` rewrites one stored record as records are written now (``flask
session rewrite``, before a rollback to Flask-Session).
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import time
import typing as t

from . import signals
from .exceptions import ConfigurationError
from .exceptions import CorruptRecord
from .exceptions import NodeUnavailable
from .exceptions import SessionRenewed
from .exceptions import WriteConflict
from .serialization import SessionSerializer
from .store import Capability

if t.TYPE_CHECKING:
    import collections.abc as c

    from .session import ServerSideSession
    from .state import SessionState
    from .store import ConditionallySavable
    from .store import Record
    from .store import SavableOrLoadable
    from .store import Touchable
    from .store import UserIndexed

log = logging.getLogger("flask_serverside")

#: The first bytes of a forwarding record: never the start of a MessagePack map, JSON text or
#: pickle, so no session record can be mistaken for one.
FORWARD_PREFIX = b"\xc1\x7fforward:"
#: Seconds a forwarding record stays after a regeneration (at most the session lifetime).
FORWARD_SECONDS = 60
#: How many forwards a save follows (a session regenerated again meanwhile).
MAX_FORWARDS = 3
#: Retries of a lost conditional save made at once, before the pauses start: two requests of
#: one session rarely collide three times in a row, and a pause costs a wake-up that a busy
#: machine delays (the tail of two workers writing one session).
IMMEDIATE_RETRIES = 2
#: The first pause before retrying a conditional save, in seconds; it doubles with each retry.
BACKOFF_START = 0.002
#: The longest pause between two retries, in seconds.
BACKOFF_CAP = 0.1
#: How many fresh ids a new session tries when the node of the previous one is down.
NODE_ATTEMPTS = 8


class _Unread:
    """The record a lost save did not return (the store has no ``save_if_or_load``)."""


_UNREAD = _Unread()


def forward_target(data: bytes) -> str | None:
    """Return the id a forwarding record points to, or ``None`` for any other record."""
    if data.startswith(FORWARD_PREFIX):
        return data[len(FORWARD_PREFIX) :].decode("ascii", "replace")
    return None


class Outcome(enum.Enum):
    """What :meth:`SessionWriter.commit` did, which decides the cookie."""

    #: Nothing was stored and nothing was there: no cookie change is needed.
    NOTHING = "nothing"
    #: The record was deleted (or there was none to keep): remove the cookie.
    DELETED = "deleted"
    #: The data was written (or created): the cookie names the session.
    SAVED = "saved"
    #: The data was unchanged; its expiry may have been refreshed.
    KEPT = "kept"
    #: Another request deleted the session meanwhile; it was not brought back. The cookie is
    #: left alone: the request that deleted it has dealt with it.
    GONE = "gone"
    #: Another request regenerated the session meanwhile; the changes were saved under its new
    #: id. The cookie is left alone: the regenerating request sets the new one.
    MOVED = "moved"


class _StripedLocks:
    """A fixed set of locks, one picked by a key's hash: the commits of one session take
    turns within a process, while different sessions rarely share a lock."""

    def __init__(self, stripes: int = 64) -> None:
        self._locks = [threading.Lock() for _ in range(stripes)]

    def __call__(self, key: str) -> threading.Lock:
        return self._locks[hash(key) % len(self._locks)]


def merge(
    base: c.Mapping[str, t.Any], ours: c.Mapping[str, t.Any], theirs: c.Mapping[str, t.Any]
) -> dict[str, t.Any]:
    """Apply the changes from ``base`` to ``ours`` onto ``theirs``, key by key.

    A key counts as changed when it is new in ``ours`` or its value differs from ``base``
    (nested changes included); a key in ``base`` missing from ``ours`` was deleted.
    """
    merged = dict(theirs)
    for key, value in ours.items():
        if key not in base or base[key] != value:
            merged[key] = value
    for key in base:
        if key not in ours:
            merged.pop(key, None)
    return merged


class SessionWriter:
    """Writes the sessions of one application to its store under the policy above.

    It reads the store, serializer and ids from ``state`` at each call, so replacing
    ``state.store`` (a test spy) replaces it everywhere.
    """

    #: Seconds a commit keeps retrying conditional saves that lose to other writers before it
    #: gives up with :class:`~flask_serverside.WriteConflict`.
    deadline: float = 3.0

    def __init__(self, state: SessionState) -> None:
        self.state = state
        capabilities = state.store.capabilities
        #: Whether saves are conditional (the store has ``save_if``): decided once.
        self.conditional = Capability.CONDITIONAL_SAVE in capabilities
        #: Whether a lost save returns the record it lost to (``save_if_or_load``).
        self.returning = self.conditional and Capability.SAVE_IF_OR_LOAD in capabilities
        self._can_touch = Capability.TOUCH in capabilities
        self._user_id_key = state.config.user_id_key
        self._locks = _StripedLocks()

    def user_id(self, data: c.Mapping[str, t.Any]) -> str | None:
        """Return the user id a session's data names (``SESSION_USER_ID_KEY``), as a string,
        or ``None``."""
        value = data.get(self._user_id_key)
        return None if value is None else str(value)

    # -- the end of a request ---------------------------------------------------------------

    def commit(self, session: ServerSideSession) -> Outcome:
        """Apply the write policy to ``session`` at the end of its request.

        :raises StoreError: when the store fails.
        :raises WriteConflict: when other writers kept winning for :attr:`deadline` seconds.
        :raises SessionRenewed: when the session's cookie named a session another request had
            regenerated, and the view stored something in the empty session it was given.
        :raises TypeError: when the session holds a value that cannot be serialized.
        """
        store = self.state.store
        if session.superseded:
            if session.is_empty():
                return Outcome.NOTHING  # leave the cookie: the new one is on its way
            raise SessionRenewed()
        if session.is_empty():
            for key in (session.key if session.record else None, session.replaced_key):
                if key is not None:
                    store.delete(key)
            if session.record or session.destroyed or session.stale_cookie or session.replaced_key:
                return Outcome.DELETED
            return Outcome.NOTHING
        ttl = self.state.config.ttl
        data = session.data()
        if session.rekey is not None:  # found under an older key: move it, changed or not
            if self.state.serializer.compat and not session.modified:
                plain, _ = self._recode(session)
            else:
                plain = self.state.serializer.dumps(data)
            return self._move(session, plain, ttl, self.user_id(data))
        if self.state.serializer.compat and session.record is not None and not session.modified:
            plain, changed = self._recode(session)
        elif session.record is not None and session.key is not None and session.unchanged():
            changed = False
        else:
            plain = self.state.serializer.dumps(data)
            changed = session.key is None or session.record is None or plain != session.plain
        if not changed:
            if self.state.config.refresh_each_request and not session.touched:
                self.refresh(session, ttl)
            return Outcome.KEPT
        user_id = self.user_id(data)
        if session.key is None:
            replaced = session.replaced_key
            if replaced is None:
                self._create(session, plain, ttl, user_id)
                return Outcome.SAVED
            with self._locks(replaced):
                self._create(session, plain, ttl, user_id)
                self._retire(session, replaced, ttl)
            return Outcome.SAVED
        if not self.conditional:
            store.save(session.key, self.state.codec.seal(session.key, plain), ttl, user_id=user_id)
            return Outcome.SAVED
        with self._locks(session.key):
            return self._apply(session.key, session, plain, user_id, ttl, session.record, ours=data)

    def _recode(self, session: ServerSideSession) -> tuple[bytes, bool]:
        """In the compatibility write mode, return a session the view did not modify encoded
        as Flask-Session encodes it, and whether that differs from its record (a nested
        change, or a record written in this project's encoding). A value Flask-Session cannot
        hold (a ``Markup`` saved before the mode was on) leaves the record as it is when the
        session provably still holds what was loaded.

        :raises TypeError: when it cannot be encoded and changed in place.
        """
        data = session.data()
        loaded = t.cast(bytes, session.plain)
        try:
            plain = self.state.serializer.dumps(data)
        except (TypeError, ValueError):
            if session.unchanged() or _own_encoding(data, self.state.serializer) == loaded:
                return loaded, False
            raise
        return plain, plain != loaded

    def refresh(self, session: ServerSideSession, ttl: int) -> None:
        """Refresh the expiry of an unchanged session: ``touch`` where the store can, else a
        rewrite of the same bytes (conditional where the store can, so that it cannot erase
        a concurrent write; one that loses needs no retry, since the winner's write refreshed
        the expiry too)."""
        key = t.cast(str, session.key)
        record = t.cast("Record", session.record)
        store = self.state.store
        user_id = self.user_id(session.data())
        if self._can_touch:
            t.cast("Touchable", store).touch(key, ttl)
        elif self.conditional:
            t.cast("ConditionallySavable", store).save_if(
                key, record.data, ttl, expected=record, user_id=user_id
            )
        else:
            store.save(key, record.data, ttl, user_id=user_id)

    def _apply(
        self,
        key: str,
        session: ServerSideSession,
        plain: bytes | None,
        user_id: str | None,
        ttl: int,
        expected: Record | None,
        *,
        ours: c.Mapping[str, t.Any] | None = None,
    ) -> Outcome:
        """Save the session's changes under ``key`` with conditional saves, merging onto what
        other writers saved meanwhile and following forwards, until one lands.

        :param plain: the encoded session, to try first against ``expected``; ``None`` to start
            by loading ``key`` and merging onto it.
        :param ours: the data whose changes (from ``session.record``) to apply; the session's
            own data by default.
        """
        state = self.state
        store = state.store
        cas = t.cast("ConditionallySavable", store)
        returning = t.cast("SavableOrLoadable", store) if self.returning else None
        base: c.Mapping[str, t.Any] | None = None
        started = time.monotonic()
        attempt = forwards = 0
        outcome = Outcome.SAVED
        while True:
            current: Record | None | _Unread = _UNREAD
            if plain is not None:
                attempt += 1
                sealed = state.codec.seal(key, plain)
                if returning is not None:
                    saved, current = returning.save_if_or_load(
                        key, sealed, ttl, expected=expected, user_id=user_id
                    )
                else:
                    saved = cas.save_if(key, sealed, ttl, expected=expected, user_id=user_id)
                if saved:
                    self._conflicted(attempt, saved=True)
                    return outcome
                if time.monotonic() - started > self.deadline:
                    self._conflicted(attempt, saved=False)
                    raise WriteConflict(
                        f"session {_short(key)} lost {attempt} conditional saves in"
                        f" {self.deadline:g} s"
                    )
                if attempt > IMMEDIATE_RETRIES:
                    time.sleep(_backoff(attempt - IMMEDIATE_RETRIES + 1))
                    # What the lost save returned is older than the pause: under contention
                    # another request has likely saved meanwhile, so merge onto a fresh load.
                    current = _UNREAD
            if isinstance(current, _Unread):
                current = store.load(key)
            theirs, target = self._open(key, current)
            while target is not None and forwards < MAX_FORWARDS:
                forwards += 1
                key, outcome = target, Outcome.MOVED
                current = store.load(key)
                theirs, target = self._open(key, current)
            if current is None or target is not None:
                log.info("session %s was deleted by another request; not saved", _short(key))
                self._conflicted(attempt, saved=False)
                return Outcome.GONE
            if base is None:
                base = self._loads(session.plain)
            merged = merge(base, session.data() if ours is None else ours, theirs)
            if merged == theirs:
                # Every change of this request is in the store already (another request made
                # the same ones): the save that would rewrite it is not needed.
                self._conflicted(attempt, saved=True)
                return outcome
            plain, user_id = state.serializer.dumps(merged), self.user_id(merged)
            expected = current

    def _conflicted(self, attempts: int, *, saved: bool) -> None:
        """Send :data:`~.signals.write_conflicted` when a save had to be retried."""
        if attempts > 1 or not saved:
            signals.write_conflicted.send(self.state.app, attempts=attempts, saved=saved)

    def _create(
        self, session: ServerSideSession, plain: bytes, ttl: int, user_id: str | None
    ) -> None:
        """Store a new session under a new id. An id whose node is down
        (:class:`~flask_serverside.NodeUnavailable`) is traded for another, up to
        :data:`NODE_ATTEMPTS` times, so new sessions land on the nodes that answer."""
        state = self.state
        keys = state.keys()
        cas = t.cast("ConditionallySavable", state.store)
        attempt = 0
        while True:  # an id is 128 bits or more of randomness: a collision is never expected
            sid = state.ids.generate()
            key = keys.key(sid)
            sealed = state.codec.seal(key, plain)
            attempt += 1
            try:
                if not self.conditional:
                    state.store.save(key, sealed, ttl, user_id=user_id)
                elif not cas.save_if(key, sealed, ttl, expected=None, user_id=user_id):
                    continue
            except NodeUnavailable:
                if attempt >= NODE_ATTEMPTS:
                    raise
                continue
            break
        session.sid, session.key = sid, key

    def _move(
        self, session: ServerSideSession, plain: bytes, ttl: int, user_id: str | None
    ) -> Outcome:
        """Write a session found under an older key (:attr:`~.ServerSideSession.rekey`) to its
        current key, then delete the older record."""
        old, new = t.cast(str, session.key), t.cast(str, session.rekey)
        store = self.state.store
        with self._locks(old):
            if self.conditional:
                outcome = self._apply(new, session, plain, user_id, ttl, None)
            else:
                store.save(new, self.state.codec.seal(new, plain), ttl, user_id=user_id)
                outcome = Outcome.SAVED
            store.delete(old)
        session.key, session.rekey = new, None
        return outcome

    def _retire(self, session: ServerSideSession, old: str, ttl: int) -> None:
        """Replace the record of ``old``, the key ``session`` had before it was regenerated, by
        a forwarding record to its new key; or delete it (a destroyed session, a store without
        conditional saves, the compatibility write mode). Changes another request saved under
        ``old`` after this request loaded it are carried over to the new key first, so none is
        lost."""
        state = self.state
        store = state.store
        if (
            not self.conditional
            or session.destroyed
            or session.record is None
            or state.config.compat_flask_session  # Flask-Session cannot read a forward
        ):
            store.delete(old)
            return
        cas = t.cast("ConditionallySavable", store)
        new = t.cast(str, session.key)
        forward = state.codec.seal(old, FORWARD_PREFIX + new.encode("ascii"))
        expected: Record = session.record
        lifetime = min(FORWARD_SECONDS, ttl)
        started = time.monotonic()
        while not cas.save_if(old, forward, lifetime, expected=expected):
            if time.monotonic() - started > self.deadline:
                store.delete(old)  # writers keep saving the old key: retire it the hard way
                return
            current = store.load(old)
            theirs, target = self._open(old, current)
            if current is None or target is not None:
                return  # deleted or retired meanwhile
            # Another request saved under the old key after this one loaded it: its changes
            # (from the record both loaded) go to the new key, then the old key is retired.
            self._apply(new, session, None, None, ttl, None, ours=theirs)
            expected = current

    def _open(self, key: str, record: Record | None) -> tuple[dict[str, t.Any], str | None]:
        """Decode a record loaded under ``key``: its data, or the key it forwards to."""
        if record is None:
            return {}, None
        try:
            plain = self.state.codec.open(key, record.data)
        except CorruptRecord:
            return {}, None
        target = forward_target(plain)
        if target is not None:
            return {}, target
        try:
            return self.state.serializer.loads(plain), None
        except CorruptRecord:
            return {}, None

    def _loads(self, plain: bytes | None) -> dict[str, t.Any]:
        """The data of the record the session was loaded from (its plain bytes)."""
        if plain is None:
            return {}
        try:
            return self.state.serializer.loads(plain)
        except CorruptRecord:
            return {}

    # -- rewriting stored records ---------------------------------------------------------------

    def rewrite(self, key: str) -> bool:
        """Rewrite the record stored under ``key`` (a store key, as the store lists them) as
        records are written now, unless it is so already: in the compatibility write mode, in
        Flask-Session 0.8's encoding (a store that keeps another layout converts the record as
        it loads it), so that Flask-Session can read it after a rollback; otherwise in this
        project's (sealed, with ``SESSION_ENCRYPTION_KEY``). The session gets a whole
        ``PERMANENT_SESSION_LIFETIME`` to live. A forwarding record, a record that cannot be
        opened or decoded, and a session holding a value the current encoding cannot (a
        ``Markup`` in Flask-Session's) are left as they are. A record stays under its key:
        one under a hashed key (written while the mode was off) is moved to its id only by
        its user's next request, since a hash cannot be turned back into an id.

        .. versionadded:: 0.2

        :returns: whether the record was rewritten.
        :raises StoreError: when the store fails.
        """
        state = self.state
        store = state.store
        record = store.load(key)
        if record is None:
            return False
        try:
            plain = state.codec.open(key, record.data)
            if forward_target(plain) is not None:
                return False
            data = state.serializer.loads(plain)
            fresh = state.serializer.dumps(data)
        except (CorruptRecord, TypeError, ValueError):
            return False
        if fresh == plain and (record.data != plain or not state.codec.encrypting):
            return False  # already encoded, and sealed if records are
        sealed, ttl, user_id = state.codec.seal(key, fresh), state.config.ttl, self.user_id(data)
        if not self.conditional:
            store.save(key, sealed, ttl, user_id=user_id)
            return True
        cas = t.cast("ConditionallySavable", store)
        return cas.save_if(key, sealed, ttl, expected=record, user_id=user_id)

    # -- log out everywhere -------------------------------------------------------------------

    def revoke_user(self, user_id: str) -> int:
        """Delete every session of ``user_id`` ("log out everywhere").

        Each candidate the store's user index returns is loaded and checked, so a session that
        has since passed to another user is left alone.

        :returns: how many sessions were deleted.
        :raises ConfigurationError: when the store keeps no user index.
        """
        store = self.state.store
        if Capability.USER_INDEX not in store.capabilities:
            raise ConfigurationError(
                f"the {self.state.store_name!r} session store keeps no index of sessions by"
                " user, so it cannot revoke a user's sessions"
            )
        deleted = 0
        for key in list(t.cast("UserIndexed", store).user_sids(user_id)):
            data, _ = self._open(key, store.load(key))
            if self.user_id(data) == str(user_id):
                store.delete(key)
                deleted += 1
        return deleted


def _own_encoding(data: c.Mapping[str, t.Any], serializer: SessionSerializer) -> bytes | None:
    """``data`` in this project's own encoding (as written outside the compatibility write
    mode), or ``None`` when it cannot be encoded."""
    try:
        return SessionSerializer(serializer.format).dumps(data)
    except (TypeError, ValueError):
        return None


def _short(key: str) -> str:
    """A short, non-secret handle for a session in log lines."""
    return f"{key[:6]}…"


def _backoff(attempt: int) -> float:
    """The pause before the ``attempt - 1``-th paused retry (``attempt`` 2 or more): full
    jitter over an exponentially growing ceiling, so writers that collided do not collide
    again in step."""
    ceiling = min(BACKOFF_CAP, BACKOFF_START * 2 ** (attempt - 2))
    return random.uniform(0, ceiling)
