"""The pymemcache clients the store builds, python-memcached's server choice, and the one
memcached command pymemcache 4.0 has no method for (``gats``)."""

from __future__ import annotations

import binascii
import functools
import typing as t

from pymemcache.client.base import PooledClient  # type: ignore[import-untyped]
from pymemcache.client.hash import HashClient  # type: ignore[import-untyped]

if t.TYPE_CHECKING:
    import collections.abc as c

#: A server as pymemcache takes it: ``(host, port)``, or the path of a Unix socket.
Server: t.TypeAlias = "tuple[str, int] | str"


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


class PythonMemcachedHash:
    """python-memcached's choice of a server for a key, as a pymemcache ``HashClient`` hasher:
    the key's ``crc32`` picks one of the servers' buckets (a server has as many buckets as its
    weight, in the order the servers were given). Sessions Flask-Session wrote through a
    ``memcache.Client`` over several servers are found where it put them.

    Only the first choice is kept: python-memcached moves the keys of a server it cannot reach
    to another one, and the store does not (see the README).

    :param weights: the weight of each node, by its ``HashClient`` name (default 1).
    """

    def __init__(self, weights: c.Mapping[str, int] | None = None) -> None:
        self._weights = dict(weights or {})
        self._buckets: list[str] = []

    def add_node(self, node: str) -> None:
        if node not in self._buckets:
            self._buckets.extend([node] * self._weights.get(node, 1))

    def remove_node(self, node: str) -> None:
        self._buckets = [bucket for bucket in self._buckets if bucket != node]

    def get_node(self, key: str | bytes) -> str | None:
        if not self._buckets:
            return None
        data = key.encode("utf-8") if isinstance(key, str) else key
        digest = ((binascii.crc32(data) & 0xFFFFFFFF) >> 16) & 0x7FFF  # cmemcache_hash
        return self._buckets[digest % len(self._buckets)]


def node_name(server: Server) -> str:
    """The name a ``HashClient`` gives ``server``: ``"host:port"``, or the socket's path."""
    return server if isinstance(server, str) else f"{server[0]}:{server[1]}"


def python_memcached_servers(client: t.Any) -> tuple[list[Server], dict[str, int]]:
    """Return the servers of a python-memcached ``memcache.Client`` and their weights, read
    from its ``servers`` (each has ``address``: ``(host, port)``, or a socket path, and
    ``weight``).

    :raises ValueError: when ``client.servers`` does not hold such servers.
    """
    servers: list[Server] = []
    weights: dict[str, int] = {}
    for host in getattr(client, "servers", None) or ():
        address = getattr(host, "address", None)
        if isinstance(address, tuple) and len(address) == 2:
            server: Server = (str(address[0]), int(address[1]))
        elif isinstance(address, str) and address:
            server = address
        else:
            raise ValueError(f"cannot read the address of its server {host!r}")
        servers.append(server)
        weights[node_name(server)] = max(1, int(getattr(host, "weight", 1)))
    if not servers:
        raise ValueError("it names no server")
    return servers, weights


def build_client(
    servers: c.Sequence[Server],
    *,
    timeout: float = 1.0,
    weights: c.Mapping[str, int] | None = None,
) -> PooledClient | HashClient:
    """Build a thread-safe pymemcache client with the settings sessions need: TCP no-delay,
    connect and read timeouts, and replies awaited for every write.

    One server gets a :class:`PooledClient`; several get a :class:`HashClient` with pooling,
    whose own fail-over the store does not use (it never moves a key to another server).

    :param weights: several servers are chosen as python-memcached chooses them, with these
        weights (by :func:`node_name`), instead of by rendezvous hashing.
    """
    options: dict[str, t.Any] = {
        "connect_timeout": timeout,
        "timeout": timeout,
        "no_delay": True,
        "default_noreply": False,
    }
    if len(servers) == 1:
        return PooledClient(servers[0], **options)
    extra: dict[str, t.Any] = {}
    if weights is not None:
        extra["hasher"] = functools.partial(PythonMemcachedHash, weights)
    return HashClient(
        list(servers), use_pooling=True, retry_attempts=0, ignore_exc=False, **options, **extra
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
    """Run memcached's ``gats`` (get, touch and return the cas token) through ``client`` (a
    ``Client`` or ``PooledClient``): the client's ``gats`` method where it has one.

    pymemcache 4.0, its latest release, parses the command's reply but has no method for it,
    and its public ``raw_command`` cannot carry a session: it stops reading at the first
    occurrence of its end token, which binary session data may contain, and keeps only the
    last chunk of a reply longer than one read (4 KB). So on 4.0 the command goes through the
    fetch routine that ``gets`` uses, with the same connection handling. Should a release drop
    that routine without adding ``gats``, the public ``gets`` and ``touch`` do the same in two
    round trips.
    """
    if callable(getattr(client, "gats", None)):
        return t.cast("tuple[t.Any, t.Any]", client.gats(key, exptime))
    if isinstance(client, PooledClient):
        with client.client_pool.get_and_release(destroy_on_fail=True) as one:
            return get_and_touch(one, key, exptime)
    fetch = getattr(client, "_fetch_cmd", None)
    if fetch is None:
        value, token = client.gets(key)
        if value is None:
            return None
        client.touch(key, exptime, noreply=False)
        return value, token
    found = fetch(b"gats %d" % exptime, [key], True, key_prefix=client.key_prefix)
    return t.cast("tuple[t.Any, t.Any] | None", found.get(key))
