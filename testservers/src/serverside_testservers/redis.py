"""Redis: a single server, a 3-master Redis Cluster and a Sentinel set.

Readiness and the checks below speak RESP over a plain socket
(:func:`redis_command`), so no Redis client library is needed.
"""

from __future__ import annotations

import socket
import typing as t
import uuid
from pathlib import Path

from ._process import DEFAULT_READY_TIMEOUT
from ._process import ServerProcess
from ._process import free_port
from ._process import require_binary
from ._process import wait_until

if t.TYPE_CHECKING:
    import collections.abc as c

#: Number of hash slots in a Redis Cluster.
CLUSTER_SLOTS = 16384


class RespError(Exception):
    """An error reply (``-ERR ...``) from a Redis server."""


def _read_reply(stream: t.BinaryIO) -> t.Any:
    line = stream.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed in the middle of a reply")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return RespError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = stream.read(size + 2)
        return data[:-2]
    if kind == b"*":
        count = int(rest)
        if count < 0:
            return None
        return [_read_reply(stream) for _ in range(count)]
    raise ConnectionError(f"unexpected RESP reply {line!r}")


def redis_command(host: str, port: int, *args: str | bytes | int, timeout: float = 5.0) -> t.Any:
    """Send one command over a fresh connection and return the decoded reply.

    Simple strings come back as :class:`str`, bulk strings as :class:`bytes`,
    integers as :class:`int`, arrays as :class:`list`, nil as ``None``.

    :raises RespError: on an error reply.
    :raises OSError: on connection errors.
    """
    parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
    payload = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        with sock.makefile("rb") as stream:
            reply = _read_reply(stream)
    if isinstance(reply, RespError):
        raise reply
    return reply


def parse_info(text: str | bytes) -> dict[str, str]:
    """Parse the ``key:value`` lines of an ``INFO`` or ``CLUSTER INFO`` reply."""
    if isinstance(text, bytes):
        text = text.decode()
    pairs = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key: value for key, value in pairs}


