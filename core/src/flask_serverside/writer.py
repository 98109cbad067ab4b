"""Every write decision: what a request's session does to its store when the request ends.

:meth:`SessionWriter.commit` applies the write policy:

* nothing is stored for an empty session; a stored session that became empty (or was
  destroyed) is deleted, with the record of the id it replaced;
* the data is written only when it changed, nested changes included (the encoded session is
  compared with the record it was loaded from); a new session is created under a fresh id;
* an unchanged session only has its expiry refreshed, when ``SESSION_REFRESH_EACH_REQUEST``
  asks for it and the load did not already do it: with ``touch`` where the store has it, else
  by writing the same bytes again (conditionally, so it cannot erase a concurrent write).

Concurrency: two requests of one session often run at once (two tabs, parallel XHRs). Each
loads the record, changes some keys and saves. Saving the whole dict blindly makes the slower
request erase what the faster one wrote; that is the lost update Flask-Session has. With a store
that offers :attr:`~flask_serverside.Capability.CONDITIONAL_SAVE`, the writer saves only if the
record is still the version the request loaded. When another request saved in between, it
reloads the record, re-applies this request's own changes key by key (keys it set or changed,
keys it deleted) on top of the other request's data, and tries again. So two requests changing
different keys both land; when both change the same key, the later save wins. A session deleted
by another request meanwhile (logout) is not brought back. Without the capability the save is
unconditional: the last writer wins, as in Flask-Session.

:meth:`SessionWriter.revoke_user` deletes every session of a user ("log out everywhere").
"""

from __future__ import annotations

import enum
import logging
import typing as t

from . import signals
from .exceptions import ConfigurationError
from .exceptions import CorruptRecord
from .exceptions import WriteConflict
from .store import Capability

if t.TYPE_CHECKING:
    import collections.abc as c

    from .session import ServerSideSession
    from .state import SessionState
    from .store import ConditionallySavable
    from .store import Record
    from .store import Touchable
    from .store import UserIndexed

log = logging.getLogger("flask_serverside")

