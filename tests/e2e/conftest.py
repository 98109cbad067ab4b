"""Fixtures for the end-to-end tests: the demo server as a subprocess, and headless Chromium
driven by selenium through Debian's ``chromium`` and ``chromium-driver``.

Screenshots go to ``$SERVERSIDE_ARTIFACTS`` when it is set (``artifacts/`` is ignored by git),
else to a directory under pytest's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from serverside_testservers import free_port
from serverside_testservers._process import missing

if t.TYPE_CHECKING:
    import collections.abc as c

    from selenium.webdriver import Chrome

ROOT = Path(__file__).resolve().parents[2]
#: Chromium's flags: headless, as root, and never reaching for the network on its own.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1000,1500",
)
#: Seconds the demo server gets to answer after it starts.
START_TIMEOUT = 20.0


def find_browser() -> tuple[str, str]:
    """Return the paths of Chromium and chromedriver. When one is missing, skip the test (fail
    it under ``CI=true``), as the store tests do for a missing server binary."""
    hint = "run scripts/install-servers (it installs chromium and chromium-driver)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        missing("the 'chromium' browser was not found", hint)
    chromedriver = shutil.which("chromedriver")
    if chromedriver is None:
        missing("'chromedriver' (package chromium-driver) was not found", hint)
    return chromium, chromedriver


class DemoServer:
    """The demo application in its own process, on a loopback port, with its instance folder
    and its filesystem store in temporary directories. :meth:`restart` keeps all three."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.instance = directory / "instance"
        self.sessions = directory / "sessions"
        self.log = directory / "demo.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable, "-m", "demo", "--port", str(self.port),
            "--instance", str(self.instance), "--store", self.sessions.as_uri(),
        ]  # fmt: skip
        # Flask reads FLASK_* variables, and other tests of this session (Flask's CLI runner
        # sets FLASK_RUN_FROM_CLI) may have left some: the demo gets none of them.
        env = {key: value for key, value in os.environ.items() if not key.startswith("FLASK_")}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the demo did not start:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def demo_server() -> c.Iterator[DemoServer]:
    with tempfile.TemporaryDirectory(prefix="serverside-demo-") as directory:
        server = DemoServer(Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wanted = os.environ.get("SERVERSIDE_ARTIFACTS")
    path = Path(wanted) if wanted else tmp_path_factory.mktemp("artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser_lookup() -> c.Callable[[], tuple[str, str]]:
    """:func:`find_browser`, for the test of its outcome when the browser is missing."""
    return find_browser


@pytest.fixture
def browser() -> c.Iterator[c.Callable[[], Chrome]]:
    """A factory of headless Chromium sessions, each with a fresh profile of its own."""
    chromium, chromedriver = find_browser()
    webdriver = pytest.importorskip("selenium.webdriver")
    started: list[Chrome] = []
    profiles: list[tempfile.TemporaryDirectory[str]] = []

    def launch() -> Chrome:
        profile = tempfile.TemporaryDirectory(prefix="serverside-chromium-")
        profiles.append(profile)
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile.name}")
        service = webdriver.ChromeService(executable_path=chromedriver)
        driver = webdriver.Chrome(options=options, service=service)
        driver.set_page_load_timeout(20)
        started.append(driver)
        return driver

    try:
        yield launch
    finally:
        for driver in started:
            driver.quit()
        for profile in profiles:
            profile.cleanup()
