"""The Flask side: :class:`ServerSideSessionInterface` opens and saves sessions per request.

Opening: the cookie value must be a well-formed id (and carry a valid signature when
``SESSION_USE_SIGNER`` is on) before the store is asked; anything else gives a new empty
session. A well-formed id gives a session that loads its record on first access (one round
trip; with ``SESSION_REFRESH_EACH_REQUEST`` and a store that can, the record's expiry is
refreshed in the same round trip). An id the store does not know gives a new empty session
(strict mode: a client never chooses its id).

Saving: a session the view never touched costs nothing (no store call, no cookie change, no
``Vary``). Otherwise :meth:`.SessionWriter.commit` applies the write policy and says what it
did; this module turns that into the cookie (set, removed with the attributes it was set with,
or left alone) and adds ``Vary: Cookie`` when the view accessed the session or the cookie
changed. A cookie whose signature is not the one the application signs with now (see
:attr:`.ServerSideSession.cookie`) is set again whenever the session is saved or kept.
Reads the interface itself makes while saving do not count.

Faults (``SESSION_ON_STORE_ERROR``), store faults only (:class:`~flask_serverside.StoreError`
and :class:`~flask_serverside.WriteConflict`; see :mod:`~flask_serverside.guard`): a store
error while loading makes the first access answer 503 (``"unavailable"``) or gives a new empty
session with a new id, leaving the record it could not load alone (``"empty"``); a record that
cannot be decoded gives an empty session and a warning; a changed session that cannot be saved
turns the response into a 503, never a silent loss. Every fault is logged on
``flask_serverside`` and sent as a :mod:`~flask_serverside.signals` signal. Any other error
(an unserializable value, a bad cookie setting) is the application's and propagates as in
Flask.
"""

from __future__ import annotations

import itertools
import logging
import sys
import time
import typing as t

from flask.sessions import SessionInterface

from . import signals
from .exceptions import CorruptRecord
from .exceptions import SessionRenewed
from .exceptions import SessionUnavailable
from .exceptions import StoreError
from .exceptions import WriteConflict
from .session import PERMANENT_KEY
from .session import ServerSideSession
from .signing import SIGNATURE_LENGTH
from .store import Capability
from .writer import Outcome
from .writer import forward_target

if t.TYPE_CHECKING:
    from flask import Flask
    from flask import Request
    from flask import Response
    from flask.sessions import SessionMixin
    from werkzeug.exceptions import HTTPException

    from .state import SessionState
    from .store import LoadAndTouchable
    from .store import Purgeable
    from .store import Record

log = logging.getLogger("flask_serverside")

#: Seconds between two tracebacks of store faults in the log.
TRACEBACK_INTERVAL = 60.0


def cookie_value(request: Request, name: str) -> str | None:
    """Return the value of the first cookie called ``name`` the request carries, or ``None``.

    The same value as ``request.cookies.get(name)``, without building the dict of every
    cookie (that parse is a large part of a request that never touches its session). A
    header of plain ``name=value`` pairs, which is what browsers send, is read here; anything
    else (quoted values, tabs or blanks inside a pair, non-ASCII text) goes through
    Werkzeug's parser, as ``request.cookies`` does.
    """
    header: str | None = request.environ.get("HTTP_COOKIE")
    if not header:
        return None
    if header.isascii() and '"' not in header and "\t" not in header:
        for pair in header.split(";"):
            key, _, value = pair.strip(" ").partition("=")
            if key.rstrip(" ") == name:
                value = value.lstrip(" ")
                if " " not in value and " " not in name:
                    return value
                break  # blanks inside the pair: Werkzeug's parser decides
        else:
            return None
    return request.cookies.get(name)


