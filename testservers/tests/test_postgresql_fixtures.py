"""PostgreSQL fixtures: shared server and factory; data survives stop and crash."""

from __future__ import annotations

import collections.abc as c
import os

import pytest

from serverside_testservers import PostgreSQLServer
from serverside_testservers.postgresql import _startup_ok


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_shared_server_answers(postgresql_server: PostgreSQLServer) -> None:
    server = postgresql_server
    assert server.url == f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    assert server.dsn == f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
    assert server.socket_path.exists()
    assert _startup_ok("127.0.0.1", server.port, "postgres", "postgres")
    assert not _startup_ok("127.0.0.1", server.port, "postgres", "no_such_database")


def test_shared_server_with_client(postgresql_server: PostgreSQLServer) -> None:
    psycopg = pytest.importorskip("psycopg", reason="psycopg not installed: no SQL round trip")
    with psycopg.connect(postgresql_server.url) as conn:
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
    with psycopg.connect(
        host=str(postgresql_server.socket_dir),
        port=postgresql_server.port,
        user="postgres",
        dbname="postgres",
    ) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("postgres",)


def test_data_survives_stop_and_kill(
    make_postgresql_server: c.Callable[..., PostgreSQLServer],
) -> None:
    server = make_postgresql_server()
    other = make_postgresql_server()
    assert server.port != other.port and server.data_dir != other.data_dir
    psycopg = pytest.importorskip("psycopg", reason="psycopg not installed: no SQL round trip")
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('before stop')")
    port, pid = server.port, server.pid
    server.stop()
    assert pid_gone(pid) and not server.is_running()
    server.start()
    assert server.port == port
    with psycopg.connect(server.url, autocommit=True) as conn:
        assert conn.execute("SELECT v FROM kept").fetchall() == [("before stop",)]
        conn.execute("INSERT INTO kept VALUES ('before crash')")
    crashed = server.pid
    server.kill()
    assert pid_gone(crashed)
    server.start()
    with psycopg.connect(server.url) as conn:
        assert len(conn.execute("SELECT v FROM kept").fetchall()) == 2
