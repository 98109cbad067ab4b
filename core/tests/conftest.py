from __future__ import annotations

import pytest

from flask_serverside import MemoryStore
from flask_serverside import NodeUnavailable
from flask_serverside import register_store
from flask_serverside import unregister_store


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app():
    """Build a Flask application on the memory store; keyword arguments are config keys."""
    from flask import Flask

    from flask_serverside import Session

    def make(**config):
        app = Flask("core_tests")
        app.config.update(SECRET_KEY="core-test-secret", SESSION_TYPE="memory")
        app.config.update(config)
        Session(app)
        return app

    return make


@pytest.fixture
def flask_cli():
    """Run ``flask ARGS`` on an application as the ``flask`` command does: through a
    FlaskGroup, which finds the ``session`` group by its ``flask.commands`` entry point."""
    from click.testing import CliRunner
    from flask.cli import FlaskGroup

    def invoke(app, *args):
        group = FlaskGroup(create_app=lambda: app, load_dotenv=False, set_debug_flag=False)
        return CliRunner().invoke(group, list(args))

    return invoke


class FlakyStore(MemoryStore):
    """A memory store that fails on demand, registered as ``SESSION_TYPE = "flaky"`` by the
    ``flaky`` fixture: ``fault`` is raised by every operation."""

    fault: Exception | None = None
    #: Calls that reached the store.
    reached = 0
    #: How many creations of a new session still fail as if its id fell on a node that is down.
    creations_down = 0
    #: The ids of the new sessions it was asked to create.
    created: list[str] = []

    @classmethod
    def from_settings(cls, settings):
        return cls(key_prefix=settings.key_prefix)

    def _check(self):
        type(self).reached += 1
        if type(self).fault is not None:
            raise type(self).fault

    def load(self, sid):
        self._check()
        return super().load(sid)

    def load_and_touch(self, sid, ttl):
        self._check()
        return super().load_and_touch(sid, ttl)

    def save_if(self, sid, data, ttl, *, expected, user_id=None):
        self._check()
        if expected is None:
            type(self).created.append(sid)
            if type(self).creations_down > 0:
                type(self).creations_down -= 1
                raise NodeUnavailable("the node of this id is down")
        return super().save_if(sid, data, ttl, expected=expected, user_id=user_id)

    def save_if_or_load(self, sid, data, ttl, *, expected, user_id=None):
        self._check()
        return super().save_if_or_load(sid, data, ttl, expected=expected, user_id=user_id)

    def touch(self, sid, ttl):
        self._check()
        return super().touch(sid, ttl)


@pytest.fixture
def flaky():
    register_store("flaky", FlakyStore)
    FlakyStore.fault = None
    FlakyStore.reached = 0
    FlakyStore.creations_down = 0
    FlakyStore.created = []
    yield FlakyStore
    FlakyStore.fault = None
    unregister_store("flaky")
