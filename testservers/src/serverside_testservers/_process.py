"""Shared machinery: free ports, binaries, temporary directories and server processes.

Every server kind subclasses :class:`ServerProcess`, which owns one OS process
started with :class:`subprocess.Popen`, its log file and its directory. Stopping
and killing go through the process ID; every process still running when the
interpreter exits is killed by an :mod:`atexit` hook, so a crashed or interrupted
test session leaves no servers behind.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import typing as t
from pathlib import Path

import pytest

if t.TYPE_CHECKING:
    import collections.abc as c

#: Address every server binds to.
HOST = "127.0.0.1"

#: Seconds a server gets to become ready; ``SERVERSIDE_SERVER_TIMEOUT`` overrides it.
DEFAULT_READY_TIMEOUT = float(os.environ.get("SERVERSIDE_SERVER_TIMEOUT", "30"))

#: How many lines of a server's log an error message quotes.
LOG_TAIL_LINES = 30

INSTALL_HINT = "run scripts/install-servers"

_lock = threading.Lock()
_handed_out: set[int] = set()
_live: dict[int, ServerProcess] = {}
_directories: set[Path] = set()
_template_lock = threading.Lock()
_templates: dict[str, Path] = {}


class ServerStartError(RuntimeError):
    """A server process exited or did not become ready before its deadline.

    The message names the command and quotes the tail of the server's log.
    """

    def __init__(self, message: str, log_tail: str) -> None:
        super().__init__(f"{message}\n--- server log (last lines) ---\n{log_tail}")
        #: The last lines of the server's log file.
        self.log_tail = log_tail


def is_root() -> bool:
    """:returns: whether this process runs as root (servers then need a user)."""
    return os.geteuid() == 0


def free_port() -> int:
    """Find a free TCP port on the loopback address.

    Binds a socket to port 0 and lets the kernel choose. A port is never handed
    out twice in one session, so two servers cannot be given the same port even
    if the first has not bound it yet.

    :returns: the port number.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        with _lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no free loopback port found after 100 attempts")


def port_is_free(port: int) -> bool:
    """:returns: whether nothing listens on (or holds) ``port`` of the loopback address, so a
    server can be started on that fixed port (a store's documented default, say)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def missing(what: str, hint: str = INSTALL_HINT) -> t.NoReturn:
    """Skip the test (or fail it when ``CI`` is ``"true"``) because something is missing.

    :param what: says what is missing, e.g. ``"server binary 'memcached' not found"``.
    :param hint: how to get it.
    """
    reason = f"{what}; {hint}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def require_binary(name: str, *extra_dirs: str | Path) -> str:
    """Find an executable on ``PATH``, then in *extra_dirs*.

    Calls :func:`missing` when it is not found.

    :param name: the executable's file name, e.g. ``"redis-server"``.
    :param extra_dirs: further directories to look in, in order.
    :returns: the executable's path.
    """
    found = shutil.which(name)
    if found is None:
        for directory in extra_dirs:
            candidate = Path(directory, name)
            if candidate.is_file() and os.access(candidate, os.X_OK):
                found = str(candidate)
                break
    if found is None:
        missing(f"server binary {name!r} not found")
    return found


def make_directory(kind: str) -> Path:
    """Create a private temporary directory, removed at session end or interpreter exit.

    :param kind: a short name used in the directory's name.
    :returns: the new directory (mode 0700 unless the caller changes it).
    """
    path = Path(tempfile.mkdtemp(prefix=f"serverside-{kind}-"))
    with _lock:
        _directories.add(path)
    return path


def remove_directory(path: Path) -> None:
    """Remove a directory made by :func:`make_directory`; missing is fine."""
    shutil.rmtree(path, ignore_errors=True)
    with _lock:
        _directories.discard(path)


def run_checked(argv: list[str], *, what: str, user: str | None = None) -> None:
    """Run a setup command (``initdb`` and the like) to completion.

    :param argv: the command.
    :param what: describes the step in the error message.
    :param user: OS user to run it as (root only).
    :raises ServerStartError: when it exits non-zero; quotes its output.
    """
    result = subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        user=user,
        group=user,
        check=False,
    )
    if result.returncode != 0:
        output = result.stdout.decode("utf-8", "replace").splitlines()[-LOG_TAIL_LINES:]
        raise ServerStartError(
            f"{what} failed with status {result.returncode}: {' '.join(argv)}",
            "\n".join(output) or "<no output>",
        )


def template(key: str, build: c.Callable[[Path], None]) -> Path:
    """Build a directory once per interpreter and return it on every later call.

    Used for initialised database directories: copying one (:func:`copy_tree`)
    is much quicker than initialising another. Removed at interpreter exit.

    :param key: names the template.
    :param build: fills the given empty directory.
    """
    with _template_lock:
        path = _templates.get(key)
        if path is None:
            path = make_directory("template-" + re.sub(r"[^\w.-]+", "_", key))
            try:
                build(path)
            except BaseException:
                remove_directory(path)
                raise
            _templates[key] = path
        return path


def copy_tree(source: Path, destination: Path) -> None:
    """Copy a directory tree keeping owners and modes (``cp -a``)."""
    run_checked(["cp", "-a", str(source), str(destination)], what="copying a data directory")


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """:returns: the last *lines* lines of the file at *path*, or a note if unreadable."""
    try:
        data = path.read_bytes()
    except OSError as error:
        return f"<log {path} unreadable: {error}>"
    text = data.decode("utf-8", "replace").splitlines()[-lines:]
    return "\n".join(text) if text else "<log is empty>"


def wait_until(
    check: c.Callable[[], bool],
    *,
    timeout: float,
    what: str,
    log: Path | None = None,
    interval: float = 0.02,
) -> None:
    """Poll *check* until it returns true.

    :param check: returns true when the condition holds; ``OSError`` counts as false.
    :param timeout: seconds before giving up.
    :param what: describes the condition in the error message.
    :param log: a log file to quote in the error message.
    :raises ServerStartError: when the deadline passes.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() >= deadline:
            tail = log_tail(log) if log is not None else "<no log>"
            raise ServerStartError(f"timed out after {timeout:g} s waiting for {what}", tail)
        time.sleep(interval)


