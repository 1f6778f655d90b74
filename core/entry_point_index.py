"""The entry points of every installed distribution, read fast and cached on disk.

:func:`read_entry_points` returns the entry points of the ``pannier.*`` groups declared by
the distributions found on a search path (``sys.path`` by default), in search-path order,
without importing anything and without :mod:`importlib.metadata` (whose import and scan
cost grows with the number of installed distributions).

Each directory on the search path is scanned for ``*.dist-info`` and ``*.egg-info``
directories. What one directory holds is cached in its own small JSON file under
``$XDG_CACHE_HOME/pannier/entry-points/`` (``~/.cache/pannier/...`` by default), together
with what it was read from: the directory's modification time, and for each
distribution the modification time of its ``entry_points.txt`` (or its absence). A cached
directory is used only when all of these still match, so installing, removing or editing
a distribution is seen at once: the cache is never trusted stale. A directory or file
changed less than :data:`RACY_SECONDS` before it was scanned is scanned again next time,
because a change within the file system's time-stamp granularity could otherwise go
unnoticed.

A search-path entry that is a file (a zip archive) is read with :mod:`importlib.metadata`
and cached by the archive's modification time. An unreadable cache file is ignored and
rewritten; a cache directory that cannot be written only makes discovery slower.
Once a day at most, cache files not rewritten for :data:`PRUNE_DAYS` days are deleted (a
directory still on a search path is simply read again).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import zlib
from collections.abc import Iterable
from typing import Any, NamedTuple

__all__ = [
    "CACHE_FORMAT",
    "PRUNE_DAYS",
    "RACY_SECONDS",
    "EntryPointInfo",
    "cache_directory",
    "read_entry_points",
]

#: Version of the cache files' layout; a file of another version is ignored.
CACHE_FORMAT = 2

#: A file changed less than this long before its scan is re-read on the next scan.
RACY_SECONDS = 2.0

#: Cache files not rewritten for this many days are deleted.
PRUNE_DAYS = 30

_GROUP_PREFIX = "pannier."
_RACY_NS = int(RACY_SECONDS * 1e9)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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
    cache_dir = os.path.join(cache_directory(), "entry-points")
    seen: set[str] = set()
    result: list[EntryPointInfo] = []
    for entry in _absolute_entries(sys.path if search_path is None else search_path):
        cache_file = os.path.join(cache_dir, _cache_name(entry))
        record = _load(cache_file, entry)
        dists = None
        if record is not None:
            try:
                if _still_valid(entry, record):
                    dists = _distributions(entry, record)
            except (TypeError, ValueError, KeyError, IndexError):  # a malformed cache file
                dists = None
        if dists is None:
            record = _scan_entry(entry)
            _save(cache_file, record)
            dists = _distributions(entry, record)
        for key, eps in dists:
            if key not in seen:
                seen.add(key)
                result.extend(eps)
    return result


def _distributions(entry: str, record: dict[str, Any]) -> list[tuple[str, list[EntryPointInfo]]]:
    """(normalised name, entry points) of each distribution in ``entry``'s record."""
    dists: list[tuple[str, list[EntryPointInfo]]] = []
    for key, dist_dir, name, version, eps in record["dists"]:
        infos: list[EntryPointInfo] = []
        if eps:
            meta_path = os.path.join(entry, dist_dir) if dist_dir else entry
            infos = [
                EntryPointInfo(str(group), str(ep_name), str(value), name, version, meta_path)
                for group, ep_name, value in eps
            ]
        dists.append((str(key), infos))
    return dists


# --- validation ------------------------------------------------------------------------


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _still_valid(entry: str, record: dict[str, Any]) -> bool:
    """Whether the cached ``record`` of ``entry`` still describes what is on disk."""
    fresh_before = record["scanned"] - _RACY_NS
    mtime = _mtime(entry)
    if mtime != record["mtime"] or (mtime is not None and mtime > fresh_before):
        return False
    prefix = entry + os.sep
    stat = os.stat
    for ep_file, ep_mtime in record["files"]:
        try:
            now = stat(prefix + ep_file).st_mtime_ns
        except OSError:
            now = None
        if now != ep_mtime or (now is not None and now > fresh_before):
            return False
    return True


# --- scanning --------------------------------------------------------------------------


