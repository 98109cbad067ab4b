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

import collections.abc as c
import dataclasses
import importlib.metadata
import types
import typing as t

from stevedore import DriverManager
from stevedore.exception import MultipleMatches
from stevedore.exception import NoMatches

from .capabilities import capability_names
from .capabilities import check_store_class
from .exceptions import StoreNotFound
from .exceptions import StorePluginError
from .hints import close_matches
from .store import Capability

if t.TYPE_CHECKING:
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
        "cachelib": "cachelib",
        "dynamodb": "dynamodb",
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
    :raises StoreNotFound: listing the installed store names and URL schemes, the close ones
        first ("did you mean"), and for a first-party store what to install.
    :raises StorePluginError: when the plugin fails to import, is registered by several
        distributions, or is not a store class.
    """
    names = candidate_names(store)
    for name in names:
        if name in _registered:
            return name, _registered[name]
    for name in names:
        factory = load_store_class(name)
        if factory is not None:
            return name, factory
    hint = next((KNOWN_DISTRIBUTIONS[n] for n in names if n in KNOWN_DISTRIBUTIONS), None)
    stores = installed_stores()
    store_names = {n for info in stores for n in info.store_names}
    schemes = {n for info in stores for n in info.url_schemes}
    raise StoreNotFound(
        names[0],
        store_names,
        hint=f"flask-serverside-{hint}  (or: pip install 'flask-serverside[{hint}]')"
        if hint
        else None,
        schemes=schemes,
        suggestions=close_matches(names[0], store_names | schemes),
    )


def load_store_class(name: str) -> StoreFactory | None:
    """Load and check the class the entry point ``name`` names, as start-up does.

    :returns: the class, or ``None`` when no installed distribution registers ``name``.
    :raises StorePluginError: when several distributions register ``name``, its module fails
        to import, or what it names is not a store class.

    .. versionadded:: 0.2
    """
    return _load(name, _registrations())


def _load(name: str, installed: list[_Registration]) -> StoreFactory | None:
    registrations = [r for r in installed if r.name == name]
    if not registrations:
        return None
    if len(registrations) > 1:
        raise StorePluginError(
            name,
            "; ".join(f"{r.target} from {r.distribution}" for r in registrations),
            _DUPLICATE,
        )

    def on_failure(manager: object, entry_point: t.Any, exc: BaseException) -> None:
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
        raise StorePluginError(name, registrations[0].target, _DUPLICATE) from exc
    factory = t.cast("StoreFactory", manager.driver)
    check_store_class(name, factory)
    return factory


_DUPLICATE = "several installed distributions register this name; uninstall all but one"


def installed_store_names() -> list[str]:
    """Return every name ``SESSION_TYPE`` can select: store names and URL schemes, registered
    in code or as entry points (without loading any plugin)."""
    return sorted({r.name for r in _registrations()} | set(_registered))


@dataclasses.dataclass(frozen=True)
class _Registration:
    """One entry point of the group, with the distribution that declares it."""

    name: str
    target: str
    distribution: str
    version: str


def _registrations() -> list[_Registration]:
    """Every entry point of the group, with its distribution (read from the installed
    metadata: stevedore's entry points do not say which distribution declared them). A
    distribution found twice on ``sys.path`` counts once, as for the import system."""
    found = []
    for ep in importlib.metadata.entry_points(group=NAMESPACE):
        dist = ep.dist
        name = dist.name if dist is not None else "?"
        version = dist.version if dist is not None else "?"
        found.append(_Registration(ep.name, ep.value, name, version))
    return found


@dataclasses.dataclass(frozen=True)
class StoreInfo:
    """One installed store, as ``flask session stores`` lists it: a class, registered by one
    distribution (or in code) under one or more names.

    .. versionchanged:: 0.2
        One entry per store class with all its names, store names and URL schemes apart,
        and the start-up error of each name.
    """

    #: The store's name: what ``SESSION_TYPE`` usually says.
    name: str
    #: Its other store names.
    aliases: tuple[str, ...]
    #: Its names that are URL schemes (``SESSION_TYPE = "<scheme>://..."``).
    url_schemes: tuple[str, ...]
    #: ``module:attribute`` the entry points name, or the class's qualified name.
    target: str
    #: The distribution that provides it, ``None`` for a store registered in code.
    distribution: str | None
    version: str | None
    #: Capability names, empty when the class could not be loaded or checked.
    capabilities: tuple[str, ...]
    #: For each of its names that ``Session(app)`` would refuse: the error it would raise.
    errors: c.Mapping[str, StorePluginError] = dataclasses.field(default_factory=dict)

    @property
    def store_names(self) -> tuple[str, ...]:
        """:attr:`name` and :attr:`aliases`."""
        return (self.name, *self.aliases)

    @property
    def names(self) -> tuple[str, ...]:
        """Every name it is registered under, each once."""
        return tuple(dict.fromkeys((*self.store_names, *self.url_schemes)))


def installed_stores() -> list[StoreInfo]:
    """Describe every installed store, loading and checking each of its names exactly as
    start-up does (:func:`load_store_class`): a name ``Session(app)`` would refuse carries
    that error instead of raising it.

    :returns: one :class:`StoreInfo` per store class and distribution, by name.
    """
    installed = _registrations()
    groups: dict[tuple[str, str], list[_Registration]] = {}
    for registration in installed:
        if registration.name not in _registered:  # a store registered in code wins
            key = (registration.target, registration.distribution)
            groups.setdefault(key, []).append(registration)
    infos = []
    for (target, distribution), registrations in groups.items():
        names = sorted({r.name for r in registrations})
        errors: dict[str, StorePluginError] = {}
        factory: object = None
        for name in names:
            try:
                factory = _load(name, installed) or factory
            except StorePluginError as exc:
                errors[name] = exc
        infos.append(
            _describe(names, factory, target, distribution, registrations[0].version, errors)
        )
    in_code: dict[int, tuple[StoreFactory, list[str]]] = {}
    for name, registered in _registered.items():
        in_code.setdefault(id(registered), (registered, []))[1].append(name)
    for registered, names in in_code.values():
        where = f"{registered.__module__}.{getattr(registered, '__qualname__', '?')}"
        infos.append(_describe(sorted(names), registered, where, None, None, {}))
    return sorted(infos, key=lambda info: (info.name, info.target))


def _describe(
    names: list[str],
    factory: object,
    target: str,
    distribution: str | None,
    version: str | None,
    errors: dict[str, StorePluginError],
) -> StoreInfo:
    """Sort a class's names into store names and URL schemes, by its ``url_schemes``
    attribute, or without one by the convention that its main name is the store's name."""
    declared = getattr(factory, "url_schemes", None) if factory is not None else None
    if isinstance(declared, tuple):
        schemes = [name for name in declared if name in names]
        stores = [name for name in names if name not in declared] or [
            _main_name(names, distribution)
        ]
    else:
        main = _main_name(names, distribution)
        stores, schemes = [main], [name for name in names if name != main]
    main = _main_name(stores, distribution)
    declared_capabilities = getattr(factory, "capabilities", None)
    capabilities = (
        tuple(capability_names(declared_capabilities))
        if isinstance(declared_capabilities, Capability)
        else ()
    )
    return StoreInfo(
        name=main,
        aliases=tuple(name for name in stores if name != main),
        url_schemes=tuple(schemes),
        target=target,
        distribution=distribution,
        version=version,
        capabilities=capabilities,
        errors=errors,
    )


def _main_name(names: list[str], distribution: str | None) -> str:
    """The name a store goes by: the one its distribution is named after, else the first."""
    for name in names:
        if distribution and distribution.lower().endswith(f"-{name}"):
            return name
    return min(names)
