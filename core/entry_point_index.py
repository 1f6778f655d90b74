"""The entry points of every installed distribution, read fast and cached on disk.

:func:`read_entry_points` returns the entry points of the ``pannier.*`` groups declared by
the distributions found on a search path (``sys.path`` by default), in search-path order,
without importing anything and without :mod:`importlib.metadata` (whose import and scan
cost grows with the number of installed distributions).

Each directory on the search path is scanned for ``*.dist-info`` and ``*.egg-info``
directories. The result for one directory is cached in a JSON file under
``$XDG_CACHE_HOME/pannier`` (``~/.cache/pannier`` by default) together with what it was
read from: the directory's own modification time, and for each distribution the
modification time of its ``entry_points.txt`` (or its absence). A cached directory is used
only when all of these still match, so installing, removing or editing a distribution is
seen at once: the cache is never trusted stale. A directory or file changed less than
:data:`RACY_SECONDS` before it was scanned is scanned again next time, because a change
within the file system's time-stamp granularity could otherwise go unnoticed.

A search-path entry that is a file (a zip archive) is read with :mod:`importlib.metadata`
and cached by the archive's modification time. An unreadable cache is ignored and
rewritten; a cache directory that cannot be written only makes discovery slower.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

__all__ = [
    "CACHE_FORMAT",
    "RACY_SECONDS",
    "EntryPointInfo",
    "cache_directory",
    "read_entry_points",
]

#: Version of the cache file's layout; a file of another version is ignored.
CACHE_FORMAT = 1

#: A file changed less than this long before its scan is re-read on the next scan.
RACY_SECONDS = 2.0

_GROUP_PREFIX = "pannier."
_RACY_NS = int(RACY_SECONDS * 1e9)


class EntryPointInfo(NamedTuple):
    """One entry point of a ``pannier.*`` group, as declared by an installed distribution.

    :ivar group: the entry-point group, e.g. ``pannier.meta``.
    :ivar name: the entry point's name, which becomes the plugin's name.
    :ivar value: what it points to, ``module`` or ``module:attribute``.
    :ivar distribution: the declaring distribution's name.
    :ivar version: the declaring distribution's version.
    :ivar path: the metadata directory (``*.dist-info``) it was read from.
    """

    group: str
    name: str
    value: str
    distribution: str
    version: str
    path: str


def cache_directory() -> str:
    """The directory of pannier's caches: ``$XDG_CACHE_HOME/pannier`` or ``~/.cache/pannier``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pannier")


def read_entry_points(search_path: Iterable[str] | None = None) -> list[EntryPointInfo]:
    """Every ``pannier.*`` entry point on ``search_path`` (default ``sys.path``), in order.

    Distributions are taken in search-path order; a distribution whose normalised name was
    already seen on an earlier entry is ignored, as :mod:`importlib.metadata` does. Nothing
    is imported. The per-directory results are cached on disk (see the module docstring).
    """
    entries = _absolute_entries(sys.path if search_path is None else search_path)
    cache_file = os.path.join(cache_directory(), f"entry-points-{_digest(entries)}.json")
    cached = _load_cache(cache_file)
    fresh: dict[str, Any] = {}
    changed = False
    seen: set[str] = set()
    result: list[EntryPointInfo] = []
    for entry in entries:
        record = cached.get(entry)
        if record is None or not _still_valid(entry, record):
            record = _scan_entry(entry)
            changed = True
        fresh[entry] = record
        for dist in record["dists"]:
            key = dist["key"]
            if key in seen:
                continue
            seen.add(key)
            meta_path = os.path.join(entry, dist["dir"]) if dist["dir"] else entry
            for group, name, value in dist["eps"]:
                result.append(
                    EntryPointInfo(group, name, value, dist["name"], dist["version"], meta_path)
                )
    if changed or set(fresh) != set(cached):
        _save_cache(cache_file, fresh)
    return result


# --- validation ------------------------------------------------------------------------


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _still_valid(entry: str, record: dict[str, Any]) -> bool:
    """Whether the cached ``record`` of ``entry`` still describes what is on disk."""
    scanned = record.get("scanned", 0)
    mtime = _mtime(entry)
    if mtime != record.get("mtime"):
        return False
    if mtime is not None and mtime > scanned - _RACY_NS:
        return False
    for dist in record.get("dists", ()):
        ep_file = dist.get("ep_file")
        if ep_file is None:
            continue
        ep_mtime = _mtime(os.path.join(entry, ep_file))
        if ep_mtime != dist.get("ep_mtime"):
            return False
        if ep_mtime is not None and ep_mtime > scanned - _RACY_NS:
            return False
    return True


