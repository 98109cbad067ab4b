"""The ``packaging`` marker, and the shell steps of ``docs/authoring.md``.

The guide marks the shell blocks it promises will work with ``<!-- run: NAME -->`` and the
output it shows with ``<!-- output: NAME -->``. The steps of the example install packages with
pip, which takes a while, so they start in the background as soon as collection shows that
their test will run, and the test waits for them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "authoring.md"
#: The test that runs the example's steps.
EXAMPLE_STEPS_TEST = "test_the_guides_example_steps_work_as_written"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "packaging: builds wheels and installs each into a fresh virtualenv (slower)"
    )


def guide_blocks(kind: str) -> dict[str, str]:
    """Return the fenced blocks of the guide marked ``<!-- KIND: NAME -->``, by name (blocks
    of one name joined in order)."""
    blocks: dict[str, str] = {}
    pattern = re.compile(
        rf"^<!-- {kind}: (?P<name>\S+) -->\n(?P<fence>`{{3,}})\S*\n(?P<body>.*?)\n(?P=fence)$",
        re.MULTILINE | re.DOTALL,
    )
    for match in pattern.finditer(GUIDE.read_text(encoding="utf-8")):
        blocks[match["name"]] = blocks.get(match["name"], "") + match["body"] + "\n"
    return blocks


@dataclasses.dataclass
class StepsRun:
    """A run of a guide's shell block, in a temporary directory of its own."""

    name: str
    workdir: Path
    process: subprocess.Popen[str]

    @classmethod
    def start(cls, name: str, cwd: Path = ROOT) -> StepsRun:
        script = guide_blocks("run")[name]
        workdir = Path(tempfile.mkdtemp(prefix=f"guide-{name}-"))
        env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
        env["TMPDIR"] = str(workdir)
        # The reader's own pytest writes its cache; this one keeps the checkout clean and its
        # temporary directories apart from other pytest runs.
        env["PYTEST_ADDOPTS"] = f"-p no:cacheprovider --basetemp={workdir / 'pytest'}"
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # so that kill() ends pip and pytest too
        )
        return cls(name, workdir, process)

    def kill(self) -> None:
        """End the steps and every process they started."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def wait(self, timeout: float = 900) -> str:
        """Wait for the steps; return their output, or fail the test with it."""
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            stdout, stderr = self.process.communicate()
        if self.process.returncode != 0:
            pytest.fail(
                f"the guide's {self.name!r} steps exited with {self.process.returncode}\n"
                f"--- stdout\n{stdout}\n--- stderr\n{stderr}",
                pytrace=False,
            )
        return stdout


_running = pytest.StashKey[StepsRun]()


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any(item.name == EXAMPLE_STEPS_TEST for item in session.items):
        session.config.stash[_running] = StepsRun.start("example")


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(_running, None)
    if run is not None:
        if run.process.poll() is None:
            run.kill()
            run.process.communicate()
        shutil.rmtree(run.workdir, ignore_errors=True)


@pytest.fixture
def example_steps(request: pytest.FixtureRequest) -> StepsRun:
    """The guide's example steps, started at collection."""
    run = request.config.stash.get(_running, None)
    return run if run is not None else StepsRun.start("example")


@pytest.fixture
def guide_steps() -> type[StepsRun]:
    """``guide_steps.start(name, cwd)`` runs one of the guide's shell blocks."""
    return StepsRun


@pytest.fixture
def guide_output() -> dict[str, str]:
    """The output blocks of the guide, by name."""
    return guide_blocks("output")
