"""The pymemcache clients the store builds, and the one memcached command pymemcache 4.0 has
no method for (``gats``)."""

from __future__ import annotations

import threading
import typing as t

from pymemcache.client.base import PooledClient  # type: ignore[import-untyped]
from pymemcache.client.hash import HashClient  # type: ignore[import-untyped]

if t.TYPE_CHECKING:
    import collections.abc as c


def drop_idle_connections(client: object) -> None:
    """Close the idle connections of a :class:`PooledClient` (those of a server that died or
    restarted are all stale). Connections in use are left to their threads, which drop them
    when they fail."""
    if isinstance(client, PooledClient):
        pool = client.client_pool
        for _ in range(len(pool.free)):
            try:
                idle = pool.get()  # a free connection, or a new unopened one if none is left
            except RuntimeError:  # the pool is at its maximum size: none is free
                return
            pool.destroy(idle)


class _SessionHashClient(HashClient):  # type: ignore[misc]
    """A :class:`HashClient` whose fail-over bookkeeping is safe across threads and which
    closes the connections of a server when it leaves it out."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self._ring_lock = threading.RLock()
        super().__init__(*args, **kwargs)

    def _mark_failed_server(self, server: t.Any) -> None:
        with self._ring_lock:
            if server in self._dead_clients:  # another thread already left it out
                return
            super()._mark_failed_server(server)
            drop_idle_connections(self.clients[self._make_client_key(server)])

    def _retry_dead(self) -> None:
        with self._ring_lock:
            super()._retry_dead()

    def add_server(self, server: t.Any, port: int | None = None) -> None:
        replaced = self.clients.get(
            self._make_client_key(server if port is None else (server, port))
        )
        super().add_server(server, port)
        drop_idle_connections(replaced)


def build_client(
    servers: c.Sequence[tuple[str, int]], *, timeout: float = 1.0, dead_timeout: float = 10.0
) -> PooledClient | HashClient:
    """Build a thread-safe pymemcache client with the settings sessions need: TCP no-delay,
    connect and read timeouts, replies awaited for every write and, for several servers,
    fail-over that leaves a failing server out for ``dead_timeout`` seconds."""
    options: dict[str, t.Any] = {
        "connect_timeout": timeout,
        "timeout": timeout,
        "no_delay": True,
        "default_noreply": False,
    }
    if len(servers) == 1:
        return PooledClient(servers[0], **options)
    return _SessionHashClient(
        list(servers),
        use_pooling=True,
        retry_attempts=0,
        dead_timeout=dead_timeout,
        ignore_exc=False,
        **options,
    )


def parse_servers(value: str | c.Sequence[str | tuple[str, int]]) -> list[tuple[str, int]]:
    """Parse ``"host:port,host:port"``, a ``memcached://`` URL's location or a list of
    ``"host:port"`` strings and ``(host, port)`` pairs.

    :raises ValueError: naming the entry that is not a server address.
    """
    entries = value.split(",") if isinstance(value, str) else list(value)
    servers = []
    for entry in entries:
        if isinstance(entry, tuple):
            servers.append((str(entry[0]), int(entry[1])))
            continue
        host, _, port = entry.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{entry!r} is not a 'host:port' server address")
        servers.append((host.strip("[]"), int(port)))
    if not servers:
        raise ValueError("no server is named")
    return servers


def get_and_touch(client: t.Any, key: str, exptime: int) -> tuple[t.Any, t.Any] | None:
    """Run memcached's ``gats`` (get, touch and return the cas token) through ``client``: the
    client's ``gats`` method where it has one.

    pymemcache 4.0, its latest release, parses the command's reply but has no method for it,
    and its public ``raw_command`` cannot carry a session: it stops reading at the first
    occurrence of its end token, which binary session data may contain, and keeps only the
    last chunk of a reply longer than one read (4 KB). So on 4.0 the command goes through the
    fetch routine that ``gets`` uses, with the same connection handling.
    """
    if callable(getattr(client, "gats", None)):
        return t.cast("tuple[t.Any, t.Any]", client.gats(key, exptime))
    if isinstance(client, HashClient):
        node = client._get_client(key)
        if node is None:
            return None
        return t.cast(
            "tuple[t.Any, t.Any] | None",
            client._safely_run_func(node, get_and_touch, None, node, key, exptime),
        )
    if isinstance(client, PooledClient):
        with client.client_pool.get_and_release(destroy_on_fail=True) as one:
            return get_and_touch(one, key, exptime)
    command = b"gats %d" % exptime
    found = client._fetch_cmd(command, [key], True, key_prefix=client.key_prefix)
    return t.cast("tuple[t.Any, t.Any] | None", found.get(key))
