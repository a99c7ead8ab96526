"""Data derived from files that rarely change, kept between runs: parsed rule packs, the model catalog.

Parsing ~50 YAML rule files, or the 100 KB JSON catalog, costs more than the rest of a
``lora-lint check`` start-up. The parsed form is stored with :mod:`marshal` (the format
of ``.pyc`` files: the fastest load Python has, and built in) under the user's cache
folder, keyed by the path, size and modification time of every source file, so an
edited source is parsed again (list the module that shapes the data among the sources
when that shape may change). Only such derived data is cached, never lint results.
"""

from __future__ import annotations

import binascii
import marshal
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def cached(kind: str, sources: list[str], build: Callable[[], Any]) -> Any:
    """``build()``, or what it returned last time for these exact ``sources`` (the files it derives from).

    ``build`` must return plain data (dicts, lists, tuples, sets, strings, numbers, bools,
    None); anything else is returned but not stored. A missing or read-only cache folder
    only costs speed.
    """
    stamps = []
    for source in sources:
        status = os.stat(source)
        stamps.append((source, status.st_mtime_ns, status.st_size))
    stamp = binascii.crc32(repr(stamps).encode())  # PyYAML has loaded binascii; hashlib would load OpenSSL (~2.5 ms)
    path = os.path.join(cache_dir(), f"{kind}-{stamp:08x}.{sys.implementation.cache_tag}.marshal")
    try:
        with open(path, "rb") as handle:
            return marshal.loads(handle.read())  # marshal.load(handle) reads in small pieces: 6x slower
    except (OSError, EOFError, ValueError, TypeError):
        pass
    data = build()
    try:
        payload = marshal.dumps(data)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(payload)
        os.replace(temporary, path)  # atomic: a concurrent run reads the old file or the whole new one
    except (OSError, ValueError):
        return data
    _remove_stale(kind, path)
    return data


STALE_AFTER_SECONDS = 7 * 24 * 3600
"""An entry of the same kind untouched this long was derived from sources that have since changed."""


def _remove_stale(kind: str, kept: str) -> None:
    """Delete older entries of ``kind`` when a new one is written, so edits and upgrades do not pile up files.

    Only entries idle for a week go: two installations sharing the cache folder each keep their own.
    """
    import time

    folder = os.path.dirname(kept)
    prefix, suffix = f"{kind}-", f".{sys.implementation.cache_tag}.marshal"
    cutoff = time.time() - STALE_AFTER_SECONDS
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        path = os.path.join(folder, name)
        if name.startswith(prefix) and name.endswith(suffix) and len(name) == len(prefix) + 8 + len(suffix) and path != kept:
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.remove(path)
            except OSError:
                pass


def cache_dir() -> str:
    """``$LORA_LINT_CACHE_DIR``, else ``lora-lint`` under ``$XDG_CACHE_HOME`` or ``~/.cache``."""
    if "LORA_LINT_CACHE_DIR" in os.environ:
        return os.environ["LORA_LINT_CACHE_DIR"]
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "lora-lint")
