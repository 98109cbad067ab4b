"""The shared helpers: ports, missing binaries, startup errors, cleanup at exit."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from serverside_testservers import ServerProcess
from serverside_testservers import ServerStartError
from serverside_testservers import free_port
from serverside_testservers import port_is_free
from serverside_testservers._process import descendants
from serverside_testservers._process import missing
from serverside_testservers._process import require_binary


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_free_ports_are_distinct() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50


def test_port_is_free_sees_a_listener() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(free_port())


def test_missing_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="'no-such-server'.*scripts/install-servers"):
        require_binary("no-such-server")


def test_missing_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="'no-such-server'.*scripts/install-servers"):
        require_binary("no-such-server")
    with pytest.raises(pytest.fail.Exception, match="mongoeco.*scripts/install-servers"):
        missing("mongoeco")


def test_require_binary_looks_in_extra_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exe = tmp_path / "fake-server"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert require_binary("fake-server", "/also-nonexistent", tmp_path) == str(exe)


class ShellServer(ServerProcess):
    """Runs a shell snippet; never ready unless *ready* is true."""

    kind = "shell"

    def __init__(self, script: str, ready: bool = False) -> None:
        super().__init__()
        self.script = script
        self.ready = ready

    def argv(self) -> list[str]:
        return ["sh", "-c", self.script]

    def probe(self) -> bool:
        return self.ready


def test_exit_during_startup_quotes_the_log() -> None:
    server = ShellServer("echo boom-marker-1; exit 3")
    try:
        with pytest.raises(ServerStartError, match="exited with status 3") as info:
            server.start()
        assert "boom-marker-1" in str(info.value)
        assert not server.is_running()
    finally:
        server.close()
    assert not server.directory.exists()


def test_timeout_quotes_the_log_and_kills() -> None:
    server = ShellServer("echo still-starting-marker; exec sleep 60")
    try:
        with pytest.raises(ServerStartError, match="timed out after 0.3 s") as info:
            server.start(timeout=0.3)
        assert "still-starting-marker" in info.value.log_tail
        assert pid_gone(server.pid)
    finally:
        server.close()


def test_stop_kill_start_by_pid() -> None:
    server = ShellServer("exec sleep 60", ready=True)
    try:
        server.start()
        first = server.pid
        assert server.is_running()
        server.stop()
        assert pid_gone(first) and not server.is_running()
        server.start()
        second = server.pid
        assert second != first and server.is_running()
        server.kill()
        assert pid_gone(second) and not server.is_running()
        server.stop()  # stopping a stopped server is a no-op
    finally:
        server.close()


def test_leftover_servers_are_killed_at_exit(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        from serverside_testservers import ServerProcess

        class Sleeper(ServerProcess):
            kind = "sleeper"
            def argv(self):
                return ["sleep", "60"]
            def probe(self):
                return True

        server = Sleeper()
        server.start()
        print(server.pid, server.directory, flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=30
    )
    pid, directory = result.stdout.split()
    deadline = time.monotonic() + 5
    while not pid_gone(int(pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert pid_gone(int(pid))
    assert not Path(directory).exists()


def test_fixtures_mark_tests_as_servers(
    request: pytest.FixtureRequest, make_memcached_server: object
) -> None:
    assert request.node.get_closest_marker("servers") is not None


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0]


def _wait_for_child(server: ServerProcess) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = descendants(server.pid)
        if children:
            return children[-1]
        time.sleep(0.02)
    raise AssertionError("the server started no child")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_freeze_and_thaw_reach_children_in_sessions_of_their_own() -> None:
    # A child in a session of its own, as PostgreSQL's backends are: the process group
    # alone would miss it.
    server = ShellServer("setsid sleep 60 & wait", ready=True)
    server.start()
    try:
        child = _wait_for_child(server)
        assert os.getsid(child) != os.getsid(server.pid)
        server.freeze()
        assert server.frozen
        # SIGSTOP is delivered asynchronously: wait for both to show it.
        deadline = time.monotonic() + 5
        while (_state(server.pid), _state(child)) != ("T", "T") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _state(server.pid) == "T" and _state(child) == "T"
        with pytest.raises(RuntimeError, match="frozen already"):
            server.freeze()
        server.thaw()
        assert not server.frozen
        assert _state(server.pid) != "T" and _state(child) != "T"
        server.freeze()
        server.kill()  # a frozen server dies too, children included
        deadline = time.monotonic() + 5
        while not pid_gone(child) and _state(child) != "Z" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pid_gone(child) or _state(child) == "Z"
    finally:
        server.close()


def test_a_frozen_server_stops() -> None:
    server = ShellServer("exec sleep 60", ready=True)
    server.start()
    try:
        server.freeze()
        began = time.monotonic()
        server.stop(timeout=5)
        assert not server.is_running()
        assert time.monotonic() - began < 4  # thawed first, so SIGTERM worked at once
    finally:
        server.close()
