"""The views the flow contract drives, as a Blueprint any test application can mount."""

from __future__ import annotations

import datetime
import typing as t
import uuid

from flask import Blueprint
from flask import flash
from flask import get_flashed_messages
from flask import request
from flask import session
from markupsafe import Markup

#: Views for login, a counter, logout, regenerate, flash messages, tagged types and a cart.
flow_views = Blueprint("flow_contract", __name__)


@flow_views.get("/read")
def read() -> dict[str, t.Any]:
    return {"user": session.get("user"), "count": session.get("count", 0)}


@flow_views.get("/dump")
def dump() -> dict[str, t.Any]:
    return {key: value for key, value in session.items() if not key.startswith("_")}


@flow_views.get("/sid")
def sid() -> dict[str, t.Any]:
    return {"sid": getattr(session, "sid", None)}


@flow_views.post("/login")
def login() -> dict[str, t.Any]:
    session["user"] = request.form["user"]
    session["count"] = 0
    return {"ok": True}


@flow_views.post("/count")
def count() -> dict[str, t.Any]:
    session["count"] = session.get("count", 0) + 1
    return {"count": session["count"]}


@flow_views.post("/logout")
def logout() -> dict[str, t.Any]:
    session.destroy()  # type: ignore[attr-defined]
    return {"ok": True}


@flow_views.post("/regenerate")
def regenerate() -> dict[str, t.Any]:
    session.regenerate()  # type: ignore[attr-defined]
    return {"ok": True}


@flow_views.post("/flash")
def add_flashes() -> dict[str, t.Any]:
    flash("<b>plain</b>", "info")
    flash(Markup("<b>bold</b>"), "warning")
    return {"ok": True}


@flow_views.get("/flashes")
def flashes() -> dict[str, t.Any]:
    messages = t.cast("list[tuple[str, str]]", get_flashed_messages(with_categories=True))
    return {"messages": [[cat, str(msg), type(msg).__name__] for cat, msg in messages]}


sample = {
    "tuple": (1, "two"),
    "bytes": b"\x00\xff",
    "markup": Markup("<i>x</i>"),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "when": datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
    "nested": {" t": ["looks", "like", "a tag"]},
}


@flow_views.post("/types")
def store_types() -> dict[str, t.Any]:
    session["sample"] = sample
    return {"ok": True}


@flow_views.get("/types")
def check_types() -> dict[str, t.Any]:
    loaded = session["sample"]
    same_types = all(type(loaded[key]) is type(value) for key, value in sample.items())
    return {"ok": loaded == sample and same_types}


@flow_views.post("/cart/<item>")
def add_to_cart(item: str) -> dict[str, t.Any]:
    session.setdefault("cart", {"items": []})["items"].append(item)
    return {"ok": True}


@flow_views.get("/cart")
def cart() -> dict[str, t.Any]:
    return {"cart": session.get("cart", {"items": []})["items"]}


@flow_views.post("/key/<name>/<value>")
def set_key(name: str, value: str) -> dict[str, t.Any]:
    session[name] = value
    return {"ok": True}
