"""Each distribution, built as a wheel and installed with nothing but core into a fresh virtualenv.

For the core alone, every directory under ``backends/`` with a ``pyproject.toml`` and the
third-party example in ``plugins_example/``, these tests check that the wheel:

- pulls in no other store's client library (the memcached store brings no redis, pymongo or
  SQLAlchemy) and registers no store names but its own;
- is picked up by ``SESSION_TYPE`` under each of its entry-point names;
- leaves the names of the stores that are not installed giving the ``pip install`` line;
- passes its own tests there (those of a store that needs servers are only collected, which
  proves they import nothing that is not installed);

and that the core's extras (``flask-serverside[redis]``) name each store's distribution. Wheels
and virtualenvs are made with uv, from its cache.
"""

from __future__ import annotations

import collections.abc as c
import concurrent.futures
import configparser
import contextlib
import dataclasses
import email.parser
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import types
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"
EXAMPLE = ROOT / "plugins_example"
BACKENDS = sorted(path.parent for path in ROOT.glob("backends/*/pyproject.toml"))
#: Distributions whose tests run in full in their own virtualenv; the others need servers,
#: and their tests are only collected there.
FULL_TESTS = {CORE, EXAMPLE, ROOT / "backends" / "filesystem"}
#: Client libraries of stores, by distribution name, with the module each one installs.
CLIENT_LIBRARIES = {
    "redis": "redis",
    "pymemcache": "pymemcache",
    "pymongo": "pymongo",
    "sqlalchemy": "sqlalchemy",
    "psycopg": "psycopg",
    "pymysql": "pymysql",
    "cachelib": "cachelib",
    "boto3": "boto3",
}
GROUP = "flask_serverside.stores"


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


# -- uv ----------------------------------------------------------------------------------------


def _find_uv() -> list[str] | None:
    found = shutil.which("uv")
    if found:
        return [found]
    if importlib.util.find_spec("uv") is not None:
        return [sys.executable, "-m", "uv"]
    for candidate in (Path(sys.executable).parent / "uv", ROOT / ".cache" / "tools" / "bin" / "uv"):
        if candidate.is_file():
            return [str(candidate)]
    return None


@pytest.fixture(scope="session")
def uv() -> list[str]:
    command = _find_uv()
    if command is None:
        message = "uv is needed to build wheels and virtualenvs: pip install uv"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return command


def _clean_env() -> dict[str, str]:
    """The environment without whatever points at the development virtualenv, or at an AWS
    account: a store on boto3's default session then has no region and says so, and reaches
    nothing."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"}
        and not key.startswith(("PYTEST_", "AWS_"))
    }
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env["AWS_CONFIG_FILE"] = env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def _run(
    command: list[str], *, cwd: Path | None = None, timeout: float = 600, label: str = ""
) -> str:
    result = subprocess.run(
        command,
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{label or ' '.join(command)} exited with {result.returncode}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}",
            pytrace=False,
        )
    return result.stdout


# -- wheels --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Wheel:
    """A built wheel and what its metadata says."""

    path: Path
    name: str
    requires: tuple[Requirement, ...]
    extras: tuple[str, ...]
    #: Entry-point names in the ``flask_serverside.stores`` group.
    store_names: tuple[str, ...]
    #: Top-level import packages.
    packages: tuple[str, ...]
    #: The sdist built with it (the wheel is built from it).
    sdist: Path | None = None

    @classmethod
    def read(cls, path: Path) -> Wheel:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
            metadata = email.parser.Parser().parsestr(
                archive.read(f"{info}/METADATA").decode("utf-8")
            )
            entry_points = configparser.ConfigParser(delimiters=("=",))
            entry_points.optionxform = str  # type: ignore[assignment,method-assign]
            if f"{info}/entry_points.txt" in names:
                entry_points.read_string(archive.read(f"{info}/entry_points.txt").decode("utf-8"))
        stores = tuple(entry_points[GROUP]) if entry_points.has_section(GROUP) else ()
        top = {n.split("/")[0] for n in names if "/" in n}
        return cls(
            path,
            canonicalize_name(metadata["Name"]),
            tuple(Requirement(line) for line in metadata.get_all("Requires-Dist") or ()),
            tuple(metadata.get_all("Provides-Extra") or ()),
            stores,
            tuple(sorted(p for p in top if not p.endswith((".dist-info", ".data")))),
        )

    def runtime_requirements(self) -> set[str]:
        """The names of what installing it pulls in directly (no extras)."""
        return {
            canonicalize_name(r.name)
            for r in self.requires
            if r.marker is None or "extra" not in str(r.marker)
        }


def _project(directory: Path) -> dict:
    with (directory / "pyproject.toml").open("rb") as file:
        return tomllib.load(file)


def _declared(directory: Path) -> tuple[str, tuple[str, ...]]:
    """The distribution name and the store names that ``directory``'s pyproject declares."""
    project = _project(directory)["project"]
    names = tuple(project.get("entry-points", {}).get(GROUP, {}))
    return canonicalize_name(project["name"]), names


