"""Redis fixtures: single server, factory, cluster, sentinel (RESP over raw sockets)."""

from __future__ import annotations

import collections.abc as c
import os
import time

import pytest

from serverside_testservers import RedisCluster
from serverside_testservers import RedisSentinel
from serverside_testservers import RedisServer
from serverside_testservers import redis_command
from serverside_testservers.redis import parse_info


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_shared_server_answers(redis_server: RedisServer) -> None:
    assert redis_server.host == "127.0.0.1"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_command("127.0.0.1", redis_server.port, "PING") == "PONG"
    info = parse_info(redis_command("127.0.0.1", redis_server.port, "INFO", "server"))
    assert info["tcp_port"] == str(redis_server.port)
    assert info["process_id"] == str(redis_server.pid)


def test_shared_server_with_client(redis_server: RedisServer) -> None:
    redis = pytest.importorskip("redis")
    with redis.Redis.from_url(redis_server.url) as client:
        client.set("testservers:key", b"value")
        assert client.get("testservers:key") == b"value"


def test_factory_servers_get_different_ports(
    make_redis_server: c.Callable[..., RedisServer],
) -> None:
    first, second = make_redis_server(), make_redis_server()
    assert first.port != second.port
    assert first.pid != second.pid
    assert first.execute("PING") == second.execute("PING") == "PONG"


def test_stop_kill_and_restart_on_the_same_port(
    make_redis_server: c.Callable[..., RedisServer],
) -> None:
    server = make_redis_server(extra_args=["--maxmemory", "10mb"])
    port, pid = server.port, server.pid
    assert server.execute("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"10485760"]
    server.stop()
    assert pid_gone(pid) and not server.is_running()
    with pytest.raises(OSError):
        redis_command("127.0.0.1", port, "PING")
    server.start()
    assert server.port == port and server.pid != pid
    assert server.execute("PING") == "PONG"
    crashed = server.pid
    server.kill()
    assert pid_gone(crashed)
    server.start()
    assert server.execute("PING") == "PONG"


def test_cluster_is_ok_on_every_node(redis_cluster: RedisCluster) -> None:
    assert len(redis_cluster.nodes) == 3
    assert redis_cluster.startup_nodes == [("127.0.0.1", n.port) for n in redis_cluster.nodes]
    assert len({n.cluster_port for n in redis_cluster.nodes}) == 3
    for node in redis_cluster.nodes:
        info = parse_info(redis_command("127.0.0.1", node.port, "CLUSTER", "INFO"))
        assert info["cluster_state"] == "ok"
        assert info["cluster_slots_assigned"] == "16384"
        assert info["cluster_known_nodes"] == "3"
        assert info["cluster_size"] == "3"


def test_cluster_with_client(redis_cluster: RedisCluster) -> None:
    cluster = pytest.importorskip("redis.cluster")
    nodes = [cluster.ClusterNode(h, p) for h, p in redis_cluster.startup_nodes]
    client = cluster.RedisCluster(startup_nodes=nodes)
    try:
        for i in range(20):  # keys spread over the three masters
            client.set(f"testservers:{i}", i)
        assert [int(client.get(f"testservers:{i}")) for i in range(20)] == list(range(20))
    finally:
        client.close()


def test_sentinel_reports_the_master(redis_sentinel: RedisSentinel) -> None:
    assert redis_sentinel.service_name == "mymaster"
    (host, port), *_ = redis_sentinel.sentinels
    master = redis_command(host, port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
    assert master == [b"127.0.0.1", str(redis_sentinel.master.port).encode()]
    replicas = redis_command(host, port, "SENTINEL", "REPLICAS", "mymaster")
    assert str(redis_sentinel.replica.port).encode() in replicas[0]
    role = redis_sentinel.replica.info("replication")
    assert role["role"] == "slave" and role["master_port"] == str(redis_sentinel.master.port)


def test_sentinel_with_client(redis_sentinel: RedisSentinel) -> None:
    sentinel = pytest.importorskip("redis.sentinel")
    client = sentinel.Sentinel(redis_sentinel.sentinels)
    master = client.master_for(redis_sentinel.service_name)
    try:
        master.set("testservers:sentinel", b"1")
        assert master.get("testservers:sentinel") == b"1"
    finally:
        master.close()
        for s in client.sentinels:
            s.close()


def test_sentinel_fails_over_when_the_master_is_killed(
    make_redis_sentinel: c.Callable[..., RedisSentinel],
) -> None:
    group = make_redis_sentinel()
    assert group.current_master() == ("127.0.0.1", group.master.port)
    group.master.kill()
    deadline = time.monotonic() + 15
    while group.current_master() != ("127.0.0.1", group.replica.port):
        assert time.monotonic() < deadline, "no failover within 15 s"
        time.sleep(0.05)
    assert group.replica.info("replication")["role"] == "master"
