"""What ``app.extensions["serverside"]`` holds: the single owner of an application's session
machinery.

:class:`SessionState` owns the store (behind its fault boundary and circuit breaker), the
serializer, the id generator, the store keys, the record codec, the signers and the writer.
The session interface, the CLI and the conformance kit's spy read them from it, so replacing
one (``state.store = spy``) replaces it everywhere.
"""

from __future__ import annotations

import logging
import typing as t

from flask import current_app

from . import signals
from .breaker import CircuitBreaker
from .codec import RecordCodec
from .exceptions import ConfigurationError
from .exceptions import CorruptRecord
from .guard import GuardedStore
from .keys import StoreKeys
from .keys import derive_key
from .signing import SidSigner
from .writer import SessionWriter
from .writer import forward_target

if t.TYPE_CHECKING:
    from flask import Flask

    from .config import SessionConfig
    from .exceptions import StoreError
    from .serialization import SessionSerializer
    from .sid import SessionIds
    from .store import Record
    from .store import SessionStore

log = logging.getLogger("flask_serverside")

#: The key of this extension in ``app.extensions``.
EXTENSION_KEY = "serverside"


class SessionState:
    """The session machinery of one application.

    :param app: the application; signals are sent with it as sender.
    :param store: the store the plugin built; kept behind a
        :class:`~flask_serverside.guard.GuardedStore`.

    .. versionchanged:: 0.2
        Owns the serializer, ids, signers, writer and circuit breaker (they were reached
        through ``state.interface``); :meth:`revoke_user` is the writer's.
    """

    def __init__(
        self,
        app: Flask,
        config: SessionConfig,
        store_name: str,
        store: SessionStore,
        serializer: SessionSerializer,
        ids: SessionIds,
    ) -> None:
        #: The application.
        self.app = app
        #: The validated configuration.
        self.config = config
        #: The entry-point name (or URL scheme) the store was found under.
        self.store_name = store_name
        #: Fails store calls fast after an outage (``SESSION_BREAKER_WINDOW``).
        self.breaker = CircuitBreaker(config.breaker_window, on_change=self._breaker_changed)
        #: The store, behind the fault boundary and the breaker.
        self.store: SessionStore = self.guard(store)
        #: Encodes and decodes records.
        self.serializer = serializer
        #: Generates and validates ids.
        self.ids = ids
        #: Seals and opens records (``SESSION_ENCRYPTION_KEY``).
        self.codec = RecordCodec(config.encryption_keys, accept_plain=config.encryption_migration)
        #: Applies the write and concurrency policy.
        self.writer = SessionWriter(self)
        self._signers: dict[tuple[str | bytes, ...], SidSigner] = {}
        self._keys: dict[tuple[t.Any, ...], StoreKeys] = {}
        if config.hash_ids and not self._hash_secrets():
            log.info(
                "session ids are stored as unkeyed SHA-256 hashes: set SECRET_KEY or"
                " SESSION_ID_HASH_KEY for keyed ones"
            )

    def _hash_secrets(self) -> list[str | bytes]:
        """The secrets of the hashing keys, current first: ``SESSION_ID_HASH_KEY`` and its
        fallbacks, else ``SECRET_KEY`` and its fallbacks."""
        config = self.app.config
        dedicated = config.get("SESSION_ID_HASH_KEY")
        if dedicated:
            return [dedicated, *(config.get("SESSION_ID_HASH_KEY_FALLBACKS") or ())]
        if not self.app.secret_key:
            return []
        return [self.app.secret_key, *(config.get("SECRET_KEY_FALLBACKS") or ())]

    def keys(self) -> StoreKeys:
        """The mapping from session ids to store keys for the application's current keys (see
        :mod:`~flask_serverside.keys`); built once per set of keys.

        .. versionadded:: 0.2
        """
        if not self.config.hash_ids:
            probe: tuple[t.Any, ...] = ()
        else:
            config = self.app.config
            dedicated = config.get("SESSION_ID_HASH_KEY")
            if dedicated:
                probe = (True, dedicated, *(config.get("SESSION_ID_HASH_KEY_FALLBACKS") or ()))
            elif config.get("SECRET_KEY"):
                probe = (False, config["SECRET_KEY"], *(config.get("SECRET_KEY_FALLBACKS") or ()))
            else:
                probe = (False,)
        keys = self._keys.get(probe)
        if keys is None:
            secrets = self._hash_secrets() if self.config.hash_ids else []
            dedicated_key = bool(self.app.config.get("SESSION_ID_HASH_KEY"))
            keys = self._keys[probe] = StoreKeys(
                hashing=self.config.hash_ids,
                keys=[
                    (secret.encode() if isinstance(secret, str) else secret)
                    if dedicated_key
                    else derive_key(secret)
                    for secret in secrets
                ],
                migration=self.config.hash_migration,
                compat=self.config.compat_flask_session,
            )
        return keys

    def store_key(self, sid: str) -> str:
        """The key the record of session ``sid`` is written under: ``keys().key(sid)``.

        .. versionadded:: 0.2
        """
        return self.keys().key(sid)

    def decode(self, key: str, record: Record) -> dict[str, t.Any]:
        """The session data of a record loaded under store key ``key``.

        :raises CorruptRecord: when it cannot be opened or decoded, or is a forwarding record.

        .. versionadded:: 0.2
        """
        plain = self.codec.open(key, record.data)
        if forward_target(plain) is not None:
            raise CorruptRecord("the record forwards to a regenerated session")
        return self.serializer.loads(plain)

    def guard(self, store: SessionStore) -> SessionStore:
        """Return ``store`` behind this application's fault boundary and circuit breaker
        (:class:`~flask_serverside.guard.GuardedStore`), as :attr:`store` is.

        .. versionadded:: 0.2
        """
        return t.cast(
            "SessionStore",
            GuardedStore(store, self.store_name, breaker=self.breaker, on_failure=self._failed),
        )

    def signer(self) -> SidSigner | None:
        """The signer for the application's current ``SECRET_KEY`` and
        ``SECRET_KEY_FALLBACKS``, or ``None`` when ``SESSION_USE_SIGNER`` is off.

        The keys are read at each call, as Flask does, so changing ``app.secret_key`` after
        ``Session(app)`` takes effect; a signer is built once per set of keys. In the
        compatibility write mode it signs as Flask-Session 0.8 does.

        :raises ConfigurationError: when signing is on and ``SECRET_KEY`` is now empty.
        """
        if not self.config.use_signer:
            return None
        secret = self.app.secret_key
        fallbacks = self.app.config.get("SECRET_KEY_FALLBACKS") or ()
        keys = (*(key for key in fallbacks if key), secret) if secret else ()
        signer = self._signers.get(keys)
        if signer is None:
            if not keys:
                raise ConfigurationError(
                    "SESSION_USE_SIGNER is on but SECRET_KEY is empty: set a secret key."
                )
            legacy = self.config.compat_flask_session
            signer = self._signers[keys] = SidSigner(keys, legacy=legacy)
        return signer

    def revoke_user(self, user_id: str) -> int:
        """Delete every session of ``user_id``; see :meth:`.SessionWriter.revoke_user`."""
        return self.writer.revoke_user(user_id)

    def close(self) -> None:
        """Release the store's connections, if it holds any."""
        close = getattr(self.store, "close", None)
        if callable(close):
            close()

    def _failed(self, operation: str, error: StoreError) -> None:
        signals.store_failed.send(self.app, operation=operation, error=error)

    def _breaker_changed(self, opened: bool) -> None:
        if opened:
            signals.breaker_opened.send(self.app, window=self.breaker.window)
        else:
            signals.breaker_closed.send(self.app)


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