@dataclasses.dataclass
class Wheels:
    """The wheels built, by source directory; a directory whose build failed fails the tests
    that need it, and only those."""

    built: dict[Path, Wheel]
    failed: dict[Path, str]

    def __getitem__(self, directory: Path) -> Wheel:
        if directory in self.failed:
            pytest.fail(f"building {_rel(directory)} failed: {self.failed[directory]}", False)
        return self.built[directory]

    def values(self) -> list[Wheel]:
        return list(self.built.values())

    def adding(self, directory: Path, wheel: Wheel) -> Wheels:
        return Wheels({**self.built, directory: wheel}, self.failed)


@pytest.fixture(scope="session")
def wheels(uv: list[str], tmp_path_factory: pytest.TempPathFactory) -> Wheels:
    """Every distribution of the repository that the tests install, built once (an sdist and
    the wheel from it), in parallel."""
    out = tmp_path_factory.mktemp("wheels")
    directories = [CORE, ROOT / "testservers", *BACKENDS, EXAMPLE]

    def build(directory: Path) -> Wheel | str:
        target = out / directory.name
        try:  # the sdist, then the wheel from it: a file the sdist lacks breaks the wheel
            _run([*uv, "build", "--quiet", "--out-dir", str(target), str(directory)])
            (path,) = target.glob("*.whl")
            (sdist,) = target.glob("*.tar.gz")
            return dataclasses.replace(Wheel.read(path), sdist=sdist)
        except BaseException as exc:  # pytest.fail raises a BaseException
            return str(exc)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        results = dict(zip(directories, pool.map(build, directories), strict=True))
    return Wheels(
        {d: r for d, r in results.items() if isinstance(r, Wheel)},
        {d: r for d, r in results.items() if isinstance(r, str)},
    )


# -- virtualenvs ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Env:
    """A fresh virtualenv with the core and (unless it is the core) one store distribution."""

    directory: Path
    python: Path
    wheel: Wheel
    uv: list[str]

    def install(self, *requirements: str) -> None:
        _run([*self.uv, "pip", "install", "--quiet", "--python", str(self.python), *requirements])

    def python_script(self, script: str, *args: str, cwd: Path) -> str:
        label = f"{self.python} -c <{script.strip().splitlines()[0]}...> {' '.join(args)}"
        return _run([str(self.python), "-c", script, *args], cwd=cwd, label=label)


def _make_env(uv: list[str], wheels: Wheels, directory: Path, where: Path, extra: list[str]) -> Env:
    _run([*uv, "venv", "--quiet", "--python", sys.executable, str(where)])
    python = where / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = Env(directory, python, wheels[directory], uv)
    dists = {wheels[CORE].path, wheels[directory].path}
    env.install(*(str(path) for path in sorted(dists)), *extra)
    return env


DISTRIBUTIONS = [CORE, *BACKENDS, EXAMPLE]


