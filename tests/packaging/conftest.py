"""The ``packaging`` marker, and the shell steps of ``docs/authoring.md`` and ``README.md``.

The docs mark the shell blocks they promise will work with ``<!-- run: NAME -->`` and the
output they show with ``<!-- output: NAME -->``. The steps install packages with pip, which
takes a while, so they start in the background as soon as collection shows that their test will
run, and the test waits for them.
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
README = ROOT / "README.md"
#: The steps started at collection, by the test that waits for them: (document, block).
BACKGROUND_STEPS = {
    "test_the_guides_example_steps_work_as_written": (GUIDE, "example"),
    "test_the_guides_outsider_steps_work_as_written": (GUIDE, "outsider"),
    "test_the_readmes_install_from_a_clone_works_as_written": (README, "clone"),
    "test_the_readmes_install_from_wheels_works_as_written": (README, "wheels"),
}
#: What the README's install steps run in: a fresh virtualenv, activated as a reader's shell
#: would have it, and a copy of the parts of the checkout they use (the wheel directory they
#: make stays out of the checkout).
README_BEFORE = """
python3 -m venv "$TMPDIR/venv"
. "$TMPDIR/venv/bin/activate"
mkdir -p "$TMPDIR/checkout/backends"
cp -R "$SOURCE/core" "$TMPDIR/checkout/core"
cp -R "$SOURCE/backends/redis" "$TMPDIR/checkout/backends/redis"
cd "$TMPDIR/checkout"
"""
#: What the README's install steps installed, printed after them.
README_AFTER = """
python -c '
import importlib.metadata as m, json
names = [d.metadata["Name"] for d in m.distributions()]
print("INSTALLED", json.dumps({
    "stores": sorted(ep.name for ep in m.entry_points(group="flask_serverside.stores")),
    "ours": sorted(name for name in names if "serverside" in name),
}))'
"""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "packaging: builds wheels and installs each into a fresh virtualenv (slower)"
    )


def guide_blocks(kind: str, doc: Path = GUIDE) -> dict[str, str]:
    """Return the fenced blocks of ``doc`` marked ``<!-- KIND: NAME -->``, by name (blocks of
    one name joined in order)."""
    blocks: dict[str, str] = {}
    pattern = re.compile(
        rf"^<!-- {kind}: (?P<name>\S+) -->\n(?P<fence>`{{3,}})\S*\n(?P<body>.*?)\n(?P=fence)$",
        re.MULTILINE | re.DOTALL,
    )
    for match in pattern.finditer(doc.read_text(encoding="utf-8")):
        blocks[match["name"]] = blocks.get(match["name"], "") + match["body"] + "\n"
    return blocks


@dataclasses.dataclass
class StepsRun:
    """A run of a document's shell block, in a temporary directory of its own."""

    name: str
    workdir: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(
        cls, name: str, cwd: Path = ROOT, doc: Path = GUIDE, before: str = "", after: str = ""
    ) -> StepsRun:
        """Run the block ``name`` of ``doc`` in ``cwd``, with shell lines ``before`` and
        ``after`` it; ``$TMPDIR`` is a directory of the run's own, ``$SOURCE`` the checkout."""
        script = before + guide_blocks("run", doc)[name] + after
        workdir = Path(tempfile.mkdtemp(prefix=f"steps-{name}-"))
        env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
        env["TMPDIR"] = str(workdir)
        env["SOURCE"] = str(ROOT)
        # The reader's own pytest writes its cache; this one keeps the checkout clean and its
        # temporary directories apart from other pytest runs.
        env["PYTEST_ADDOPTS"] = f"-p no:cacheprovider --basetemp={workdir / 'pytest'}"
        # Files, not pipes: nobody reads the output until the test waits for it.
        with (workdir / "stdout").open("wb") as out, (workdir / "stderr").open("wb") as err:
            process = subprocess.Popen(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # so that kill() ends pip and pytest too
            )
        return cls(name, workdir, process)

    def kill(self) -> None:
        """End the steps and every process they started."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def wait(self, timeout: float = 900) -> str:
        """Wait for the steps; return their output, or fail the test with it."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        stdout = (self.workdir / "stdout").read_text(encoding="utf-8", errors="replace")
        stderr = (self.workdir / "stderr").read_text(encoding="utf-8", errors="replace")
        if self.process.returncode != 0:
            pytest.fail(
                f"the {self.name!r} steps exited with {self.process.returncode}\n"
                f"--- stdout\n{stdout}\n--- stderr\n{stderr}",
                pytrace=False,
            )
        return stdout


_running = pytest.StashKey[dict[str, StepsRun]]()


def _start(test: str) -> StepsRun:
    doc, name = BACKGROUND_STEPS[test]
    if doc == README:
        return StepsRun.start(name, doc=doc, before=README_BEFORE, after=README_AFTER)
    return StepsRun.start(name, doc=doc)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    collected = {getattr(item, "originalname", item.name) for item in session.items}
    session.config.stash[_running] = {
        test: _start(test) for test in BACKGROUND_STEPS if test in collected
    }


def pytest_unconfigure(config: pytest.Config) -> None:
    for run in config.stash.get(_running, {}).values():
        run.kill()
        shutil.rmtree(run.workdir, ignore_errors=True)


@pytest.fixture
def background_steps(request: pytest.FixtureRequest) -> StepsRun:
    """The steps of :data:`BACKGROUND_STEPS` the requesting test waits for, started at
    collection (or now, when collection did not start them)."""
    test = request.node.originalname
    run = request.config.stash.get(_running, {}).get(test)
    return run if run is not None else _start(test)


@pytest.fixture
def guide_steps() -> type[StepsRun]:
    """``guide_steps.start(name, cwd)`` runs one of the guide's shell blocks."""
    return StepsRun


@pytest.fixture
def guide_output() -> dict[str, str]:
    """The output blocks of the guide, by name."""
    return guide_blocks("output")
