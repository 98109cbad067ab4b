"""The Flask extension: ``Session(app)`` or ``Session().init_app(app)``.

``init_app`` reads and checks the configuration, builds the store ``SESSION_TYPE`` names
(:func:`~.loader.build_store`), installs :class:`~.interface.ServerSideSessionInterface` as
``app.session_interface``, and keeps the application's :class:`~.state.SessionState` in
``app.extensions["serverside"]``. Every misconfiguration fails here, with a message that says
how to fix it. The ``flask session`` commands are registered once, through the
``flask.commands`` entry point.
"""

from __future__ import annotations

import typing as t

from .config import SessionConfig
from .hints import warn_about_misspelt_keys
from .interface import ServerSideSessionInterface
from .loader import build_store
from .serialization import SessionSerializer
from .sid import SessionIds
from .state import EXTENSION_KEY
from .state import SessionState
from .state import get_state

if t.TYPE_CHECKING:
    from flask import Flask

    from .store import SessionStore


class Session:
    """Server-side sessions for a Flask application.

    ::

        app.config["SESSION_TYPE"] = "redis"
        app.config["SESSION_REDIS"] = redis.Redis.from_url("redis://localhost:6379/0")
        Session(app)

    :param app: the application to set up now; or call :meth:`init_app` later.
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Set up server-side sessions on ``app``.

        A ``SESSION_*`` key that nothing reads but that is close to one that is read is
        logged as a warning (:mod:`~flask_serverside.hints`).

        :raises ConfigurationError: when the configuration is wrong or the store is missing.

        .. versionchanged:: 0.2
            Warns about misspelt configuration keys.
        """
        config = SessionConfig.from_app(app)
        name, store = build_store(config, app)
        warn_about_misspelt_keys(app.config, name, store)
        state = SessionState(
            app,
            config,
            name,
            store,
            SessionSerializer(config.serialization_format, compat=_compat_encoding(config, store)),
            SessionIds(config.id_bytes),
        )
        app.extensions[EXTENSION_KEY] = state
        app.session_interface = ServerSideSessionInterface(state)


def _compat_encoding(config: SessionConfig, store: SessionStore) -> bool:
    """Whether the core encodes records as Flask-Session 0.8 does: in the compatibility write
    mode, unless the store converts the core's records itself (its ``flask_session_encoding``
    is ``"pickle"``: Flask-Session's filesystem and cachelib types pickle the session dict)."""
    encoding = getattr(store, "flask_session_encoding", "msgspec")
    return config.compat_flask_session and encoding == "msgspec"


def revoke_user_sessions(user_id: str, app: Flask | None = None) -> int:
    """Delete every session of ``user_id``; see :meth:`.SessionWriter.revoke_user`.

    .. versionadded:: 0.1
    """
    return get_state(app).revoke_user(user_id)
