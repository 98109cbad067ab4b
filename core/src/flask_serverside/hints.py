""" "Did you mean ...?": close matches for misspelt store names and configuration keys.

A misspelt ``SESSION_TYPE`` fails at start-up (:class:`~flask_serverside.StoreNotFound`
suggests the installed names close to it). A misspelt configuration key cannot fail: Flask
keeps every key, and one the library does not read is simply ignored, so ``SESSION_REDIS_URL``
for ``SESSION_REDIS`` would silently connect nowhere the user meant. ``init_app`` therefore
logs a warning (on the ``flask_serverside`` logger) for every ``SESSION_*`` key that neither
the core, Flask nor the selected store reads and that is close to one that is read. Keys
are compared whole; a key that extends a known one (``SESSION_REDIS_HOST``) counts as close.
Only key names are logged, never values (they may hold passwords).

A store says which keys it reads with its optional ``config_keys`` class attribute; for a
store without one, only the core's and Flask's keys are known.

.. versionadded:: 0.2
"""

from __future__ import annotations

import difflib
import logging
import typing as t

from flask import Flask

from .config import DEFAULTS

if t.TYPE_CHECKING:
    import collections.abc as c

log = logging.getLogger("flask_serverside")

#: How alike (:class:`difflib.SequenceMatcher` ratio) a key must be to a known one to be
#: reported: every ``SESSION_*`` key of Flask, the core and the first-party stores is further
#: from every other than this, so a key another store reads is never reported.
KEY_CUTOFF = 0.82
#: The same for store names and URL schemes.
NAME_CUTOFF = 0.75


def close_matches(word: str, candidates: c.Iterable[str], cutoff: float = NAME_CUTOFF) -> list[str]:
    """Return up to three ``candidates`` close enough to ``word`` to be what was meant,
    closest first."""
    return difflib.get_close_matches(word, sorted(set(candidates)), n=3, cutoff=cutoff)


def known_keys(store_keys: c.Iterable[str] = ()) -> frozenset[str]:
    """Return the ``SESSION_*`` keys read by the core, by Flask and by a store reading
    ``store_keys``."""
    flask_keys = (key for key in Flask.default_config if key.startswith("SESSION_"))
    return frozenset((*DEFAULTS, *flask_keys, *store_keys))


def misspelt_keys(config: c.Mapping[str, t.Any], known: c.Collection[str]) -> dict[str, list[str]]:
    """Return each ``SESSION_*`` key of ``config`` that is not in ``known`` but close to keys
    that are, with those keys, closest first."""
    found = {}
    for key in sorted(k for k in config if isinstance(k, str) and k.startswith("SESSION_")):
        if key in known:
            continue
        extended = [k for k in known if key.startswith(k + "_")]
        matches = sorted(extended, key=len, reverse=True) or close_matches(key, known, KEY_CUTOFF)
        if matches:
            found[key] = matches
    return found


def warn_about_misspelt_keys(config: c.Mapping[str, t.Any], store_name: str, store: object) -> None:
    """Log a warning for each key of :func:`misspelt_keys`, given the store in use (its
    ``config_keys`` attribute, when it has one)."""
    declared = getattr(store, "config_keys", ())
    store_keys = declared if isinstance(declared, tuple) else ()
    for key, matches in misspelt_keys(config, known_keys(store_keys)).items():
        log.warning(
            "%s is not a setting of flask-serverside, Flask or the %r session store, so it is"
            " ignored: did you mean %s?",
            key,
            store_name,
            " or ".join(matches),
        )
