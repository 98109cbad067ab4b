"""Every error flask-serverside raises.

::

    SessionError
    ├── ConfigurationError          fails at init_app; the message says how to fix it
    │   ├── StoreNotFound           no store of that name or URL scheme is installed (also a
    │   │                           ValueError, as in Flask-Session)
    │   └── StorePluginError        a store plugin failed to import, or is not a store
    ├── StoreError                  a store could not do what was asked (raised by stores)
    │   └── StoreUnavailable        the backend is unreachable or timed out
    ├── CorruptRecord               a stored record cannot be decoded
    └── WriteConflict               concurrent writers kept winning; the write did not happen

    SessionUnavailable              HTTP 503 raised in a request (a werkzeug HTTPException,
                                    not a SessionError): the store is down
"""

from __future__ import annotations

import typing as t

from werkzeug.exceptions import ServiceUnavailable

if t.TYPE_CHECKING:
    import collections.abc as c


class SessionError(Exception):
    """Base class of every flask-serverside error."""


class ConfigurationError(SessionError):
    """The application's session configuration is missing or wrong.

    Raised by ``init_app`` (and by store factories) so that a misconfigured application fails
    at start-up, never at its first request.
    """


class StoreNotFound(ConfigurationError, ValueError):
    """``SESSION_TYPE`` names a store that is not installed.

    It is also a :class:`ValueError`, which Flask-Session raised for an unknown
    ``SESSION_TYPE``, so code written for Flask-Session catches it unchanged.

    :param name: the store name or URL scheme asked for.
    :param installed: the store names that are installed.
    :param hint: the distribution that provides ``name``, when it is a known one.
    :param schemes: the URL schemes that are installed.
    :param suggestions: installed names close to ``name`` (a likely misspelling).

    .. versionchanged:: 0.2
        Also a :class:`ValueError`; lists store names and URL schemes apart, and suggests
        close names.
    """

    def __init__(
        self,
        name: str,
        installed: c.Iterable[str],
        hint: str | None = None,
        *,
        schemes: c.Iterable[str] = (),
        suggestions: c.Iterable[str] = (),
    ) -> None:
        #: The store name or URL scheme that was asked for.
        self.name = name
        #: The store names that are installed.
        self.installed = sorted(installed)
        #: The URL schemes that are installed.
        self.schemes = sorted(schemes)
        #: Installed names close to :attr:`name`, closest first.
        self.suggestions = list(suggestions)
        message = f"No session store named {name!r} is installed."
        if self.suggestions:
            message += f" Did you mean {' or '.join(map(repr, self.suggestions))}?"
        message += f" Installed stores: {', '.join(self.installed) or 'none'}"
        if self.schemes:
            message += f"; URL schemes: {', '.join(self.schemes)}"
        message += "."
        if hint:
            message += f" Install it with: pip install {hint}"
        super().__init__(message)


class StorePluginError(ConfigurationError):
    """A store plugin failed to import, or what it registered is not a store.

    :param name: the entry-point name.
    :param plugin: what the entry point names (``module:attribute``), or the object.
    """

    def __init__(self, name: str, plugin: object, reason: str) -> None:
        #: The entry-point name of the plugin.
        self.name = name
        #: What the entry point points at.
        self.plugin = plugin
        #: What is wrong with it.
        self.reason = reason
        super().__init__(f"Session store plugin {name!r} ({plugin}) is broken: {reason}")


class StoreError(SessionError):
    """A store operation failed. Stores raise this (or a subclass) for backend failures,
    chaining the client library's exception as ``__cause__``."""


class StoreUnavailable(StoreError):
    """The backend is unreachable, refused the connection or timed out."""


class CorruptRecord(SessionError):
    """A stored record cannot be decoded into a session.

    :param reason: what is wrong with it.
    """


class WriteConflict(SessionError):
    """A conditional save lost to concurrent writers more times than the retry limit."""


class SessionUnavailable(ServiceUnavailable):
    """The session store cannot be reached, so the session cannot be loaded or saved.

    Raised inside a request (HTTP 503, with ``Retry-After``) when the view touches a session
    that could not be loaded, and turned into the response when a changed session could not
    be saved. Register ``@app.errorhandler(503)`` to render it your way.
    """

    description = "The session store is unavailable. Please try again shortly."

    def __init__(self, description: str | None = None, retry_after: int = 5) -> None:
        super().__init__(description, retry_after=retry_after)
