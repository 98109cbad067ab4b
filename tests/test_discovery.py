"""Store discovery through real entry points: the fixture distributions of
``tests/fixture_plugins/site``, put on ``sys.path`` while this module runs (they are never
installed, so the development environment does not list them)."""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import sys
from pathlib import Path

import pytest
from flask import Flask
from flask import session
from stevedore import DriverManager
from stevedore import ExtensionManager
from stevedore.extension import Extension

from flask_serverside import MemoryStore
from flask_serverside import Session
from flask_serverside import StoreNotFound
from flask_serverside import StorePluginError
from flask_serverside import get_state
from flask_serverside import register_store
from flask_serverside import unregister_store
from flask_serverside.cli import session_cli
from flask_serverside.registry import KNOWN_DISTRIBUTIONS
from flask_serverside.registry import NAMESPACE
from flask_serverside.registry import installed_stores
from flask_serverside.registry import resolve_store

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

SITE = Path(__file__).parent / "fixture_plugins" / "site"
PACKAGE = "serverside_fixture_plugins"

#: Each broken name, and what its error says.
BROKEN = {
    "fixture-explodes": "importing it raised RuntimeError: this plugin is broken on purpose",
    "fixture-explodes+scheme": "importing it raised RuntimeError",
    "fixture-missing-module": "ModuleNotFoundError",
    "fixture-not-a-store": "no from_settings",
    "fixture-lying": "lacks touch for what it declares",
    "fixture-bad-keys": "'config_keys' attribute is not a tuple of strings",
    "fixture-twice": "several installed distributions register this name",
    "fixture-same-target": "several installed distributions register this name",
}


def _forget_entry_points():
    """Make the import system and stevedore read the entry points again: stevedore keeps
    those of each group for the life of the process."""
    importlib.invalidate_caches()
    ExtensionManager.ENTRY_POINT_CACHE.pop(NAMESPACE, None)


@pytest.fixture(scope="module", autouse=True)
def plugins():
    """Put the fixture distributions on ``sys.path`` for this module's tests."""
    sys.path.insert(0, str(SITE))
    _forget_entry_points()
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(SITE))
        _forget_entry_points()
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _init(store, **config):
    app = Flask("discovery")
    app.config.update(SESSION_TYPE=store, **config)
    Session(app)
    return app


def test_the_fixture_distributions_are_found_as_installed():
    dist = importlib.metadata.distribution("serverside-fixture-plugins")
    assert "fixture-good" in dist.entry_points.names


def test_a_store_is_found_by_entry_point_name(plugins):
    app = _init("fixture-good", SESSION_KEY_PREFIX="disc:")
    state = get_state(app)
    assert isinstance(state.store, plugins.FixtureStore)
    assert state.store_name == "fixture-good"
    assert plugins.FixtureStore.last_settings.key_prefix == "disc:"
    assert plugins.FixtureStore.last_settings.url is None
    assert plugins.FixtureStore.last_settings.app is app


def test_names_are_case_insensitive(plugins):
    assert resolve_store("Fixture-Good")[1] is plugins.FixtureStore


@pytest.mark.parametrize(
    "url", ["fixturescheme://host:1/db", "fixturescheme+driver://host/db", "FixtureScheme://x"]
)
def test_a_store_is_found_by_url_scheme(url, plugins):
    app = _init(url)
    assert isinstance(get_state(app).store, plugins.FixtureStore)
    assert plugins.FixtureStore.last_settings.url == url


def test_a_plugin_that_fails_to_import_names_itself():
    with pytest.raises(StorePluginError) as caught:
        _init("fixture-explodes")
    message = str(caught.value)
    assert "fixture-explodes" in message
    assert "serverside_fixture_plugins.explodes:Store" in message
    assert "this plugin is broken on purpose" in message
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_a_plugin_whose_module_is_missing_names_itself():
    with pytest.raises(StorePluginError, match="does_not_exist.*ModuleNotFoundError"):
        _init("fixture-missing-module")


def test_a_plugin_that_is_not_a_store_is_refused():
    with pytest.raises(StorePluginError, match="no from_settings") as caught:
        _init("fixture-not-a-store")
    assert caught.value.plugin.__name__ == "NotAStore"


