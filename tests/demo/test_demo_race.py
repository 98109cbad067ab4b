"""The demo's parallel-requests panel shows something real: six requests of one session that
overlap all land where the store saves conditionally, and some are lost where it does not."""

from __future__ import annotations

import concurrent.futures
import http.cookiejar
import json
import threading
import typing as t
import urllib.parse
import urllib.request

import pytest
from werkzeug.serving import make_server

from demo.app import RACE_SLOTS
from demo.app import create_app
from flask_serverside import Capability
from flask_serverside import MemoryStore
from flask_serverside import register_store
from flask_serverside import unregister_store

if t.TYPE_CHECKING:
    import collections.abc as c
    from pathlib import Path


class LastWriterWinsStore(MemoryStore):
    """The memory store without its conditional save: the last writer wins."""

    capabilities = MemoryStore.capabilities & ~(
        Capability.CONDITIONAL_SAVE | Capability.SAVE_IF_OR_LOAD
    )


@pytest.fixture
def serve(tmp_path: Path) -> c.Iterator[c.Callable[[str], str]]:
    servers = []
    register_store("demo-last-writer-wins", LastWriterWinsStore)

    def start(store: str) -> str:
        app = create_app(store, str(tmp_path / store))
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    try:
        yield start
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        unregister_store("demo-last-writer-wins")


def race(url: str) -> dict[str, int]:
    """Log in, fire the panel's requests at once, and return the counters afterwards."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    login = urllib.parse.urlencode({"name": "ada"}).encode()
    opener.open(url + "/login", data=login, timeout=10).close()

    def post(slot: int) -> dict[str, t.Any]:
        with opener.open(f"{url}/race/{slot}", data=b"", timeout=10) as response:
            return t.cast("dict[str, t.Any]", json.load(response))

    with concurrent.futures.ThreadPoolExecutor(RACE_SLOTS) as pool:
        answers = list(pool.map(post, range(RACE_SLOTS)))
    # They overlapped: every request started before any finished.
    assert max(a["start"] for a in answers) < min(a["end"] for a in answers)
    with opener.open(url + "/race", timeout=10) as response:
        return t.cast("dict[str, int]", json.load(response))


def test_every_parallel_increment_lands_with_a_conditional_save(
    serve: c.Callable[[str], str],
) -> None:
    assert race(serve("memory")) == {f"race_{slot}": 1 for slot in range(RACE_SLOTS)}


def test_without_a_conditional_save_the_last_writer_erases_the_others(
    serve: c.Callable[[str], str],
) -> None:
    counts = race(serve("demo-last-writer-wins"))
    assert sum(counts.values()) < RACE_SLOTS
