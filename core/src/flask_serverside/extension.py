"""The Flask extension: ``Session(app)`` or ``Session().init_app(app)``.

``init_app`` reads and checks the configuration, finds the store ``SESSION_TYPE`` names, builds
it, installs :class:`~.interface.ServerSideSessionInterface` as ``app.session_interface``,
registers the ``flask session`` CLI group, and keeps its state in
``app.extensions["serverside"]``. Every misconfiguration fails here, with a message that says
how to fix it.
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import current_app

from .cli import session_cli
from .commit import SessionWriter
from .config import SessionConfig
from .exceptions import ConfigurationError
from .exceptions import CorruptRecord
from .exceptions import StorePluginError
from .interface import ServerSideSessionInterface
from .registry import resolve_store
from .serialization import SessionSerializer
from .sid import SessionIds
from .signing import SidSigner
from .store import Capability
from .store import StoreSettings
from .store import missing_methods

if t.TYPE_CHECKING:
    from flask import Flask

    from .store import SessionStore
    from .store import UserIndexed

#: The key of this extension in ``app.extensions``.
EXTENSION_KEY = "serverside"


@dataclasses.dataclass
class SessionState:
    """What ``app.extensions["serverside"]`` holds for one application."""

    #: The validated configuration.
    config: SessionConfig
    #: The entry-point name (or URL scheme) the store was found under.
    store_name: str
    #: The store.
    store: SessionStore
    #: The session interface installed on the application.
    interface: ServerSideSessionInterface

    def revoke_user(self, user_id: str) -> int:
        """Delete every session of ``user_id`` ("log out everywhere").

        Each candidate the store's user index returns is loaded and checked, so a session that
        has since passed to another user is left alone.

        :returns: how many sessions were deleted.
        :raises ConfigurationError: when the store keeps no user index.
        """
        if Capability.USER_INDEX not in self.store.capabilities:
            raise ConfigurationError(
                f"the {self.store_name!r} session store keeps no index of sessions by user, so"
                " it cannot revoke a user's sessions"
            )
        store = t.cast("UserIndexed", self.store)
        deleted = 0
        for sid in list(store.user_sids(user_id)):
            record = store.load(sid)
            if record is None:
                continue
            try:
                data = self.interface.serializer.loads(record.data)
            except CorruptRecord:
                continue
            if self.interface.writer.user_id(data) == str(user_id):
                store.delete(sid)
                deleted += 1
        return deleted

    def close(self) -> None:
        """Release the store's connections, if it holds any."""
        close = getattr(self.store, "close", None)
        if callable(close):
            close()


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

        :raises ConfigurationError: when the configuration is wrong or the store is missing.
        """
        config = SessionConfig.from_app(app)
        name, factory = resolve_store(config.store)
        settings = StoreSettings(
            name=name,
            config=app.config,
            key_prefix=config.key_prefix,
            url=config.store if "://" in config.store else None,
            lifetime=config.ttl,
            app=app,
        )
        store = factory.from_settings(settings)
        missing = missing_methods(store)
        if missing:
            raise StorePluginError(
                name, factory, f"it lacks {', '.join(missing)} for what it declares"
            )
        serializer = SessionSerializer(config.serialization_format)
        ids = SessionIds(config.id_bytes)
        signer = SidSigner(config.signing_keys) if config.use_signer else None
        writer = SessionWriter(store, serializer, ids, config.user_id_key)
        interface = ServerSideSessionInterface(store, config, serializer, ids, writer, signer)
        app.session_interface = interface
        app.extensions[EXTENSION_KEY] = SessionState(config, name, store, interface)
        if "session" not in app.cli.commands:
            app.cli.add_command(session_cli)


def get_state(app: Flask | None = None) -> SessionState:
    """Return the session state of ``app``, or of the current application.

    :raises RuntimeError: when :class:`Session` was not set up on it.
    """
    target = app if app is not None else current_app
    try:
        return t.cast(SessionState, target.extensions[EXTENSION_KEY])
    except KeyError:
        raise RuntimeError(
            "flask-serverside is not set up on this application: call Session(app) first"
        ) from None


def revoke_user_sessions(user_id: str, app: Flask | None = None) -> int:
    """Delete every session of ``user_id``; see :meth:`SessionState.revoke_user`.

    .. versionadded:: 0.1
    """
    return get_state(app).revoke_user(user_id)
