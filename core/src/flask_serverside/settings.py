"""What a store factory receives, and typed readers for the store's own configuration keys.

Every store reads a few keys of its own (``SESSION_FILE_THRESHOLD``, ``SESSION_MONGODB_TIMEOUT``,
...). The readers of :class:`StoreSettings` check a key's type and range and fail with a
:class:`~flask_serverside.ConfigurationError` that names the key, the value found, what is
expected and the default, so every store reports a wrong key the same way::

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> MyStore:
        return cls(
            settings.text("SESSION_MYSTORE_URL"),
            timeout=settings.seconds("SESSION_MYSTORE_TIMEOUT", 2.0),
            pool_size=settings.integer("SESSION_MYSTORE_POOL", 10, minimum=1),
            key_prefix=settings.key_prefix,
        )

A key that is missing, or set to ``None``, gives its default.

.. versionadded:: 0.2
"""

from __future__ import annotations

import dataclasses
import datetime
import typing as t

from .exceptions import ConfigurationError

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask import Flask

T = t.TypeVar("T")

_MISSING: t.Any = object()


@dataclasses.dataclass(frozen=True)
class StoreSettings:
    """What a store factory (``from_settings``) receives to build a store.

    A store reads its own configuration keys from :attr:`config`; the core knows none of them.

    .. versionchanged:: 0.2
        Typed readers (:meth:`integer`, :meth:`number`, :meth:`seconds`, :meth:`flag`,
        :meth:`text`); the unused ``lifetime`` attribute is gone (stores get the time to live
        with each call); :attr:`compat_flask_session`.
    """

    #: The entry-point name (or URL scheme) that selected the store.
    name: str
    #: The application's configuration, read only.
    config: c.Mapping[str, t.Any]
    #: ``SESSION_KEY_PREFIX``: prepended by the store to every session id it stores.
    key_prefix: str = "session:"
    #: The URL when the store was named by one (``SESSION_TYPE = "redis://..."``), else ``None``.
    url: str | None = None
    #: The application, for stores that need its context (Flask-SQLAlchemy binds); ``None``
    #: when the store is built outside an application.
    app: Flask | None = None
    #: ``SESSION_COMPAT_FLASK_SESSION``: the compatibility write mode, for a migration from
    #: Flask-Session 0.8 (or back to it) while workers of both serve the same users. The store
    #: then writes every record in Flask-Session 0.8's own layout, under its key, without a
    #: header of its own, so that Flask-Session reads it as one it wrote; it still reads both
    #: layouts, and keeps its conditional save where the backend allows one on that layout
    #: (comparing the stored data when Flask-Session's writes leave no version behind). The
    #: core does its part: it encodes the data as Flask-Session does (see the store's
    #: optional ``flask_session_encoding`` attribute, :class:`~flask_serverside.store.
    #: StoreFactory`), and deletes the old record on regeneration instead of leaving a
    #: forwarding record behind. A store without a Flask-Session counterpart ignores it.
    #:
    #: .. versionadded:: 0.2
    compat_flask_session: bool = False

    def _get(self, key: str, default: T) -> t.Any:
        value = self.config.get(key)
        return default if value is None else value

    def _wrong(self, key: str, value: object, expected: str, default: object) -> ConfigurationError:
        shown = "" if default is _MISSING else f" (default {default!r})"
        return ConfigurationError(f"{key} must be {expected}{shown}, not {value!r}.")

    def integer(self, key: str, default: int, *, minimum: int = 1) -> int:
        """Return ``key`` as a whole number of at least ``minimum``.

        :raises ConfigurationError: for a bool, a float, a string or a smaller number.
        """
        value = self._get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self._wrong(key, value, f"a whole number of at least {minimum}", default)
        return value

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        """Return ``key`` as a number (int or float) greater than ``minimum``.

        :raises ConfigurationError: for a bool, a string, ``nan`` or a number not above
            ``minimum``.
        """
        value = self._get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not value > minimum  # also refuses nan
        ):
            raise self._wrong(key, value, f"a number greater than {minimum:g}", default)
        return float(value)

    @t.overload
    def seconds(self, key: str, default: float) -> float: ...
    @t.overload
    def seconds(self, key: str, default: None) -> float | None: ...
    def seconds(self, key: str, default: float | None) -> float | None:
        """Return ``key`` as a positive duration in seconds: a number or a
        :class:`~datetime.timedelta`. With a ``None`` default, a missing key gives ``None``
        (no limit, the client's own behaviour); with a number, the result is a number.

        :raises ConfigurationError: for anything else, zero or a negative duration.
        """
        value = self.config.get(key)
        if value is None:
            return default
        if isinstance(value, datetime.timedelta):
            value = value.total_seconds()
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self._wrong(
                key,
                self.config.get(key),
                "a positive number of seconds or a timedelta",
                _MISSING if default is None else default,
            )
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        """Return ``key`` as ``True`` or ``False``; other values (``"false"``, ``1``) are
        refused rather than guessed.

        :raises ConfigurationError: when the value is not a bool.
        """
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._wrong(key, value, "True or False", default)
        return value

    def text(self, key: str, default: str | None = None) -> str:
        """Return ``key`` as a non-empty string; without a default the key is required.

        :raises ConfigurationError: when the key is missing and has no default, or is not a
            non-empty string.
        """
        value = self.config.get(key)
        if value is None:
            if default is None:
                raise ConfigurationError(f"{key} must be set for the {self.name!r} session store.")
            return default
        if not isinstance(value, str) or not value.strip():
            raise self._wrong(
                key, value, "a non-empty string", _MISSING if default is None else default
            )
        return value

    def choice(self, key: str, default: str, choices: c.Collection[str]) -> str:
        """Return ``key``, which must be one of ``choices``.

        :raises ConfigurationError: listing the choices.
        """
        value = self._get(key, default)
        if value not in choices:
            allowed = ", ".join(repr(choice) for choice in choices)
            raise self._wrong(key, value, f"one of {allowed}", default)
        return t.cast(str, value)
