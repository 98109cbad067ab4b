"""``flask session`` against real stores whose server is down: every command that reaches the
store prints one line saying what failed and exits with status 1, never a traceback; ``flask
session check`` finds the outage at deploy time, while ``Session(app)`` starts without the
server."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import FlaskGroup

from flask_serverside import Session
from flask_serverside import get_state

#: The commands that reach the store, with their arguments.
COMMANDS = {
    "check": ["session", "check"],
    "count": ["session", "count"],
    "list": ["session", "list"],
    "show": ["session", "show", "A" * 43],
    "delete": ["session", "delete", "A" * 43],
    "delete-user": ["session", "delete-user", "alice"],
    "purge": ["session", "purge"],
    "session_cleanup": ["session_cleanup"],
}


def _flask(app: Flask, args: list[str]):
    group = FlaskGroup(create_app=lambda: app, load_dotenv=False, set_debug_flag=False)
    return CliRunner().invoke(group, args)


def _app(**config) -> Flask:
    app = Flask("cli_faults")
    # No circuit breaker: each command reaches the store, rather than failing fast after the
    # first (a real `flask session` command is one process, with one attempt).
    app.config.update(SECRET_KEY="cli-faults", SESSION_BREAKER_WINDOW=0, **config)
    Session(app)
    return app


@pytest.fixture(params=["redis", "memcached", "mongodb", "sqlalchemy"])
def app_on_a_stopped_store(request):
    """An application whose store worked at start-up, then its server stopped (one server per
    store: the commands run one after the other on it)."""
    store = request.param
    if store == "redis":
        server = request.getfixturevalue("make_redis_server")()
        config = {"SESSION_TYPE": "redis", "SESSION_REDIS": server.url}
    elif store == "memcached":
        server = request.getfixturevalue("make_memcached_server")()
        config = {
            "SESSION_TYPE": "memcached",
            "SESSION_MEMCACHED": [f"{server.host}:{server.port}"],
            "SESSION_MEMCACHED_TIMEOUT": 0.5,
        }
    elif store == "mongodb":
        server = request.getfixturevalue("make_mongodb_server")()
        config = {
            "SESSION_TYPE": "mongodb",
            "SESSION_MONGODB": server.url,
            "SESSION_MONGODB_TIMEOUT": 0.5,
        }
    else:
        server = request.getfixturevalue("make_postgresql_server")()
        url = server.url.replace("postgresql://", "postgresql+psycopg://", 1)
        config = {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY": url}
    app = _app(**config)
    assert _flask(app, ["session", "check"]).exit_code == 0
    server.stop()
    yield app
    get_state(app).close()


def test_a_store_fault_is_one_line_and_exit_status_1(app_on_a_stopped_store):
    app = app_on_a_stopped_store
    name = get_state(app).store_name
    for command, args in COMMANDS.items():
        result = _flask(app, args)
        lines = result.output.strip().splitlines()
        assert "Traceback" not in result.output, (command, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), command
        assert len(lines) == 1, (command, result.output)
        if result.exit_code == 0:  # the store has no such operation: nothing to reach
            assert command in {"purge", "session_cleanup"} and "nothing to purge" in lines[0]
            continue
        assert result.exit_code == 1, (command, result.output)
        if "capability" in lines[0] or "keeps no index" in lines[0]:
            assert command in {"count", "list", "delete-user"}
            continue
        assert lines[0].startswith("Error: could not "), (command, lines[0])
        assert f"the {name!r} session store failed: " in lines[0], (command, lines[0])
        assert len(lines[0]) < 500, (command, lines[0])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_start_up_does_not_connect_and_check_finds_a_wrong_port():
    """The issue's wrong Redis port: ``Session(app)`` starts (an application may start before
    its store), ``flask session check`` says at once what is wrong."""
    app = _app(SESSION_TYPE="redis", SESSION_REDIS=f"redis://127.0.0.1:{_closed_port()}/0")
    result = _flask(app, ["session", "check"])
    assert result.exit_code == 1
    (line,) = result.output.strip().splitlines()
    assert line.startswith("Error: could not reach the session store: the 'redis' session store")
    assert "Connection refused" in line or "connecting" in line


def test_check_reports_a_live_redis(redis_server):
    app = _app(SESSION_TYPE="redis", SESSION_REDIS=redis_server.url)
    result = _flask(app, ["session", "check"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "store: redis (flask_serverside_redis.RedisStore)"
    assert lines[1] == (
        "capabilities: touch, load_and_touch, conditional_save, save_if_or_load, enumerate,"
        " user_index"
    )
    assert lines[2].startswith("round trip: ") and lines[-1] == "ok"
    get_state(app).close()