#: How many times a conditional save is retried after losing to another writer.
MAX_ATTEMPTS = 8


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
    #: Another request deleted the session meanwhile; it was not brought back.
    GONE = "gone"


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

    def __init__(self, state: SessionState) -> None:
        self.state = state
        capabilities = state.store.capabilities
        #: Whether saves are conditional (the store has ``save_if``): decided once.
        self.conditional = Capability.CONDITIONAL_SAVE in capabilities
        self._can_touch = Capability.TOUCH in capabilities
        self._user_id_key = state.config.user_id_key

    def user_id(self, data: c.Mapping[str, t.Any]) -> str | None:
        """Return the user id a session's data names (``SESSION_USER_ID_KEY``), as a string,
        or ``None``."""
        value = data.get(self._user_id_key)
        return None if value is None else str(value)

    # -- the end of a request ---------------------------------------------------------------

    def commit(self, session: ServerSideSession) -> Outcome:
        """Apply the write policy to ``session`` at the end of its request.

        :raises StoreError: when the store fails.
        :raises WriteConflict: when other writers won :data:`MAX_ATTEMPTS` times in a row.
        :raises TypeError: when the session holds a value that cannot be serialized.
        """
        store = self.state.store
        if session.is_empty():
            for sid in (session.sid if session.record else None, session.replaced_sid):
                if sid is not None:
                    store.delete(sid)
            if session.record or session.destroyed or session.stale_cookie or session.replaced_sid:
                return Outcome.DELETED
            return Outcome.NOTHING
        record = session.record
        ttl = self.state.config.ttl
        if record is not None and session.sid is not None and session.unchanged():
            payload, changed = record.data, False
        else:
            payload = self.state.serializer.dumps(session.data())
            changed = session.sid is None or record is None or payload != record.data
        if not changed:
            if self.state.config.refresh_each_request and not session.touched:
                self.refresh(session, payload, ttl)
            return Outcome.KEPT
        if not self.write(session, payload, ttl):
            return Outcome.GONE
        if session.replaced_sid is not None:
            store.delete(session.replaced_sid)
        return Outcome.SAVED

    def refresh(self, session: ServerSideSession, payload: bytes, ttl: int) -> None:
        """Refresh the expiry of an unchanged session: ``touch`` where the store can, else a
        rewrite of the same bytes (conditional where the store can, so that it cannot erase
        a concurrent write; one that loses needs no retry, since the winner's write refreshed
        the expiry too)."""
        sid = t.cast(str, session.sid)
        store = self.state.store
        if self._can_touch:
            t.cast("Touchable", store).touch(sid, ttl)
        elif self.conditional:
            t.cast("ConditionallySavable", store).save_if(
                sid, payload, ttl, expected=session.record, user_id=self.user_id(session.data())
            )
        else:
            store.save(sid, payload, ttl, user_id=self.user_id(session.data()))

    def write(self, session: ServerSideSession, payload: bytes, ttl: int) -> bool:
        """Save ``payload`` (the encoded ``session``) and give a new session its id.

        :returns: ``False`` when the session was deleted by another request meanwhile and was
            therefore not written.
        :raises StoreError: when the store fails.
        :raises WriteConflict: when other writers won :data:`MAX_ATTEMPTS` times in a row.
        """
        data = session.data()
        user_id = self.user_id(data)
        if session.sid is None:
            self._create(session, payload, ttl, user_id)
            return True
        store = self.state.store
        if not self.conditional:
            store.save(session.sid, payload, ttl, user_id=user_id)
            return True
        cas = t.cast("ConditionallySavable", store)
        expected = session.record
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if cas.save_if(session.sid, payload, ttl, expected=expected, user_id=user_id):
                self._conflicted(attempt, saved=True)
                return True
            current = store.load(session.sid)
            if current is None:
                log.info("session %s was deleted by another request; not saved", _tag(session))
                self._conflicted(attempt, saved=False)
                return False
            payload, user_id = self._rebase(session, data, current)
            expected = current
        self._conflicted(MAX_ATTEMPTS, saved=False)
        raise WriteConflict(f"session {_tag(session)} lost {MAX_ATTEMPTS} conditional saves")

    def _conflicted(self, attempts: int, *, saved: bool) -> None:
        """Send :data:`~.signals.write_conflicted` when a save had to be retried."""
        if attempts > 1 or not saved:
            signals.write_conflicted.send(self.state.app, attempts=attempts, saved=saved)

    def _create(
        self, session: ServerSideSession, payload: bytes, ttl: int, user_id: str | None
    ) -> None:
        store = self.state.store
        ids = self.state.ids
        if not self.conditional:
            session.sid = ids.generate()
            store.save(session.sid, payload, ttl, user_id=user_id)
            return
        cas = t.cast("ConditionallySavable", store)
        for _ in range(MAX_ATTEMPTS):
            sid = ids.generate()
            if cas.save_if(sid, payload, ttl, expected=None, user_id=user_id):
                session.sid = sid
                return
        raise WriteConflict("no unused session id was found")  # pragma: no cover

    def _rebase(
        self, session: ServerSideSession, ours: c.Mapping[str, t.Any], current: Record
    ) -> tuple[bytes, str | None]:
        serializer = self.state.serializer
        try:
            theirs = serializer.loads(current.data)
        except CorruptRecord:
            theirs = {}
        base = serializer.loads(session.record.data) if session.record is not None else {}
        merged = merge(base, ours, theirs)
        return serializer.dumps(merged), self.user_id(merged)

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
        for sid in list(t.cast("UserIndexed", store).user_sids(user_id)):
            record = store.load(sid)
            if record is None:
                continue
            try:
                data = self.state.serializer.loads(record.data)
            except CorruptRecord:
                continue
            if self.user_id(data) == str(user_id):
                store.delete(sid)
                deleted += 1
        return deleted


def _tag(session: ServerSideSession) -> str:
    """A short, non-secret handle for a session in log lines."""
    return f"{session.sid[:6]}…" if session.sid else "(new)"