def _scan_entry(entry: str) -> dict[str, Any]:
    """Read the distributions of one search-path entry (a directory or an archive).

    The record holds ``mtime`` and ``scanned`` (ns), ``files`` (``[entry_points.txt path
    relative to the entry, its mtime or None]`` per distribution, checked on every use)
    and ``dists`` (``[key, metadata dir, name, version, [[group, name, value]...]]``).
    """
    scanned = time.time_ns()
    mtime = _mtime(entry)
    files: list[list[Any]] = []
    dists: list[list[Any]] = []
    if mtime is not None:
        if os.path.isdir(entry):
            _scan_directory(entry, files, dists)
        else:
            _scan_archive(entry, dists)
    return {"entry": entry, "mtime": mtime, "scanned": scanned, "files": files, "dists": dists}


def _scan_directory(entry: str, files: list[list[Any]], dists: list[list[Any]]) -> None:
    try:
        names = sorted(os.listdir(entry))
    except OSError:
        return
    for dirname in names:
        if dirname.endswith(".dist-info"):
            stem, metadata_file = dirname[: -len(".dist-info")], "METADATA"
        elif dirname.endswith(".egg-info"):
            stem, metadata_file = dirname[: -len(".egg-info")], "PKG-INFO"
        else:
            continue
        meta_dir = os.path.join(entry, dirname)
        ep_rel = os.path.join(dirname, "entry_points.txt")
        ep_mtime = _mtime(os.path.join(entry, ep_rel))
        if ep_mtime is None and not os.path.isdir(meta_dir):
            continue  # a single-file egg-info: no entry points possible
        files.append([ep_rel, ep_mtime])
        name, _, version = stem.partition("-")
        eps: list[list[str]] = []
        if ep_mtime is not None:
            eps = _read_entry_points_file(os.path.join(entry, ep_rel))
            if eps:
                name, version = _read_name_version(
                    os.path.join(meta_dir, metadata_file), name, version
                )
        dists.append([_normalise(name), dirname, name, version.partition("-")[0], eps])


def _scan_archive(entry: str, dists: list[list[Any]]) -> None:
    """Distributions inside a zip archive on the search path (rare; uses importlib)."""
    import importlib.metadata

    try:
        found = list(importlib.metadata.distributions(path=[entry]))
    except Exception:  # an unreadable archive contributes nothing
        return
    for dist in found:
        name = dist.metadata["Name"] or ""
        eps = [
            [ep.group, ep.name, ep.value]
            for ep in dist.entry_points
            if ep.group.startswith(_GROUP_PREFIX)
        ]
        dists.append([_normalise(name), "", name, dist.version or "", eps])


def _read_entry_points_file(path: str) -> list[list[str]]:
    """The ``pannier.*`` entries of an ``entry_points.txt`` (INI syntax)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return []
    if _GROUP_PREFIX not in text:
        return []
    eps: list[list[str]] = []
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
        eps.append([group, name.strip(), value.strip()])
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


# --- the cache files -------------------------------------------------------------------


def _absolute_entries(search_path: Iterable[str]) -> list[str]:
    entries: list[str] = []
    for entry in search_path:
        if not isinstance(entry, str):
            continue
        absolute = os.path.abspath(entry or os.curdir)
        if absolute not in entries:
            entries.append(absolute)
    return entries


def _cache_name(entry: str) -> str:
    """A file name for ``entry``'s cache: readable, and unique by a checksum."""
    key = f"{sys.implementation.cache_tag}\0{entry}".encode("utf-8", "surrogateescape")
    readable = _UNSAFE.sub("_", entry).strip("_")[-80:]
    return f"{readable}-{zlib.crc32(key):08x}.json"


def _load(cache_file: str, entry: str) -> dict[str, Any] | None:
    try:
        with open(cache_file, encoding="utf-8") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("format") != CACHE_FORMAT
        or data.get("entry") != entry
        or not isinstance(data.get("files"), list)
        or not isinstance(data.get("dists"), list)
    ):
        return None
    return data


def _save(cache_file: str, record: dict[str, Any]) -> None:
    text = json.dumps({"format": CACHE_FORMAT, **record}, separators=(",", ":"))
    tmp = f"{cache_file}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(cache_file), mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, cache_file)
        except BaseException:
            os.unlink(tmp)
            raise
        _prune(os.path.dirname(cache_file))
    except OSError:
        pass  # an unwritable cache only makes the next discovery slower


def _prune(directory: str) -> None:
    """Delete cache files older than PRUNE_DAYS, at most once a day."""
    now = time.time()
    marker = os.path.join(directory, ".pruned")
    try:
        if now - os.stat(marker).st_mtime < 86400:
            return
    except OSError:
        pass
    with open(marker, "w"):
        pass
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        try:
            if name.endswith(".json") and now - os.stat(path).st_mtime > PRUNE_DAYS * 86400:
                os.unlink(path)
        except OSError:
            continue
