"""Building the store an application's configuration names: the one path from ``SESSION_TYPE``
to a store instance.

:func:`build_store` resolves the name or URL (:mod:`~flask_serverside.registry`), checks the
class against what it declares (:mod:`~flask_serverside.capabilities`), calls its
``from_settings``, checks the instance, and puts the fault boundary around it
(:class:`GuardedStore`). ``Session.init_app`` calls it; ``flask session stores`` runs the same
class checks on every installed plugin.
"""

from __future__ import annotations

import functools
import typing as t

from .capabilities import check_store
from .capabilities import protocol_methods
from .exceptions import StoreError
from .registry import resolve_store
from .settings import StoreSettings

if t.TYPE_CHECKING:
    import collections.abc as c

    from flask import Flask

    from .config import SessionConfig
    from .store import Capability
    from .store import SessionStore


class GuardedStore:
    """A store whose protocol methods raise nothing but
    :class:`~flask_serverside.StoreError` (and its subclasses).

    A store is expected to translate its client's exceptions itself (see
    :class:`~flask_serverside.clients.ClientErrors`). Anything else it raises is a bug of the
    store, but it happened talking to the store, so it is wrapped here, once, into a
    :class:`~flask_serverside.StoreError` chained to the original: the application's fault
    policy applies to it, while errors of the application's own code (an unserializable value,
    a bad cookie setting) never pass through here and propagate as Flask's own errors.

    Every other attribute is the store's own, and ``isinstance`` sees the store's class, as
    with any transparent proxy.
    """

    def __init__(self, store: SessionStore, name: str) -> None:
        methods = protocol_methods(store.capabilities)
        own = self.__dict__
        own["_own"] = frozenset(["wrapped", "capabilities", *methods])
        #: The store the plugin built.
        self.wrapped = store
        #: Its capabilities.
        self.capabilities: Capability = store.capabilities
        for method in methods:
            setattr(self, method, _guard(getattr(store, method), name, method))

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self.wrapped, name)

    def __setattr__(self, name: str, value: t.Any) -> None:
        if name in self._own:
            object.__setattr__(self, name, value)
        else:
            setattr(self.wrapped, name, value)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105
        return type(self.wrapped)

    def __repr__(self) -> str:
        return f"<GuardedStore {self.wrapped!r}>"


def _guard(method: c.Callable[..., t.Any], store: str, name: str) -> c.Callable[..., t.Any]:
    @functools.wraps(method)
    def guarded(*args: t.Any, **kwargs: t.Any) -> t.Any:
        try:
            return method(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(
                f"the {store!r} session store raised {type(exc).__name__} in {name}()"
                " instead of a StoreError"
            ) from exc

    return guarded


def build_store(config: SessionConfig, app: Flask | None = None) -> tuple[str, SessionStore]:
    """Build the store ``config`` names.

    :returns: the name it was found under and the store, behind a :class:`GuardedStore`.
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
    )
    store = factory.from_settings(settings)
    check_store(name, store)
    return name, t.cast("SessionStore", GuardedStore(store, name))
