"""memcached fixtures: three shared servers and a factory (text protocol over raw sockets)."""

from __future__ import annotations

import collections.abc as c
import os

import pytest

from serverside_testservers import MemcachedServer
from serverside_testservers import memcached_command


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_three_independent_servers(
    memcached_servers: list[MemcachedServer], memcached_server: MemcachedServer
) -> None:
    assert len(memcached_servers) == 3
    assert memcached_server is memcached_servers[0]
    assert len({s.port for s in memcached_servers}) == 3
    for server in memcached_servers:
        assert server.url == f"memcached://127.0.0.1:{server.port}"
        reply = memcached_command("127.0.0.1", server.port, b"version\r\n")
        assert reply.startswith(b"VERSION ")
    first, second, _ = memcached_servers
    key = b"testservers-independent"
    assert memcached_command(*first.address, b"set %s 0 0 1\r\nx\r\n" % key) == b"STORED\r\n"
    assert memcached_command(*second.address, b"get %s\r\n" % key) == b"END\r\n"
    assert memcached_command(*first.address, b"get %s\r\n" % key) == (
        b"VALUE %s 0 1\r\nx\r\nEND\r\n" % key
    )


def test_with_client(memcached_server: MemcachedServer) -> None:
    pymemcache = pytest.importorskip("pymemcache.client.base")
    client = pymemcache.Client(memcached_server.address)
    try:
        client.set("testservers-client", b"value")
        assert client.get("testservers-client") == b"value"
    finally:
        client.close()


def test_stop_and_restart_on_the_same_port(
    make_memcached_server: c.Callable[..., MemcachedServer],
) -> None:
    server = make_memcached_server()
    other = make_memcached_server()
    assert server.port != other.port
    port, pid = server.port, server.pid
    memcached_command(*server.address, b"set k 0 0 1\r\nx\r\n")
    server.stop()
    assert pid_gone(pid) and not server.is_running()
    server.start()
    assert server.port == port and server.version()
    assert memcached_command(*server.address, b"get k\r\n") == b"END\r\n"  # not persisted
