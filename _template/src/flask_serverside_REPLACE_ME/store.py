"""The REPLACE_ME session store.

Start with the three required operations and make the conformance kit pass; then add
capabilities one at a time, each with its flag in ``capabilities`` (see ``plugins_example/``
and ``docs/authoring.md``).
"""

from __future__ import annotations

import collections.abc as c
import contextlib
import typing as t

from flask_serverside import Capability
from flask_serverside import ConfigurationError
from flask_serverside import Record
from flask_serverside import StoreError
from flask_serverside import StoreUnavailable

if t.TYPE_CHECKING:
    from flask_serverside import StoreSettings


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
        # Create the client here; it must be safe to use from several threads.

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> ReplaceMeStore:
        """Read ``SESSION_REPLACE_ME_URL``, or the URL given as ``SESSION_TYPE``.

        :raises ConfigurationError: when neither is set; never fall back to a local server.
        """
        url = settings.url or settings.config.get("SESSION_REPLACE_ME_URL")
        if not url:
            raise ConfigurationError(
                "The REPLACE_ME session store needs a server: set SESSION_REPLACE_ME_URL ="
                " 'REPLACE_ME://host', or SESSION_TYPE to that URL."
            )
        return cls(url, key_prefix=settings.key_prefix)

    @contextlib.contextmanager
    def _errors(self) -> c.Iterator[None]:
        """Turn the client's exceptions into the core's, chained."""
        try:
            yield
        except (ConnectionError, TimeoutError) as exc:  # the client's connection errors
            raise StoreUnavailable(f"REPLACE_ME at {self.url}: {exc}") from exc
        except OSError as exc:  # the client's other errors
            raise StoreError(f"REPLACE_ME at {self.url}: {exc}") from exc

    def load(self, sid: str) -> Record | None:
        with self._errors():
            raise NotImplementedError("return Record(data, version) or None; never an expired one")

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        with self._errors():
            raise NotImplementedError("store data under self.key_prefix + sid for ttl seconds")

    def delete(self, sid: str) -> None:
        with self._errors():
            raise NotImplementedError("delete self.key_prefix + sid; a missing one is no error")

    def close(self) -> None:
        """Release the client's connections."""
