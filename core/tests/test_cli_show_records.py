"""``flask session show`` on every kind of record: corrupt ones are reported in one error line
with exit status 1, and sessions with any value the serializer holds are printed, never a
crash."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

from flask_serverside import get_state
from flask_serverside.testing.hostile import HOSTILE_RECORDS


@pytest.fixture
def app(make_app):
    return make_app()


def _plant(app, record):
    state = get_state(app)
    sid = state.ids.generate()
    state.store.save(state.store_key(sid), record, 60)
    return sid


@pytest.mark.parametrize(("name", "record"), HOSTILE_RECORDS, ids=[n for n, _ in HOSTILE_RECORDS])
def test_a_corrupt_record_is_shown_as_corrupt(app, flask_cli, name, record):
    result = flask_cli(app, "session", "show", _plant(app, record))
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "the record is corrupt" in errors[0]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("fmt", ["msgpack", "json"])
def test_a_session_with_any_value_is_shown(make_app, flask_cli, fmt):
    app = make_app(SESSION_SERIALIZATION_FORMAT=fmt)
    data = {
        "_user_id": "alice",
        "keys": {1: "a", "b": 2, (1, 2): 3, None: 4},
        "set": {1, "a"},
        "when": datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
        "money": decimal.Decimal("1.10"),
        "id": uuid.UUID(int=7),
        "nan": float("nan"),
        "big": 2**70,
    }
    sid = _plant(app, get_state(app).serializer.dumps(data))
    result = flask_cli(app, "session", "show", sid)
    assert result.exit_code == 0, result.output
    assert "alice" in result.output and "Decimal('1.10')" in result.output
