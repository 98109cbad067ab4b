"""Building the store an application's configuration names: the one path from ``SESSION_TYPE``
to a store instance.

:func:`build_store` resolves the name or URL (:mod:`~flask_serverside.registry`), checks the
class against what it declares (:mod:`~flask_serverside.capabilities`), calls its
``from_settings`` and checks the instance. ``Session.init_app`` calls it (and puts the fault
boundary, :class:`~flask_serverside.guard.GuardedStore`, around the result); ``flask session
stores`` runs the same class checks on every installed plugin.
"""

from __future__ import annotations

import typing as t

from .capabilities import check_store
from .registry import resolve_store
from .settings import StoreSettings

if t.TYPE_CHECKING:
    from flask import Flask

    from .config import SessionConfig
    from .store import SessionStore


def build_store(config: SessionConfig, app: Flask | None = None) -> tuple[str, SessionStore]:
    """Build the store ``config`` names.

    :returns: the name it was found under and the store the plugin built.
    :raises StoreNotFound: when no installed store has that name.
    :raises StorePluginError: when the plugin is broken or does not implement what it declares.
    :raises ConfigurationError: when the store's own settings are wrong.
    """
    name, factory = resolve_store(config.store)
    settings = StoreSettings(
        name=name,
        config=app.config if app is not None else {},
        key_prefix=config.key_prefix,
        url=config.store if "://" in config.store else None,
        app=app,
        compat_flask_session=config.compat_flask_session,
    )
    store = factory.from_settings(settings)
    check_store(name, store)
    return name, store
