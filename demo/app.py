"""The demo: a login form, a counter, flash messages and logout on server-side sessions.

Run it with ``scripts/demo`` (or ``flask --app demo.app run``). With no ``SESSION_TYPE`` it
uses the default embedded store, files under ``demo/instance/flask_session``. Set
``SESSION_TYPE`` (and the store's keys) in the environment to try another store, e.g.
``FLASK_SESSION_TYPE=redis FLASK_SESSION_REDIS=redis://127.0.0.1:6379/0 scripts/demo``.
"""

from __future__ import annotations

import os
import secrets

from flask import Flask
from flask import flash
from flask import redirect
from flask import render_template_string
from flask import request
from flask import session
from flask import url_for
from markupsafe import Markup
from werkzeug.wrappers import Response

from flask_serverside import Session
from flask_serverside import get_state

PAGE = """<!doctype html>
<title>flask-serverside demo</title>
<style>body{font:16px system-ui;max-width:36em;margin:3em auto}.flash{padding:.5em;
background:#eef}</style>
<h1>flask-serverside demo</h1>
{% for category, message in get_flashed_messages(with_categories=true) %}
  <p class="flash {{ category }}">{{ message }}</p>
{% endfor %}
{% if session.user %}
  <p>Signed in as <b>{{ session.user }}</b>. You have pressed the button
  <b>{{ session.count }}</b> times.</p>
  <form method="post" action="{{ url_for('count') }}"><button>Press</button></form>
  <form method="post" action="{{ url_for('logout') }}"><button>Log out</button></form>
{% else %}
  <form method="post" action="{{ url_for('login') }}">
    <label>Name <input name="user" required maxlength="40" autofocus></label>
    <button>Log in</button>
  </form>
{% endif %}
<p><small>Store: <code>{{ store }}</code>. The browser holds only a random session id;
the data stays on the server.</small></p>
"""


def create_app() -> Flask:
    """Build the demo application; configuration comes from ``FLASK_*`` variables."""
    app = Flask(__name__, instance_path=os.path.join(os.path.dirname(__file__), "instance"))
    app.config["SECRET_KEY"] = secrets.token_hex()
    app.config.from_prefixed_env()
    Session(app)

    @app.get("/")
    def index() -> str:
        return render_template_string(PAGE, store=get_state(app).store_name)

    @app.post("/login")
    def login() -> Response:
        name = request.form.get("user", "").strip()[:40]
        if not name:
            flash("Please type a name.", "error")
            return redirect(url_for("index"))
        session.regenerate()  # type: ignore[attr-defined]  # a new id at login: no fixation
        session["user"] = name
        session["count"] = 0
        flash(Markup("Welcome, <b>{}</b>!").format(name), "info")
        return redirect(url_for("index"))

    @app.post("/count")
    def count() -> Response:
        session["count"] = session.get("count", 0) + 1
        return redirect(url_for("index"))

    @app.post("/logout")
    def logout() -> Response:
        name = session.get("user", "")
        session.destroy()  # type: ignore[attr-defined]
        flash(f"Goodbye, {name}.", "info")
        return redirect(url_for("index"))

    return app


app = create_app()
