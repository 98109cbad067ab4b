"""What the SQL store does beyond the contract: statements per request, the refresh interval,
exact ids, concurrent first writes, purging in batches while requests go on."""

from __future__ import annotations

import collections.abc as c
import datetime
import secrets
import threading
import time
import typing as t

import pymysql
import pytest
import sqlalchemy as sa
from flask import Flask
from flask import session

from flask_serverside import Session
from flask_serverside import StoreSettings
from flask_serverside.cli import session_cli
from flask_serverside.testing import new_sid
from flask_serverside_sqlalchemy import SQLAlchemyStore

DATABASES = ["sqlite_engine", "postgresql_engine", "mariadb_engine"]


@pytest.fixture(params=DATABASES, ids=["sqlite", "postgresql", "mariadb"])
def engine(request: pytest.FixtureRequest) -> sa.Engine:
    return t.cast(sa.Engine, request.getfixturevalue(request.param))


@pytest.fixture
def prefix() -> str:
    return f"behaviour-{secrets.token_hex(6)}:"


@pytest.fixture
def store(engine: sa.Engine, prefix: str) -> SQLAlchemyStore:
    return SQLAlchemyStore(engine, key_prefix=prefix)


class Recorder:
    """The statements and commits SQLAlchemy sends through an engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.statements: list[str] = []
        self.commits = 0
        sa.event.listen(engine, "before_cursor_execute", self._execute)
        sa.event.listen(engine, "commit", self._commit)

    def _execute(self, *args: t.Any) -> None:
        self.statements.append(" ".join(args[2].split()))

    def _commit(self, conn: sa.Connection) -> None:
        self.commits += 1

    def kinds(self) -> list[str]:
        return [statement.split()[0].upper() for statement in self.statements]

    def reset(self) -> None:
        self.statements.clear()
        self.commits = 0

    def close(self) -> None:
        sa.event.remove(self.engine, "before_cursor_execute", self._execute)
        sa.event.remove(self.engine, "commit", self._commit)


@pytest.fixture
def recorder(engine: sa.Engine) -> c.Iterator[Recorder]:
    recorder = Recorder(engine)
    yield recorder
    recorder.close()


def make_app(engine: sa.Engine, prefix: str, **config: t.Any) -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="secret",
        SESSION_TYPE="sqlalchemy",
        SESSION_SQLALCHEMY=engine,
        SESSION_KEY_PREFIX=prefix,
        **config,
    )
    Session(app)

    @app.get("/read")
    def read() -> dict[str, t.Any]:
        return {"user": session.get("user")}

    @app.post("/login/<user>")
    def login(user: str) -> dict[str, t.Any]:
        session["user"] = user
        session["_user_id"] = user
        return {"ok": True}

    @app.post("/count")
    def count() -> dict[str, t.Any]:
        session["count"] = session.get("count", 0) + 1
        return {"count": session["count"]}

    return app


def test_a_read_only_request_is_one_select_and_no_commit(
    engine: sa.Engine, prefix: str, recorder: Recorder
) -> None:
    app = make_app(engine, prefix)
    client = app.test_client()
    client.post("/login/alice")
    recorder.reset()
    for _ in range(3):
        assert client.get("/read").get_json() == {"user": "alice"}
    assert recorder.kinds() == ["SELECT"] * 3
    assert recorder.commits == 0


def test_the_expiry_is_refreshed_once_the_interval_has_passed(
    engine: sa.Engine, prefix: str, recorder: Recorder
) -> None:
    app = make_app(engine, prefix, SESSION_SQLALCHEMY_REFRESH_INTERVAL=60)
    client = app.test_client()
    client.post("/login/alice")
    store: SQLAlchemyStore = app.extensions["serverside"].store
    table = store.table
    mine = table.c.session_id.startswith(prefix)
    columns = sa.select(table.c.expiry, table.c.version, table.c.data).where(mine)
    with engine.begin() as conn:  # as if the expiry had been set two minutes ago
        expiry = conn.execute(columns).one().expiry - datetime.timedelta(minutes=2)
        conn.execute(sa.update(table).where(mine).values(expiry=expiry))
        before = conn.execute(columns).one()
    recorder.reset()
    assert client.get("/read").get_json() == {"user": "alice"}
    assert recorder.kinds() == ["SELECT", "UPDATE"]
    update = recorder.statements[1]
    assert " SET expiry=" in update and "data" not in update.split(" WHERE ")[0]
    with engine.connect() as conn:
        after = conn.execute(columns).one()
    assert after.expiry > before.expiry + datetime.timedelta(minutes=1)
    assert (after.version, after.data) == (before.version, before.data)
    recorder.reset()
    client.get("/read")
    assert recorder.kinds() == ["SELECT"]


def test_a_write_is_one_statement(engine: sa.Engine, prefix: str, recorder: Recorder) -> None:
    app = make_app(engine, prefix)
    client = app.test_client()
    client.post("/login/alice")
    recorder.reset()
    client.post("/count")
    assert recorder.kinds() == ["SELECT", "UPDATE"]
    assert "version" in recorder.statements[1].split(" WHERE ")[1]


def test_save_is_one_native_upsert(store: SQLAlchemyStore, recorder: Recorder) -> None:
    sid = new_sid()
    store.save(sid, b"one", 60, user_id="u")
    store.save(sid, b"two", 60, user_id="v")
    assert recorder.kinds() == ["INSERT", "INSERT"]
    mysql = store.engine.dialect.name in ("mysql", "mariadb")
    native = "ON DUPLICATE KEY UPDATE" if mysql else "ON CONFLICT "
    assert all(native in statement for statement in recorder.statements)
    assert store.user_sids("v") == [sid]
    assert store.user_sids("u") == []


def test_an_expired_row_is_never_returned(store: SQLAlchemyStore) -> None:
    sid = new_sid()
    store.save(sid, b"data", 60)
    loaded = store.load(sid)
    table = store.table
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(table)
            .where(table.c.session_id == store.key_prefix + sid)
            .values(expiry=datetime.datetime(2000, 1, 1))
        )
    assert store.load(sid) is None
    assert store.load_and_touch(sid, 600) is None
    assert store.touch(sid, 600) is False
    assert store.save_if(sid, b"x", 60, expected=loaded) is False
    assert store.count() == 0 and list(store.iter_sids()) == []


def test_ids_are_case_sensitive(store: SQLAlchemyStore) -> None:
    sid = "aB" + new_sid()[2:]
    store.save(sid, b"mixed", 60)
    assert store.load(sid.swapcase()) is None
    store.save(sid.swapcase(), b"swapped", 60)
    first, second = store.load(sid), store.load(sid.swapcase())
    assert first is not None and first.data == b"mixed"
    assert second is not None and second.data == b"swapped"


def test_a_large_record_round_trips(store: SQLAlchemyStore) -> None:
    sid, data = new_sid(), secrets.token_bytes(3_000_000)
    store.save(sid, data, 60)
    record = store.load(sid)
    assert record is not None and record.data == data


def test_iter_sids_pages_through_many_sessions(engine: sa.Engine, prefix: str) -> None:
    store = SQLAlchemyStore(engine, key_prefix=prefix, purge_batch=7)
    sids = {new_sid() for _ in range(30)}
    for sid in sids:
        store.save(sid, b"x", 60)
    assert set(store.iter_sids()) == sids and store.count() == 30


def test_concurrent_first_writes_of_one_sid(engine: sa.Engine, prefix: str) -> None:
    sid = new_sid()
    writers = 8
    stores = [SQLAlchemyStore(engine, key_prefix=prefix) for _ in range(writers)]
    barrier = threading.Barrier(writers)
    results: dict[int, bool] = {}
    errors: list[BaseException] = []

    def write(number: int) -> None:
        try:
            barrier.wait()
            results[number] = stores[number].save_if(
                sid, f"writer {number}".encode(), 60, expected=None
            )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    winners = [number for number, won in results.items() if won]
    assert len(winners) == 1
    record = stores[0].load(sid)
    assert record is not None and record.data == f"writer {winners[0]}".encode()


def _add_expired_rows(store: SQLAlchemyStore, count: int) -> None:
    """Insert ``count`` expired rows of the store's prefix in one statement, on the server."""
    numbers = sa.select(sa.literal(1).label("i")).cte("numbers", recursive=True)
    numbers = numbers.union_all(sa.select((numbers.c.i + 1).label("i")).where(numbers.c.i < count))
    rows = sa.select(
        sa.literal(f"{store.key_prefix}expired-") + sa.cast(numbers.c.i, sa.String(20)),
        sa.literal(b"old", sa.LargeBinary),
        sa.literal(datetime.datetime(2020, 1, 1), sa.DateTime),
        numbers.c.i,
    )
    insert = sa.insert(store.table).from_select(["session_id", "data", "expiry", "version"], rows)
    with store.engine.begin() as conn:
        if conn.dialect.name in ("mysql", "mariadb"):  # MariaDB's recursion limit is 1000
            conn.execute(sa.text(f"SET SESSION max_recursive_iterations = {count + 1}"))
        conn.execute(insert)