@pytest.fixture(scope="module", params=DISTRIBUTIONS, ids=_rel)
def bare_env(
    request: pytest.FixtureRequest,
    uv: list[str],
    wheels: Wheels,
    tmp_path_factory: pytest.TempPathFactory,
) -> Env:
    directory: Path = request.param
    return _make_env(uv, wheels, directory, tmp_path_factory.mktemp("venv"), [])


def _test_requirements(directory: Path, wheels: Wheels) -> list[str]:
    """The ``tests`` dependency group of ``directory``'s pyproject, with this repository's
    distributions replaced by their wheels."""
    groups = _project(directory).get("dependency-groups", {})
    local = {wheel.name: str(wheel.path) for wheel in wheels.values()}

    def expand(name: str) -> list[str]:
        items = []
        for item in groups.get(name, []):
            if isinstance(item, dict):
                items.extend(expand(item["include-group"]))
            else:
                items.append(local.get(canonicalize_name(Requirement(item).name), item))
        return items

    return expand("tests") or ["pytest>=8"]


# -- the checks ----------------------------------------------------------------------------------

_INSTALLED = r"""
import importlib.metadata, importlib.util, json, sys
print(json.dumps({
    "distributions": sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()),
    "modules": {m: importlib.util.find_spec(m) is not None for m in json.loads(sys.argv[1])},
    "stores": sorted(ep.name for ep in importlib.metadata.entry_points(group=sys.argv[2])),
}))
"""


def test_installs_no_other_store_and_no_other_client_library(bare_env: Env, tmp_path: Path) -> None:
    own = bare_env.wheel.runtime_requirements()
    found = json.loads(
        bare_env.python_script(
            _INSTALLED, json.dumps(list(CLIENT_LIBRARIES.values())), GROUP, cwd=tmp_path
        )
    )
    installed = {canonicalize_name(name) for name in found["distributions"]}
    for dist, module in CLIENT_LIBRARIES.items():
        if dist in own:
            assert dist in installed and found["modules"][module], f"{dist} is not installed"
        else:
            assert dist not in installed, f"installing {bare_env.wheel.name} pulled in {dist}"
            assert not found["modules"][module], f"{module} is importable"
    others = {n for n in installed if n.startswith("flask-serverside-")} - {bare_env.wheel.name}
    assert others == set()
    expected = {"memory"} | set(bare_env.wheel.store_names)
    assert set(found["stores"]) == expected


_PICK_UP = r"""
import json, sys, traceback
from flask import Flask
from flask_serverside import ConfigurationError, Session, StoreNotFound, StorePluginError

package, names = sys.argv[1], sys.argv[2:]
results = {}
for name in names:
    app = Flask("pick_up")
    app.config.update(SECRET_KEY="packaging", SESSION_TYPE=name)
    try:
        Session(app)
    except (StoreNotFound, StorePluginError) as exc:
        results[name] = {"not found": f"{type(exc).__name__}: {exc}"}
    except ConfigurationError as exc:
        files = [frame.f_code.co_filename for frame, _ in traceback.walk_tb(exc.__traceback__)]
        results[name] = {
            "configuration error": str(exc),
            "raised by the store": any(f"/{package}/" in f.replace("\\", "/") for f in files),
        }
    else:
        state = app.extensions["serverside"]
        results[name] = {"store": state.store.__class__.__module__}
        state.close()
print(json.dumps(results))
"""


def test_session_type_picks_the_store_up_by_name(bare_env: Env, tmp_path: Path) -> None:
    """Each entry-point name reaches the store's ``from_settings``: it builds a store, or, for a
    store that needs a server and has none configured, says what to set."""
    wheel = bare_env.wheel
    if bare_env.directory == CORE:
        names, (package,) = ("memory",), wheel.packages
    else:
        names, (package,) = wheel.store_names, wheel.packages
    assert names, f"{wheel.name} registers no {GROUP} entry point"
    results = json.loads(bare_env.python_script(_PICK_UP, package, *names, cwd=tmp_path))
    for name, result in results.items():
        assert "not found" not in result, result
        if "store" in result:
            assert result["store"].split(".")[0] == package, result
        else:
            assert result["raised by the store"], result
            assert "SESSION_" in result["configuration error"], (
                f"SESSION_TYPE={name!r}: the error does not say which key to set: {result}"
            )


