"""Misspelt configuration keys: each first-party store lists the keys it reads
(``config_keys``), and ``Session(app)`` warns about a ``SESSION_*`` key nothing reads that is
close to one that is read."""

from __future__ import annotations

import importlib.metadata
import logging
import re
from pathlib import Path

import pytest
from flask import Flask

from flask_serverside import Session
from flask_serverside import get_state
from flask_serverside.hints import known_keys
from flask_serverside.registry import NAMESPACE

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = sorted(path.parent.name for path in ROOT.glob("backends/*/pyproject.toml"))
#: A key as a string literal in a store's source: what it reads.
KEY_LITERAL = re.compile(r"""["'](SESSION_[A-Z0-9_]*[A-Z0-9])["']""")
#: A configuration that starts each store without reaching a server (start-up never connects).
STARTS = {
    "redis": {"SESSION_REDIS": "redis://127.0.0.1:1/0"},
    "memcached": {"SESSION_MEMCACHED": ["127.0.0.1:1"]},
    "mongodb": {
        "SESSION_MONGODB": "mongodb://127.0.0.1:1/",
        "SESSION_MONGODB_CREATE_INDEXES": False,
    },
}


def _store_class(backend: str):
    dist = importlib.metadata.distribution(f"flask-serverside-{backend}")
    (entry,) = [ep for ep in dist.entry_points if ep.group == NAMESPACE and ep.name == backend]
    return entry.load()


@pytest.mark.parametrize("backend", BACKENDS)
def test_config_keys_lists_exactly_the_keys_the_store_reads(backend):
    source = "\n".join(
        path.read_text(encoding="utf-8")
        for path in (ROOT / "backends" / backend / "src").rglob("*.py")
    )
    read = set(KEY_LITERAL.findall(source)) - known_keys()
    declared = _store_class(backend).config_keys
    assert isinstance(declared, tuple)
    assert read == set(declared), f"update config_keys of the {backend} store"


def _app(backend, tmp_path, **config):
    app = Flask("config_keys")
    app.config.update(SECRET_KEY="k", SESSION_TYPE=backend, **STARTS.get(backend, {}))
    if backend == "filesystem":
        app.config["SESSION_FILE_DIR"] = str(tmp_path / "sessions")
    if backend == "sqlalchemy":
        app.config["SESSION_SQLALCHEMY"] = f"sqlite:///{tmp_path / 'sessions.db'}"
    if backend == "cachelib":
        from cachelib import FileSystemCache

        app.config["SESSION_CACHELIB"] = FileSystemCache(str(tmp_path / "cache"))
    if backend == "dynamodb":  # a client for nowhere: start-up never connects
        import boto3

        app.config["SESSION_DYNAMODB"] = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:1",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
    app.config.update(config)
    Session(app)
    get_state(app).close()
    return app


def test_session_redis_url_gets_a_did_you_mean(caplog, tmp_path):
    with caplog.at_level(logging.WARNING, logger="flask_serverside"):
        _app("redis", tmp_path, SESSION_REDIS_URL="redis://127.0.0.1:1/0")
    (record,) = caplog.records
    assert record.getMessage() == (
        "SESSION_REDIS_URL is not a setting of flask-serverside, Flask or the 'redis' session"
        " store, so it is ignored: did you mean SESSION_REDIS?"
    )


@pytest.mark.parametrize(
    ("backend", "typo", "meant"),
    [
        ("filesystem", "SESSION_FILE_DIRECTORY", "SESSION_FILE_DIR"),
        ("mongodb", "SESSION_MONGO_DB", "SESSION_MONGODB_DB"),
        ("sqlalchemy", "SESSION_SQLALCHEMY_TABLE_NAME", "SESSION_SQLALCHEMY_TABLE"),
        ("memcached", "SESSION_MEMCACHE", "SESSION_MEMCACHED"),
        ("redis", "SESSION_PERMANANT", "SESSION_PERMANENT"),
        ("redis", "SESSION_COOKIE_SECURED", "SESSION_COOKIE_SECURE"),
    ],
)
def test_misspelt_keys_are_reported(backend, typo, meant, caplog, tmp_path):
    with caplog.at_level(logging.WARNING, logger="flask_serverside"):
        _app(backend, tmp_path, **{typo: "x"})
    (record,) = caplog.records
    message = record.getMessage()
    assert message.startswith(f"{typo} is not a setting")
    assert meant in message.split("did you mean ")[1].rstrip("?").split(" or ")


@pytest.mark.parametrize("backend", BACKENDS)
def test_keys_of_other_stores_are_never_reported(backend, caplog, tmp_path):
    """An application moving from one store to another keeps the old keys for a while: every
    key of every first-party store is far enough from every other to be left alone."""
    others = {
        key: "x"
        for other in BACKENDS
        if other != backend
        for key in _store_class(other).config_keys
    }
    with caplog.at_level(logging.WARNING, logger="flask_serverside"):
        _app(backend, tmp_path, **others)
    assert caplog.records == []
