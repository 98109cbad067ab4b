"""The core's helpers for store authors: typed readers of a store's configuration keys,
translation of a client's exceptions, and ownership of the client."""

from __future__ import annotations

import datetime
import threading
import time

import pytest

from flask_serverside import ClientErrors
from flask_serverside import ClientHandle
from flask_serverside import ConfigurationError
from flask_serverside import StoreError
from flask_serverside import StoreSettings
from flask_serverside import StoreUnavailable


def settings(**config: object) -> StoreSettings:
    return StoreSettings(name="mystore", config=config)


# -- StoreSettings ------------------------------------------------------------------------------


def test_a_missing_or_none_key_gives_its_default():
    for reader, default in [
        (settings().integer, 3),
        (settings(K=None).integer, 3),
        (settings().number, 0.5),
        (settings().seconds, 2.0),
        (settings().flag, True),
        (settings(K=None).text, "x"),
    ]:
        assert reader("K", default) == default
    assert settings().seconds("K", None) is None
    assert settings().choice("K", "a", ("a", "b")) == "a"


def test_readers_return_good_values():
    assert settings(K=0).integer("K", 5, minimum=0) == 0
    assert settings(K=7).integer("K", 5) == 7
    assert settings(K=2).number("K", 1.0) == 2.0
    assert settings(K=0.25).number("K", 1.0) == 0.25
    assert settings(K=3).seconds("K", 1.0) == 3.0
    assert isinstance(settings(K=3).seconds("K", 1.0), float)
    assert settings(K=datetime.timedelta(minutes=2)).seconds("K", 1.0) == 120.0
    assert settings(K=False).flag("K", True) is False
    assert settings(K="db").text("K") == "db"
    assert settings(K="b").choice("K", "a", ("a", "b")) == "b"


@pytest.mark.parametrize(
    ("read", "value", "expected"),
    [
        (lambda s: s.integer("K", 5), True, "a whole number of at least 1"),
        (lambda s: s.integer("K", 5), 2.0, "a whole number of at least 1"),
        (lambda s: s.integer("K", 5), "5", "a whole number of at least 1"),
        (lambda s: s.integer("K", 5), 0, "a whole number of at least 1"),
        (lambda s: s.integer("K", 5, minimum=0), -1, "a whole number of at least 0"),
        (lambda s: s.number("K", 1.0), 0, "a number greater than 0"),
        (lambda s: s.number("K", 1.0), float("nan"), "a number greater than 0"),
        (lambda s: s.number("K", 1.0), False, "a number greater than 0"),
        (lambda s: s.number("K", 1.0), "1.5", "a number greater than 0"),
        (lambda s: s.seconds("K", 1.0), 0, "a positive number of seconds or a timedelta"),
        (lambda s: s.seconds("K", 1.0), -2, "a positive number of seconds or a timedelta"),
        (lambda s: s.seconds("K", 1.0), "2", "a positive number of seconds or a timedelta"),
        (lambda s: s.seconds("K", None), True, "a positive number of seconds or a timedelta"),
        (
            lambda s: s.seconds("K", 1.0),
            datetime.timedelta(0),
            "a positive number of seconds or a timedelta",
        ),
        (lambda s: s.flag("K", False), "false", "True or False"),
        (lambda s: s.flag("K", False), 1, "True or False"),
        (lambda s: s.text("K", "x"), "", "a non-empty string"),
        (lambda s: s.text("K", "x"), "  ", "a non-empty string"),
        (lambda s: s.text("K", "x"), 3, "a non-empty string"),
        (lambda s: s.choice("K", "a", ("a", "b")), "c", "one of 'a', 'b'"),
    ],
)
def test_a_wrong_value_is_refused_naming_the_key_the_value_and_what_is_expected(
    read, value, expected
):
    with pytest.raises(ConfigurationError) as info:
        read(settings(K=value))
    message = str(info.value)
    assert message.startswith(f"K must be {expected}")
    assert message.endswith(f"not {value!r}.")


def test_the_default_is_named_in_the_error():
    with pytest.raises(ConfigurationError, match=r"\(default 5\)"):
        settings(K=-1).integer("K", 5)
    with pytest.raises(ConfigurationError) as info:
        settings(K=0).seconds("K", None)
    assert "default" not in str(info.value)


def test_a_required_text_key_names_the_store_when_missing():
    with pytest.raises(ConfigurationError, match="K must be set for the 'mystore' session store"):
        settings().text("K")
    with pytest.raises(ConfigurationError) as info:
        settings(K="").text("K")
    assert "default" not in str(info.value)


# -- ClientErrors -------------------------------------------------------------------------------


class ClientError(Exception):
    """The base class of a client library's errors."""


class ConnectError(ClientError):
    pass


class AuthError(ConnectError):
    """Refused credentials: a connection error of the client, but a failure for the store."""


class RefusedPassword(AuthError):
    pass


