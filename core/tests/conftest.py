from __future__ import annotations

import pytest


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
