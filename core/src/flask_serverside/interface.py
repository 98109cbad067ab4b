"""The Flask side: :class:`ServerSideSessionInterface` opens and saves sessions per request.

Opening: the cookie value must be a well-formed id (and carry a valid signature when
``SESSION_USE_SIGNER`` is on) before the store is asked; anything else, and any id the store
does not know, gives a new empty session (strict mode: a client never chooses its id). With
``SESSION_REFRESH_EACH_REQUEST`` and a store that can, the record's expiry is refreshed in the
same round trip as the load.

Saving: :meth:`.SessionWriter.commit` applies the write policy and says what it did; this
module turns that into the cookie (set, removed with the attributes it was set with, or left
alone) and adds ``Vary: Cookie`` whenever the session was read or written in any way.

Faults (``SESSION_ON_STORE_ERROR``): a store error while loading gives a session that answers
503 when touched (``"unavailable"``) or an empty one (``"empty"``); a record that cannot be
decoded gives an empty session and a warning; a changed session that cannot be saved turns the
response into a 503, never a silent loss. Every fault is logged on ``flask_serverside``.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
import typing as t

from flask.sessions import SessionInterface

from .exceptions import CorruptRecord
from .exceptions import SessionUnavailable
from .session import ServerSideSession
from .session import UnavailableSession
from .signing import SIGNATURE_LENGTH
from .store import Capability
from .writer import Outcome

if t.TYPE_CHECKING:
    from flask import Flask
    from flask import Request
    from flask import Response
    from flask.sessions import SessionMixin

    from .state import SessionState
    from .store import LoadAndTouchable
    from .store import Purgeable
    from .store import Record

log = logging.getLogger("flask_serverside")

#: Seconds between two tracebacks of store faults in the log.
TRACEBACK_INTERVAL = 60.0


class ServerSideSessionInterface(SessionInterface):
    """Keeps Flask's session in a :class:`~flask_serverside.store.SessionStore`.

    Built by :class:`~flask_serverside.Session`; reuses Flask's ``get_cookie_*``,
    ``get_expiration_time`` and ``should_set_cookie``.

    .. versionchanged:: 0.2
        Takes the application's :class:`~flask_serverside.SessionState`, which owns the store,
        serializer, ids, signer and writer.
    """

    session_class = ServerSideSession

    def __init__(self, state: SessionState) -> None:
        #: The application's session machinery: store, serializer, ids, signer, writer.
        self.state = state
        config = state.config
        capabilities = state.store.capabilities
        self._touch_on_load = (
            config.refresh_each_request and Capability.LOAD_AND_TOUCH in capabilities
        )
        self._purge_every = config.cleanup_n_requests if Capability.PURGE in capabilities else None
        self._requests = itertools.count(1)
        self._last_traceback = -TRACEBACK_INTERVAL
        # The longest cookie value that can be well formed; longer ones are not even parsed.
        self._max_cookie = state.ids.length + (SIGNATURE_LENGTH if state.signer is not None else 0)

    # -- opening -----------------------------------------------------------------------------

    def parse_cookie(self, value: str | None) -> str | None:
        """Return the session id a cookie value carries, or ``None`` when it is missing,
        malformed, oversized or badly signed."""
        if not value or len(value) > self._max_cookie:
            return None
        sid: str | None = value
        signer = self.state.signer
        if signer is not None:
            sid = signer.unsign(value)
        if sid is None or not self.state.ids.is_valid(sid):
            return None
        return sid

    def open_session(self, app: Flask, request: Request) -> ServerSideSession:
        raw = request.cookies.get(self.get_cookie_name(app))
        sid = self.parse_cookie(raw)
        if sid is None:
            return self._new_session(stale_cookie=raw is not None)
        try:
            record = self._load(sid)
        except Exception:
            self._log_fault("session store failed to load a session")
            if self.state.config.on_store_error == "empty":
                return self._new_session(stale_cookie=False)
            return UnavailableSession()
        if record is None:
            return self._new_session(stale_cookie=True)
        try:
            data = self.state.serializer.loads(record.data)
        except CorruptRecord as exc:
            log.warning("session %s… has a corrupt record, starting a new one: %s", sid[:6], exc)
            return self._new_session(stale_cookie=True)
        session = self.session_class(data, sid=sid, record=record)
        session.touched = self._touch_on_load
        return session

    def _load(self, sid: str) -> Record | None:
        store = self.state.store
        if self._touch_on_load:
            return t.cast("LoadAndTouchable", store).load_and_touch(sid, self.state.config.ttl)
        return store.load(sid)

    def _new_session(self, *, stale_cookie: bool) -> ServerSideSession:
        session = self.session_class()
        if self.state.config.permanent:
            dict.__setitem__(session, "_permanent", True)
        session.stale_cookie = stale_cookie
        return session

    def get_cookie_samesite(self, app: Flask) -> str | None:
        """``SESSION_COOKIE_SAMESITE``, with ``Lax`` where Flask's default (``None``) would send
        no SameSite attribute; set it to ``False`` to send none."""
        value = app.config["SESSION_COOKIE_SAMESITE"]
        if value is None:
            return "Lax"
        return value or None

    # -- saving ------------------------------------------------------------------------------

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        cookie_sent = False
        if isinstance(session, ServerSideSession) and not isinstance(session, UnavailableSession):
            try:
                cookie_sent = self._save(app, session, response)
            except Exception as exc:
                self._log_fault("session store failed to save a session")
                self._unavailable(app, response, exc)
            if self._purge_every and next(self._requests) % self._purge_every == 0:
                self._purge()
        if session.accessed or cookie_sent:
            response.vary.add("Cookie")

    def _save(self, app: Flask, session: ServerSideSession, response: Response) -> bool:
        """Commit the session and set or delete its cookie; return whether the cookie was set
        or deleted."""
        outcome = self.state.writer.commit(session)
        if outcome is Outcome.DELETED or outcome is Outcome.GONE:
            self._delete_cookie(app, response)
            return True
        if outcome is Outcome.SAVED:
            session.modified = True
        if outcome is not Outcome.NOTHING and self.should_set_cookie(app, session):
            self._set_cookie(app, session, response)
            return True
        return False

    def _set_cookie(self, app: Flask, session: ServerSideSession, response: Response) -> None:
        sid = t.cast(str, session.sid)
        signer = self.state.signer
        value = signer.sign(sid) if signer is not None else sid
        response.set_cookie(
            self.get_cookie_name(app),
            value,
            expires=self.get_expiration_time(app, session),
            httponly=self.get_cookie_httponly(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
            partitioned=self.get_cookie_partitioned(app),
        )

    def _delete_cookie(self, app: Flask, response: Response) -> None:
        response.delete_cookie(
            self.get_cookie_name(app),
            domain=self.get_cookie_domain(app),
            path=self.get_cookie_path(app),
            secure=self.get_cookie_secure(app),
            samesite=self.get_cookie_samesite(app),
            httponly=self.get_cookie_httponly(app),
            partitioned=self.get_cookie_partitioned(app),
        )

    def _unavailable(self, app: Flask, response: Response, cause: Exception) -> None:
        """Turn ``response`` into the application's 503 for :class:`SessionUnavailable`."""
        error = SessionUnavailable()
        error.__cause__ = cause
        replacement = app.make_response(app.handle_http_exception(error))
        response.status_code = replacement.status_code
        response.headers = replacement.headers
        response.response = replacement.response

    def _log_fault(self, message: str) -> None:
        """Log a store fault being handled: every fault gets an error line, but a traceback
        only once per :data:`TRACEBACK_INTERVAL` seconds, so an outage does not flood logs."""
        now = time.monotonic()
        if now - self._last_traceback >= TRACEBACK_INTERVAL:
            self._last_traceback = now
            log.exception(message)
        else:
            error = sys.exc_info()[1]
            log.error("%s: %s: %s", message, type(error).__name__, error)

    def _purge(self) -> None:
        try:
            removed = t.cast("Purgeable", self.state.store).purge_expired()
        except Exception:
            self._log_fault("purging expired sessions failed")
        else:
            log.debug("purged %d expired sessions", removed)

    # -- public API --------------------------------------------------------------------------

    def regenerate(self, session: SessionMixin) -> None:
        """Flask-Session's API: give ``session`` a new id, see
        :meth:`ServerSideSession.regenerate`."""
        if isinstance(session, ServerSideSession):
            session.regenerate()
