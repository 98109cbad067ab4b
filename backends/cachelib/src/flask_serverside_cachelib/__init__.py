"""Flask sessions in any cachelib cache, for flask-serverside: ``SESSION_TYPE = "cachelib"``."""

from __future__ import annotations

from .store import BytesSerializer
from .store import CacheLibStore

__all__ = ["BytesSerializer", "CacheLibStore"]
