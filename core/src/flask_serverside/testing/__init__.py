"""The conformance kit: one test suite that every store, in this repository or not, runs.

A store's test module subclasses the contracts and supplies one fixture each::

    import pytest
    from flask_serverside.testing import SessionFlowContract, StoreContract
    from my_store import MyStore

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_factory(self, my_server):
            return lambda key_prefix: MyStore(my_server.url, key_prefix=key_prefix)

    class TestMyStoreWithFlask(SessionFlowContract):
        @pytest.fixture
        def session_config(self, my_server):
            return {"SESSION_TYPE": "mystore", "SESSION_MYSTORE_URL": my_server.url}

:class:`StoreContract` (:mod:`.store_contract`) checks the protocol and every capability the
store declares; tests of capabilities it does not declare are skipped, and say so. Each test gets
its own random key prefix, so tests share one server without cleaning it. Expiry is checked for
real: records are saved with a time to live of one second and the test waits
:attr:`StoreContract.expiry_wait` (override :meth:`StoreContract.advance_time` for a store with
an injectable clock).

:class:`SessionFlowContract` (:mod:`.flow_contract`) runs Flask applications on the store end to
end, with the views of :mod:`.views`: the write policy, cookies, regeneration, hostile cookies,
corrupt records and concurrent requests. :func:`spy_on_store` (:mod:`.spy`) counts the calls an
application makes to its store. :func:`assert_no_secrets` (:mod:`.logs`) checks captured log
records, tracebacks included, for whole session ids, user ids and session data.

.. versionchanged:: 0.2
    A package (it was one module); :func:`new_sid` takes the application whose id length to use;
    :func:`assert_no_secrets` and :func:`find_secrets`.
"""

from __future__ import annotations

from .flow_contract import SessionFlowContract
from .logs import Leak
from .logs import assert_no_secrets
from .logs import find_secrets
from .spy import StoreSpy
from .spy import spy_on_store
from .store_contract import StoreContract
from .store_contract import new_sid

__all__ = [
    "Leak",
    "SessionFlowContract",
    "StoreContract",
    "StoreSpy",
    "assert_no_secrets",
    "find_secrets",
    "new_sid",
    "spy_on_store",
]
