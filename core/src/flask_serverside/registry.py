"""Finding stores: entry points through stevedore, and stores registered in code.

A store plugin registers its store class in the ``flask_serverside.stores`` entry-point group::

    [project.entry-points."flask_serverside.stores"]
    redis = "flask_serverside_redis:RedisStore"

``SESSION_TYPE`` names the entry point. A URL names it by its scheme (``redis://...``); a scheme
with a driver suffix (``postgresql+psycopg://``) is tried whole, then without the suffix. A plugin
may register several names for one class (``sqlalchemy``, ``postgresql``, ``sqlite``).
Stores registered with :func:`register_store` win over entry points of the same name.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import types
import typing as t

from stevedore import DriverManager
from stevedore import ExtensionManager
from stevedore.exception import MultipleMatches
from stevedore.exception import NoMatches

from .exceptions import StoreNotFound
from .exceptions import StorePluginError
from .store import Capability
from .store import capability_names

if t.TYPE_CHECKING:
    import collections.abc as c

    from stevedore.extension import Extension

    from .store import StoreFactory

#: The entry-point group stores register in.
NAMESPACE = "flask_serverside.stores"

#: The distribution that provides each first-party store name or URL scheme, for the
#: "pip install" hint of :class:`StoreNotFound`.
KNOWN_DISTRIBUTIONS: c.Mapping[str, str] = types.MappingProxyType(
    {
        **dict.fromkeys(
            (
                "redis",
                "rediss",
                "unix",
                "redis+sentinel",
                "rediss+sentinel",
                "redis+cluster",
                "rediss+cluster",
            ),
            "redis",
        ),
        **dict.fromkeys(("memcached", "memcache"), "memcached"),
        **dict.fromkeys(("mongodb", "mongodb+srv"), "mongodb"),
        **dict.fromkeys(
            ("sqlalchemy", "postgresql", "postgres", "mysql", "mariadb", "sqlite"), "sqlalchemy"
        ),
        **dict.fromkeys(("filesystem", "file"), "filesystem"),
    }
)

_registered: dict[str, StoreFactory] = {}
#: The stores registered with :func:`register_store`, read only.
registered_stores: c.Mapping[str, StoreFactory] = types.MappingProxyType(_registered)


def register_store(name: str, factory: StoreFactory, *, replace: bool = False) -> None:
    """Make ``factory`` (a store class) available as ``SESSION_TYPE = name`` without an entry
    point, for applications and tests.

    :param replace: allow replacing a store registered under the same name.
    :raises ValueError: when ``name`` is taken and ``replace`` is false.

    .. versionadded:: 0.1
    """
    key = name.lower()
    if key in _registered and not replace:
        raise ValueError(f"a session store named {name!r} is already registered")
    check_factory(key, factory)
    _registered[key] = factory


def unregister_store(name: str) -> None:
    """Remove a store added with :func:`register_store`; a missing name is ignored."""
    _registered.pop(name.lower(), None)


def candidate_names(store: str) -> list[str]:
    """Return the names to look up, in order, for a ``SESSION_TYPE`` value: the name itself,
    or for a URL its scheme and then the scheme without its ``+driver`` suffix."""
    value = store.strip().lower()
    if "://" not in value:
        return [value]
    scheme = value.split("://", 1)[0]
    base = scheme.split("+", 1)[0]
    return [scheme] if base == scheme else [scheme, base]


def resolve_store(store: str) -> tuple[str, StoreFactory]:
    """Find the store a ``SESSION_TYPE`` value names.

    :returns: the name that matched and the store class.
    :raises StoreNotFound: listing the installed stores and what to install.
    :raises StorePluginError: when the plugin fails to import or is not a store.
    """
    names = candidate_names(store)
    for name in names:
        if name in _registered:
            return name, _registered[name]
    for name in names:
        factory = _load_entry_point(name)
        if factory is not None:
            return name, factory
    hint = next((KNOWN_DISTRIBUTIONS[n] for n in names if n in KNOWN_DISTRIBUTIONS), None)
    raise StoreNotFound(
        names[0],
        installed_store_names(),
        hint=f"flask-serverside-{hint}  (or: pip install 'flask-serverside[{hint}]')"
        if hint
        else None,
    )


def _load_entry_point(name: str) -> StoreFactory | None:
    def on_failure(
        manager: object, entry_point: importlib.metadata.EntryPoint, exc: BaseException
    ) -> None:
        raise StorePluginError(
            name, entry_point.value, f"importing it raised {type(exc).__name__}: {exc}"
        ) from exc

    try:
        manager: DriverManager[StoreFactory] = DriverManager(
            NAMESPACE,
            name,
            invoke_on_load=False,
            on_load_failure_callback=on_failure,
            on_missing_entrypoints_callback=None,
        )
    except NoMatches:
        return None
    except MultipleMatches as exc:
        providers = ", ".join(
            f"{ep.value} ({_distribution(ep) or 'unknown distribution'})"
            for ep in importlib.metadata.entry_points(group=NAMESPACE, name=name)
        )
        raise StorePluginError(
            name, providers, "several installed distributions register this name; uninstall one"
        ) from exc
    factory = t.cast("StoreFactory", manager.driver)
    check_factory(name, factory)
    return factory


def check_factory(name: str, factory: object) -> None:
    """Check that ``factory`` looks like a store class.

    :raises StorePluginError: naming what is missing.
    """
    if not callable(getattr(factory, "from_settings", None)):
        raise StorePluginError(name, factory, "it has no from_settings(settings) class method")
    if not isinstance(getattr(factory, "capabilities", None), Capability):
        raise StorePluginError(
            name, factory, "its 'capabilities' attribute is not a flask_serverside.Capability"
        )


def installed_store_names() -> list[str]:
    """Return every store name available: registered in code or as an entry point."""
    names = {ep.name for ep in importlib.metadata.entry_points(group=NAMESPACE)}
    return sorted(names | set(_registered))


@dataclasses.dataclass(frozen=True)
class StoreInfo:
    """One installed store, as ``flask session stores`` lists it."""

    name: str
    #: ``module:attribute`` the entry point names, or the class's qualified name.
    target: str
    distribution: str | None
    version: str | None
    #: Capability names, empty when the plugin failed to load.
    capabilities: tuple[str, ...]
    #: Why the plugin failed to load, else ``None``.
    error: str | None = None


def installed_stores() -> list[StoreInfo]:
    """Describe every available store, loading each plugin to read its capabilities; a plugin
    that fails to load is listed with its error instead of raising."""
    errors: dict[str, str] = {}

    def on_failure(
        manager: object, entry_point: importlib.metadata.EntryPoint, exc: BaseException
    ) -> None:
        errors[entry_point.name] = f"{type(exc).__name__}: {exc}"

    manager: ExtensionManager[StoreFactory] = ExtensionManager(
        NAMESPACE, invoke_on_load=False, on_load_failure_callback=on_failure
    )
    loaded: dict[str, Extension[StoreFactory]] = {ext.name: ext for ext in manager}
    infos = []
    for ep in importlib.metadata.entry_points(group=NAMESPACE):
        if ep.name in _registered:
            continue
        dist = _distribution(ep)
        version = ep.dist.version if ep.dist is not None else None
        extension = loaded.get(ep.name)
        error = errors.get(ep.name)
        capabilities: tuple[str, ...] = ()
        if extension is not None:
            declared = getattr(extension.plugin, "capabilities", None)
            if isinstance(declared, Capability):
                capabilities = tuple(capability_names(declared))
            else:
                error = "it declares no flask_serverside.Capability"
        infos.append(StoreInfo(ep.name, ep.value, dist, version, capabilities, error))
    for name, factory in _registered.items():
        infos.append(
            StoreInfo(
                name,
                f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', '?')}",
                None,
                None,
                tuple(capability_names(factory.capabilities)),
            )
        )
    return sorted(infos, key=lambda info: info.name)


def _distribution(ep: importlib.metadata.EntryPoint) -> str | None:
    return ep.dist.name if ep.dist is not None else None
