"""The configuration keys the core reads, their defaults, and their validation.

Keys and meanings are those of Flask-Session 0.8 and of Flask itself, so moving from
Flask-Session is a one-line import change. Store plugins read their own keys
(``SESSION_REDIS``, ``SESSION_FILE_DIR``, ...) from the same config; the core knows none of them.

================================  ===============  ============================================
key                               default           meaning
================================  ===============  ============================================
``SESSION_TYPE``                  ``filesystem``    the store's name, or a URL whose scheme names it
``SESSION_PERMANENT``             ``True``          new sessions are permanent (cookie with expiry)
``SESSION_USE_SIGNER``            ``False``         sign the id in the cookie with ``SECRET_KEY``
``SESSION_KEY_PREFIX``            ``session:``      prepended to every id in the store
``SESSION_ID_LENGTH``             ``32``            random bytes per id (16 to 192)
``SESSION_SERIALIZATION_FORMAT``  ``msgpack``       ``msgpack`` or ``json``; both are always read
``SESSION_CLEANUP_N_REQUESTS``    ``None``          purge expired records every N requests
``SESSION_ON_STORE_ERROR``        ``unavailable``   ``unavailable``: a request that needs the
                                                    session answers 503; ``empty``: it starts
                                                    with an empty session instead
``SESSION_USER_ID_KEY``           ``_user_id``      the session key naming the user (Flask-Login's)
``SESSION_BREAKER_WINDOW``        ``5``             seconds store calls fail fast after an outage
                                                    before one request probes again (``0``: off);
                                                    also the 503's ``Retry-After``
``SESSION_COMPAT_FLASK_SESSION``  ``False``         compatibility write mode: records are written
                                                    as Flask-Session 0.8 writes them, so its
                                                    workers and ours serve the same sessions
                                                    (a migration, a rollback)
================================  ===============  ============================================

Flask's own keys keep their meaning: ``SECRET_KEY``, ``SECRET_KEY_FALLBACKS``,
``PERMANENT_SESSION_LIFETIME``, ``SESSION_REFRESH_EACH_REQUEST`` and every
``SESSION_COOKIE_*`` key (name, domain, path, secure, httponly, samesite, partitioned).
"""

from __future__ import annotations

import dataclasses
import typing as t

from .codec import parse_key
from .exceptions import ConfigurationError
from .expiry import ttl_seconds
from .serialization import FORMATS
from .sid import MAX_ID_BYTES
from .sid import MIN_ID_BYTES

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask import Flask

#: The values ``SESSION_ON_STORE_ERROR`` accepts.
STORE_ERROR_POLICIES = ("unavailable", "empty")

DEFAULTS: c.Mapping[str, t.Any] = {
    "SESSION_TYPE": "filesystem",
    "SESSION_PERMANENT": True,
    "SESSION_USE_SIGNER": False,
    "SESSION_KEY_PREFIX": "session:",
    "SESSION_ID_LENGTH": 32,
    "SESSION_SERIALIZATION_FORMAT": "msgpack",
    "SESSION_CLEANUP_N_REQUESTS": None,
    "SESSION_ON_STORE_ERROR": "unavailable",
    "SESSION_USER_ID_KEY": "_user_id",
    "SESSION_BREAKER_WINDOW": 5,
    "SESSION_HASH_IDS": True,
    "SESSION_ID_HASH_KEY": None,
    "SESSION_ID_HASH_KEY_FALLBACKS": [],
    "SESSION_HASH_IDS_MIGRATION": True,
    "SESSION_ENCRYPTION_KEY": None,
    "SESSION_ENCRYPTION_MIGRATION": False,
    "SESSION_COMPAT_FLASK_SESSION": False,
}


