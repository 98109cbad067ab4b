"""The demo: what server-side sessions give, on any installed store.

Run it with ``scripts/demo`` (``python -m demo --help`` lists the options). With no store named
it uses the default embedded store, files under ``demo/instance/flask_session``; name another by
URL: ``scripts/demo --store redis://127.0.0.1:6379/0``. Other settings come from ``FLASK_*``
variables (``FLASK_PERMANENT_SESSION_LIFETIME=60``).

The page shows the session record as the server holds it, the user's devices (sessions) with
"log out this device" and "log out everywhere", parallel requests of one session that all land
(the conditional save and its merge), and flash messages by category. The secret key that signs
the cookies is kept in the instance folder, so a restart logs nobody out.
"""

from __future__ import annotations

import datetime
import time
import typing as t
from pathlib import Path

from flask import Flask
from flask import abort
from flask import flash
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from markupsafe import Markup

from flask_serverside import Session
from flask_serverside import get_state
from flask_serverside import revoke_user_sessions

from . import sessions

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Response

#: The instance folder when none is given: the secret key and the default store's files.
INSTANCE = Path(__file__).resolve().parent / "instance"
#: How many requests the race fires at once (a browser opens six connections per host).
RACE_SLOTS = 6
#: How long a race request holds its session, so that all of them overlap.
RACE_HOLD = 0.25


def create_app(store: str | None = None, instance_path: str | None = None) -> Flask:
    """Build the demo application.

    :param store: ``SESSION_TYPE``: a store's name or URL; the default store when ``None``.
    :param instance_path: the instance folder; :data:`INSTANCE` when ``None``.
    """
    instance = Path(instance_path or INSTANCE).resolve()
    app = Flask(__name__, instance_path=str(instance))
    app.config.update(
        SECRET_KEY=sessions.secret_key(instance),
        SESSION_USE_SIGNER=True,
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(minutes=30),
    )
    app.config.from_prefixed_env()
    if store:
        app.config["SESSION_TYPE"] = store
    Session(app)
    state = get_state(app)
    user_key = state.config.user_id_key

    def current_user() -> str | None:
        user = session.get(user_key)
        return None if user is None else str(user)

    def require_login() -> str:
        user = current_user()
        if user is None:
            abort(401)
        return user

    @app.errorhandler(401)
    def logged_out(error: Exception) -> Response | tuple[Response, int]:
        if request.path.startswith("/race"):
            return jsonify(error="You are logged out: log in again."), 401
        flash("You are logged out: log in again.", "warning")
        return redirect(url_for("index"))

    @app.get("/")
    def index() -> str:
        user = current_user()
        record = None
        if user is not None and session.key and session.record:  # type: ignore[attr-defined]
            record = sessions.describe(state, session.key, session.record)  # type: ignore[attr-defined]
        return render_template(
            "index.html",
            user=user,
            record=record,
            devices=_devices(user),
            store=state.store_name,
            capabilities=sessions.capabilities(state),
            slots=RACE_SLOTS,
        )

    def _devices(user: str | None) -> list[dict[str, t.Any]] | None:
        if user is None or not sessions.has_user_index(state):
            return None
        return sessions.devices(state, user, session.key)  # type: ignore[attr-defined]

    @app.post("/login")
    def login() -> Response:
        name = " ".join(request.form.get("name", "").split())[:40]
        if not name:
            flash("Type a name to log in.", "error")
            return redirect(url_for("index"))
        session.regenerate()  # type: ignore[attr-defined]  # a new id at login: no fixation
        session[user_key] = name
        session["device"] = sessions.device_name(request.user_agent.string)
        session["since"] = datetime.datetime.now(datetime.timezone.utc)
        session["count"] = 0
        flash(Markup("Welcome, <b>{}</b>.").format(name), "success")
        return redirect(url_for("index"))

    @app.post("/count")
    def count() -> Response:
        require_login()
        session["count"] = session.get("count", 0) + 1
        return redirect(url_for("index", _anchor="tabs"))

    @app.get("/race")
    def race_counts() -> Response:
        require_login()
        return jsonify({f"race_{slot}": session.get(f"race_{slot}", 0) for slot in _slots()})

    @app.post("/race/<int:slot>")
    def race(slot: int) -> Response:
        require_login()
        if slot not in _slots():
            abort(404)
        start = time.time()
        key = f"race_{slot}"
        session[key] = session.get(key, 0) + 1
        time.sleep(RACE_HOLD)  # hold the loaded session: the other requests load it meanwhile
        return jsonify(slot=slot, value=session[key], start=start, end=time.time())

    @app.post("/logout")
    def logout() -> Response:
        session.destroy()  # type: ignore[attr-defined]
        flash("You are logged out on this device.", "info")
        return redirect(url_for("index"))

    @app.post("/devices/<string:device>/logout")
    def logout_device(device: str) -> Response:
        user = require_login()
        if not sessions.has_user_index(state):
            abort(404)
        sid = sessions.find_device(state, user, device)
        if sid is None:
            flash("That device is already logged out.", "warning")
        elif sid == session.key:  # type: ignore[attr-defined]
            return logout()
        else:
            state.store.delete(sid)
            flash(f"Logged out the device with key {sessions.short(sid)}.", "success")
        return redirect(url_for("index", _anchor="devices"))

    @app.post("/devices/logout")
    def logout_everywhere() -> Response:
        user = require_login()
        if not sessions.has_user_index(state):
            flash(
                f"The {state.store_name} store keeps no index of sessions by user, so it cannot"
                " log you out everywhere.",
                "error",
            )
            return redirect(url_for("index", _anchor="devices"))
        count = revoke_user_sessions(user, app)
        session.destroy()  # type: ignore[attr-defined]
        flash(f"Logged out everywhere: {count} session(s) deleted.", "info")
        return redirect(url_for("index"))

    return app


def _slots() -> range:
    return range(RACE_SLOTS)
