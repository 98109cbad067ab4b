"""The session interface: Vary, cookies, the write policy, regenerate, destroy, revoke."""

from __future__ import annotations

import datetime

import pytest
from flask import session

from flask_serverside import get_state
from flask_serverside import revoke_user_sessions
from flask_serverside.testing import spy_on_store
from flask_serverside.writer import forward_target


def _set_cookie(response, name="session"):
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith(name + "=")]


@pytest.mark.parametrize(
    "access",
    [
        lambda s: "user" in s,
        lambda s: list(s),
        lambda s: len(s),
        lambda s: s.keys(),
        lambda s: s.values(),
        lambda s: s.items(),
        lambda s: s.get("user"),
        lambda s: s.copy(),
    ],
    ids=["in", "iter", "len", "keys", "values", "items", "get", "copy"],
)
def test_every_kind_of_access_adds_vary_cookie(make_app, access):
    app = make_app()

    @app.get("/")
    def index():
        access(session._get_current_object())
        return "ok"

    @app.get("/untouched")
    def untouched():
        return "ok"

    client = app.test_client()
    assert "Cookie" in client.get("/").vary
    assert "Cookie" not in client.get("/untouched").vary


def test_session_object_tracks_reads_itself():
    from flask_serverside import ServerSideSession

    for read in (lambda s: "k" in s, lambda s: len(s), lambda s: list(s), lambda s: s.keys()):
        fresh = ServerSideSession({"k": 1})
        assert not fresh.accessed
        read(fresh)
        assert fresh.accessed and not fresh.modified


def test_cookie_attributes_follow_flask_config(make_app):
    app = make_app(
        SESSION_COOKIE_NAME="sid",
        SESSION_COOKIE_DOMAIN="example.test",
        SESSION_COOKIE_PATH="/app",
        SESSION_COOKIE_SECURE=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_PARTITIONED=True,
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(hours=2),
    )

    @app.post("/app/login")
    def login():
        session["user"] = "alice"
        return "ok"

    @app.post("/app/logout")
    def logout():
        session.destroy()
        return "ok"

    client = app.test_client()
    (cookie,) = _set_cookie(client.post("/app/login", base_url="https://example.test"), "sid")
    for part in (
        "Domain=example.test",
        "Secure",
        "HttpOnly",
        "Path=/app",
        "SameSite=Strict",
        "Partitioned",
        "Expires=",
    ):
        assert part in cookie
    (removal,) = _set_cookie(client.post("/app/logout", base_url="https://example.test"), "sid")
    for part in (
        "Domain=example.test",
        "Secure",
        "HttpOnly",
        "Path=/app",
        "SameSite=Strict",
        "Partitioned",
        "Expires=Thu, 01 Jan 1970",
    ):
        assert part in removal


def test_samesite_defaults_to_lax_and_false_sends_none(make_app):
    for config, expected in (({}, "SameSite=Lax"), ({"SESSION_COOKIE_SAMESITE": False}, None)):
        app = make_app(**config)

        @app.post("/login")
        def login():
            session["user"] = "alice"
            return "ok"

        (cookie,) = _set_cookie(app.test_client().post("/login"))
        if expected:
            assert expected in cookie
        else:
            assert "SameSite" not in cookie


def test_unchanged_session_without_sliding_expiry_sends_no_cookie(make_app):
    app = make_app(SESSION_REFRESH_EACH_REQUEST=False)

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return "ok"

    @app.get("/read")
    def read():
        return session.get("user", "")

    client = app.test_client()
    assert _set_cookie(client.post("/login"))
    response = client.get("/read")
    assert response.text == "alice"
    assert _set_cookie(response) == []


def test_sliding_expiry_refreshes_the_cookie_of_a_permanent_session(make_app):
    app = make_app()

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return "ok"

    @app.get("/read")
    def read():
        return session.get("user", "")

    client = app.test_client()
    client.post("/login")
    spy = spy_on_store(app)
    (cookie,) = _set_cookie(client.get("/read"))
    assert "Expires=" in cookie
    assert dict(spy.calls) == {"load_and_touch": 1}


def test_emptied_session_is_deleted_and_cookie_removed(make_app):
    app = make_app()

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return "ok"

    @app.post("/clear")
    def clear():
        session.clear()
        return "ok"

    client = app.test_client()
    client.post("/login")
    state = get_state(app)
    assert state.store.count() == 1
    (removal,) = _set_cookie(client.post("/clear"))
    assert "Expires=Thu, 01 Jan 1970" in removal
    assert state.store.count() == 0


def test_a_stale_cookie_is_removed_when_the_session_stays_empty(make_app):
    app = make_app()

    @app.get("/read")
    def read():
        return str(session.get("user"))

    client = app.test_client()
    client.set_cookie("session", "x" * 43)
    (removal,) = _set_cookie(client.get("/read"))
    assert "Expires=Thu, 01 Jan 1970" in removal


def test_permanent_flag_alone_is_never_stored(make_app):
    app = make_app()

    @app.get("/touch")
    def touch():
        session.permanent = True
        return "ok"

    spy = spy_on_store(app)
    response = app.test_client().get("/touch")
    assert _set_cookie(response) == []
    assert spy.writes == 0