@dataclasses.dataclass(frozen=True)
class SessionConfig:
    """The validated session configuration of one application."""

    store: str
    permanent: bool
    use_signer: bool
    key_prefix: str
    id_bytes: int
    serialization_format: str
    cleanup_n_requests: int | None
    on_store_error: str
    user_id_key: str
    refresh_each_request: bool
    #: ``PERMANENT_SESSION_LIFETIME`` in whole seconds: every record's time to live.
    ttl: int
    #: ``SESSION_BREAKER_WINDOW``: seconds store calls fail fast after an outage.
    breaker_window: float
    #: ``SESSION_HASH_IDS``: records are stored under keyed hashes of their ids.
    hash_ids: bool
    #: ``SESSION_HASH_IDS_MIGRATION``: older keys and raw ids are looked up too.
    hash_migration: bool
    #: ``SESSION_ENCRYPTION_KEY``, parsed: the keys, the sealing one first; empty for none.
    encryption_keys: tuple[bytes, ...]
    #: ``SESSION_ENCRYPTION_MIGRATION``: plain records are accepted too.
    encryption_migration: bool
    #: ``SESSION_COMPAT_FLASK_SESSION``: write records Flask-Session 0.8 reads as its own
    #: (see :attr:`.StoreSettings.compat_flask_session`), under the raw ids.
    #:
    #: .. versionadded:: 0.2
    compat_flask_session: bool = False

    @classmethod
    def from_app(cls, app: Flask) -> SessionConfig:
        """Read and check the application's configuration.

        :raises ConfigurationError: naming the key that is wrong and what it should be.
        """
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        config = app.config
        store = config["SESSION_TYPE"]
        if not isinstance(store, str) or not store.strip():
            raise ConfigurationError(
                "SESSION_TYPE must name a session store (such as 'redis' or 'filesystem') or be"
                f" a URL such as 'redis://localhost:6379/0', not {store!r}."
            )
        id_bytes = config["SESSION_ID_LENGTH"]
        if not _is_int(id_bytes) or not MIN_ID_BYTES <= id_bytes <= MAX_ID_BYTES:
            raise ConfigurationError(
                f"SESSION_ID_LENGTH must be a whole number of random bytes from {MIN_ID_BYTES}"
                f" to {MAX_ID_BYTES} (32 is the default), not {id_bytes!r}."
            )
        _check_choice(config, "SESSION_SERIALIZATION_FORMAT", FORMATS)
        _check_choice(config, "SESSION_ON_STORE_ERROR", STORE_ERROR_POLICIES)
        cleanup = config["SESSION_CLEANUP_N_REQUESTS"]
        if cleanup is not None and (not _is_int(cleanup) or cleanup < 1):
            raise ConfigurationError(
                "SESSION_CLEANUP_N_REQUESTS must be None (purge from the CLI or a scheduler)"
                f" or a whole number of requests of at least 1, not {cleanup!r}."
            )
        prefix = config["SESSION_KEY_PREFIX"]
        if not isinstance(prefix, str):
            raise ConfigurationError(f"SESSION_KEY_PREFIX must be a string, not {prefix!r}.")
        user_id_key = config["SESSION_USER_ID_KEY"]
        if not isinstance(user_id_key, str) or not user_id_key:
            raise ConfigurationError(
                f"SESSION_USER_ID_KEY must be a non-empty string, not {user_id_key!r}."
            )
        lifetime = app.permanent_session_lifetime
        if lifetime.total_seconds() <= 0:
            raise ConfigurationError(
                "PERMANENT_SESSION_LIFETIME must be positive: every stored session expires"
                " after it."
            )
        window = config["SESSION_BREAKER_WINDOW"]
        if isinstance(window, bool) or not isinstance(window, (int, float)) or not window >= 0:
            raise ConfigurationError(
                "SESSION_BREAKER_WINDOW must be a number of seconds, 0 to turn the circuit"
                f" breaker off (5 is the default), not {window!r}."
            )
        for key in (
            "SESSION_HASH_IDS",
            "SESSION_HASH_IDS_MIGRATION",
            "SESSION_ENCRYPTION_MIGRATION",
        ):
            if not isinstance(config[key], bool):
                raise ConfigurationError(f"{key} must be True or False, not {config[key]!r}.")
        compat = config["SESSION_COMPAT_FLASK_SESSION"]
        if not isinstance(compat, bool):
            raise ConfigurationError(
                "SESSION_COMPAT_FLASK_SESSION must be True (write records Flask-Session 0.8"
                f" reads, while it still serves some requests) or False, not {compat!r}."
            )
        hash_key = config["SESSION_ID_HASH_KEY"]
        hash_fallbacks = config["SESSION_ID_HASH_KEY_FALLBACKS"] or []
        if hash_key is not None and (not isinstance(hash_key, (str, bytes)) or not hash_key):
            raise ConfigurationError(
                "SESSION_ID_HASH_KEY must be a non-empty string or bytes (a random secret of"
                f" its own), or None to derive one from SECRET_KEY, not {hash_key!r}."
            )
        if not isinstance(hash_fallbacks, (list, tuple)) or not all(
            isinstance(key, (str, bytes)) and key for key in hash_fallbacks
        ):
            raise ConfigurationError(
                "SESSION_ID_HASH_KEY_FALLBACKS must be a list of the previous"
                " SESSION_ID_HASH_KEY values, most recent first."
            )
        encryption = config["SESSION_ENCRYPTION_KEY"]
        if encryption is None:
            encryption_keys: tuple[bytes, ...] = ()
        elif isinstance(encryption, (list, tuple)):
            if not encryption:
                raise ConfigurationError("SESSION_ENCRYPTION_KEY is an empty list.")
            encryption_keys = tuple(parse_key(key) for key in encryption)
        else:
            encryption_keys = (parse_key(encryption),)
        if compat and encryption_keys:
            raise ConfigurationError(
                "SESSION_COMPAT_FLASK_SESSION writes records Flask-Session 0.8 reads, and it"
                " cannot read encrypted ones: unset SESSION_ENCRYPTION_KEY while the mode is"
                " on, and set it once no Flask-Session worker is left."
            )
        use_signer = bool(config["SESSION_USE_SIGNER"])
        if use_signer and not app.secret_key:
            raise ConfigurationError(
                "SESSION_USE_SIGNER = True needs a SECRET_KEY to sign session ids with: set"
                " app.config['SECRET_KEY'] (for example to secrets.token_hex()) before"
                " Session(app), or set SESSION_USE_SIGNER = False."
            )
        return cls(
            store=store.strip(),
            permanent=bool(config["SESSION_PERMANENT"]),
            use_signer=use_signer,
            key_prefix=prefix,
            id_bytes=id_bytes,
            serialization_format=config["SESSION_SERIALIZATION_FORMAT"],
            cleanup_n_requests=cleanup,
            on_store_error=config["SESSION_ON_STORE_ERROR"],
            user_id_key=user_id_key,
            refresh_each_request=bool(config["SESSION_REFRESH_EACH_REQUEST"]),
            ttl=ttl_seconds(lifetime),
            breaker_window=float(window),
            hash_ids=config["SESSION_HASH_IDS"],
            hash_migration=config["SESSION_HASH_IDS_MIGRATION"],
            encryption_keys=encryption_keys,
            encryption_migration=config["SESSION_ENCRYPTION_MIGRATION"],
            compat_flask_session=compat,
        )


def _is_int(value: object) -> t.TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_choice(config: c.Mapping[str, t.Any], key: str, choices: tuple[str, ...]) -> None:
    if config[key] not in choices:
        allowed = ", ".join(repr(choice) for choice in choices)
        raise ConfigurationError(f"{key} must be one of {allowed}, not {config[key]!r}.")
