"""Finding stores: entry points through stevedore, and stores registered in code.

A store plugin registers its store class in the ``flask_serverside.stores`` entry-point group::

    [project.entry-points."flask_serverside.stores"]
    redis = "flask_serverside_redis:RedisStore"

``SESSION_TYPE`` names the entry point. A URL names it by its scheme (``redis://...``); a scheme
with a driver suffix (``postgresql+psycopg://``) is tried whole, then without the suffix. A plugin
may register several names for one class (``sqlalchemy``, ``postgresql``, ``sqlite``).
Stores registered with :func:`register_store` win over entry points of the same name.

Every class found is checked with :func:`~.capabilities.check_store_class`, here and in
:func:`installed_stores`, so ``flask session stores`` flags exactly what start-up refuses.
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

from .capabilities import capability_names
from .capabilities import check_store_class
from .exceptions import StoreNotFound
from .exceptions import StorePluginError
from .store import Capability

if t.TYPE_CHECKING:
    import collections.abc as c

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


def register_store(name: str, factory: StoreFactory, *, replace: bool = False) -> None:
    """Make ``factory`` (a store class) available as ``SESSION_TYPE = name`` without an entry
    point, for applications and tests.

    :param replace: allow replacing a store registered under the same name.
    :raises ValueError: when ``name`` is taken and ``replace`` is false.
    :raises StorePluginError: when ``factory`` is not a store class.

    .. versionadded:: 0.1
    """
    key = name.lower()
    if key in _registered and not replace:
        raise ValueError(f"a session store named {name!r} is already registered")
    check_store_class(key, factory)
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
    """Find and check the store class a ``SESSION_TYPE`` value names.

    :returns: the name that matched and the store class.
    :raises StoreNotFound: listing the installed stores and what to install.
    :raises StorePluginError: when the plugin fails to import, is registered by several
        distributions, or is not a store class.
    """
    names = candidate_names(store)
    for name in names:
        if name in _registered:
            return name, _registered[name]
    for name in names:
        factory = _load_entry_point(name)
        if factory is not None:
            check_store_class(name, factory)
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
    def on_failure(manager: object, entry_point: t.Any, exc: BaseException) -> None:
        raise StorePluginError(name, entry_point.value, _import_failure(exc)) from exc

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
        raise StorePluginError(name, _duplicate_targets(name), _DUPLICATE) from exc
    return t.cast("StoreFactory", manager.driver)


_DUPLICATE = "several installed distributions register this name; uninstall all but one"


def _import_failure(exc: BaseException) -> str:
    return f"importing it raised {type(exc).__name__}: {exc}"


def _duplicate_targets(name: str) -> str:
    entries = _manager().list_entry_points()
    return ", ".join(ep.value for ep in entries if ep.name == name)


def _manager(
    on_failure: c.Callable[[t.Any, t.Any, BaseException], None] | None = None,
) -> ExtensionManager[StoreFactory]:
    return ExtensionManager(NAMESPACE, invoke_on_load=False, on_load_failure_callback=on_failure)


def installed_store_names() -> list[str]:
    """Return every store name available: registered in code or as an entry point."""
    return sorted(set(_manager().entry_points_names()) | set(_registered))


@dataclasses.dataclass(frozen=True)
class StoreInfo:
    """One installed store name, as ``flask session stores`` lists it."""

    #: The name ``SESSION_TYPE`` (or a URL scheme) selects it by.
    name: str
    #: ``module:attribute`` the entry point names, or the class's qualified name.
    target: str
    #: The distribution that provides it, ``None`` for a store registered in code.
    distribution: str | None
    version: str | None
    #: Capability names, empty when the plugin failed to load.
    capabilities: tuple[str, ...]
    #: Why start-up would refuse it (the message it would give), else ``None``.
    error: str | None = None


def installed_stores() -> list[StoreInfo]:
    """Describe every available store name, loading each plugin and checking it as start-up
    does; a plugin start-up would refuse is listed with that error instead of raising."""
    errors: dict[str, str] = {}

    def on_failure(manager: object, entry_point: t.Any, exc: BaseException) -> None:
        errors[entry_point.name] = str(
            StorePluginError(entry_point.name, entry_point.value, _import_failure(exc))
        )

    manager = _manager(on_failure)
    provenance = _provenance()
    names = [ep.name for ep in manager.list_entry_points()]
    loaded = {ext.entry_point.value: ext for ext in manager}
    infos = []
    for ep in manager.list_entry_points():
        if ep.name in _registered:
            continue
        distribution, version = provenance.get((ep.name, ep.value), (None, None))
        error = errors.get(ep.name)
        capabilities: tuple[str, ...] = ()
        extension = loaded.get(ep.value)
        if names.count(ep.name) > 1:
            error = str(StorePluginError(ep.name, _duplicate_targets(ep.name), _DUPLICATE))
        if extension is not None:
            declared = getattr(extension.plugin, "capabilities", None)
            if isinstance(declared, Capability):
                capabilities = tuple(capability_names(declared))
            try:
                check_store_class(ep.name, extension.plugin)
            except StorePluginError as exc:
                error = error or str(exc)
        infos.append(StoreInfo(ep.name, ep.value, distribution, version, capabilities, error))
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
    return sorted(infos, key=lambda info: (info.name, info.target))


def _provenance() -> dict[tuple[str, str], tuple[str, str]]:
    """The distribution and version behind each entry point ``(name, target)``: stevedore's
    entry points do not carry them, so they are read from the installed metadata."""
    found = {}
    for ep in importlib.metadata.entry_points(group=NAMESPACE):
        if ep.dist is not None:
            found[(ep.name, ep.value)] = (ep.dist.name, ep.dist.version)
    return found
