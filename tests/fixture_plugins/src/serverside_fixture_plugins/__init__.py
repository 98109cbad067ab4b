"""Store plugins for the discovery tests: one that works, and the ways one can be broken."""

from __future__ import annotations

import typing as t

from flask_serverside import Capability
from flask_serverside import ConfigurationError
from flask_serverside import MemoryStore

if t.TYPE_CHECKING:
    from flask_serverside import StoreSettings


class FixtureStore(MemoryStore):
    """A working store; remembers the settings it was built from."""

    last_settings: t.ClassVar[StoreSettings | None] = None

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> FixtureStore:
        cls.last_settings = settings
        return cls(key_prefix=settings.key_prefix)


class NotAStore:
    """Registered as a store, but it is not one."""


class LyingStore(MemoryStore):
    """Declares a capability it does not implement."""

    capabilities = Capability.TOUCH
    touch = None  # type: ignore[assignment]

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> LyingStore:
        return cls()


class NeedsConfigStore(MemoryStore):
    """Refuses to start without its own key, as a real store does."""

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> NeedsConfigStore:
        if "FIXTURE_URL" not in settings.config:
            raise ConfigurationError("set FIXTURE_URL to the fixture server's URL")
        return cls()
