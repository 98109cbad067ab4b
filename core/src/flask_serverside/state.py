"""What ``app.extensions["serverside"]`` holds: the single owner of an application's session
machinery.

:class:`SessionState` owns the store, the serializer, the id generator, the signer and the
writer. The session interface, the CLI and the conformance kit's spy read them from it, so
replacing one (``state.store = spy``) replaces it everywhere.
"""

from __future__ import annotations

import typing as t

from flask import current_app

from .writer import SessionWriter

if t.TYPE_CHECKING:
    from flask import Flask

    from .config import SessionConfig
    from .serialization import SessionSerializer
    from .sid import SessionIds
    from .signing import SidSigner
    from .store import SessionStore

#: The key of this extension in ``app.extensions``.
EXTENSION_KEY = "serverside"


class SessionState:
    """The session machinery of one application.

    .. versionchanged:: 0.2
        Owns the serializer, ids, signer and writer (they were reached through
        ``state.interface``); :meth:`revoke_user` is the writer's.
    """

    def __init__(
        self,
        config: SessionConfig,
        store_name: str,
        store: SessionStore,
        serializer: SessionSerializer,
        ids: SessionIds,
        signer: SidSigner | None,
    ) -> None:
        #: The validated configuration.
        self.config = config
        #: The entry-point name (or URL scheme) the store was found under.
        self.store_name = store_name
        #: The store, behind the fault boundary (:class:`~.loader.GuardedStore`).
        self.store = store
        #: Encodes and decodes records.
        self.serializer = serializer
        #: Generates and validates ids.
        self.ids = ids
        #: Signs ids when ``SESSION_USE_SIGNER`` is on.
        self.signer = signer
        #: Applies the write and concurrency policy.
        self.writer = SessionWriter(self)

    def revoke_user(self, user_id: str) -> int:
        """Delete every session of ``user_id``; see :meth:`.SessionWriter.revoke_user`."""
        return self.writer.revoke_user(user_id)

    def close(self) -> None:
        """Release the store's connections, if it holds any."""
        close = getattr(self.store, "close", None)
        if callable(close):
            close()


def get_state(app: Flask | None = None) -> SessionState:
    """Return the session state of ``app``, or of the current application.

    :raises RuntimeError: when :class:`~flask_serverside.Session` was not set up on it.
    """
    target = app if app is not None else current_app
    try:
        return t.cast(SessionState, target.extensions[EXTENSION_KEY])
    except KeyError:
        raise RuntimeError(
            "flask-serverside is not set up on this application: call Session(app) first"
        ) from None
