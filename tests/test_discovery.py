"""Store discovery through real entry points (the serverside-fixture-plugins distribution)."""

from __future__ import annotations

import pytest
from flask import Flask
from flask import session
from serverside_fixture_plugins import FixtureStore
from stevedore import DriverManager
from stevedore.extension import Extension

from flask_serverside import MemoryStore
from flask_serverside import Session
from flask_serverside import StoreNotFound
from flask_serverside import StorePluginError
from flask_serverside import get_state
from flask_serverside import register_store
from flask_serverside import unregister_store
from flask_serverside.cli import session_cli
from flask_serverside.registry import installed_stores
from flask_serverside.registry import resolve_store


def _init(store, **config):
    app = Flask("discovery")
    app.config.update(SESSION_TYPE=store, **config)
    Session(app)
    return app


def test_a_store_is_found_by_entry_point_name():
    app = _init("fixture-good", SESSION_KEY_PREFIX="disc:")
    state = get_state(app)
    assert isinstance(state.store, FixtureStore)
    assert state.store_name == "fixture-good"
    assert FixtureStore.last_settings.key_prefix == "disc:"
    assert FixtureStore.last_settings.url is None
    assert FixtureStore.last_settings.app is app


def test_names_are_case_insensitive():
    assert resolve_store("Fixture-Good")[1] is FixtureStore


@pytest.mark.parametrize(
    "url", ["fixturescheme://host:1/db", "fixturescheme+driver://host/db", "FixtureScheme://x"]
)
def test_a_store_is_found_by_url_scheme(url):
    app = _init(url)
    assert isinstance(get_state(app).store, FixtureStore)
    assert FixtureStore.last_settings.url == url


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


def test_a_store_refusing_its_settings_fails_at_init_app():
    from flask_serverside import ConfigurationError

    with pytest.raises(ConfigurationError, match="set FIXTURE_URL"):
        _init("fixture-bad-config")
    assert isinstance(get_state(_init("fixture-bad-config", FIXTURE_URL="x")).store, MemoryStore)


def test_unknown_names_list_what_is_installed():
    with pytest.raises(StoreNotFound) as caught:
        _init("no-such-store")
    assert {"memory", "fixture-good", "fixture-explodes"} <= set(caught.value.installed)


def test_installed_stores_reports_broken_plugins_without_raising():
    infos = {info.name: info for info in installed_stores()}
    assert infos["fixture-good"].distribution == "serverside-fixture-plugins"
    assert "conditional_save" in infos["fixture-good"].capabilities
    assert "RuntimeError" in infos["fixture-explodes"].error
    assert infos["fixture-not-a-store"].error
    assert infos["memory"].distribution == "flask-serverside"


def test_code_registration_wins_and_can_be_removed():
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
    finally:
        unregister_store("fixture-good")
    assert isinstance(get_state(_init("fixture-good")).store, FixtureStore)


def test_stevedore_test_instance_can_stand_in_for_discovery():
    extension = Extension("fixture", None, FixtureStore, None)  # type: ignore[arg-type]
    manager = DriverManager.make_test_instance(extension, namespace="flask_serverside.stores")
    assert manager.driver is FixtureStore


def test_cli_lists_plugins_including_broken_ones():
    app = _init("memory")

    @app.get("/")
    def index():
        return session.get("x", "")

    result = app.test_cli_runner().invoke(session_cli, ["stores"])
    assert result.exit_code == 0
    assert "fixture-good" in result.output and "serverside-fixture-plugins 0" in result.output
    assert "BROKEN: Session store plugin 'fixture-explodes'" in result.output
    assert "importing it raised RuntimeError: this plugin is broken on purpose" in result.output
    lines = result.output.splitlines()
    good = next(n for n, line in enumerate(lines) if line.startswith("fixture-good "))
    assert lines[good + 1].split() == ["also", "named:", "fixturescheme"]
    assert not any(line.startswith("fixturescheme") for line in lines)
