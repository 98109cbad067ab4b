"""flask-serverside-mongodb: Flask sessions in MongoDB, through pymongo.

Select it with ``SESSION_TYPE = "mongodb"`` and ``SESSION_MONGODB = pymongo.MongoClient(...)``
(the Flask-Session configuration), or with ``SESSION_TYPE = "mongodb://host/database"``.
"""

from __future__ import annotations

from .store import MongoDBStore

__all__ = ["MongoDBStore"]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
