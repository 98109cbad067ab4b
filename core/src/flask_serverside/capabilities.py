"""Checking a store (class or instance) against the protocol and what it declares.

A store declares its optional operations as :class:`~flask_serverside.Capability` flags; each
flag promises methods (:data:`CAPABILITY_METHODS`). These checks run on the class when a plugin
is found or registered, and on the instance when it is built, so a store that declares more
than it implements fails at start-up (and is flagged by ``flask session stores``), never in a
request.
"""

from __future__ import annotations

import typing as t

from .compat import ENCODINGS
from .exceptions import StorePluginError
from .store import Capability

if t.TYPE_CHECKING:
    import collections.abc as c

#: The methods every store has.
REQUIRED_METHODS = ("load", "save", "delete")

#: The methods each capability promises.
CAPABILITY_METHODS: c.Mapping[Capability, tuple[str, ...]] = {
    Capability.TOUCH: ("touch",),
    Capability.LOAD_AND_TOUCH: ("load_and_touch",),
    Capability.CONDITIONAL_SAVE: ("save_if",),
    Capability.SAVE_IF_OR_LOAD: ("save_if_or_load",),
    Capability.PURGE: ("purge_expired",),
    Capability.ENUMERATE: ("count", "iter_sids"),
    Capability.USER_INDEX: ("user_sids",),
}


#: Optional class attributes of a store class that list names (see
#: :class:`~flask_serverside.store.StoreFactory`).
OPTIONAL_NAME_LISTS = ("url_schemes", "config_keys")


def protocol_methods(capabilities: Capability) -> list[str]:
    """Return the methods a store declaring ``capabilities`` must have."""
    needed = list(REQUIRED_METHODS)
    for capability, methods in CAPABILITY_METHODS.items():
        if capability in capabilities:
            needed.extend(methods)
    return needed


def missing_methods(store: object) -> list[str]:
    """Return the methods ``store`` (a class or an instance) lacks for the protocol and the
    capabilities it declares."""
    declared = getattr(store, "capabilities", None)
    needed = protocol_methods(declared if isinstance(declared, Capability) else Capability.NONE)
    return [name for name in needed if not callable(getattr(store, name, None))]


def capability_names(capabilities: Capability) -> list[str]:
    """Return the lower-case names of the flags set in ``capabilities``, in declaration order."""
    return [
        member.name.lower()
        for member in Capability
        if member.name and member.value and member in capabilities
    ]


def check_store_class(name: str, factory: object) -> None:
    """Check that ``factory`` (what an entry point or :func:`~.register_store` names) is a
    store class: a ``from_settings`` class method, a ``capabilities`` flag set, every method
    the protocol and those capabilities need, and, when present, ``url_schemes`` and
    ``config_keys`` as tuples of strings and ``flask_session_encoding`` as one of
    :data:`~flask_serverside.compat.ENCODINGS`.

    .. versionchanged:: 0.2
        Checks ``url_schemes``, ``config_keys`` and ``flask_session_encoding``.

    :raises StorePluginError: naming what is wrong.
    """
    if not callable(getattr(factory, "from_settings", None)):
        raise StorePluginError(name, factory, "it has no from_settings(settings) class method")
    if not isinstance(getattr(factory, "capabilities", None), Capability):
        raise StorePluginError(
            name, factory, "its 'capabilities' attribute is not a flask_serverside.Capability"
        )
    for attribute in OPTIONAL_NAME_LISTS:
        value = getattr(factory, attribute, ())
        if not isinstance(value, tuple) or not all(isinstance(item, str) for item in value):
            raise StorePluginError(
                name, factory, f"its {attribute!r} attribute is not a tuple of strings"
            )
    encoding = getattr(factory, "flask_session_encoding", "msgspec")
    if encoding not in ENCODINGS:
        raise StorePluginError(
            name,
            factory,
            f"its 'flask_session_encoding' attribute is {encoding!r}, not one of"
            f" {', '.join(repr(known) for known in ENCODINGS)}",
        )
    check_store(name, factory)


def check_store(name: str, store: object) -> None:
    """Check that ``store`` (a class or an instance) has every method it declares, and
    declares ``save_if_or_load`` only with ``conditional_save``.

    :raises StorePluginError: naming the missing methods or the missing flag.
    """
    missing = missing_methods(store)
    if missing:
        raise StorePluginError(name, store, f"it lacks {', '.join(missing)} for what it declares")
    declared = getattr(store, "capabilities", Capability.NONE)
    if (
        isinstance(declared, Capability)
        and Capability.SAVE_IF_OR_LOAD in declared
        and Capability.CONDITIONAL_SAVE not in declared
    ):
        raise StorePluginError(
            name,
            store,
            "it declares Capability.SAVE_IF_OR_LOAD without Capability.CONDITIONAL_SAVE;"
            " add CONDITIONAL_SAVE to its capabilities",
        )