def test_a_store_lacking_a_declared_capability_is_refused():
    with pytest.raises(StorePluginError, match="lacks touch"):
        _init("fixture-lying")


def test_a_store_whose_config_keys_are_not_a_tuple_is_refused():
    with pytest.raises(StorePluginError, match="'config_keys' attribute is not a tuple"):
        _init("fixture-bad-keys")


@pytest.mark.parametrize("name", ["fixture-twice", "fixture-same-target"])
def test_a_name_registered_by_two_distributions_is_refused(name):
    """Even when both name the same class: which distribution owns the name is ambiguous, and
    uninstalling either would change what the application runs on."""
    with pytest.raises(StorePluginError, match="several installed distributions") as caught:
        _init(name)
    message = str(caught.value)
    assert "serverside-fixture-plugins" in message and "serverside-fixture-twin" in message


def test_a_store_refusing_its_settings_fails_at_init_app():
    from flask_serverside import ConfigurationError

    with pytest.raises(ConfigurationError, match="set FIXTURE_URL"):
        _init("fixture-bad-config")
    assert isinstance(get_state(_init("fixture-bad-config", FIXTURE_URL="x")).store, MemoryStore)


def test_unknown_names_list_store_names_and_url_schemes_apart():
    with pytest.raises(StoreNotFound) as caught:
        _init("no-such-store")
    error = caught.value
    assert {"memory", "fixture-good", "fixture-explodes", "fixture-plain"} <= set(error.installed)
    assert {"fixturescheme", "fixture-plain+scheme", "fixture-explodes+scheme"} <= set(
        error.schemes
    )
    assert "fixturescheme" not in error.installed and "fixture-good" not in error.schemes
    stores_part, schemes_part = str(error).split("URL schemes:")
    assert "fixture-good" in stores_part and "fixturescheme" not in stores_part
    assert "fixturescheme" in schemes_part
    assert error.suggestions == [] and "Did you mean" not in str(error)


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("fixture-goood", "fixture-good"),
        ("fixtur-good", "fixture-good"),
        ("fixtureschem://host/x", "fixturescheme"),
        ("memroy", "memory"),
    ],
)
def test_a_misspelt_store_name_gets_a_did_you_mean(typed, meant):
    with pytest.raises(StoreNotFound) as caught:
        _init(typed)
    assert caught.value.suggestions[0] == meant
    assert f"Did you mean {meant!r}" in str(caught.value)


def test_store_not_found_is_a_value_error_as_in_flask_session():
    with pytest.raises(ValueError, match="No session store named 'fixture-goood'"):
        _init("fixture-goood")


# -- what flask session stores shows -------------------------------------------------------------


def _infos():
    return {info.name: info for info in installed_stores()}


def test_installed_stores_groups_names_by_class_and_sorts_them(plugins):
    infos = _infos()
    good = infos["fixture-good"]
    assert good.distribution == "serverside-fixture-plugins"
    assert good.target == "serverside_fixture_plugins:FixtureStore"
    assert good.url_schemes == ("fixturescheme",)  # declared by the class
    assert set(good.aliases) == {"fixture-twice", "fixture-same-target"}
    assert "conditional_save" in good.capabilities
    plain = infos["fixture-plain"]  # no url_schemes: the main name, then schemes
    assert plain.aliases == () and plain.url_schemes == ("fixture-plain+scheme",)
    assert not plain.errors and plain.capabilities == ()
    assert infos["memory"].distribution == "flask-serverside"
    assert infos["memory"].url_schemes == ()


def test_installed_stores_flags_exactly_what_start_up_refuses_with_its_message():
    errors = {name: error for info in installed_stores() for name, error in info.errors.items()}
    assert set(errors) == set(BROKEN)
    for name, expected in BROKEN.items():
        with pytest.raises(StorePluginError) as caught:
            _init(name)
        assert expected in str(caught.value)
        assert str(errors[name]) == str(caught.value), name
    # every name that is not flagged is found and passes the checks
    for info in installed_stores():
        for name in info.names:
            if name not in BROKEN:
                assert resolve_store(name)[0] == name


def test_the_twin_distribution_is_listed_with_its_own_error():
    twin = [info for info in installed_stores() if info.distribution == "serverside-fixture-twin"]
    assert {name for info in twin for name in info.names} == {
        "fixture-twice",
        "fixture-same-target",
    }
    assert all(info.errors for info in twin)