_NOT_FOUND = r"""
import json, sys
from flask import Flask
from flask_serverside import Session, StoreNotFound

results = {}
for name in sys.argv[1:]:
    app = Flask("not_found")
    app.config.update(SECRET_KEY="packaging", SESSION_TYPE=name)
    try:
        Session(app)
    except StoreNotFound as exc:
        results[name] = str(exc)
    else:
        results[name] = None
print(json.dumps(results))
"""


def test_an_uninstalled_store_says_what_to_install(bare_env: Env, tmp_path: Path) -> None:
    expected: dict[str, str] = {}
    for backend in BACKENDS:
        if backend == bare_env.directory:
            continue
        dist, names = _declared(backend)
        for name in names:
            expected[f"{name}://example.invalid/x"] = dist
            if "+" not in name:  # scheme variants (redis+sentinel) are written as URLs
                expected[name] = dist
    unknown = "no-such-store"
    third_party = [] if bare_env.directory == EXAMPLE else ["sqlite3"]
    results = json.loads(
        bare_env.python_script(_NOT_FOUND, *expected, unknown, *third_party, cwd=tmp_path)
    )
    for value, dist in expected.items():
        message = results[value]
        assert message is not None, f"SESSION_TYPE={value!r} did not raise StoreNotFound"
        assert f"pip install {dist}" in message, message
    installed = {"memory", *bare_env.wheel.store_names}
    assert results[unknown] is not None and "pip install" not in results[unknown]
    for name in installed:
        assert name in results[unknown]
    for name in third_party:  # not a first-party store: no hint
        assert results[name] is not None and "pip install" not in results[name]


@dataclasses.dataclass
class OwnTestsRun:
    """A distribution's own tests, running in its virtualenv."""

    label: str
    process: subprocess.Popen[bytes]
    #: Where its output goes (a file, not a pipe that could fill up while nobody reads it).
    output: Path

    def wait(self, timeout: float = 900) -> str:
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        stdout = self.output.read_text(encoding="utf-8", errors="replace")
        stderr = self.output.with_suffix(".err").read_text(encoding="utf-8", errors="replace")
        if self.process.returncode != 0:
            pytest.fail(
                f"{self.label} exited with {self.process.returncode}\n"
                f"--- stdout\n{stdout}\n--- stderr\n{stderr}",
                pytrace=False,
            )
        return stdout

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.fixture(scope="session")
def own_test_runs(
    uv: list[str], wheels: Wheels, tmp_path_factory: pytest.TempPathFactory
) -> c.Iterator[dict[Path, OwnTestsRun | str]]:
    """Every distribution's own tests, each in a fresh virtualenv with the core, the
    distribution and its ``tests`` dependency group, all started at once (they mostly wait:
    on expiry, on other processes)."""
    runs: dict[Path, OwnTestsRun | str] = {}
    for directory in DISTRIBUTIONS:
        where = tmp_path_factory.mktemp("own-tests")
        try:
            requirements = _test_requirements(directory, wheels)
            env = _make_env(uv, wheels, directory, where / "venv", requirements)
        except BaseException as exc:  # pytest.fail raises a BaseException
            runs[directory] = str(exc)
            continue
        mode = ["-q"] if directory in FULL_TESTS else ["--collect-only", "-q"]
        command = [str(env.python), "-m", "pytest", "-p", "no:cacheprovider"]
        command += [f"--basetemp={where / 'basetemp'}", *mode, str(directory / "tests")]
        output = where / "pytest.out"
        with output.open("wb") as stdout, output.with_suffix(".err").open("wb") as stderr:
            process = subprocess.Popen(
                command,
                cwd=where,  # what tests leave in their working directory stays out of the checkout
                env=_clean_env(),
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,  # so that kill() ends what the tests started too
            )
        label = f"pytest {' '.join(mode)} {_rel(directory / 'tests')}"
        runs[directory] = OwnTestsRun(label, process, output)
    yield runs
    for run in runs.values():
        if isinstance(run, OwnTestsRun):
            run.kill()


