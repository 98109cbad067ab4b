"""Engines on real databases: a SQLite file, and the test session's PostgreSQL and MariaDB."""

from __future__ import annotations

import collections.abc as c
import pathlib
import typing as t

import pytest
import sqlalchemy as sa


def psycopg_url(url: str) -> str:
    """The testservers' ``postgresql://`` URL with the psycopg 3 driver."""
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def pymysql_url(url: str) -> str:
    """The testservers' ``mysql://`` URL with the PyMySQL driver."""
    return url.replace("mysql://", "mysql+pymysql://", 1)


@pytest.fixture
def sqlite_url(tmp_path: pathlib.Path) -> str:
    return f"sqlite:///{tmp_path / 'sessions.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> c.Iterator[sa.Engine]:
    engine = sa.create_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def postgresql_engine(postgresql_server: t.Any) -> c.Iterator[sa.Engine]:
    engine = sa.create_engine(psycopg_url(postgresql_server.url))
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def mariadb_engine(mariadb_server: t.Any) -> c.Iterator[sa.Engine]:
    engine = sa.create_engine(pymysql_url(mariadb_server.url))
    yield engine
    engine.dispose()
