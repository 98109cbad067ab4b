"""A replace_me session store for flask-serverside: ``SESSION_TYPE = "replace_me"``.

::

    app.config["SESSION_TYPE"] = "replace_me"
    app.config["SESSION_REPLACE_ME_URL"] = "replace_me://localhost"
    Session(app)
"""

from __future__ import annotations

from .store import ReplaceMeStore

__all__ = ["ReplaceMeStore"]
