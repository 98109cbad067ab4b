"""A client-side deadline for each statement: a database that stops answering (a frozen host,
a process stopped with ``SIGSTOP``, a network that drops packets) cannot hold a request longer
than the store's timeout.

A server-side limit (PostgreSQL's ``statement_timeout``) ends a slow statement only while the
server runs, and TCP keeps an idle connection to a stopped process open forever (its kernel
still acknowledges every packet); psycopg has no read timeout. So while a statement runs, a
:class:`Watchdog` holds a duplicate of its connection's socket, and when the deadline passes it
shuts that socket down: the driver's wait ends at once with a lost connection, which the pool
discards. The duplicate is closed when the statement ends, so the watchdog never touches a
socket that was closed and reused meanwhile.

One daemon thread per process (:data:`watchdog`) serves every store; it wakes every
:data:`RESOLUTION` seconds while statements run, and sleeps otherwise. A statement that starts
while it ticks does not wake it (only one that starts while it sleeps does), so a busy worker
pays no thread switch per statement. A forked worker (gunicorn with ``preload_app``) starts its
own on its first statement.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
import typing as t

if t.TYPE_CHECKING:
    import collections.abc as c

    import sqlalchemy as sa

#: Seconds between two checks of the deadlines while statements run.
RESOLUTION = 0.05


class _Watch:
    __slots__ = ("deadline", "fd", "fired")

    def __init__(self, fd: int, deadline: float) -> None:
        self.fd = fd
        self.deadline = deadline
        #: Set when the deadline passed and the socket was shut down.
        self.fired = False


def socket_of(conn: sa.Connection) -> int | None:
    """Return the file descriptor of the socket under ``conn``'s DBAPI connection, or
    ``None`` when the driver has none (SQLite) or does not say."""
    try:
        raw: t.Any = conn.connection.dbapi_connection
    except Exception:  # an invalidated connection: nothing to watch
        return None
    fileno = getattr(raw, "fileno", None)  # psycopg, psycopg2
    if fileno is None:
        sock = getattr(raw, "_sock", None)  # PyMySQL
        fileno = getattr(sock, "fileno", None)
    if not callable(fileno):
        return None
    try:
        fd = fileno()
    except Exception:
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


class Watchdog:
    """Shuts down the socket of a statement that runs past its deadline."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._watches: dict[int, _Watch] = {}
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        # Whether the thread waits for a first watch (rather than ticking).
        self._sleeping = False
        #: How many times the thread has woken up.
        self.wakeups = 0

    @contextlib.contextmanager
    def watch(self, conn: sa.Connection, seconds: float) -> c.Iterator[_Watch | None]:
        """Watch the statements run on ``conn`` inside the block, for ``seconds``; yield the
        watch (its ``fired`` says whether the deadline passed), or ``None`` when the
        connection has no socket to watch."""
        fd = socket_of(conn)
        if fd is None:
            yield None
            return
        watch = _Watch(os.dup(fd), time.monotonic() + seconds)
        key = next(self._ids)
        with self._cond:
            self._watches[key] = watch
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="flask-serverside-sql-deadline", daemon=True
                )
                self._thread.start()
            elif self._sleeping:
                self._cond.notify()
        try:
            yield watch
        finally:
            with self._cond:  # the thread cannot be using the descriptor now
                del self._watches[key]
                os.close(watch.fd)

    def _run(self) -> None:
        with self._cond:
            while True:
                while not self._watches:
                    self._sleeping = True
                    self._cond.wait()
                    self.wakeups += 1
                self._sleeping = False
                self._cond.wait(RESOLUTION)
                self.wakeups += 1
                now = time.monotonic()
                for watch in self._watches.values():
                    if not watch.fired and watch.deadline <= now:
                        watch.fired = True
                        _shut_down(watch.fd)


#: The process's watchdog, shared by every store.
watchdog = Watchdog()
if hasattr(os, "register_at_fork"):
    # The child has no watchdog thread, and the lock may have been held by one at the fork.
    os.register_at_fork(after_in_child=watchdog._reset)


def _shut_down(fd: int) -> None:
    """End every wait on the socket ``fd`` refers to (a duplicate of the driver's)."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fd))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()