def test_purge_touches_only_its_own_prefix(engine: sa.Engine, prefix: str) -> None:
    mine = SQLAlchemyStore(engine, key_prefix=prefix, purge_batch=10)
    other = SQLAlchemyStore(engine, key_prefix=f"{prefix[:-1]}_other%:", purge_batch=10)
    _add_expired_rows(mine, 25)
    _add_expired_rows(other, 5)
    assert mine.purge_expired() == 25
    assert other.purge_expired() == 5


def test_purge_of_100k_expired_rows_while_requests_go_on(
    engine: sa.Engine, prefix: str, recorder: Recorder
) -> None:
    app = make_app(engine, prefix)
    store: SQLAlchemyStore = app.extensions["serverside"].store
    _add_expired_rows(store, 100_000)
    clients = [app.test_client() for _ in range(5)]
    for number, client in enumerate(clients):
        client.post(f"/login/user{number}")
    recorder.reset()
    purged: list[int] = []
    purge = threading.Thread(target=lambda: purged.append(store.purge_expired()))
    started = time.perf_counter()
    purge.start()
    slowest, requests = 0.0, 0
    while purge.is_alive() or requests < 20:
        for number, client in enumerate(clients):
            began = time.perf_counter()
            path = "/count" if requests % 2 else "/read"
            response = client.post(path) if path == "/count" else client.get(path)
            slowest = max(slowest, time.perf_counter() - began)
            assert response.status_code == 200, response.data
            requests += 1
            time.sleep(0.005)  # a steady stream of requests, not a saturating one
            if path == "/read":
                assert response.get_json() == {"user": f"user{number}"}
    purge.join()
    elapsed = time.perf_counter() - started
    assert purged == [100_000]
    deletes = [s for s in recorder.statements if s.upper().startswith("DELETE")]
    assert len(deletes) >= 100  # batches of 1000, each its own transaction
    assert store.count() == 5
    assert slowest < 2.0, f"a request waited {slowest:.2f}s ({requests} in {elapsed:.1f}s)"