def descendants(pid: int) -> list[int]:
    """Return the IDs of every process descended from *pid* (children first found, then
    theirs), read from ``/proc``; ``[]`` where there is no ``/proc``.

    PostgreSQL puts each backend in a session of its own, so its process group does not
    hold its whole server: this does.
    """
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    pending = list(children.get(pid, ()))
    while pending:
        child = pending.pop(0)
        found.append(child)
        pending.extend(children.get(child, ()))
    return found


def _signal_all(pids: c.Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class ServerProcess:
    """One server process on a fixed loopback port with its own directory.

    Subclasses implement :meth:`argv` and :meth:`probe`, and may override
    :meth:`prepare` (one-time setup before the first start), :attr:`stop_signal`
    and :meth:`popen_user`.

    The port and the directory are fixed at construction, so :meth:`start` after
    :meth:`stop` or :meth:`kill` brings the same server back on the same port with
    the same data, as far as the server persists it.
    """

    #: Short name of the server kind, used in paths and messages.
    kind: t.ClassVar[str] = "server"
    #: The signal :meth:`stop` sends for a graceful shutdown.
    stop_signal: t.ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, port: int | None = None, directory: Path | None = None) -> None:
        #: Loopback address the server listens on.
        self.host: str = HOST
        #: TCP port the server listens on; the same across restarts.
        self.port: int = free_port() if port is None else port
        #: Directory for data, configuration, sockets and the log.
        self.directory: Path = make_directory(self.kind) if directory is None else directory
        #: The server's combined stdout and stderr.
        self.log_path: Path = self.directory / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._last_pid: int | None = None
        self._prepared = False
        self._frozen: list[int] = []

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<{type(self).__name__} {self.host}:{self.port} pid={self._last_pid} {state}>"

    # -- to implement -------------------------------------------------------
    def argv(self) -> list[str]:
        """:returns: the argument list that runs the server in the foreground."""
        raise NotImplementedError

    def probe(self) -> bool:
        """Ask the server a real protocol question.

        :returns: whether it answered as a ready server does.
        :raises OSError: on connection errors (counted as not ready).
        """
        raise NotImplementedError

    def prepare(self) -> None:
        """One-time setup before the first start, e.g. creating the data directory."""

    def popen_user(self) -> str | None:
        """:returns: the OS user to run the server as, or ``None`` for the current one."""
        return None

    # -- lifecycle -----------------------------------------------------------
    @property
    def pid(self) -> int:
        """Process ID of the running server, or of the last one after it stopped."""
        if self._last_pid is None:
            raise RuntimeError(f"{self!r} was never started")
        return self._last_pid

    def is_running(self) -> bool:
        """:returns: whether the server process is alive (not necessarily ready)."""
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Start the server and wait until it answers on its port.

        :param timeout: seconds to wait for readiness.
        :raises ServerStartError: if it exits or is not ready in time; the
            process is killed first and the message quotes its log.
        """
        if self.is_running():
            raise RuntimeError(f"{self!r} is already running")
        self._reap()
        if not self._prepared:
            self.prepare()
            self._prepared = True
        argv = self.argv()
        user = self.popen_user()
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
                user=user,
                group=user,
            )
        self._proc = proc
        self._last_pid = proc.pid
        with _lock:
            _live[id(self)] = self

        def ready() -> bool:
            if proc.poll() is not None:
                raise ServerStartError(
                    f"{self.kind} exited with status {proc.returncode} during startup: "
                    + " ".join(argv),
                    log_tail(self.log_path),
                )
            return self.probe()

        try:
            wait_until(
                ready, timeout=timeout, what=f"{self.kind} on port {self.port}", log=self.log_path
            )
        except BaseException:
            self.kill()
            raise

    @property
    def frozen(self) -> bool:
        """Whether :meth:`freeze` stopped the server and :meth:`thaw` has not resumed it."""
        return bool(self._frozen)

    def freeze(self) -> None:
        """Stop the server and every process it started with SIGSTOP: a hung server.

        Its sockets stay open and its kernel still accepts connections and acknowledges
        data, but nothing answers, as with a frozen host. :meth:`thaw` resumes it; stopping
        or killing a frozen server thaws it first.

        :raises RuntimeError: when it is not running, or already frozen.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise RuntimeError(f"{self!r} is not running")
        if self._frozen:
            raise RuntimeError(f"{self!r} is frozen already")
        self._frozen = [proc.pid]
        _signal_all([proc.pid], signal.SIGSTOP)  # first, so that it starts no more children
        children = descendants(proc.pid)
        self._frozen.extend(children)
        _signal_all(children, signal.SIGSTOP)

    def thaw(self) -> None:
        """Resume a server :meth:`freeze` stopped (SIGCONT); does nothing otherwise."""
        frozen, self._frozen = self._frozen, []
        _signal_all(reversed(frozen), signal.SIGCONT)

    def request_stop(self) -> None:
        """Send :attr:`stop_signal` to the server's PID without waiting.

        Lets several servers shut down at once; :meth:`stop` then waits for each.
        """
        self.thaw()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, self.stop_signal)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server gracefully by its PID and wait for the process to exit.

        Sends :attr:`stop_signal`; a server that has not exited after *timeout*
        seconds is killed. Does nothing if the server is not running.
        """
        proc = self._proc
        if proc is None:
            return
        self.request_stop()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reap()

    def kill(self) -> None:
        """Kill the server, its process group and every process it started with SIGKILL (a
        crash); wait for it to go."""
        proc = self._proc
        if proc is None:
            return
        self._frozen = []  # SIGKILL ends stopped processes too
        if proc.poll() is None:  # while it lives, its process group is surely ours
            children = descendants(proc.pid)
            try:
                # The whole group (start_new_session): worker processes go with it.
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            _signal_all(children, signal.SIGKILL)  # those in sessions of their own
        self._reap()

    def close(self) -> None:
        """Stop the server and remove its directory (end of its fixture)."""
        try:
            self.stop()
        finally:
            remove_directory(self.directory)

    def _reap(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.wait()
        with _lock:
            _live.pop(id(self), None)


def _kill_leftovers() -> None:
    """Kill every server process still running and remove the temporary directories."""
    with _lock:
        servers = list(_live.values())
        directories = list(_directories)
    for server in servers:
        server.kill()
    for directory in directories:
        remove_directory(directory)


atexit.register(_kill_leftovers)