class ServerSideSessionInterface(SessionInterface):
    """Keeps Flask's session in a :class:`~flask_serverside.store.SessionStore`.

    Built by :class:`~flask_serverside.Session`; reuses Flask's ``get_cookie_*``,
    ``get_expiration_time`` and ``should_set_cookie``.

    .. versionchanged:: 0.2
        Takes the application's :class:`~flask_serverside.SessionState`, which owns the store,
        serializer, ids, signers and writer; sessions load on first access.
    """

    session_class = ServerSideSession

    def __init__(self, state: SessionState) -> None:
        #: The application's session machinery: store, serializer, ids, signers, writer.
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
        self._max_cookie = state.ids.length + (SIGNATURE_LENGTH if config.use_signer else 0)
        self._use_signer = config.use_signer
        self._is_valid = state.ids.is_valid
        self._loader = self._load  # bound once: sessions opened from a cookie keep it

    # -- opening -----------------------------------------------------------------------------

    def parse_cookie(self, value: str | None) -> str | None:
        """Return the session id a cookie value carries, or ``None`` when it is missing,
        malformed, oversized or badly signed."""
        if not value or len(value) > self._max_cookie:
            return None
        sid: str | None = value
        if self._use_signer:
            signer = self.state.signer()
            sid = signer.unsign(value) if signer is not None else None
            if sid is None:
                return None
        return sid if self._is_valid(t.cast(str, sid)) else None

    def open_session(self, app: Flask, request: Request) -> ServerSideSession:
        raw = cookie_value(request, self.get_cookie_name(app))
        sid = self.parse_cookie(raw)
        if sid is None:
            session = self.session_class()
            self._start_fresh(session, stale_cookie=raw is not None)
            return session
        return self.session_class.opened(sid, t.cast(str, raw), self._loader)

    def _load(self, session: ServerSideSession) -> None:
        """Fill ``session`` from its record, on its first access.

        :raises SessionUnavailable: when the store fails and the policy is ``unavailable``.
        """
        sid = t.cast(str, session.sid)
        state = self.state
        keys = state.keys()
        key = found = keys.key(sid)
        try:
            record = self._fetch(key)
            for older in keys.older_keys(sid) if record is None else ():
                record, found = self._fetch(older), older
                if record is not None:
                    break
        except StoreError:
            self._log_fault("session store failed to load a session")
            if state.config.on_store_error == "empty":
                # A new session with a new id: the record it could not load stays as it is.
                self._start_fresh(session, stale_cookie=False)
                return
            raise SessionUnavailable(retry_after=state.breaker.retry_after()) from None
        if record is None:
            self._start_fresh(session, stale_cookie=True)
            return
        try:
            plain = state.codec.open(found, record.data)
            if forward_target(plain) is not None:
                # Regenerated by another request: never shown here (session fixation), and the
                # cookie is left for the regenerating request to replace.
                self._start_fresh(session, stale_cookie=False)
                session.superseded = True
                return
            data = state.serializer.loads(plain)
        except CorruptRecord as exc:
            log.warning("session %s… has a corrupt record, starting a new one: %s", sid[:6], exc)
            signals.record_corrupt.send(state.app, error=exc)
            try:
                state.store.delete(found)  # so it is never refreshed nor read again
            except StoreError:
                self._log_fault("session store failed to delete a corrupt record")
            self._start_fresh(session, stale_cookie=True)
            return
        session.fill(data, sid=sid, key=found, record=record, plain=plain)
        if found != key:
            session.rekey = key  # found under an older key: the next write moves it
        session.touched = self._touch_on_load

    def _fetch(self, key: str) -> Record | None:
        store = self.state.store
        if self._touch_on_load:
            return t.cast("LoadAndTouchable", store).load_and_touch(key, self.state.config.ttl)
        return store.load(key)

    def _start_fresh(self, session: ServerSideSession, *, stale_cookie: bool) -> None:
        """Make ``session`` a new, empty session (it gets an id when it is first saved)."""
        data = {PERMANENT_KEY: True} if self.state.config.permanent else {}
        session.fill(data, sid=None, record=None)
        session.stale_cookie = stale_cookie

    def get_cookie_samesite(self, app: Flask) -> str | None:
        """``SESSION_COOKIE_SAMESITE``, with ``Lax`` where Flask's default (``None``) would send
        no SameSite attribute; set it to ``False`` to send none."""
        value = app.config["SESSION_COOKIE_SAMESITE"]
        if value is None:
            return "Lax"
        return value or None

    # -- saving ------------------------------------------------------------------------------

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not isinstance(session, ServerSideSession) or not session.loaded:
            return  # never touched (or its load failed): nothing to save, no cookie change
        # Only the view's accesses count for Vary: the reads below (session.permanent) do not.
        accessed = session.accessed
        cookie_sent = False
        try:
            cookie_sent = self._save(app, session, response)
        except (StoreError, WriteConflict) as exc:
            self._log_fault("session store failed to save a session")
            error = SessionUnavailable(retry_after=self.state.breaker.retry_after())
            error.__cause__ = exc
            self._replace(app, response, error)
        except SessionRenewed as exc:
            log.info("a request of a regenerated session tried to store data; answered 409")
            self._replace(app, response, exc)
        if self._purge_every and next(self._requests) % self._purge_every == 0:
            self._purge()
        if accessed or cookie_sent:
            response.vary.add("Cookie")

    def _save(self, app: Flask, session: ServerSideSession, response: Response) -> bool:
        """Commit the session and set or delete its cookie; return whether the cookie was set
        or deleted."""
        outcome = self.state.writer.commit(session)
        if outcome is Outcome.DELETED:
            self._delete_cookie(app, response)
            return True
        if outcome is Outcome.NOTHING or outcome is Outcome.GONE or outcome is Outcome.MOVED:
            return False  # nothing to say, or another request's response says it
        if outcome is Outcome.SAVED:
            session.modified = True
        value = self._cookie_for(t.cast(str, session.sid))
        if self.should_set_cookie(app, session) or value != session.cookie:
            self._set_cookie(app, session, response, value)
            return True
        return False

    def _cookie_for(self, sid: str) -> str:
        """The cookie value the application sends for ``sid`` now: the id, signed when
        ``SESSION_USE_SIGNER`` is on."""
        signer = self.state.signer()
        return signer.sign(sid) if signer is not None else sid

    def _set_cookie(
        self, app: Flask, session: ServerSideSession, response: Response, value: str
    ) -> None:
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

    def _replace(self, app: Flask, response: Response, error: HTTPException) -> None:
        """Turn ``response`` into the application's response for ``error``."""
        replacement = app.make_response(app.handle_http_exception(error))
        response.status_code = replacement.status_code
        response.headers = replacement.headers
        response.response = replacement.response

    def _log_fault(self, message: str) -> None:
        """Log the store fault being handled: every fault gets an error line, but a traceback
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
        except StoreError:
            self._log_fault("purging expired sessions failed")
        else:
            log.debug("purged %d expired sessions", removed)

    # -- public API --------------------------------------------------------------------------

    def regenerate(self, session: SessionMixin) -> None:
        """Flask-Session's API: give ``session`` a new id, see
        :meth:`ServerSideSession.regenerate`."""
        if isinstance(session, ServerSideSession):
            session.regenerate()
