"""Several memcached servers: which one holds a key, and which ones are down.

pymemcache's ``HashClient`` takes a server that fails out of its hash ring, so the keys it
held are hashed to the other servers, where they are not: a session on a server that is down
would read as "no such session", and its user would get a new one (and lose the cookie). The
store routes keys itself instead, over a copy of the client's ring that never changes: a key
always goes to its own server, and when that server is down the call fails with
:class:`~flask_serverside.NodeUnavailable` (:class:`~flask_serverside.StoreUnavailable` once
every server has failed). A server that failed is not called again for ``dead_timeout``
seconds; then one call probes it, and the first call it answers brings it back.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import typing as t

from flask_serverside import NodeUnavailable
from flask_serverside import StoreUnavailable

from ._client import drop_idle_connections

if t.TYPE_CHECKING:
    import collections.abc as c

    from pymemcache.client.hash import HashClient  # type: ignore[import-untyped]

log = logging.getLogger("flask_serverside.memcached")


class NodeRing:
    """Routes keys over the servers of a ``HashClient`` and tracks the ones that are down.

    :param client: the ``HashClient``; its ring is copied now, with every server in it.
    :param dead_timeout: seconds a server that failed is left alone before one call probes it.
    :param clock: monotonic seconds; tests pass a fake one.
    """

    def __init__(
        self,
        client: HashClient,
        dead_timeout: float,
        *,
        clock: c.Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._hasher = copy.deepcopy(client.hasher)
        for name in client.clients:  # a server the client had left out belongs to the ring
            self._hasher.add_node(name)
        #: The servers, by their ``HashClient`` names.
        self.nodes: frozenset[str] = frozenset(client.clients)
        #: Seconds a failed server is left alone.
        self.dead_timeout = dead_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._failed: dict[str, float] = {}  # server -> when it last failed (or was probed)

    def node(self, key: str) -> str:
        """Return the server that holds ``key``."""
        name: str | None = self._hasher.get_node(key)
        if name is None:  # pragma: no cover - a HashClient always has a server
            raise StoreUnavailable("memcached is unavailable: no server is configured")
        return name

    def route(self, key: str) -> tuple[str, t.Any]:
        """Return the server that holds ``key`` and its client.

        :raises NodeUnavailable: when that server failed less than ``dead_timeout`` seconds
            ago, or is being probed by another call (:class:`StoreUnavailable` when every
            server has failed).
        """
        name = self.node(key)
        if name in self._failed:
            with self._lock:
                failed = self._failed.get(name)
                if failed is not None:
                    if self._clock() - failed < self.dead_timeout:
                        raise self._unavailable(name, "failed recently; not tried again yet")
                    self._failed[name] = self._clock()  # this call probes; others wait
        return name, self._client.clients[name]

    def failed(self, name: str, error: BaseException, doing: str) -> StoreUnavailable:
        """Record that ``name`` failed, and return the error to raise."""
        detail = f"could not {doing}: {type(error).__name__}: {error}"
        with self._lock:  # the check of every server and the change, together
            first = name not in self._failed
            self._failed[name] = self._clock()
            unavailable = self._unavailable(name, detail)
        drop_idle_connections(self._client.clients.get(name))
        if first:
            log.warning(
                "memcached server %s failed (%s: %s): its sessions are unavailable, the other"
                " servers' are served; trying it again every %g s",
                name,
                type(error).__name__,
                error,
                self.dead_timeout,
            )
        return unavailable

    def answered(self, name: str) -> None:
        """Record that ``name`` answered a call."""
        if name in self._failed:
            with self._lock:
                back = self._failed.pop(name, None) is not None
            if back:
                log.warning("memcached server %s answers again", name)

    def _unavailable(self, name: str, detail: str) -> StoreUnavailable:
        """The error for a call to ``name``; hold the lock."""
        if self.nodes.issubset(self._failed):
            return StoreUnavailable(
                f"memcached is unavailable: every server has failed; server {name} {detail}"
            )
        return NodeUnavailable(f"memcached server {name} is unavailable: it {detail}")
