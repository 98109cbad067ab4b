"""Where the tests' replace_me server is."""

from __future__ import annotations

import secrets

import pytest


@pytest.fixture(scope="session")
def server_url() -> str:
    """The URL of the server the tests use.

    Start a real server here once your store talks to one: on a free loopback port, in a
    temporary directory, stopped by its PID when the session ends (never a shared instance,
    never a fixed port), and return its URL. The template's stand-in backend needs no server:
    every URL of the scheme reaches it.
    """
    return f"replace_me://stand-in-{secrets.token_hex(4)}"
