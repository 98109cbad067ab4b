"""What stored sessions cost at rest (``--scale``): memory for the memory store, disk and inodes
for the filesystem store.

* **memory store**: a fresh Python process (so nothing else it allocated counts) stores
  100,000 typical sessions (:data:`benchmarks.apps.LOGIN_DATA` and a counter, encoded as a
  request stores them, under hashed store keys) and reports how much its resident set grew
  (``VmRSS`` of ``/proc/self/status``, after a garbage collection); Flask-Session's in-memory
  backend (cachelib ``SimpleCache``, which pickles the record) is measured the same way.
* **filesystem store**: after the scale run filled the directory (see :mod:`benchmarks.scale`),
  the bytes the files take on disk (allocated blocks, ``st_blocks``), their apparent size and
  the inodes used (files and directories), per file; 1,000,000 files are extrapolated from
  that linearly (each record is a file of its own and the bucket directories are a fixed,
  small number, so the cost per file does not change with the count).
"""

from __future__ import annotations

import os
import subprocess
import sys
import typing as t

N_SESSIONS = 100_000

_CHILD = r"""
import gc, json, secrets, sys
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
kind, n = sys.argv[1], int(sys.argv[2])
from benchmarks import apps
from flask_serverside.keys import StoreKeys, derive_key
from flask_serverside.memory import MemoryStore
from flask_serverside.serialization import SessionSerializer
keys = StoreKeys(hashing=True, keys=[derive_key(apps.SECRET_KEY)])
plain = SessionSerializer().dumps({**apps.LOGIN_DATA, "n": 1})
if kind == "flask-session":
    import pickle
    from cachelib import SimpleCache
    cache = SimpleCache(threshold=10 * n)
ids = [secrets.token_urlsafe(32) for _ in range(n)]
gc.collect()
before = rss()
if kind == "ours":
    store = MemoryStore()
    for sid in ids:
        store.save(keys.key(sid), plain, 3600, user_id=apps.LOGIN_DATA["_user_id"])
else:
    for sid in ids:
        cache.set("session:" + sid, plain, timeout=3600)
gc.collect()
print(json.dumps({"bytes": rss() - before, "record": len(plain)}))
"""


def memory_rss(kind: str, n: int = N_SESSIONS) -> dict[str, t.Any]:
    """RSS growth of a fresh process storing ``n`` sessions (``kind``: ours or
    flask-session)."""
    import json

    out = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(n)],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    ).stdout
    result: dict[str, t.Any] = json.loads(out)
    result["n"] = n
    return result


def disk_use(path: str) -> dict[str, int]:
    """Files, directories, allocated and apparent bytes under ``path``."""
    files = dirs = allocated = apparent = 0
    for root, dirnames, filenames in os.walk(path):
        dirs += len(dirnames)
        for name in filenames:
            try:
                stat = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            files += 1
            allocated += stat.st_blocks * 512
            apparent += stat.st_size
    return {"files": files, "dirs": dirs + 1, "allocated": allocated, "apparent": apparent}
