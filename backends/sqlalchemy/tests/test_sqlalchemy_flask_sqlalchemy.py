"""Flask-SQLAlchemy as in the seeds (``SESSION_SQLALCHEMY = db``): end to end, binds, and the
application's own ``db.session`` left alone by session saves."""

from __future__ import annotations

import collections.abc as c
import pathlib
import secrets
import typing as t

import flask_session
import pytest
import sqlalchemy as sa
from flask import Flask
from flask import session
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import orm

from flask_serverside import ConfigurationError
from flask_serverside import Session


def new_db() -> SQLAlchemy:
    """A Flask-SQLAlchemy extension with a declarative base of its own."""

    class Base(orm.DeclarativeBase):
        pass

    return SQLAlchemy(model_class=Base)


def make_app(db: SQLAlchemy, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="secret", SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=db)
    app.config.update(config)
    db.init_app(app)
    return app


def add_views(app: Flask) -> None:
    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"user": session.get("user")}

    @app.post("/login")
    def login() -> dict[str, t.Any]:
        session["user"] = "alice"
        return {"ok": True}

    @app.post("/logout")
    def logout() -> dict[str, t.Any]:
        session.clear()
        return {"ok": True}


def session_rows(engine: sa.Engine, table: str = "sessions") -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


@pytest.fixture
def close_apps() -> c.Iterator[list[Flask]]:
    apps: list[Flask] = []
    yield apps
    for app in apps:
        if "serverside" in app.extensions:
            app.extensions["serverside"].close()
        if "sqlalchemy" in app.extensions:
            with app.app_context():
                for engine in app.extensions["sqlalchemy"].engines.values():
                    engine.dispose()


def test_the_seeds_configuration_end_to_end(
    tmp_path: pathlib.Path, close_apps: list[Flask]
) -> None:
    db = new_db()
    app = make_app(
        db,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}",
        SESSION_SQLALCHEMY_TABLE="sessions",
    )
    Session(app)
    close_apps.append(app)
    add_views(app)
    client = app.test_client()
    client.post("/login")
    assert client.get("/read").get_json() == {"user": "alice"}
    with app.app_context():
        assert session_rows(db.engine) == 1
        client.post("/logout")
        assert session_rows(db.engine) == 0


def test_a_bind_key_puts_sessions_in_another_database(
    tmp_path: pathlib.Path, close_apps: list[Flask]
) -> None:
    db = new_db()
    app = make_app(
        db,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}",
        SQLALCHEMY_BINDS={"sessions": f"sqlite:///{tmp_path / 'sessions.db'}"},
        SESSION_SQLALCHEMY_BIND_KEY="sessions",
    )
    Session(app)
    close_apps.append(app)
    add_views(app)
    app.test_client().post("/login")
    with app.app_context():
        assert session_rows(db.engines["sessions"]) == 1
        assert not sa.inspect(db.engine).has_table("sessions")


def test_an_unknown_bind_key_or_an_unset_db_fails_at_start_up(tmp_path: pathlib.Path) -> None:
    db = new_db()
    app = make_app(
        db,
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'app.db'}",
        SESSION_SQLALCHEMY_BIND_KEY="nope",
    )
    with pytest.raises(ConfigurationError, match="SESSION_SQLALCHEMY_BIND_KEY"):
        Session(app)
    other = Flask(__name__)
    other.config.update(SESSION_TYPE="sqlalchemy", SESSION_SQLALCHEMY=SQLAlchemy())
    with pytest.raises(ConfigurationError, match=r"db.init_app\(app\) before Session\(app\)"):
        Session(other)
    with app.app_context():
        db.engine.dispose()


def _shop(db: SQLAlchemy, app: Flask, seen: dict[str, t.Any], outside: sa.Engine) -> type[t.Any]:
    class Thing(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = f"things_{secrets.token_hex(4)}"
        id: orm.Mapped[int] = orm.mapped_column(primary_key=True)
        name: orm.Mapped[str] = orm.mapped_column(sa.String(50))

    with app.app_context():
        Thing.__table__.create(db.engine)

    @app.post("/buy")
    def buy() -> dict[str, t.Any]:
        db.session.add(Thing(name="flushed"))
        db.session.flush()
        db.session.add(Thing(name="pending"))
        session["cart"] = ["thing"]
        return {"ok": True}

    @app.teardown_request
    def look(exc: BaseException | None) -> None:
        # After the session was saved, before Flask-SQLAlchemy ends db.session.
        seen["in transaction"] = db.session().in_transaction()
        seen["pending"] = [thing.name for thing in db.session.new]
        with db.session.no_autoflush:
            seen["own view"] = db.session.query(Thing).count()
        with outside.connect() as conn:
            seen["committed"] = conn.execute(sa.select(sa.func.count()).select_from(Thing)).scalar()

    return Thing


def test_a_session_save_leaves_the_apps_db_session_alone(
    postgresql_server: t.Any, postgresql_engine: sa.Engine, close_apps: list[Flask]
) -> None:
    db = new_db()
    app = make_app(
        db,
        SQLALCHEMY_DATABASE_URI=psycopg_url(postgresql_server.url),
        SESSION_SQLALCHEMY_TABLE=f"sessions_{secrets.token_hex(4)}",
    )
    Session(app)
    close_apps.append(app)
    seen: dict[str, t.Any] = {}
    _shop(db, app, seen, postgresql_engine)
    client = app.test_client()
    response = client.post("/buy")
    assert response.status_code == 200 and client.get_cookie("session") is not None
    assert seen == {
        "in transaction": True,  # not committed, not rolled back
        "pending": ["pending"],  # not flushed
        "own view": 1,  # the flushed row is still there
        "committed": 0,  # and nobody else sees it
    }


def test_flask_session_commits_the_apps_pending_work(
    postgresql_server: t.Any, postgresql_engine: sa.Engine, close_apps: list[Flask]
) -> None:
    """What the test above guards against: Flask-Session 0.8 commits ``db.session``."""
    db = new_db()
    app = make_app(
        db,
        SQLALCHEMY_DATABASE_URI=psycopg_url(postgresql_server.url),
        SESSION_SQLALCHEMY_TABLE=f"fs_sessions_{secrets.token_hex(4)}",
    )
    flask_session.Session(app)
    close_apps.append(app)
    seen: dict[str, t.Any] = {}
    _shop(db, app, seen, postgresql_engine)
    app.test_client().post("/buy")
    assert seen["committed"] == 2


def psycopg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)