@pytest.mark.parametrize("directory", DISTRIBUTIONS, ids=_rel)
def test_its_own_tests_pass_in_its_own_virtualenv(
    directory: Path, own_test_runs: dict[Path, OwnTestsRun | str]
) -> None:
    """In full for the core, the filesystem store and the example; collected only for stores
    that need servers, which proves that they import nothing that is not installed."""
    run = own_test_runs[directory]
    if isinstance(run, str):
        pytest.fail(f"setting up the virtualenv failed: {run}", pytrace=False)
    output = run.wait()
    if directory in FULL_TESTS:
        assert re.search(r"\d+ passed", output), output
    else:
        assert re.search(r"\d+ tests? collected", output), output


@pytest.mark.parametrize("backend", BACKENDS, ids=_rel)
def test_core_extra_installs_the_store(backend: Path, wheels: Wheels) -> None:
    """``pip install flask-serverside[<store>]`` pulls ``flask-serverside-<store>``, the name
    the "store not found" message gives."""
    core, (store, _) = wheels[CORE], _declared(backend)
    extra = backend.name
    assert extra in core.extras, (
        f'the core has no extra {extra!r}: add {extra} = ["{store}>=0.1"] to'
        " [project.optional-dependencies] in core/pyproject.toml"
    )
    plugins = {
        canonicalize_name(r.name)
        for r in core.requires
        if r.marker is not None
        and "extra" in str(r.marker)
        and r.marker.evaluate({"extra": extra})
        and canonicalize_name(r.name).startswith("flask-serverside-")
    }
    assert plugins == {store}


_DONE_WHEN = r"""
import sqlite3, sys
from flask import Flask, session
from flask_serverside import Session

app = Flask("done_when")
app.config.update(SECRET_KEY="done", SESSION_TYPE="sqlite3", SESSION_SQLITE3_PATH=sys.argv[1])
Session(app)

@app.post("/login/<user>")
def login(user):
    session["user"] = user
    return "ok"

@app.get("/whoami")
def whoami():
    return session.get("user", "nobody")

client = app.test_client()
assert client.post("/login/alice").status_code == 200
assert client.get_cookie("session") is not None
assert client.get("/whoami").text == "alice"
assert app.test_client().get("/whoami").text == "nobody"
db = sqlite3.connect(sys.argv[1])
assert db.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
db.close()
print(app.extensions["serverside"].store.__class__.__module__)
app.extensions["serverside"].close()
"""


def test_done_when_a_fresh_virtualenv_serves_sessions_from_the_example(
    uv: list[str], wheels: Wheels, tmp_path: Path
) -> None:
    """The issue's acceptance: only flask-serverside and the example plugin's wheel, and a
    real request through the Flask test client stores its session in the plugin's database."""
    env = _make_env(uv, wheels, EXAMPLE, tmp_path / "venv", [])
    found = json.loads(env.python_script(_INSTALLED, "[]", GROUP, cwd=tmp_path))
    ours = {n for n in found["distributions"] if "serverside" in n}
    assert ours == {"flask-serverside", "serverside-sqlite3-store"}
    assert found["stores"] == ["memory", "sqlite3"]
    output = env.python_script(_DONE_WHEN, str(tmp_path / "sessions.db"), cwd=tmp_path)
    assert output.strip() == "serverside_sqlite3_store"


# -- the author's guide, followed literally ------------------------------------------------------


