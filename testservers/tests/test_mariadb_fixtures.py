"""MariaDB fixtures: shared server and factory; data survives stop and crash."""

from __future__ import annotations

import collections.abc as c
import os

import pytest

from serverside_testservers import MariaDBServer
from serverside_testservers.mariadb import _handshake_ok


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_shared_server_answers(mariadb_server: MariaDBServer) -> None:
    server = mariadb_server
    assert server.url == f"mysql://root@127.0.0.1:{server.port}/serverside"
    assert _handshake_ok("127.0.0.1", server.port)
    assert server.socket_path.exists()


def test_shared_server_with_client(mariadb_server: MariaDBServer) -> None:
    pymysql = pytest.importorskip("pymysql", reason="PyMySQL not installed: no SQL round trip")
    conn = pymysql.connect(**mariadb_server.connect_kwargs())
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT DATABASE(), 1 + 1")
            assert cursor.fetchone() == ("serverside", 2)
    finally:
        conn.close()


def test_data_survives_stop_and_kill(make_mariadb_server: c.Callable[..., MariaDBServer]) -> None:
    server = make_mariadb_server()
    other = make_mariadb_server()
    assert server.port != other.port
    pymysql = pytest.importorskip("pymysql", reason="PyMySQL not installed: no SQL round trip")

    def run(sql: str) -> tuple[tuple[object, ...], ...]:
        conn = pymysql.connect(**server.connect_kwargs(), autocommit=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return tuple(cursor.fetchall())
        finally:
            conn.close()

    run("CREATE TABLE kept (v VARCHAR(20)) ENGINE=InnoDB")
    run("INSERT INTO kept VALUES ('before stop')")
    port, pid = server.port, server.pid
    server.stop()
    assert pid_gone(pid) and not server.is_running()
    server.start()
    assert server.port == port
    assert run("SELECT v FROM kept") == (("before stop",),)
    run("INSERT INTO kept VALUES ('before crash')")
    crashed = server.pid
    server.kill()
    assert pid_gone(crashed)
    server.start()
    assert len(run("SELECT v FROM kept")) == 2
