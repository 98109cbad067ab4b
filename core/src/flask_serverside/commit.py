"""Writing a changed session to its store: the concurrency policy.

Two requests of one session often run at once (two tabs, parallel XHRs). Each loads the
record, changes some keys and saves. Saving the whole dict blindly makes the slower request
erase what the faster one wrote; that is the lost update Flask-Session has.

With a store that offers :attr:`~flask_serverside.Capability.CONDITIONAL_SAVE`, the writer saves
only if the record is still the version the request loaded. When another request saved in
between, it reloads the record, re-applies this request's own changes key by key (keys it set or
changed, keys it deleted) on top of the other request's data, and tries again. So two requests
changing different keys both land; when both change the same key, the later save wins.
A session deleted by another request meanwhile (logout) is not brought back.

Without the capability the save is unconditional: the last writer wins, as in Flask-Session.
"""

from __future__ import annotations

import logging
import typing as t

from .exceptions import CorruptRecord
from .exceptions import WriteConflict
from .store import Capability

if t.TYPE_CHECKING:
    import collections.abc as c

    from .serialization import SessionSerializer
    from .session import ServerSideSession
    from .sid import SessionIds
    from .store import ConditionallySavable
    from .store import Record
    from .store import SessionStore

log = logging.getLogger("flask_serverside")

#: How many times a conditional save is retried after losing to another writer.
MAX_ATTEMPTS = 8


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
    """Saves sessions to one store under the policy above.

    :param user_id_key: the session key whose value is passed to the store as ``user_id``.
    """

    def __init__(
        self,
        store: SessionStore,
        serializer: SessionSerializer,
        ids: SessionIds,
        user_id_key: str,
    ) -> None:
        self.store = store
        self.serializer = serializer
        self.ids = ids
        self.user_id_key = user_id_key
        self.conditional = Capability.CONDITIONAL_SAVE in store.capabilities

    def user_id(self, data: c.Mapping[str, t.Any]) -> str | None:
        """Return the user id a session's data names, as a string, or ``None``."""
        value = data.get(self.user_id_key)
        return None if value is None else str(value)

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
        if not self.conditional:
            self.store.save(session.sid, payload, ttl, user_id=user_id)
            return True
        store = t.cast("ConditionallySavable", self.store)
        expected = session.record
        for _ in range(MAX_ATTEMPTS):
            if store.save_if(session.sid, payload, ttl, expected=expected, user_id=user_id):
                return True
            current = store.load(session.sid)
            if current is None:
                log.info("session %s was deleted by another request; not saved", _tag(session))
                return False
            payload, user_id = self._rebase(session, data, current)
            expected = current
        raise WriteConflict(f"session {_tag(session)} lost {MAX_ATTEMPTS} conditional saves")

    def _create(
        self, session: ServerSideSession, payload: bytes, ttl: int, user_id: str | None
    ) -> None:
        if not self.conditional:
            session.sid = self.ids.generate()
            self.store.save(session.sid, payload, ttl, user_id=user_id)
            return
        store = t.cast("ConditionallySavable", self.store)
        for _ in range(MAX_ATTEMPTS):
            sid = self.ids.generate()
            if store.save_if(sid, payload, ttl, expected=None, user_id=user_id):
                session.sid = sid
                return
        raise WriteConflict("no unused session id was found")  # pragma: no cover

    def _rebase(
        self, session: ServerSideSession, ours: c.Mapping[str, t.Any], current: Record
    ) -> tuple[bytes, str | None]:
        try:
            theirs = self.serializer.loads(current.data)
        except CorruptRecord:
            theirs = {}
        base = self.serializer.loads(session.record.data) if session.record is not None else {}
        merged = merge(base, ours, theirs)
        return self.serializer.dumps(merged), self.user_id(merged)


def _tag(session: ServerSideSession) -> str:
    """A short, non-secret handle for a session in log lines."""
    return f"{session.sid[:6]}…" if session.sid else "(new)"
