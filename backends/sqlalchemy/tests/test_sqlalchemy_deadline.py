"""The statement deadline: the watchdog shuts a socket down when its deadline passes, never
after the statement ended, and works in a forked worker too."""

from __future__ import annotations

import os
import socket
import time
import types
import typing as t
import warnings

from flask_serverside_sqlalchemy._deadline import watchdog


def _conn(sock: socket.socket) -> t.Any:
    """A stand-in for a SQLAlchemy connection whose DBAPI connection is ``sock``."""
    raw = types.SimpleNamespace(fileno=sock.fileno)
    return types.SimpleNamespace(connection=types.SimpleNamespace(dbapi_connection=raw))


def _wait_cut(sock: socket.socket, limit: float) -> bool:
    """Whether a blocking read on ``sock`` ends (with EOF) within ``limit`` seconds."""
    sock.settimeout(limit)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_a_statement_past_its_deadline_has_its_socket_shut_down() -> None:
    ours, server = socket.socketpair()
    with ours, server:
        began = time.monotonic()
        with watchdog.watch(_conn(ours), 0.2) as watch:
            assert watch is not None
            assert _wait_cut(ours, 5)  # the frozen "server" never answers
        assert watch.fired
        assert 0.2 <= time.monotonic() - began < 2


def test_a_statement_that_ended_in_time_is_left_alone() -> None:
    ours, server = socket.socketpair()
    with ours, server:
        with watchdog.watch(_conn(ours), 0.2) as watch:
            pass
        time.sleep(0.4)
        assert watch is not None and not watch.fired
        server.sendall(b"x")
        assert ours.recv(1) == b"x"  # still connected


def test_statements_in_a_row_do_not_wake_the_watchdog_each() -> None:
    """The thread ticks while statements run; one starting meanwhile does not wake it (that
    was a thread switch per statement)."""
    ours, server = socket.socketpair()
    with ours, server:
        with watchdog.watch(_conn(ours), 5):
            pass  # the thread runs
        time.sleep(0.01)
        before = watchdog.wakeups
        statements = 100
        for _ in range(statements):
            with watchdog.watch(_conn(ours), 5):
                time.sleep(0.001)  # the statement
            time.sleep(0.001)  # the rest of the request
        # About 0.2 s of statements: a few ticks of 0.05 s, not one wake-up per statement.
        assert watchdog.wakeups - before < statements / 4


def test_a_connection_without_a_socket_is_not_watched() -> None:
    conn = types.SimpleNamespace(connection=types.SimpleNamespace(dbapi_connection=object()))
    with watchdog.watch(t.cast(t.Any, conn), 0.1) as watch:
        assert watch is None


def test_a_forked_worker_has_a_watchdog_of_its_own() -> None:
    ours, server = socket.socketpair()
    with watchdog.watch(_conn(ours), 5):
        pass  # the parent's thread runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: its deadline must fire although it inherited no thread
        code = 1
        try:
            with watchdog.watch(_conn(ours), 0.2):
                code = 0 if _wait_cut(ours, 5) else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    ours.close()
    server.close()
    assert os.waitstatus_to_exitcode(status) == 0