# --- scanning --------------------------------------------------------------------------


def _scan_entry(entry: str) -> dict[str, Any]:
    """Read the distributions of one search-path entry (a directory or an archive)."""
    scanned = time.time_ns()
    mtime = _mtime(entry)
    if mtime is None:
        dists: list[dict[str, Any]] = []
    elif os.path.isdir(entry):
        dists = _scan_directory(entry)
    else:
        dists = _scan_archive(entry)
    return {"mtime": mtime, "scanned": scanned, "dists": dists}


def _scan_directory(entry: str) -> list[dict[str, Any]]:
    dists: list[dict[str, Any]] = []
    try:
        names = sorted(os.listdir(entry))
    except OSError:
        return dists
    for dirname in names:
        if dirname.endswith(".dist-info"):
            stem = dirname[: -len(".dist-info")]
            metadata_file = "METADATA"
        elif dirname.endswith(".egg-info"):
            stem = dirname[: -len(".egg-info")]
            metadata_file = "PKG-INFO"
        else:
            continue
        meta_dir = os.path.join(entry, dirname)
        ep_rel = os.path.join(dirname, "entry_points.txt")
        ep_mtime = _mtime(os.path.join(entry, ep_rel))
        if ep_mtime is None and not os.path.isdir(meta_dir):
            continue  # a single-file egg-info: no entry points possible
        name, _, version = stem.partition("-")
        eps: list[tuple[str, str, str]] = []
        if ep_mtime is not None:
            eps = _read_entry_points_file(os.path.join(entry, ep_rel))
            if eps:
                name, version = _read_name_version(
                    os.path.join(meta_dir, metadata_file), name, version
                )
        dists.append(
            {
                "dir": dirname,
                "key": _normalise(name),
                "name": name,
                "version": version.partition("-")[0],
                "ep_file": ep_rel,
                "ep_mtime": ep_mtime,
                "eps": eps,
            }
        )
    return dists


def _scan_archive(entry: str) -> list[dict[str, Any]]:
    """Distributions inside a zip archive on the search path (rare; uses importlib)."""
    import importlib.metadata

    dists: list[dict[str, Any]] = []
    try:
        found = list(importlib.metadata.distributions(path=[entry]))
    except Exception:  # an unreadable archive contributes nothing
        return dists
    for dist in found:
        name = dist.metadata["Name"] or ""
        eps = [
            (ep.group, ep.name, ep.value)
            for ep in dist.entry_points
            if ep.group.startswith(_GROUP_PREFIX)
        ]
        dists.append(
            {
                "dir": "",
                "key": _normalise(name),
                "name": name,
                "version": dist.version or "",
                "ep_file": None,
                "ep_mtime": None,
                "eps": eps,
            }
        )
    return dists


def _read_entry_points_file(path: str) -> list[tuple[str, str, str]]:
    """The ``pannier.*`` entries of an ``entry_points.txt`` (INI syntax)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    if _GROUP_PREFIX not in text:
        return []
    eps: list[tuple[str, str, str]] = []
    group: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            group = line[1:-1].strip()
            continue
        if group is None or not group.startswith(_GROUP_PREFIX) or "=" not in line:
            continue
        name, _, value = line.partition("=")
        eps.append((group, name.strip(), value.strip()))
    return eps


def _read_name_version(path: str, name: str, version: str) -> tuple[str, str]:
    """Name and version from a METADATA/PKG-INFO header, else the given fallbacks."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                if key == "Name":
                    name = value.strip()
                elif key == "Version":
                    version = value.strip()
    except OSError:
        pass
    return name, version


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the cache file --------------------------------------------------------------------


def _absolute_entries(search_path: Iterable[str]) -> list[str]:
    entries: list[str] = []
    for entry in search_path:
        if not isinstance(entry, str):
            continue
        absolute = os.path.abspath(entry or os.curdir)
        if absolute not in entries:
            entries.append(absolute)
    return entries


def _digest(entries: list[str]) -> str:
    key = "\0".join([sys.executable, *entries]).encode("utf-8", "surrogateescape")
    return hashlib.sha1(key, usedforsecurity=False).hexdigest()[:20]


def _load_cache(cache_file: str) -> dict[str, Any]:
    try:
        with open(cache_file, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return {}
    entries = data.get("entries")
    return entries if isinstance(entries, dict) else {}


def _save_cache(cache_file: str, entries: dict[str, Any]) -> None:
    import tempfile

    directory = os.path.dirname(cache_file)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".entry-points-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"format": CACHE_FORMAT, "entries": entries}, f)
            os.replace(tmp, cache_file)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        pass  # an unwritable cache only makes the next discovery slower
