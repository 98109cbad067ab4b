"""Store plugins for the discovery tests: one that works, and the ways one can be broken.

Never installed: the discovery tests put the directory above this one on ``sys.path`` while
they run, so the two ``*.dist-info`` directories there register these classes as entry points
(see ``tests/conftest.py``).
"""

from __future__ import annotations

import typing as t

from flask_serverside import Capability
from flask_serverside import ConfigurationError
from flask_serverside import MemoryStore

if t.TYPE_CHECKING:
    from flask_serverside import Record
    from flask_serverside import StoreSettings


class FixtureStore(MemoryStore):
    """A working store; remembers the settings it was built from."""

    url_schemes = ("fixturescheme",)
    config_keys = ("SESSION_FIXTURE_URL", "SESSION_FIXTURE_TIMEOUT")
    last_settings: t.ClassVar[StoreSettings | None] = None

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> FixtureStore:
        cls.last_settings = settings
        return cls(key_prefix=settings.key_prefix)


class TwinStore(FixtureStore):
    """What the second distribution registers under a name the first one registers too."""


class PlainStore:
    """A store that declares neither ``url_schemes`` nor ``config_keys`` (both optional)."""

    capabilities = Capability.NONE

    def __init__(self) -> None:
        self._memory = MemoryStore()

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> PlainStore:
        return cls()

    def load(self, sid: str) -> Record | None:
        return self._memory.load(sid)

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        self._memory.save(sid, data, ttl, user_id=user_id)

    def delete(self, sid: str) -> None:
        self._memory.delete(sid)


class NotAStore:
    """Registered as a store, but it is not one."""


class LyingStore(MemoryStore):
    """Declares a capability it does not implement."""

    capabilities = Capability.TOUCH
    touch = None  # type: ignore[assignment]

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> LyingStore:
        return cls()


class BadKeysStore(MemoryStore):
    """Lists its configuration keys in a list, not a tuple."""

    config_keys = ["SESSION_BAD_KEYS"]  # type: ignore[assignment]


class NeedsConfigStore(MemoryStore):
    """Refuses to start without its own key, as a real store does."""

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> NeedsConfigStore:
        if "FIXTURE_URL" not in settings.config:
            raise ConfigurationError("set FIXTURE_URL to the fixture server's URL")
        return cls()
