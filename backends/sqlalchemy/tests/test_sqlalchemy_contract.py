"""The conformance kit on SQLite (a file), PostgreSQL and MariaDB, each a real database."""

from __future__ import annotations

import collections.abc as c
import contextlib
import typing as t

import pytest
import sqlalchemy as sa

from flask_serverside import get_state
from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract
from flask_serverside_sqlalchemy import SQLAlchemyStore


def _factory(engine: sa.Engine) -> c.Callable[[str], SQLAlchemyStore]:
    return lambda key_prefix: SQLAlchemyStore(engine, key_prefix=key_prefix)


class TestSQLiteStore(StoreContract):
    @pytest.fixture
    def store_factory(self, sqlite_engine: sa.Engine) -> c.Callable[[str], SQLAlchemyStore]:
        return _factory(sqlite_engine)


class TestPostgreSQLStore(StoreContract):
    @pytest.fixture
    def store_factory(self, postgresql_engine: sa.Engine) -> c.Callable[[str], SQLAlchemyStore]:
        return _factory(postgresql_engine)


class TestMariaDBStore(StoreContract):
    @pytest.fixture
    def store_factory(self, mariadb_engine: sa.Engine) -> c.Callable[[str], SQLAlchemyStore]:
        return _factory(mariadb_engine)


class TestSQLiteFlow(SessionFlowContract):
    @pytest.fixture
    def session_config(self, sqlite_url: str) -> dict[str, t.Any]:
        return {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY": sqlite_url}


class StoppedServer:
    """A database server of the test's own (its data directory kept across a restart),
    stopped for the outage; the store builds its engine from the URL."""

    def __init__(self, server: t.Any) -> None:
        self.server = server
        self.config = {"SESSION_TYPE": server.url}

    @contextlib.contextmanager
    def down(self) -> c.Iterator[None]:
        self.server.stop()
        try:
            yield
        finally:
            self.server.start()


class TestPostgreSQLFlow(SessionFlowContract):
    @pytest.fixture
    def session_config(self, postgresql_server: t.Any) -> dict[str, t.Any]:
        return {"SESSION_TYPE": postgresql_server.url}

    @pytest.fixture
    def backend_dump(self) -> t.Any:
        """Every row of the session table, every column, as a backup holds it."""

        def dump(app: t.Any) -> bytes:
            store = get_state(app).store
            with store.engine.connect() as connection:
                rows = connection.execute(sa.select(store.table)).all()
            return b"".join(
                value if isinstance(value, bytes) else str(value).encode()
                for row in rows
                for value in row
            )

        return dump

    @pytest.fixture
    def store_outage(self, make_postgresql_server: t.Any) -> StoppedServer:
        return StoppedServer(make_postgresql_server())


class TestMariaDBFlow(SessionFlowContract):
    @pytest.fixture
    def session_config(self, mariadb_server: t.Any) -> dict[str, t.Any]:
        return {"SESSION_TYPE": mariadb_server.url}

    @pytest.fixture
    def store_outage(self, make_mariadb_server: t.Any) -> StoppedServer:
        return StoppedServer(make_mariadb_server())


class TestMariaDBEngineFlow(SessionFlowContract):
    @pytest.fixture
    def session_config(self, mariadb_engine: sa.Engine) -> dict[str, t.Any]:
        return {"SESSION_TYPE": "sqlalchemy", "SESSION_SQLALCHEMY": mariadb_engine}


def _compat_factory(engine: sa.Engine) -> c.Callable[[str], SQLAlchemyStore]:
    return lambda key_prefix: SQLAlchemyStore(engine, key_prefix=key_prefix, compat=True)


class TestSQLiteStoreCompat(StoreContract):
    """The compatibility write mode: conditional saves also compare ``data``."""

    @pytest.fixture
    def store_factory(self, sqlite_engine: sa.Engine) -> c.Callable[[str], SQLAlchemyStore]:
        return _compat_factory(sqlite_engine)


class TestPostgreSQLStoreCompat(StoreContract):
    @pytest.fixture
    def store_factory(self, postgresql_engine: sa.Engine) -> c.Callable[[str], SQLAlchemyStore]:
        return _compat_factory(postgresql_engine)


class TestMariaDBStoreCompat(StoreContract):
    @pytest.fixture
    def store_factory(self, mariadb_engine: sa.Engine) -> c.Callable[[str], SQLAlchemyStore]:
        return _compat_factory(mariadb_engine)


class TestPostgreSQLFlowCompat(SessionFlowContract):
    @pytest.fixture
    def session_config(self, postgresql_server: t.Any) -> dict[str, t.Any]:
        return {"SESSION_TYPE": postgresql_server.url, "SESSION_COMPAT_FLASK_SESSION": True}
