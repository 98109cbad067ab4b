"""The Flask applications the contenders are measured with.

Every contender serves the same views, so the only difference between two contenders is
where (and how) the session lives:

``/login``
    creates a session (the client sends no cookie): a small dict like a login handler writes.
``/write``
    changes the session (a counter), with the session's cookie.
``/read``
    only reads the session, with the session's cookie.
``/none``
    an anonymous visitor: no cookie, the view looks for a user in the session and finds none.
``/untouched``
    a request with the session's cookie whose view never reads the session (a health check,
    a static-like page): it should cost no store call at all.
``/contend``
    (mode 2 only) writes one of 16 keys, a different one from the requests around it: many
    of these at once on one session are the contention of parallel XHRs or tabs.

Contenders:

``bare``
    no session at all: a do-nothing session interface (the floor of the framework itself).
``cookie``
    Flask's own signed-cookie session.
``ours``
    flask-serverside on the store under test.
``flask-session``
    Flask-Session 0.8 on the same backend, configured with the same keys.
``floor``
    the raw client doing the minimum a server-side session needs (see :mod:`benchmarks.floors`).
"""

from __future__ import annotations

import itertools
import typing as t
import warnings

from flask import Flask
from flask import session
from flask.sessions import SessionInterface
from flask.sessions import SessionMixin

if t.TYPE_CHECKING:
    from flask import Request
    from flask import Response

#: The scenarios, in report order: (name, path, sends the session cookie).
SCENARIOS: tuple[tuple[str, str, bool], ...] = (
    ("write", "/write", True),
    ("read", "/read", True),
    ("none", "/none", False),
    ("login", "/login", False),
    ("untouched", "/untouched", True),
)

#: The contenders, in report order.
CONTENDERS = ("ours", "flask-session", "floor", "cookie", "bare")

#: A fixed AES-256 key for the benchmark (32 bytes, URL-safe base64): not a secret.
BENCH_ENCRYPTION_KEY = "YmVuY2htYXJrLWVuY3J5cHRpb24ta2V5LTMyLWJ5dGU"

#: Variants of ours, measured on some stores for the cost of keeping sessions safe at rest:
#: the configuration each adds to ours. ``ours`` itself hashes ids (the default).
VARIANTS: dict[str, dict[str, t.Any]] = {
    "ours-rawkeys": {"SESSION_HASH_IDS": False},
    "ours-sealed": {"SESSION_ENCRYPTION_KEY": BENCH_ENCRYPTION_KEY},
}

SECRET_KEY = "benchmark-secret-key-not-a-secret"

#: What ``/login`` stores: a typical small session (about 150 bytes encoded).
LOGIN_DATA: dict[str, t.Any] = {
    "_user_id": "u-4f2c9a7e",
    "name": "Alice Example",
    "roles": ["reader", "writer"],
    "csrf_token": "9b1d3c6f0e2a4b8d9c7e5f3a1b2c4d6e8f0a1b3c",
    "locale": "en",
}


_contend_counter = itertools.count()


def add_views(app: Flask) -> None:
    """Register the benchmark views on ``app``."""

    @app.route("/login")
    def login() -> str:
        session.update(LOGIN_DATA)
        return "in"

    @app.route("/write")
    def write() -> str:
        session["n"] = session.get("n", 0) + 1
        return "w"

    @app.route("/read")
    def read() -> str:
        return str(session.get("name"))

    @app.route("/none")
    def none() -> str:
        return str(session.get("name"))

    @app.route("/untouched")
    def untouched() -> str:
        return "u"

    @app.route("/contend")
    def contend() -> str:
        # Each request writes a key of its own (one of 16), as parallel XHRs of one page do.
        n = next(_contend_counter)
        session[f"k{n % 16}"] = n
        return "c"


class _BareSession(dict[str, t.Any], SessionMixin):
    pass


class BareInterface(SessionInterface):
    """A session interface that keeps nothing and sends nothing."""

    def open_session(self, app: Flask, request: Request) -> _BareSession:
        return _BareSession()

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        return None


def make_app(
    name: str,
    config: t.Mapping[str, t.Any],
    *,
    sliding: bool,
    setup: t.Callable[[Flask], None] | None = None,
) -> Flask:
    """Build one contender's application.

    :param config: the app config keys of the contender (``SESSION_TYPE`` and its store keys).
    :param sliding: ``SESSION_REFRESH_EACH_REQUEST``.
    :param setup: called with the configured app to install the session machinery.
    """
    app = Flask(f"bench_{name.replace('-', '_')}")
    app.config["SECRET_KEY"] = SECRET_KEY
    app.config["SESSION_REFRESH_EACH_REQUEST"] = sliding
    app.config.update(config)
    add_views(app)
    if setup is not None:
        with warnings.catch_warnings():
            # Flask-Session 0.8 warns about its own deprecated keys (SESSION_FILE_DIR).
            warnings.simplefilter("ignore", DeprecationWarning)
            setup(app)
    return app


def setup_bare(app: Flask) -> None:
    app.session_interface = BareInterface()


def setup_ours(app: Flask) -> None:
    import flask_serverside

    flask_serverside.Session(app)


def setup_flask_session(app: Flask) -> None:
    import flask_session

    flask_session.Session(app)
