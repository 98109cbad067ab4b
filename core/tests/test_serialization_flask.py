"""Exact types and registered tags through Flask requests, on the memory store."""

from __future__ import annotations

import datetime
import decimal
import zoneinfo
from collections import OrderedDict

import pytest
from flask import session
from flask.json.tag import JSONTag

from flask_serverside import UnserializableValue
from flask_serverside import get_state


class Money:
    def __init__(self, amount, currency):
        self.amount, self.currency = amount, currency

    def __eq__(self, other):
        return type(other) is Money and (self.amount, self.currency) == (
            other.amount,
            other.currency,
        )


class TagMoney(JSONTag):
    key = " money"

    def check(self, value):
        return isinstance(value, Money)

    def to_json(self, value):
        return [self.serializer.tag(value.amount), value.currency]

    def to_python(self, value):
        return Money(*value)


class TagOrderedDict(JSONTag):
    """The example of Flask's documentation for ``serializer.register(..., index=0)``."""

    key = " od"

    def check(self, value):
        return isinstance(value, OrderedDict)

    def to_json(self, value):
        return [[k, self.serializer.tag(v)] for k, v in value.items()]

    def to_python(self, value):
        return OrderedDict(value)


VALUES = {
    "money": Money(decimal.Decimal("9.99"), "EUR"),
    "od": OrderedDict([("z", 1), ("a", Money(decimal.Decimal("1"), "USD"))]),
    "when": datetime.datetime(2024, 10, 27, 2, 30, 0, 5, fold=1, tzinfo=zoneinfo.ZoneInfo("UTC")),
    "naive": datetime.datetime(2024, 1, 2, 3, 4, 5, 6),
    "day": datetime.date(2024, 1, 2),
    "tags": {"a", "b"},
    "counts": {1: 2, (3, 4): 5},
    "big": 2**80,
    "inf": float("inf"),
}


@pytest.fixture(params=["msgpack", "json"])
def app(request, make_app):
    app = make_app(SESSION_SERIALIZATION_FORMAT=request.param)
    serializer = get_state(app).serializer
    serializer.register(TagMoney)
    serializer.tagger.register(TagOrderedDict, index=0)  # Flask's own spelling keeps working

    @app.post("/put")
    def put():
        session.update(VALUES)
        return "ok"

    @app.get("/check")
    def check():
        same = {}
        for key, value in VALUES.items():
            same[key] = type(session[key]) is type(value) and session[key] == value
        return same

    return app


def test_registered_and_exact_types_survive_requests(app):
    client = app.test_client()
    assert client.post("/put").status_code == 200
    checked = client.get("/check").get_json()
    assert checked == {key: True for key in VALUES}
    state = get_state(app)
    record = state.store.load(state.store_key(client.get_cookie("session").value))
    when = state.serializer.loads(record.data)["when"]
    assert when.fold == 1 and when.tzinfo is zoneinfo.ZoneInfo("UTC")


def test_an_unregistered_type_fails_at_save_with_its_path(app):
    @app.post("/bad")
    def bad():
        session["cart"] = ["apple", "pear", object()]
        return "ok"

    state = get_state(app)
    with app.test_request_context("/bad", method="POST"):
        app.preprocess_request()
        bad()
        with pytest.raises(UnserializableValue, match=r"^session\['cart'\]\[2\]: object "):
            state.writer.commit(session._get_current_object())
