"""Store-side cost counters: what one request costs the store.

Each store kit counts from as close to the store as it can reach:

* ``memory``: calls on the store object (ours: the store protocol's methods; Flask-Session:
  the cachelib cache's ``get``/``set``/``delete``; floor: its dict operations);
* ``redis``: the server's ``INFO commandstats`` and ``total_net_input_bytes``;
* ``memcached``: the server's ``stats`` (``cmd_get``, ``cmd_set``, ``cmd_touch``, deletes,
  ``bytes_read``);
* SQL: every statement and transaction that reaches the driver, through SQLAlchemy's engine
  events (the floor counts its own psycopg statements);
* ``filesystem``: the file and descriptor system calls of this process, counted by ``strace``
  attached to it for the counting pass only.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import typing as t

if t.TYPE_CHECKING:
    import collections.abc as c


class CallCounter:
    """Counts calls of some methods of some objects, and the bytes passed to them."""

    def __init__(self) -> None:
        self.calls = 0
        self.bytes = 0
        self.by_name: dict[str, int] = {}

    def wrap(self, obj: object, names: c.Iterable[str]) -> None:
        """Replace ``obj``'s methods ``names`` (those it has) with counting wrappers."""
        for name in names:
            method = getattr(obj, name, None)
            if method is None or not callable(method):
                continue
            setattr(obj, name, self._wrapper(name, method))

    def _wrapper(self, name: str, method: c.Callable[..., t.Any]) -> c.Callable[..., t.Any]:
        def counted(*args: t.Any, **kwargs: t.Any) -> t.Any:
            self.calls += 1
            self.by_name[name] = self.by_name.get(name, 0) + 1
            for arg in (*args, *kwargs.values()):
                if isinstance(arg, (bytes, bytearray, memoryview)):
                    self.bytes += len(arg)
            return method(*args, **kwargs)

        return counted

    def snapshot(self) -> dict[str, float]:
        snap: dict[str, float] = {"calls": self.calls, "bytes": self.bytes}
        for name, count in self.by_name.items():
            snap[f"call:{name}"] = count
        return snap


def diff(before: c.Mapping[str, float], after: c.Mapping[str, float], n: int) -> dict[str, float]:
    """Per-request differences of two snapshots, dropping counters that did not move."""
    keys = set(before) | set(after)
    out = {}
    for key in sorted(keys):
        delta = after.get(key, 0) - before.get(key, 0)
        if delta:
            out[key] = delta / n
    return out


_SYSCALL = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(\w+)\((.*)\)\s+=\s+(-?\d+)")
#: Syscalls the interpreter makes on its own (allocation, random ids, clocks), not file work.
_IGNORED = frozenset({"getrandom", "mmap", "munmap", "brk", "futex"})


def _tracer_pid() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("TracerPid:"):
                return int(line.split()[1])
    return 0


def strace_available() -> bool:
    return shutil.which("strace") is not None


@contextlib.contextmanager
def strace_syscalls(result: dict[str, float], n: int) -> c.Iterator[None]:
    """Count the file and descriptor syscalls this process makes inside the block.

    ``strace`` is attached to this process (it must be allowed to ptrace it: root, or
    ``kernel.yama.ptrace_scope`` 0) and detached after; ``result`` receives per-request counts
    (``sys:<name>``, ``syscalls``, ``bytes`` written).
    """
    token = secrets.token_hex(4)
    start_marker = f"/.bench-start-{token}"
    end_marker = f"/.bench-end-{token}"
    fd, out = tempfile.mkstemp(prefix="bench-strace-")
    os.close(fd)
    proc = subprocess.Popen(
        ["strace", "-qq", "-f", "-p", str(os.getpid()), "-e", "trace=%file,%desc", "-o", out],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Wait until strace is attached (never read its output from the traced process: every
        # read would be traced and written into the very file being read).
        deadline = time.monotonic() + 10
        while _tracer_pid() == 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("strace could not attach to this process")
            time.sleep(0.02)
        with contextlib.suppress(OSError):
            os.stat(start_marker)
        yield
        with contextlib.suppress(OSError):
            os.stat(end_marker)
    finally:
        time.sleep(0.05)
        proc.terminate()
        proc.wait()
    try:
        with open(out, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    finally:
        os.unlink(out)
    counting = False
    counts: dict[str, int] = {}
    written = 0
    for line in lines:
        if start_marker in line:
            counting = True
            continue
        if end_marker in line:
            break
        if not counting:
            continue
        match = _SYSCALL.match(line)
        if match is None:
            continue
        name, _args, ret = match.groups()
        if name in _IGNORED:
            continue
        counts[name] = counts.get(name, 0) + 1
        if name in ("write", "pwrite64", "writev") and int(ret) > 0:
            written += int(ret)
    result["syscalls"] = sum(counts.values()) / n
    result["bytes"] = written / n
    for name, count in sorted(counts.items()):
        result[f"sys:{name}"] = count / n


class SocketCounter:
    """Counts round trips and bytes sent on this process's sockets to some ports.

    A round trip is a burst of sends followed by a receive: a pipeline or a command split over
    several writes counts once; writes sent without waiting for a reply (memcached ``noreply``)
    merge with the next request. Used for network stores whose client is pure Python
    (redis-py, pymemcache, pymongo).
    """

    def __init__(self, ports: c.Iterable[int]) -> None:
        self.ports = set(ports)
        self.round_trips = 0
        self.bytes = 0

    def snapshot(self) -> dict[str, float]:
        return {"round trips": self.round_trips, "bytes": self.bytes}

    @contextlib.contextmanager
    def active(self) -> c.Iterator[None]:
        import socket

        cls = socket.socket
        saved = {name: cls.__dict__.get(name) for name in ("send", "sendall", "recv", "recv_into")}
        originals = {name: getattr(cls, name) for name in saved}
        sending: dict[int, bool] = {}
        watched: dict[int, bool] = {}
        counter = self

        def is_watched(sock: socket.socket) -> bool:
            key = id(sock)
            if key not in watched:
                try:
                    peer = sock.getpeername()
                    watched[key] = isinstance(peer, tuple) and peer[1] in counter.ports
                except OSError:
                    return False
            return watched[key]

        def make_send(name: str) -> c.Callable[..., t.Any]:
            original = originals[name]

            def send(sock: socket.socket, data: t.Any, *args: t.Any) -> t.Any:
                if is_watched(sock):
                    if not sending.get(id(sock)):
                        counter.round_trips += 1
                        sending[id(sock)] = True
                    counter.bytes += len(data)
                return original(sock, data, *args)

            return send

        def make_recv(name: str) -> c.Callable[..., t.Any]:
            original = originals[name]

            def recv(sock: socket.socket, *args: t.Any) -> t.Any:
                sending[id(sock)] = False
                return original(sock, *args)

            return recv

        cls.send = make_send("send")  # type: ignore[method-assign]
        cls.sendall = make_send("sendall")  # type: ignore[method-assign]
        cls.recv = make_recv("recv")  # type: ignore[method-assign]
        cls.recv_into = make_recv("recv_into")  # type: ignore[method-assign]
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    delattr(cls, name)
                else:
                    setattr(cls, name, value)
