"""The hidden cost of keeping sessions safe at rest, measured on its own.

* the store key of a session: HMAC-SHA256 of its id (``SESSION_HASH_IDS``, on by default), as
  the core computes it once per request that loads or saves a session, alone and with the
  look-up of the application's current keys around it;
* with ``SESSION_ENCRYPTION_KEY``: sealing (AES-256-GCM) and opening the record of a typical
  session (:data:`benchmarks.apps.LOGIN_DATA` and a counter, as ``/write`` leaves it).

Each figure is the median over rounds of the mean µs of a batch of calls. The share of a whole
request comes from mode 1 (``ours-rawkeys``, ``ours`` and ``ours-sealed`` cells), in the report.
"""

from __future__ import annotations

import secrets
import statistics
import time
import typing as t

from . import apps

if t.TYPE_CHECKING:
    import collections.abc as c


def _us(call: c.Callable[[], object], batch: int = 2000, rounds: int = 15) -> float:
    for _ in range(batch):
        call()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(batch):
            call()
        samples.append((time.perf_counter_ns() - start) / batch / 1000)
    return statistics.median(samples)


def run_at_rest() -> dict[str, t.Any]:
    from flask import Flask

    import flask_serverside
    from flask_serverside.codec import RecordCodec
    from flask_serverside.codec import parse_key
    from flask_serverside.keys import StoreKeys
    from flask_serverside.keys import derive_key
    from flask_serverside.serialization import SessionSerializer
    from flask_serverside.state import get_state

    sid = secrets.token_urlsafe(32)
    keys = StoreKeys(hashing=True, keys=[derive_key(apps.SECRET_KEY)])
    app = Flask("bench_at_rest")
    app.config.update(SECRET_KEY=apps.SECRET_KEY, SESSION_TYPE="memory")
    flask_serverside.Session(app)
    state = get_state(app)
    plain = SessionSerializer().dumps({**apps.LOGIN_DATA, "n": 42})
    codec = RecordCodec([parse_key(apps.BENCH_ENCRYPTION_KEY)])
    store_key = keys.key(sid)
    sealed = codec.seal(store_key, plain)
    with app.app_context():
        lookup = _us(lambda: state.keys().key(sid))
    return {
        "hmac_us": _us(lambda: keys.key(sid)),
        "key_lookup_us": lookup,
        "record_bytes": len(plain),
        "sealed_bytes": len(sealed),
        "seal_us": _us(lambda: codec.seal(store_key, plain)),
        "open_us": _us(lambda: codec.open(store_key, sealed)),
    }
