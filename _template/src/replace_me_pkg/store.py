"""The replace_me session store.

It works from the first minute: its backend is :class:`_StandIn`, a stand-in for a server that
keeps records in this process, so the conformance kit passes before anything else is written.
Make it yours in three steps, keeping the tests green after each:

1. Replace ``_StandIn`` with your backend's official client, created in ``from_settings`` from
   the URL (lazily, through :class:`~flask_serverside.ClientHandle`, so that an application
   starts while its server is down), and the three operations with the client's calls.
2. List the client's exception classes in ``_ERRORS``: connection failures and timeouts as
   ``unavailable``, the rest as ``failed``.
3. Start a real server in ``tests/conftest.py`` (``server_url``), then add capabilities one at
   a time, each with its flag in ``capabilities`` (see the flask-serverside author's guide and
   its example store, ``plugins_example/``, for every capability).
"""

from __future__ import annotations

import threading
import time
import typing as t

from flask_serverside import Capability
from flask_serverside import ClientErrors
from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError
from flask_serverside import Record

if t.TYPE_CHECKING:
    from flask_serverside import StoreSettings

#: The client's exceptions, in the core's terms (replace them with your client's classes).
_ERRORS = ClientErrors("replace_me", unavailable=(ConnectionError, TimeoutError), failed=(OSError,))


class _StandIn:
    """A stand-in for a replace_me server: one dict per URL, in this process, holding each key's
    bytes and expiry time. Replace it with your backend's client."""

    _servers: t.ClassVar[dict[str, dict[str, tuple[bytes, float]]]] = {}
    _lock = threading.Lock()

    def __init__(self, url: str) -> None:
        with self._lock:
            self._data = self._servers.setdefault(url, {})

    def get(self, key: str) -> tuple[bytes, float] | None:
        return self._data.get(key)

    def set(self, key: str, value: bytes, expires_at: float) -> None:
        self._data[key] = (value, expires_at)

    def delete(self, key: str) -> None:
        self._data.pop(key, None)

    def close(self) -> None:
        """Nothing to release."""


class ReplaceMeStore:
    """Flask sessions in replace_me.

    :param client: the client, owned by the store or by the application.
    :param key_prefix: prepended to every session id.
    """

    #: Add each capability when its methods are in and the kit passes.
    capabilities: t.ClassVar[Capability] = Capability.NONE
    #: The entry-point names that are URL schemes (``SESSION_TYPE = "replace_me://host"``).
    url_schemes: t.ClassVar[tuple[str, ...]] = ("replace_me",)
    #: Every configuration key the store reads (misspellings of them are reported).
    config_keys: t.ClassVar[tuple[str, ...]] = ("SESSION_REPLACE_ME_URL",)

    def __init__(self, client: ClientHandle[_StandIn], *, key_prefix: str = "session:") -> None:
        self._client = client
        self.key_prefix = key_prefix

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> ReplaceMeStore:
        """Read ``SESSION_REPLACE_ME_URL``, or the URL given as ``SESSION_TYPE``.

        :raises ConfigurationError: when neither is set; never fall back to a local server.
        """
        url = settings.url or settings.text("SESSION_REPLACE_ME_URL", "")
        if not url:
            raise ConfigurationError(
                "The replace_me session store needs a server: set SESSION_REPLACE_ME_URL ="
                " 'replace_me://host', or SESSION_TYPE to that URL."
            )
        client = ClientHandle.built(connect=lambda: _StandIn(url))
        return cls(client, key_prefix=settings.key_prefix)

    def load(self, sid: str) -> Record | None:
        with _ERRORS("load a session"):
            found = self._client.client.get(self.key_prefix + sid)
        if found is None or found[1] <= time.time():  # never return an expired record
            return None
        return Record(found[0])

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        with _ERRORS("save a session"):
            self._client.client.set(self.key_prefix + sid, data, time.time() + ttl)

    def delete(self, sid: str) -> None:
        with _ERRORS("delete a session"):
            self._client.client.delete(self.key_prefix + sid)

    def close(self) -> None:
        """Release the client, if the store built it."""
        self._client.close()
