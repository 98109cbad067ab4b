"""The ``memory`` store: sessions in a dict of this process.

It implements every capability, so it is the reference implementation of the protocol, the
store of the unit tests, and a store for tests of applications (``SESSION_TYPE = "memory"``)
that need no server. It is registered through the same entry point group as every other store.

Sessions live only as long as the process and are not shared between worker processes: do not
use it in production.

Expired records are freed without any configuration: every write also checks a few other
records (:data:`SWEEP_PER_WRITE`), cycling through them all, and frees those that expired. So
the dict holds at most about twice the live records (the ones written during the last cycle
may have expired meanwhile), whatever ``SESSION_CLEANUP_N_REQUESTS`` says, and no write pays
for more than a few checks plus, once per cycle, a copy of the keys.
"""

from __future__ import annotations

import itertools
import threading
import time
import typing as t

from .store import Capability
from .store import Record

if t.TYPE_CHECKING:
    import collections.abc as c

    from .settings import StoreSettings


#: Records checked for expiry on each write, besides the one written.
SWEEP_PER_WRITE = 2


class _Entry(t.NamedTuple):
    data: bytes
    expires_at: float
    version: int
    user_id: str | None


class MemoryStore:
    """A thread-safe store in a dict.

    :param key_prefix: prepended to every session id.
    :param clock: returns the current time in seconds; tests pass a fake one.
    :param entries: the dict to keep records in; share one between instances to give them
        one backend (as two workers would share a server).

    .. versionchanged:: 0.2
        Expired records are freed as other records are written, a few per write.
    """

    capabilities: t.ClassVar[Capability] = (
        Capability.TOUCH
        | Capability.LOAD_AND_TOUCH
        | Capability.CONDITIONAL_SAVE
        | Capability.SAVE_IF_OR_LOAD
        | Capability.PURGE
        | Capability.ENUMERATE
        | Capability.USER_INDEX
    )
    #: Named only by its store name; it reads no configuration key of its own.
    url_schemes: t.ClassVar[tuple[str, ...]] = ()
    config_keys: t.ClassVar[tuple[str, ...]] = ()

    _versions = itertools.count(1)

    def __init__(
        self,
        *,
        key_prefix: str = "session:",
        clock: c.Callable[[], float] = time.monotonic,
        entries: dict[str, t.Any] | None = None,
    ) -> None:
        self.key_prefix = key_prefix
        self._clock = clock
        self._entries: dict[str, _Entry] = entries if entries is not None else {}
        self._lock = threading.Lock()
        # The keys the sweep has yet to check in this cycle; a new cycle copies the keys.
        self._sweep: list[str] = []

    @classmethod
    def from_settings(cls, settings: StoreSettings) -> MemoryStore:
        """Build the store; it reads no configuration key of its own."""
        return cls(key_prefix=settings.key_prefix)

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._clock():
            del self._entries[key]
            return None
        return entry

    def _put(self, key: str, data: bytes, ttl: int, user_id: str | None) -> None:
        now = self._clock()
        self._entries[key] = _Entry(bytes(data), now + ttl, next(self._versions), user_id)
        self._free_some(now)

    def _free_some(self, now: float) -> None:
        """Check the next :data:`SWEEP_PER_WRITE` keys of the cycle and free the expired
        ones of this store's prefix; the caller holds the lock."""
        sweep = self._sweep
        if not sweep:
            sweep.extend(self._entries)
            sweep.reverse()  # popped from the end: oldest first
        for _ in range(min(SWEEP_PER_WRITE, len(sweep))):
            key = sweep.pop()
            entry = self._entries.get(key)
            if entry is not None and entry.expires_at <= now and key.startswith(self.key_prefix):
                del self._entries[key]

    def load(self, sid: str) -> Record | None:
        with self._lock:
            entry = self._live(self.key_prefix + sid)
        return None if entry is None else Record(entry.data, entry.version)

    def save(self, sid: str, data: bytes, ttl: int, *, user_id: str | None = None) -> None:
        with self._lock:
            self._put(self.key_prefix + sid, data, ttl, user_id)

    def delete(self, sid: str) -> None:
        with self._lock:
            self._entries.pop(self.key_prefix + sid, None)

    def touch(self, sid: str, ttl: int) -> bool:
        key = self.key_prefix + sid
        with self._lock:
            entry = self._live(key)
            if entry is None:
                return False
            self._entries[key] = entry._replace(expires_at=self._clock() + ttl)
            return True

    def load_and_touch(self, sid: str, ttl: int) -> Record | None:
        key = self.key_prefix + sid
        with self._lock:
            entry = self._live(key)
            if entry is None:
                return None
            self._entries[key] = _Entry(
                entry.data, self._clock() + ttl, entry.version, entry.user_id
            )
        return Record(entry.data, entry.version)

    def save_if(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> bool:
        return self._save_if_or_load(sid, data, ttl, expected, user_id)[0]

    def save_if_or_load(
        self,
        sid: str,
        data: bytes,
        ttl: int,
        *,
        expected: Record | None,
        user_id: str | None = None,
    ) -> tuple[bool, Record | None]:
        return self._save_if_or_load(sid, data, ttl, expected, user_id)

    def _save_if_or_load(
        self, sid: str, data: bytes, ttl: int, expected: Record | None, user_id: str | None
    ) -> tuple[bool, Record | None]:
        key = self.key_prefix + sid
        with self._lock:
            entry = self._live(key)
            current = None if entry is None else entry.version
            wanted = None if expected is None else expected.version
            if current != wanted:
                return False, None if entry is None else Record(entry.data, entry.version)
            self._put(key, data, ttl, user_id)
            return True, None

    def purge_expired(self) -> int:
        now = self._clock()
        with self._lock:
            expired = [
                key
                for key, entry in self._entries.items()
                if key.startswith(self.key_prefix) and entry.expires_at <= now
            ]
            for key in expired:
                del self._entries[key]
        return len(expired)

    def _live_items(self) -> list[tuple[str, _Entry]]:
        now = self._clock()
        prefix = self.key_prefix
        with self._lock:
            return [
                (key[len(prefix) :], entry)
                for key, entry in self._entries.items()
                if key.startswith(prefix) and entry.expires_at > now
            ]

    def count(self) -> int:
        return len(self._live_items())

    def iter_sids(self) -> c.Iterator[str]:
        return iter([sid for sid, _ in self._live_items()])

    def user_sids(self, user_id: str) -> list[str]:
        return [sid for sid, entry in self._live_items() if entry.user_id == user_id]

    def close(self) -> None:
        """Nothing to release."""