class RedisServer(ServerProcess):
    """A ``redis-server`` on a free loopback port, without persistence.

    Data does not survive :meth:`stop`/:meth:`start` (``--save ''``).

    :param extra_args: further ``redis-server`` command-line arguments.
    """

    kind = "redis"

    def __init__(
        self,
        *,
        extra_args: c.Sequence[str] = (),
        port: int | None = None,
        directory: Path | None = None,
    ) -> None:
        #: Path of the ``redis-server`` executable.
        self.binary: str = require_binary("redis-server")
        #: Extra command-line arguments given at construction.
        self.extra_args: list[str] = list(extra_args)
        super().__init__(port=port, directory=directory)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``"""
        return f"redis://{self.host}:{self.port}/0"

    def argv(self) -> list[str]:
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--repl-diskless-sync-delay", "0",  # a replica syncs at once, not after 5 s
            *self.extra_args,
        ]  # fmt: skip

    def probe(self) -> bool:
        try:
            return bool(self.execute("PING") == "PONG")
        except RespError:  # e.g. -LOADING
            return False

    def execute(self, *args: str | bytes | int) -> t.Any:
        """Run one command on this server (see :func:`redis_command`)."""
        return redis_command(self.host, self.port, *args)

    def info(self, section: str = "default") -> dict[str, str]:
        """:returns: the parsed ``INFO section`` reply."""
        return parse_info(self.execute("INFO", section))


class RedisClusterNode(RedisServer):
    """A ``redis-server`` in cluster mode with its own free cluster bus port.

    Its ``nodes.conf`` lives in its directory, so a restarted node rejoins its cluster.
    """

    kind = "redis-cluster-node"

    def __init__(self, *, extra_args: c.Sequence[str] = ()) -> None:
        #: Port of the cluster bus (``--cluster-port``), not the default port + 10000.
        self.cluster_port: int = free_port()
        super().__init__(extra_args=extra_args)

    def argv(self) -> list[str]:
        return [
            *super().argv(),
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.directory / "nodes.conf"),
            "--cluster-port", str(self.cluster_port),
            "--cluster-node-timeout", "2000",
        ]  # fmt: skip

    def cluster_info(self) -> dict[str, str]:
        """:returns: the parsed ``CLUSTER INFO`` reply."""
        return parse_info(self.execute("CLUSTER", "INFO"))


class RedisCluster:
    """A Redis Cluster of *masters* master nodes without replicas.

    The hash slots are split evenly; :meth:`start` returns once every node
    reports ``cluster_state:ok``.
    """

    def __init__(self, masters: int = 3) -> None:
        #: The nodes, each a :class:`RedisClusterNode`.
        self.nodes: list[RedisClusterNode] = [RedisClusterNode() for _ in range(masters)]
        self._formed = False

    def __repr__(self) -> str:
        return f"<RedisCluster {self.startup_nodes}>"

    @property
    def host(self) -> str:
        """Address of the first node."""
        return self.nodes[0].host

    @property
    def port(self) -> int:
        """Port of the first node."""
        return self.nodes[0].port

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every node."""
        return [(node.host, node.port) for node in self.nodes]

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` of the first node."""
        return self.nodes[0].url

    def is_running(self) -> bool:
        """:returns: whether every node's process is alive."""
        return all(node.is_running() for node in self.nodes)

    def start(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Start the nodes that are not running; form the cluster the first time.

        :raises ServerStartError: when a node or the cluster state is not ready in time.
        """
        for node in self.nodes:
            if not node.is_running():
                node.start(timeout)
        if not self._formed:
            self._form()
            self._formed = True
        self.wait_ok(timeout)

    def _form(self) -> None:
        per_node = CLUSTER_SLOTS // len(self.nodes)
        for index, node in enumerate(self.nodes):
            first = index * per_node
            last = CLUSTER_SLOTS if index == len(self.nodes) - 1 else first + per_node
            node.execute("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
            node.execute("CLUSTER", "ADDSLOTS", *range(first, last))
        for index, node in enumerate(self.nodes):
            for other in self.nodes[index + 1 :]:
                node.execute("CLUSTER", "MEET", other.host, other.port, other.cluster_port)

    def wait_ok(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Wait until every node reports ``cluster_state:ok`` and knows every node.

        :raises ServerStartError: on timeout.
        """
        expected = str(len(self.nodes))
        for node in self.nodes:

            def ok(node: RedisClusterNode = node) -> bool:
                info = node.cluster_info()
                return info.get("cluster_state") == "ok" and info.get("cluster_known_nodes") == (
                    expected
                )

            wait_until(
                ok, timeout=timeout, what=f"cluster_state:ok on port {node.port}", log=node.log_path
            )

    def request_stop(self) -> None:
        """Signal every node to stop, without waiting."""
        for node in self.nodes:
            node.request_stop()

    def stop(self) -> None:
        """Stop every node gracefully (see :meth:`ServerProcess.stop`)."""
        self.request_stop()
        for node in self.nodes:
            node.stop()

    def close(self) -> None:
        """Stop every node and remove their directories."""
        self.request_stop()
        for node in self.nodes:
            node.close()


class SentinelServer(ServerProcess):
    """A ``redis-server --sentinel`` that monitors one master.

    Its configuration file is writable and kept across restarts, as Sentinel
    rewrites it with what it learned.
    """

    kind = "redis-sentinel"

    def __init__(self, master_host: str, master_port: int, service_name: str) -> None:
        self.binary: str = require_binary("redis-server")
        #: Address of the master it was configured with.
        self.master_address: tuple[str, int] = (master_host, master_port)
        #: The monitored service name.
        self.service_name: str = service_name
        super().__init__()
        #: The Sentinel configuration file.
        self.config_path: Path = self.directory / "sentinel.conf"

    def prepare(self) -> None:
        host, port = self.master_address
        self.config_path.write_text(
            f"port {self.port}\n"
            f"bind {self.host}\n"
            f"dir {self.directory}\n"
            "daemonize no\n"
            f"sentinel monitor {self.service_name} {host} {port} 1\n"
            f"sentinel down-after-milliseconds {self.service_name} 500\n"
            f"sentinel failover-timeout {self.service_name} 5000\n"
        )

    def argv(self) -> list[str]:
        return [self.binary, str(self.config_path), "--sentinel"]

    def probe(self) -> bool:
        return bool(redis_command(self.host, self.port, "PING") == "PONG")

    def execute(self, *args: str | bytes | int) -> t.Any:
        """Run one command on this sentinel (see :func:`redis_command`)."""
        return redis_command(self.host, self.port, *args)

    def master_address_now(self) -> tuple[str, int] | None:
        """:returns: the master this sentinel currently reports, or ``None``."""
        reply = self.execute("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name)
        if not reply:
            return None
        return reply[0].decode(), int(reply[1])

    def replica_count(self) -> int:
        """:returns: how many replicas this sentinel knows for the service."""
        return len(self.execute("SENTINEL", "REPLICAS", self.service_name))


class RedisSentinel:
    """A Redis master, one replica of it and one Sentinel monitoring them.

    :meth:`start` returns once the replica has a copy of a key written on the
    master and the sentinel reports the master and knows the replica, so a
    test can kill the master and expect a failover (about 1.2 s).
    """

    def __init__(self, service_name: str = "mymaster") -> None:
        #: The service name the sentinel monitors.
        self.service_name: str = service_name
        #: The initial master (after a failover, ask :meth:`current_master`).
        self.master: RedisServer = RedisServer()
        #: The initial replica of :attr:`master`.
        self.replica: RedisServer = RedisServer(
            extra_args=["--replicaof", self.master.host, str(self.master.port)]
        )
        sentinel = SentinelServer(self.master.host, self.master.port, service_name)
        #: The sentinel processes (one).
        self.sentinel_servers: list[SentinelServer] = [sentinel]

    def __repr__(self) -> str:
        return f"<RedisSentinel {self.service_name} master={self.master.port}>"

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """``(host, port)`` of every sentinel, as ``redis.sentinel.Sentinel`` takes them."""
        return [(s.host, s.port) for s in self.sentinel_servers]

    def is_running(self) -> bool:
        """:returns: whether master, replica and sentinels are all alive."""
        servers: list[ServerProcess] = [self.master, self.replica, *self.sentinel_servers]
        return all(server.is_running() for server in servers)

    def current_master(self) -> tuple[str, int] | None:
        """:returns: the master address the first sentinel reports now."""
        return self.sentinel_servers[0].master_address_now()

    def start(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Start master, replica and sentinel, in that order, each when not running.

        :raises ServerStartError: when a part is not ready in time.
        """
        if not self.master.is_running():
            self.master.start(timeout)
        if not self.replica.is_running():
            self.replica.start(timeout)
            self._wait_replicated(timeout)
        master = (self.master.host, self.master.port)
        for sentinel in self.sentinel_servers:
            if sentinel.is_running():
                continue
            sentinel.start(timeout)

            def monitoring(s: SentinelServer = sentinel) -> bool:
                return s.master_address_now() is not None and s.replica_count() > 0

            wait_until(
                monitoring,
                timeout=timeout,
                what=f"sentinel to report master {master} and its replica",
                log=sentinel.log_path,
            )

    def _wait_replicated(self, timeout: float) -> None:
        key, value = f"serverside-testservers:{uuid.uuid4().hex}", "1"
        self.master.execute("SET", key, value, "PX", 60_000)

        def replicated() -> bool:
            return bool(self.replica.execute("GET", key) == value.encode())

        wait_until(
            replicated,
            timeout=timeout,
            what="the replica to copy the master",
            log=self.replica.log_path,
        )
        self.master.execute("DEL", key)

    def request_stop(self) -> None:
        """Signal the sentinels, the replica and the master to stop, without waiting."""
        for server in [*self.sentinel_servers, self.replica, self.master]:
            server.request_stop()

    def stop(self) -> None:
        """Stop the sentinels, the replica and the master gracefully."""
        self.request_stop()
        for server in [*self.sentinel_servers, self.replica, self.master]:
            server.stop()

    def close(self) -> None:
        """Stop everything and remove the directories."""
        self.request_stop()
        for server in [*self.sentinel_servers, self.replica, self.master]:
            server.close()