def test_regenerate_on_an_empty_session_is_harmless(make_app):
    app = make_app()

    @app.post("/regen")
    def regen():
        session.regenerate()
        return "ok"

    response = app.test_client().post("/regen")
    assert response.status_code == 200 and _set_cookie(response) == []


def test_flask_session_style_regenerate_api(make_app):
    app = make_app()

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return "ok"

    @app.post("/regen")
    def regen():
        old = session.sid
        app.session_interface.regenerate(session)
        return old

    @app.get("/sid")
    def sid():
        return session.sid

    client = app.test_client()
    client.post("/login")
    old = client.post("/regen").text
    new = client.get("/sid").text
    assert new not in (old, "")
    record = get_state(app).store.load(old)
    assert record is None or forward_target(record.data) == new


def test_cleanup_every_n_requests_purges(make_app):
    app = make_app(SESSION_CLEANUP_N_REQUESTS=3)

    @app.get("/")
    def index():
        return "ok"

    spy = spy_on_store(app)
    client = app.test_client()
    for _ in range(7):
        client.get("/")
    assert spy.calls["purge_expired"] == 2


def test_revoke_user_deletes_only_that_users_sessions(make_app):
    app = make_app()

    @app.post("/login/<name>")
    def login(name):
        session["_user_id"] = name
        return "ok"

    @app.get("/who")
    def who():
        return session.get("_user_id", "nobody")

    alice_phone, alice_laptop, bob = (app.test_client() for _ in range(3))
    alice_phone.post("/login/alice")
    alice_laptop.post("/login/alice")
    bob.post("/login/bob")
    # A session that belonged to alice and passed to carol stays carol's.
    shared = app.test_client()
    shared.post("/login/alice")
    shared.post("/login/carol")
    with app.app_context():
        assert revoke_user_sessions("alice") == 2
    assert alice_phone.get("/who").text == "nobody"
    assert alice_laptop.get("/who").text == "nobody"
    assert bob.get("/who").text == "bob"
    assert shared.get("/who").text == "carol"


def test_user_id_key_is_configurable(make_app):
    app = make_app(SESSION_USER_ID_KEY="account")

    @app.post("/login")
    def login():
        session["account"] = 7
        return "ok"

    app.test_client().post("/login")
    assert len(list(get_state(app).store.user_sids("7"))) == 1


def test_extension_state_and_init_app_pattern():
    from flask import Flask

    from flask_serverside import Session

    extension = Session()
    first, second = Flask("first"), Flask("second")
    for app in (first, second):
        app.config["SESSION_TYPE"] = "memory"
        extension.init_app(app)
    assert get_state(first).store is not get_state(second).store
    assert get_state(first).store_name == "memory"
    assert "session" not in first.cli.commands  # one registration: flask.commands
    with pytest.raises(RuntimeError, match="Session\\(app\\)"):
        get_state(Flask("bare"))


def test_data_set_after_destroy_goes_to_a_new_session(make_app):
    from flask import flash
    from flask import get_flashed_messages

    app = make_app()

    @app.post("/login")
    def login():
        session["user"] = "alice"
        return session.sid or ""

    @app.post("/logout")
    def logout():
        session.destroy()
        flash("Goodbye")
        return "ok"

    @app.get("/page")
    def page():
        return {"user": session.get("user"), "flashes": get_flashed_messages()}

    client = app.test_client()
    client.post("/login")
    old_sid = client.get_cookie("session").value
    client.post("/logout")
    assert client.get_cookie("session").value != old_sid
    store = get_state(app).store
    assert store.load(old_sid) is None
    assert client.get("/page").get_json() == {"user": None, "flashes": ["Goodbye"]}


def test_a_request_that_only_reads_immutable_values_skips_encoding(make_app, monkeypatch):
    app = make_app()

    @app.post("/login")
    def login():
        session["user"] = "alice"
        session["cart"] = ["apple"]
        return "ok"

    @app.get("/user")
    def user():
        return session["user"]

    @app.get("/cart")
    def cart():
        return ",".join(session["cart"])

    @app.post("/cart/<item>")
    def add(item):
        session["cart"].append(item)
        return "ok"

    client = app.test_client()
    client.post("/login")
    serializer = get_state(app).serializer
    encodes = []
    original = serializer.dumps
    monkeypatch.setattr(serializer, "dumps", lambda data: encodes.append(1) or original(data))
    assert client.get("/user").text == "alice"
    assert encodes == []
    assert client.get("/cart").text == "apple"  # a list left the session: check by encoding
    assert len(encodes) == 1
    client.post("/cart/pear")
    assert client.get("/cart").text == "apple,pear"


def test_reading_immutable_values_of_every_exact_type_skips_encoding(make_app):
    import decimal

    from flask_serverside import ServerSideSession

    values = [
        datetime.date(2026, 1, 2),
        datetime.time(3, 4),
        datetime.timedelta(days=1),
        decimal.Decimal("1.5"),
        frozenset({1}),
    ]
    session_ = ServerSideSession({f"k{i}": v for i, v in enumerate(values)})
    for i in range(len(values)):
        session_[f"k{i}"]
    assert session_.unchanged()
    session_.get("missing", [])  # a mutable default handed out: it must be encoded
    assert not session_.unchanged()
