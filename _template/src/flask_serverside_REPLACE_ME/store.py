"""The REPLACE_ME session store.

Start with the three required operations and make the conformance kit pass; then add
capabilities one at a time, each with its flag in ``capabilities`` (see ``plugins_example/``
and ``docs/authoring.md``).
"""

from __future__ import annotations

import typing as t

from flask_serverside import Capability
from flask_serverside import ClientErrors
from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError
from flask_serverside import Record

if t.TYPE_CHECKING:
    from flask_serverside import StoreSettings

#: The client's exceptions in the core's terms: list its own classes (the most specific class
#: of an exception decides; any other exception is a bug and passes through).
_errors = ClientErrors(
    "REPLACE_ME",
    unavailable=(ConnectionError, TimeoutError),  # could not reach it, or it timed out
    failed=(OSError,),  # any other error of the client
)


def _connect(url: str) -> t.Any:
    """Make the client; it must be safe to use from several threads."""
    raise NotImplementedError("make the REPLACE_ME client for url")


class ReplaceMeStore:
    """Flask sessions in REPLACE_ME.

    :param url: where the server is.
    :param key_prefix: prepended to every session id.
    """

    #: Add each capability when its methods are in and the kit passes.
    capabilities: t.ClassVar[Capability] = Capability.NONE

    def __init__(self, url: str, *, key_prefix: str = "session:") -> None:
        self.url = url
        self.key_prefix = key_prefix
        #: The client: made on first use (so the application starts while the server is
        #: down) and closed by :meth:`close`. For a client the application passes in, use
        #: ``ClientHandle.given(client)``: the store then never closes it.
        self.client: ClientHandle[t.Any] = ClientHandle.built(connect=lambda: _connect(url))

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> ReplaceMeStore:
        """Read ``SESSION_REPLACE_ME_URL``, or the URL given as ``SESSION_TYPE``. Read other
        keys with the typed readers of :class:`~flask_serverside.StoreSettings`
        (``settings.seconds("SESSION_REPLACE_ME_TIMEOUT", 2.0)``): their errors name the key.

        :raises ConfigurationError: when neither is set; never fall back to a local server.
        """
        url = settings.url or settings.config.get("SESSION_REPLACE_ME_URL")
        if not url:
            raise ConfigurationError(
                "The REPLACE_ME session store needs a server: set SESSION_REPLACE_ME_URL ="
                " 'REPLACE_ME://host', or SESSION_TYPE to that URL."
            )
        return cls(url, key_prefix=settings.key_prefix)

    def load(self, sid: str) -> Record | None:
        with _errors("load a session"):
            raise NotImplementedError("return Record(data, version) or None; never an expired one")

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        with _errors("save a session"):
            raise NotImplementedError("store data under self.key_prefix + sid for ttl seconds")

    def delete(self, sid: str) -> None:
        with _errors("delete a session"):
            raise NotImplementedError("delete self.key_prefix + sid; a missing one is no error")

    def close(self) -> None:
        """Close the client if the store made it."""
        self.client.close()