def test_the_guides_example_steps_work_as_written(background_steps, guide_output) -> None:
    """``docs/authoring.md``'s "Try it": pip installs the core and the example from the
    checkout, runs the example's tests, and serves an application's sessions from it."""
    output = background_steps.wait()
    assert "visit 1\nvisit 2\nvisit 3\n1\n" in output
    printed = {" ".join(line.split()) for line in output.splitlines()}
    for line in guide_output["example"].splitlines():
        assert " ".join(line.split()) in printed, (
            f"the guide shows {line!r}; the steps printed:\n{output}"
        )


def _collected(env: Env, cwd: Path) -> int:
    collected = _run(
        [str(env.python), "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q"],
        cwd=cwd,
    )
    count = re.search(r"(\d+) tests? collected", collected)
    assert count is not None, collected
    return int(count[1])


def test_the_guides_template_steps_make_a_store_that_installs(
    guide_steps, uv: list[str], wheels: Wheels, tmp_path: Path
) -> None:
    """ "A new store in this repository": ``scripts/new-store --first-party``, run on a copy of
    the checkout's template, gives a distribution named for this project that builds, ships
    the project's licence, installs with the core alone, is found by ``SESSION_TYPE``, says
    which key to set, and whose tests collect."""
    checkout = tmp_path / "checkout"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "_template", checkout / "_template", ignore=ignore)
    (checkout / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "new-store", checkout / "scripts" / "new-store")
    shutil.copy2(ROOT / "LICENSE", checkout / "LICENSE")
    (checkout / "backends").mkdir()
    output = guide_steps.start("template", cwd=checkout).wait()
    assert "all markers replaced" in output
    (store,) = (checkout / "backends").iterdir()
    assert (store / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    _run([*uv, "build", "--quiet", "--wheel", "--out-dir", str(tmp_path / "wheel"), str(store)])
    built = wheels.adding(store, Wheel.read(next((tmp_path / "wheel").glob("*.whl"))))
    env = _make_env(uv, built, store, tmp_path / "venv", ["pytest>=8"])
    assert env.wheel.name == f"flask-serverside-{store.name}"
    assert env.wheel.store_names == (store.name,)
    results = json.loads(env.python_script(_PICK_UP, *env.wheel.packages, store.name, cwd=tmp_path))
    result = results[store.name]
    assert result.get("raised by the store"), result
    assert f"SESSION_{store.name.upper()}_URL" in result["configuration error"]
    assert _collected(env, store) > 20


#: Store names of the core and of every first-party store's entry points.
def _first_party_names() -> set[str]:
    names = {"memory"}
    for backend in BACKENDS:
        names |= set(_declared(backend)[1])
    return names


def test_a_store_of_your_own_from_the_template_passes_its_tests_with_the_core_wheel_alone(
    uv: list[str], wheels: Wheels, tmp_path: Path
) -> None:
    """The outsider's path: ``scripts/new-store`` makes a third-party package, named by the
    guide's rule, that installs into a fresh virtualenv with nothing of this repository but
    the core's wheel, whose store ``SESSION_TYPE`` finds, and whose own tests (the
    conformance kit on the template's stand-in backend) pass there with only what PyPI has."""
    output = _run(
        [sys.executable, str(ROOT / "scripts" / "new-store"), "acme", "--into", str(tmp_path)]
    )
    assert "all markers replaced" in output
    store = tmp_path / "serverside-acme-store"
    _run([*uv, "build", "--quiet", "--out-dir", str(tmp_path / "dist"), str(store)])
    wheel = Wheel.read(next((tmp_path / "dist").glob("*.whl")))
    assert wheel.name == "serverside-acme-store" and not wheel.name.startswith("flask-serverside")
    assert wheel.store_names == ("acme",) and "acme" not in _first_party_names()
    assert wheel.packages == ("serverside_acme_store",)
    assert _license_of_wheel(wheel.path) is not None
    requirements = _test_requirements(store, wheels)
    assert requirements == ["pytest>=8"]  # nothing that is not on PyPI
    env = _make_env(uv, wheels.adding(store, wheel), store, tmp_path / "venv", requirements)
    found = json.loads(env.python_script(_INSTALLED, "[]", GROUP, cwd=tmp_path))
    assert {n for n in found["distributions"] if "serverside" in n} == {
        "flask-serverside",
        "serverside-acme-store",
    }
    results = json.loads(env.python_script(_PICK_UP, *wheel.packages, "acme", cwd=tmp_path))
    assert "SESSION_ACME_URL" in results["acme"]["configuration error"]
    ran = _run(
        [str(env.python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests"], cwd=store
    )
    assert re.search(r"\d+ passed", ran) and "failed" not in ran and "error" not in ran, ran


def _new_store_script() -> types.ModuleType:
    path = str(ROOT / "scripts" / "new-store")
    loader = importlib.machinery.SourceFileLoader("new_store", path)
    module = types.ModuleType("new_store")
    module.__file__ = path
    loader.exec_module(module)
    return module


def test_new_store_reserves_exactly_the_projects_store_names() -> None:
    from flask_serverside.registry import KNOWN_DISTRIBUTIONS

    reserved = _new_store_script().RESERVED
    assert reserved == {"memory", *KNOWN_DISTRIBUTIONS}
    assert _first_party_names() <= reserved


@pytest.mark.parametrize("name", ["redis", "memory", "sqlite", "file"])
def test_new_store_refuses_the_projects_store_names(name: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "new-store"), name, "--into", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "is a store name of flask-serverside itself" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_guides_outsider_steps_work_as_written(background_steps) -> None:
    """``docs/authoring.md``'s "Your own store", run as written: the package it makes passes
    its tests in a virtualenv with the core from the checkout."""
    output = background_steps.wait()
    assert "created" in output and "serverside-couchdb-store" in output
    assert re.search(r"\d+ passed", output) and "failed" not in output, output


# -- licence and install ------------------------------------------------------------------------


def _license_of_wheel(path: Path) -> str | None:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            parts = name.split("/")
            if parts[0].endswith(".dist-info") and parts[-1] == "LICENSE":
                return archive.read(name).decode("utf-8")
    return None


@pytest.mark.parametrize("directory", [*DISTRIBUTIONS, ROOT / "testservers"], ids=_rel)
def test_every_distribution_ships_the_license(directory: Path, wheels: Wheels) -> None:
    """The BSD-3-Clause text every package declares, in its sdist and its wheel."""
    wheel = wheels[directory]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")
    assert _license_of_wheel(wheel.path) == text
    with zipfile.ZipFile(wheel.path) as archive:
        info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(archive.read(info).decode("utf-8"))
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert wheel.sdist is not None
    with tarfile.open(wheel.sdist) as sdist:
        (member,) = [
            m for m in sdist.getmembers() if m.name.count("/") == 1 and m.name.endswith("/LICENSE")
        ]
        extracted = sdist.extractfile(member)
        assert extracted is not None and extracted.read().decode("utf-8") == text


def _installed(output: str) -> dict[str, list[str]]:
    line = next(line for line in output.splitlines() if line.startswith("INSTALLED "))
    return json.loads(line.removeprefix("INSTALLED "))


def test_the_readmes_install_from_a_clone_works_as_written(background_steps) -> None:
    """README's first install line, in a fresh virtualenv in a copy of the checkout."""
    installed = _installed(background_steps.wait())
    assert installed["ours"] == ["flask-serverside", "flask-serverside-redis"]
    assert {"memory", "redis", "rediss"} <= set(installed["stores"])


def test_the_readmes_install_from_wheels_works_as_written(background_steps) -> None:
    """README's wheels: built once, then the store's wheel alone installs, finding the core
    among the wheels with ``--find-links``."""
    installed = _installed(background_steps.wait())
    assert installed["ours"] == ["flask-serverside", "flask-serverside-redis"]
    assert {"memory", "redis"} <= set(installed["stores"])
    built = sorted(
        p.name.split("-")[0] for p in (background_steps.workdir / "checkout" / "wheels").iterdir()
    )
    assert built == ["flask_serverside", "flask_serverside_redis"]