def test_cleanup_every_n_requests(engine: sa.Engine, prefix: str) -> None:
    app = make_app(engine, prefix, SESSION_CLEANUP_N_REQUESTS=3)
    store: SQLAlchemyStore = app.extensions["serverside"].store
    _add_expired_rows(store, 10)
    client = app.test_client()
    client.post("/login/alice")
    client.get("/read")
    assert store.purge_expired() == 10  # not yet
    _add_expired_rows(store, 10)
    client.get("/read")
    assert store.purge_expired() == 0


def test_the_purge_command(engine: sa.Engine, prefix: str) -> None:
    app = make_app(engine, prefix)
    store: SQLAlchemyStore = app.extensions["serverside"].store
    _add_expired_rows(store, 1500)
    result = app.test_cli_runner().invoke(session_cli, ["purge"])
    assert result.exit_code == 0, result.output
    assert "purged 1500" in result.output


def test_a_row_without_a_version_is_saved_conditionally(store: SQLAlchemyStore) -> None:
    """Rows written by Flask-Session have no version: compare-and-set still works on them."""
    sid = new_sid()
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(store.table).values(
                session_id=store.key_prefix + sid,
                data=b"flask-session",
                expiry=datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
                + datetime.timedelta(minutes=5),
            )
        )
    loaded = store.load(sid)
    assert loaded is not None and loaded.version is None
    assert store.save_if(sid, b"ours", 60, expected=loaded) is True
    assert store.save_if(sid, b"late", 60, expected=loaded) is False
    record = store.load(sid)
    assert record is not None and record.data == b"ours" and record.version is not None


