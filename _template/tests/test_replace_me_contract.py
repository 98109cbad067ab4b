"""The conformance kit on the replace_me store: one fixture per contract."""

from __future__ import annotations

import pytest
from flask_serverside import StoreSettings
from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract

from replace_me_pkg import ReplaceMeStore


class TestReplaceMeStore(StoreContract):
    @pytest.fixture
    def store_factory(self, server_url):
        def factory(key_prefix):
            return ReplaceMeStore.from_settings(
                StoreSettings(name="replace_me", config={}, key_prefix=key_prefix, url=server_url)
            )

        return factory


class TestReplaceMeStoreWithFlask(SessionFlowContract):
    @pytest.fixture
    def session_config(self, server_url):
        return {"SESSION_TYPE": "replace_me", "SESSION_REPLACE_ME_URL": server_url}
