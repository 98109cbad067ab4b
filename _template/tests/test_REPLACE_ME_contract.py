"""The conformance kit on the REPLACE_ME store: one subclass per server topology."""

from __future__ import annotations

import pytest

from flask_serverside.testing import SessionFlowContract
from flask_serverside.testing import StoreContract
from flask_serverside_REPLACE_ME import ReplaceMeStore


class TestReplaceMeStore(StoreContract):
    @pytest.fixture
    def store_factory(self, REPLACE_ME_server):
        stores = []

        def factory(key_prefix):
            stores.append(ReplaceMeStore(REPLACE_ME_server.url, key_prefix=key_prefix))
            return stores[-1]

        yield factory
        for store in stores:
            store.close()


class TestReplaceMeStoreWithFlask(SessionFlowContract):
    @pytest.fixture
    def session_config(self, REPLACE_ME_server):
        return {"SESSION_TYPE": "REPLACE_ME", "SESSION_REPLACE_ME_URL": REPLACE_ME_server.url}
