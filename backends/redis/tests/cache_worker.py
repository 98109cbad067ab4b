"""Another worker process for the cache tests: ``python cache_worker.py URL PREFIX``.

It builds a store and a Flask application on the Redis at ``URL`` with the cache on (the same
key prefix as the test's own), then answers one JSON command per line on stdin with one JSON
line on stdout, so a test can interleave its own requests with this process's:

``{"op": "step", "sid": ..., "expect": n}``
    read the session record twice (it must be ``n``), save ``n + 1`` conditionally on what was
    read, then read it twice again: ``{"seen": [...], "saved": bool}``.
``{"op": "revoke", "user": ...}``
    "log out everywhere" for ``user``: ``{"revoked": count}``.
``{"op": "request", "method": ..., "path": ..., "cookie": ...}``
    one request of the application with that session cookie: ``{"status": ..., "json": ...}``.
``{"op": "stats"}``
    the cache's counters.
"""

from __future__ import annotations

import json
import sys
import typing as t

from flask import Flask

import flask_serverside
from flask_serverside.testing.views import flow_views
from flask_serverside_redis import RedisStore

SECRET_KEY = "cache-tests"
TTL = 600


def make_app(url: str, prefix: str) -> Flask:
    """An application on ``url`` with the cache on; the tests make the same one."""
    app = Flask("cache_worker")
    app.config.update(
        SECRET_KEY=SECRET_KEY,
        SESSION_TYPE=url,
        SESSION_KEY_PREFIX=prefix,
        SESSION_REDIS_CACHE=True,
        SESSION_USER_ID_KEY="user",
    )
    flask_serverside.Session(app)
    app.register_blueprint(flow_views)
    return app


def step(store: RedisStore, sid: str, expect: int) -> dict[str, t.Any]:
    seen = []
    first = store.load_and_touch(sid, TTL)
    seen.append(None if first is None else int(first.data))
    again = store.load_and_touch(sid, TTL)
    seen.append(None if again is None else int(again.data))
    saved = first is not None and store.save_if(sid, str(expect + 1).encode(), TTL, expected=first)
    for _ in range(2):
        record = store.load_and_touch(sid, TTL)
        seen.append(None if record is None else int(record.data))
    return {"seen": seen, "saved": saved}


def main() -> None:
    url, prefix = sys.argv[1], sys.argv[2]
    store = RedisStore.from_url(url, key_prefix=prefix, cache=64)
    app = make_app(url, prefix)
    assert store.cache is not None
    store.cache.wait_serving(10)
    t.cast(RedisStore, app.extensions["serverside"].store).cache.wait_serving(10)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "step":
            reply = step(store, command["sid"], command["expect"])
        elif op == "revoke":
            with app.app_context():
                reply = {"revoked": flask_serverside.revoke_user_sessions(command["user"])}
        elif op == "request":
            client = app.test_client()
            client.set_cookie("session", command["cookie"])
            response = client.open(command["path"], method=command["method"])
            reply = {"status": response.status_code, "json": response.get_json(silent=True)}
        elif op == "stats":
            reply = dict(store.cache.stats)
        else:
            reply = {"error": f"unknown op {op!r}"}
        print(json.dumps(reply), flush=True)
    store.close()
    app.extensions["serverside"].close()


if __name__ == "__main__":
    main()
