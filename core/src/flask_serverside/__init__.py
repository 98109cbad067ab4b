"""Server-side sessions for Flask, with stores as plugins.

::

    from flask import Flask
    from flask_serverside import Session

    app = Flask(__name__)
    app.config["SESSION_TYPE"] = "redis"
    Session(app)
"""

from __future__ import annotations

from . import signals
from .clients import ClientErrors
from .clients import ClientHandle
from .exceptions import ConfigurationError
from .exceptions import CorruptRecord
from .exceptions import NodeUnavailable
from .exceptions import SessionError
from .exceptions import SessionRenewed
from .exceptions import SessionUnavailable
from .exceptions import StoreError
from .exceptions import StoreNotFound
from .exceptions import StorePluginError
from .exceptions import StoreUnavailable
from .exceptions import UnserializableValue
from .exceptions import WriteConflict
from .extension import Session
from .extension import revoke_user_sessions
from .interface import ServerSideSessionInterface
from .legacy_pickle import dump_legacy_pickle
from .legacy_pickle import load_legacy_pickle
from .legacy_pickle import pickle_to_record
from .legacy_pickle import record_to_pickle
from .memory import MemoryStore
from .registry import register_store
from .registry import unregister_store
from .session import ServerSideSession
from .settings import StoreSettings
from .state import SessionState
from .state import get_state
from .store import Capability
from .store import Record
from .store import SessionStore

__all__ = [
    "Capability",
    "ClientErrors",
    "ClientHandle",
    "ConfigurationError",
    "CorruptRecord",
    "MemoryStore",
    "NodeUnavailable",
    "Record",
    "ServerSideSession",
    "ServerSideSessionInterface",
    "Session",
    "SessionError",
    "SessionRenewed",
    "SessionState",
    "SessionStore",
    "SessionUnavailable",
    "StoreError",
    "StoreNotFound",
    "StorePluginError",
    "StoreSettings",
    "StoreUnavailable",
    "UnserializableValue",
    "WriteConflict",
    "dump_legacy_pickle",
    "get_state",
    "load_legacy_pickle",
    "pickle_to_record",
    "record_to_pickle",
    "register_store",
    "signals",
    "revoke_user_sessions",
    "unregister_store",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