def test_the_portable_upsert_of_other_dialects(sqlite_engine: sa.Engine) -> None:
    store = SQLAlchemyStore(sqlite_engine)
    store._dialect = "somedb"  # as a dialect without a native upsert would be
    sid = new_sid()
    store.save(sid, b"first", 60)
    store.save(sid, b"second", 60, user_id="u")
    record = store.load(sid)
    assert record is not None and record.data == b"second"
    assert store.user_sids("u") == [sid]


def test_on_postgresql_a_read_only_request_is_one_statement_on_the_wire(
    make_postgresql_server: t.Any,
) -> None:
    """The server's own log: no BEGIN, COMMIT or ROLLBACK around the SELECT (autocommit)."""
    server = make_postgresql_server(extra_args=["-c", "log_statement=all"])
    engine = sa.create_engine(server.url.replace("postgresql://", "postgresql+psycopg://", 1))
    app = make_app(engine, "wire:")
    client = app.test_client()
    client.post("/login/alice")
    client.get("/read")
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 'read-only requests start here'"))
    for _ in range(3):
        assert client.get("/read").get_json() == {"user": "alice"}
    client.post("/count")
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 'read-only requests end here'"))
    app.extensions["serverside"].close()
    engine.dispose()
    log = server.log_path.read_text(errors="replace")
    log = log.split("read-only requests start here")[1].split("read-only requests end here")[0]
    statements = [
        line.split(": ", 2)[-1].split()[0].upper()
        for line in log.splitlines()
        if " LOG:  statement: " in line or " LOG:  execute " in line
    ]
    assert statements == [
        "ROLLBACK",  # the end of the first marker's transaction
        *["SELECT"] * 3,  # three read-only requests
        *["SELECT", "UPDATE"],  # a changed session: load, compare-and-set
        *["BEGIN", "SELECT"],  # the second marker
    ]


def test_on_mariadb_a_read_only_request_is_one_statement_on_the_wire(
    make_mariadb_server: t.Any,
) -> None:
    """The server's own counters: a store made from a URL runs in autocommit mode, so no
    COMMIT or ROLLBACK follows its statements."""
    server = make_mariadb_server()
    app = Flask(__name__)
    app.config.update(SECRET_KEY="secret", SESSION_TYPE=server.url)
    Session(app)
    app.add_url_rule("/read", view_func=lambda: {"user": session.get("user")})

    def login() -> dict[str, t.Any]:
        session["user"] = "alice"
        return {"ok": True}

    app.add_url_rule("/login", view_func=login, methods=["POST"])
    client = app.test_client()
    client.post("/login")
    with pymysql.connect(**server.connect_kwargs()) as counters:

        def status() -> dict[str, int]:
            with counters.cursor() as cursor:
                cursor.execute("SHOW GLOBAL STATUS LIKE 'Com\\_%'")
                return {name: int(value) for name, value in cursor.fetchall()}

        before = status()
        for _ in range(3):
            assert client.get("/read").get_json() == {"user": "alice"}
        after = status()
    app.extensions["serverside"].close()
    changed = {name: after[name] - before[name] for name in after if after[name] != before[name]}
    changed.pop("Com_show_status")
    assert changed == {"Com_select": 3}


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg://u@127.0.0.1:1/x", "mysql+pymysql://u@127.0.0.1:1/x"]
)
def test_an_engine_in_autocommit_mode_is_recognised(url: str) -> None:
    from flask_serverside_sqlalchemy._engine import autocommits

    assert autocommits(sa.create_engine(url, isolation_level="AUTOCOMMIT"))
    assert autocommits(sa.create_engine(url).execution_options(isolation_level="AUTOCOMMIT"))
    assert not autocommits(sa.create_engine(url))


def test_a_store_made_from_a_url_switches_no_isolation_level_per_statement(
    postgresql_server: t.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its engine is in autocommit mode from the start: a statement checks a connection out
    and in without setting autocommit on it and back off each time."""
    store = SQLAlchemyStore.from_settings(
        StoreSettings("sqlalchemy", {"SESSION_SQLALCHEMY": postgresql_server.url})
    )
    try:
        sid = new_sid()
        store.save(sid, b"data", 60)
        switches: list[str] = []
        dialect = store.engine.dialect
        original = dialect.set_isolation_level
        monkeypatch.setattr(
            dialect,
            "set_isolation_level",
            lambda conn, level: (switches.append(level), original(conn, level))[1],
        )
        for _ in range(3):
            record = store.load(sid)
            assert record is not None and record.data == b"data"
        assert switches == []
    finally:
        store.close()