def test_cli_lists_plugins_marking_what_start_up_refuses():
    app = _init("memory")

    @app.get("/")
    def index():
        return session.get("x", "")

    result = app.test_cli_runner().invoke(session_cli, ["stores"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in set(BROKEN) - {"fixture-explodes+scheme"}:  # shown as "the same for" below
        with pytest.raises(StorePluginError) as caught:
            _init(name)
        shown = [line for line in lines if str(caught.value) in line]
        assert shown and "BROKEN:" in shown[0], (name, result.output)
    good = next(n for n, line in enumerate(lines) if line.startswith("fixture-good "))
    assert "serverside-fixture-plugins 0" in lines[good]
    block = lines[good + 1 : good + 5]
    assert any(line.split()[:2] == ["also", "named:"] for line in block)
    assert any(line.split() == ["URL", "schemes:", "fixturescheme://"] for line in block)
    assert sum(line.startswith("fixture-good ") for line in lines) == 1
    assert not any(line.startswith(("fixturescheme", "fixture-explodes+scheme")) for line in lines)
    explodes = next(n for n, line in enumerate(lines) if line.startswith("fixture-explodes "))
    broken = [line for line in lines[explodes + 1 : explodes + 4] if "BROKEN:" in line]
    assert len(broken) == 1 and "(the same for: fixture-explodes+scheme)" in broken[0]
    assert "Session(app) refuses" in lines[-1]


# -- misspelt configuration keys -------------------------------------------------------------------


def test_a_misspelt_key_of_the_store_is_reported_at_init_app(caplog):
    with caplog.at_level(logging.WARNING, logger="flask_serverside"):
        _init("fixture-good", SESSION_FIXTURE_ULR="x", SESSION_FIXTURE_URL="y")
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith("SESSION_FIXTURE_ULR is not a setting")
    assert "did you mean SESSION_FIXTURE_URL?" in message
    assert "'fixture-good'" in message
    assert "x" not in message.split("?")[-1] and "'y'" not in message  # no values


def test_a_store_without_config_keys_still_gets_the_cores_keys_checked(caplog):
    with caplog.at_level(logging.WARNING, logger="flask_serverside"):
        _init("fixture-plain", SESSION_PLAIN_URL="x", SESSION_PERMANANT=False)
    assert [r.getMessage().split()[0] for r in caplog.records] == ["SESSION_PERMANANT"]


# -- registration in code ------------------------------------------------------------------------


def test_code_registration_wins_and_can_be_removed(plugins):
    class Mine(MemoryStore):
        @classmethod
        def from_settings(cls, settings):
            return cls()

    register_store("fixture-good", Mine)
    try:
        assert isinstance(get_state(_init("fixture-good")).store, Mine)
        with pytest.raises(ValueError, match="already registered"):
            register_store("fixture-good", Mine)
        with pytest.raises(StorePluginError):
            register_store("broken", object, replace=True)  # type: ignore[arg-type]
        infos = _infos()
        assert infos["fixture-good"].distribution is None
    finally:
        unregister_store("fixture-good")
    assert isinstance(get_state(_init("fixture-good")).store, plugins.FixtureStore)


def test_stevedore_test_instance_can_stand_in_for_discovery(plugins):
    extension = Extension("fixture", None, plugins.FixtureStore, None)  # type: ignore[arg-type]
    manager = DriverManager.make_test_instance(extension, namespace="flask_serverside.stores")
    assert manager.driver is plugins.FixtureStore


def _first_party_store_names():
    root = Path(__file__).resolve().parents[1]
    names = []
    for pyproject in sorted(root.glob("backends/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        for name in project["entry-points"]["flask_serverside.stores"]:
            names.append(pytest.param(name, pyproject.parent.name, id=name))
    return names


@pytest.mark.parametrize(("name", "store"), _first_party_store_names())
def test_every_first_party_store_name_gives_its_pip_install_line(name, store):
    """The core's hint table names the distribution of every name a backend registers, so a
    missing store says ``pip install flask-serverside-<store>``."""
    assert KNOWN_DISTRIBUTIONS.get(name) == store
