"""Several worker processes, each with several threads, writing into one session at once: what
a site behind ``gunicorn --workers 4 --threads 4`` does when one user's tabs and XHRs race.

:func:`run_contention` needs a configuration of plain values (URLs, paths), since each worker
process builds its own application from it, as a server's workers do::

    result = run_contention({"SESSION_TYPE": "redis://127.0.0.1:6379/0"}, workers=4, threads=4)
    assert result.statuses == {200: 4 * 4 * result.rounds}
    assert result.lost_keys == []
"""

from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import multiprocessing.pool
import secrets
import threading
import time
import typing as t

from flask import Flask

from ..extension import Session
from ..state import get_state
from .views import flow_views


@dataclasses.dataclass
class ContentionResult:
    """What :func:`run_contention` saw."""

    #: How many responses had each status code.
    statuses: collections.Counter[int]
    #: Keys written (and acknowledged with a 2xx) that the session does not hold in the end.
    lost_keys: list[str]
    #: Requests each thread made.
    rounds: int
    #: Seconds each request took, over all workers.
    latencies: list[float]

    def percentile(self, fraction: float) -> float:
        """The latency under which ``fraction`` of the requests finished, in seconds."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _make_app(config: dict[str, t.Any]) -> Flask:
    app = Flask("contention")
    app.config.update(SECRET_KEY="contention-secret")
    app.config.update(config)
    Session(app)
    app.register_blueprint(flow_views)
    return app


def _worker(
    config: dict[str, t.Any], cookie: str, worker: int, threads: int, rounds: int
) -> list[tuple[str, int, float]]:
    """One worker process: ``threads`` threads each POST ``rounds`` keys of their own."""
    app = _make_app(config)
    results: list[tuple[str, int, float]] = []
    lock = threading.Lock()

    def work(thread: int) -> None:
        client = app.test_client()
        client.set_cookie("session", cookie)
        for round_ in range(rounds):
            key = f"w{worker}t{thread}r{round_}"
            started = time.perf_counter()
            status = client.post(f"/key/{key}/x").status_code
            with lock:
                results.append((key, status, time.perf_counter() - started))

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    get_state(app).close()
    return results


def worker_pool(workers: int = 4) -> multiprocessing.pool.Pool:
    """Start ``workers`` worker processes for :func:`run_contention` (spawned, as a server
    starts its workers); reuse the pool across runs, since starting Python processes costs
    more than the run itself."""
    return multiprocessing.get_context("spawn").Pool(workers)


def run_contention(
    config: dict[str, t.Any],
    *,
    workers: int = 4,
    threads: int = 4,
    rounds: int = 5,
    pool: multiprocessing.pool.Pool | None = None,
) -> ContentionResult:
    """Log in once, then have ``workers`` processes of ``threads`` threads each write
    ``rounds`` keys of their own into that one session; report the status codes and the keys
    acknowledged but missing at the end.

    :param config: the store's configuration in plain values; a fresh key prefix is added.
    :param pool: worker processes from :func:`worker_pool` (at least ``workers`` of them);
        by default a pool is started and stopped for this run.
    """
    config = {"SESSION_KEY_PREFIX": f"contention-{secrets.token_hex(6)}:", **config}
    app = _make_app(config)
    client = app.test_client()
    client.post("/login", data={"user": "alice"})
    cookie = client.get_cookie("session")
    assert cookie is not None, "logging in set no cookie"
    tasks = [(config, cookie.value, n, threads, rounds) for n in range(workers)]
    if pool is None:
        with worker_pool(workers) as own:
            runs = own.starmap(_worker, tasks)
    else:
        runs = pool.starmap(_worker, tasks, chunksize=1)
    outcomes = [outcome for results in runs for outcome in results]
    held = client.get("/dump").get_json()
    get_state(app).close()
    acknowledged = [key for key, status, _ in outcomes if 200 <= status < 300]
    return ContentionResult(
        statuses=collections.Counter(status for _, status, _ in outcomes),
        lost_keys=[key for key in acknowledged if key not in held],
        rounds=rounds,
        latencies=[seconds for _, _, seconds in outcomes],
    )