class TimedOut(ClientError):
    pass


ERRORS = ClientErrors(
    "Thing",
    unavailable=(ConnectError, TimedOut),
    failed=(AuthError, ClientError),
)


def raised(exc: BaseException, doing: str = "load a session") -> BaseException:
    try:
        with ERRORS(doing):
            raise exc
    except BaseException as caught:
        return caught
    raise AssertionError("nothing was raised")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ConnectError("down"), StoreUnavailable),
        (TimedOut("slow"), StoreUnavailable),
        (AuthError("wrong password"), StoreError),
        (RefusedPassword("wrong password"), StoreError),
        (ClientError("syntax"), StoreError),
    ],
)
def test_the_most_specific_listed_class_decides(exc, kind):
    error = raised(exc)
    assert type(error) is kind
    assert error.__cause__ is exc


def test_the_order_of_the_lists_does_not_matter():
    errors = ClientErrors("Thing", unavailable=(AuthError,), failed=(ConnectError,))
    assert errors.kind(AuthError) is StoreUnavailable
    assert errors.kind(RefusedPassword) is StoreUnavailable
    assert errors.kind(ConnectError) is StoreError
    assert errors.kind(ValueError) is None


def test_exceptions_of_no_listed_class_pass_through_unchanged():
    exc = ValueError("a bug")
    assert raised(exc) is exc
    interrupt = KeyboardInterrupt()
    assert raised(interrupt) is interrupt


def test_store_errors_pass_through_unchanged():
    for exc in (StoreError("from the store"), StoreUnavailable("from the store")):
        assert raised(exc) is exc
    errors = ClientErrors("Thing", unavailable=(Exception,))  # would match a StoreError
    with pytest.raises(StoreError) as info:
        with errors("save a session"):
            raise StoreError("mine")
    assert type(info.value) is StoreError and str(info.value) == "mine"


def test_no_exception_no_translation():
    with ERRORS("load a session"):
        pass
    assert ERRORS("load a session") is ERRORS("load a session")


def test_messages_name_the_backend_the_operation_and_the_client_error():
    assert str(raised(ConnectError("refused"), "load a session")) == (
        "Thing is unavailable, could not load a session: ConnectError: refused"
    )
    assert str(raised(ClientError("bad"), "save a session")) == (
        "Thing failed to save a session: ClientError: bad"
    )
    assert str(raised(ClientError())) == "Thing failed to load a session: ClientError"
    long = str(raised(ClientError("x" * 1000)))
    assert len(long) < 400 and long.endswith("x…")


def test_a_store_can_describe_errors_itself():
    errors = ClientErrors(
        "Thing", unavailable=(ConnectError,), describe=lambda exc: "details withheld"
    )
    with pytest.raises(StoreUnavailable, match="could not connect: details withheld$"):
        with errors("connect"):
            raise ConnectError("password=hunter2")


# -- ClientHandle -------------------------------------------------------------------------------


class Client:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_given_client_is_used_and_never_closed():
    client = Client()
    handle = ClientHandle.given(client)
    assert handle.connected and handle.client is client and not handle.owned
    handle.close()
    assert client.closed == 0


def test_a_built_client_is_closed():
    client = Client()
    handle = ClientHandle.built(client)
    assert handle.owned and handle.client is client
    handle.close()
    assert client.closed == 1


def test_a_client_is_built_once_on_first_use_however_many_threads_ask():
    made: list[Client] = []

    def connect() -> Client:
        time.sleep(0.05)  # wide enough for every thread to ask meanwhile
        made.append(Client())
        return made[-1]

    handle = ClientHandle.built(connect=connect)
    assert not handle.connected and made == []
    start = threading.Barrier(8)
    seen: list[Client] = []

    def use() -> None:
        start.wait()
        seen.append(handle.client)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and seen == made * 8 and handle.connected
    handle.close()
    assert made[0].closed == 1


def test_a_failed_connect_is_tried_again_on_next_use():
    attempts: list[int] = []

    def connect() -> Client:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionRefusedError("down")
        return Client()

    handle = ClientHandle.built(connect=connect)
    with pytest.raises(ConnectionRefusedError):
        _ = handle.client
    assert not handle.connected
    assert isinstance(handle.client, Client) and len(attempts) == 2


def test_closing_a_client_never_built_builds_nothing():
    handle = ClientHandle.built(connect=lambda: pytest.fail("must not connect"))
    handle.close()
    assert not handle.connected


def test_a_closer_closes_the_built_client_its_way():
    closed: list[object] = []
    client = object()
    ClientHandle.built(client, closer=closed.append).close()
    assert closed == [client]
    ClientHandle(client, owned=False, closer=closed.append).close()
    assert closed == [client]


def test_a_handle_needs_a_client_or_a_connect_function():
    with pytest.raises(TypeError):
        ClientHandle()
    with pytest.raises(TypeError):
        ClientHandle(Client(), connect=Client)
