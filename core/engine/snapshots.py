"""Snapshot helpers the engine shares: picking snapshots, reading their streams.

A snapshot (``pannier.repo.Snapshot``) names its streams in ``snapshot.streams``: ``"tree"``
for the tree stream (see :mod:`pannier.engine.tree`) and ``"meta/<prefix>"`` for each
metadata plugin's stream, each a list of blob ids (bytes or hex strings) whose plaintexts,
concatenated, are the stream.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..errors import ConfigError, CorruptObjectError, PannierError
from .tree import TreeEntry, iter_tree

__all__ = [
    "affected_files",
    "content_blobs",
    "filter_snapshots",
    "find_entry",
    "find_parent",
    "iter_stream",
    "load_tree",
    "readable_snapshots",
    "referenced_blobs",
    "resolve_snapshot",
    "snapshot_time",
    "stream_ids",
]


def stream_ids(repo: Any, snapshot: Any, name: str) -> list[bytes]:
    """The blob ids of the stream ``name`` of ``snapshot`` (empty when absent), read from
    its blob list when the snapshot has one (see :class:`pannier.Snapshot`)."""
    ids: list[bytes] = repo.stream_blob_ids(snapshot, name)
    return ids


def iter_stream(repo: Any, snapshot: Any, name: str) -> Iterator[bytes]:
    """The plaintexts of the blobs of stream ``name``, in order."""
    ids = stream_ids(repo, snapshot, name)
    if not ids:
        return iter(())
    return iter(repo.iter_blobs(ids))


def load_tree(repo: Any, snapshot: Any) -> Iterator[TreeEntry]:
    """Iterate the tree of ``snapshot`` (constant memory).

    Raises :class:`~pannier.CorruptObjectError` when the snapshot has no tree stream or it
    is damaged.
    """
    if "tree" not in (getattr(snapshot, "streams", None) or {}):
        raise CorruptObjectError(f"snapshot {_short(snapshot)} has no tree stream")
    return iter_tree(iter_stream(repo, snapshot, "tree"), f"tree of snapshot {_short(snapshot)}")


def content_blobs(repo: Any, snapshot: Any) -> Iterator[bytes]:
    """The content chunk ids of every file of ``snapshot``'s tree (registered with the
    repository as the tree walker: ``check`` and ``prune`` use it)."""
    for entry in load_tree(repo, snapshot):
        if entry.kind == "f" and entry.data:
            yield from entry.data


def referenced_blobs(repo: Any, snapshot: Any) -> Iterator[bytes]:
    """Every blob id ``snapshot`` needs: its streams' blob lists and blobs, and its
    files' chunks."""
    streams = getattr(snapshot, "streams", None) or {}
    for name in streams:
        if snapshot.lists_streams:
            yield from streams[name]
        yield from stream_ids(repo, snapshot, name)
    yield from content_blobs(repo, snapshot)


def readable_snapshots(repo: Any, warn: Callable[[str], None] | None = None) -> list[Any]:
    """Every snapshot that can be read, oldest first; one that cannot (damaged, missing,
    of a newer format) is skipped and reported through ``warn`` instead of stopping the
    command: a damaged old snapshot must not prevent new backups."""
    snaps = []
    for snap_id in repo.snapshot_ids():
        try:
            snaps.append(repo.read_snapshot(snap_id))
        except PannierError as e:
            if warn is not None:
                warn(f"snapshot {snap_id[:8]} skipped: {e}")
    snaps.sort(key=lambda s: (snapshot_time(s), s.id or ""))
    return snaps


def snapshot_time(snapshot: Any) -> datetime.datetime:
    """The snapshot's time as an aware UTC datetime."""
    t = snapshot.time
    if isinstance(t, datetime.datetime):
        return t if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)
    text = str(t)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    # Python < 3.11 cannot parse more than 6 fraction digits
    if "." in text:
        head, _, tail = text.partition(".")
        frac = ""
        rest = ""
        for i, ch in enumerate(tail):
            if not ch.isdigit():
                rest = tail[i:]
                break
            frac += ch
        text = f"{head}.{frac[:6]}{rest}"
    dt = datetime.datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=datetime.timezone.utc)


def _short(snapshot: Any) -> str:
    sid = getattr(snapshot, "id", None) or "?"
    return str(sid)[:8]


def filter_snapshots(
    snapshots: Iterable[Any],
    *,
    hosts: Sequence[str] = (),
    tags: Sequence[str] = (),
    paths: Sequence[str] = (),
) -> list[Any]:
    """The snapshots matching every filter given, oldest first.

    ``hosts``: any of these host names; ``tags``: each entry is ``a,b`` meaning both ``a``
    and ``b``, and a snapshot matches when any entry matches; ``paths``: the snapshot has
    every one of these paths.
    """
    out = []
    for s in snapshots:
        if hosts and s.hostname not in hosts:
            continue
        if tags and not any(set(t.split(",")) <= set(s.tags or ()) for t in tags):
            continue
        if paths and not set(paths) <= set(s.paths or ()):
            continue
        out.append(s)
    out.sort(key=snapshot_time)
    return out


def resolve_snapshot(
    repo: Any,
    spec: str,
    *,
    hosts: Sequence[str] = (),
    tags: Sequence[str] = (),
    paths: Sequence[str] = (),
    warn: Callable[[str], None] | None = None,
) -> Any:
    """The snapshot named by ``spec``: an id, a unique id prefix, or ``latest``
    (optionally ``latest`` of the snapshots matching the filters). ``latest`` skips
    snapshots that cannot be read, naming each through ``warn``.

    Raises :class:`~pannier.ConfigError` when nothing (or more than one) matches.
    """
    if spec == "latest":
        readable = readable_snapshots(repo, warn)
        found = filter_snapshots(readable, hosts=hosts, tags=tags, paths=paths)
        if not found:
            raise ConfigError("no snapshot matches 'latest'" + _filters(hosts, tags, paths))
        return found[-1]
    return repo.load_snapshot(spec)


def _filters(hosts: Sequence[str], tags: Sequence[str], paths: Sequence[str]) -> str:
    parts = []
    if hosts:
        parts.append("host " + ",".join(hosts))
    if tags:
        parts.append("tag " + " or ".join(tags))
    if paths:
        parts.append("path " + ",".join(paths))
    return f" ({'; '.join(parts)})" if parts else ""


def find_parent(repo: Any, parent: str | None, *, hostname: str, paths: Sequence[str]) -> Any:
    """The snapshot a backup compares with: ``parent`` when given (``""`` = none), else
    the latest snapshot of the same host with the same set of paths, else None."""
    if parent == "":
        return None
    if parent:
        return resolve_snapshot(repo, parent)
    candidates = [
        s
        for s in readable_snapshots(repo)
        if s.hostname == hostname and sorted(s.paths or ()) == sorted(paths)
    ]
    if not candidates:
        return None
    return max(candidates, key=snapshot_time)


def find_entry(repo: Any, snapshot: Any, index: tuple[bytes, ...]) -> TreeEntry | None:
    """The tree entry of ``index`` in ``snapshot``, or None (reads the tree up to it)."""
    for entry in load_tree(repo, snapshot):
        if entry.index == index:
            return entry
        if entry.index > index:
            return None
    return None


def affected_files(repo: Any, damaged: set[bytes]) -> dict[bytes, list[str]]:
    """For each damaged blob id, the places that use it: ``"<snapshot>:/path"`` for a
    file's content and ``"<snapshot>:<stream>"`` for a tree or metadata stream (what
    ``pannier check`` prints); every hard link of a damaged file is named too. A snapshot
    whose tree cannot be read is named as such."""
    out: dict[bytes, list[str]] = {}
    for snap_id in repo.snapshot_ids():
        short = snap_id[:8]
        try:
            snap = repo.read_snapshot(snap_id)
        except PannierError:
            continue
        for name, listed in (getattr(snap, "streams", None) or {}).items():
            if snap.lists_streams:
                for blob in listed:
                    if blob in damaged:
                        out.setdefault(blob, []).append(f"{short}:{name} stream (blob list)")
            try:
                blobs = stream_ids(repo, snap, name)
            except PannierError:
                continue  # its damaged list is named above
            for blob in blobs:
                if blob in damaged:
                    out.setdefault(blob, []).append(f"{short}:{name} stream")
        hit: dict[tuple[bytes, ...], list[bytes]] = {}  # file index -> its damaged blobs
        try:
            for entry in load_tree(repo, snap):
                if entry.kind == "f" and entry.data:
                    blobs = [blob for blob in entry.data if blob in damaged]
                    if blobs:
                        hit[tuple(entry.index)] = blobs
                elif entry.kind == "h":  # a hard link shares its target's content
                    blobs = hit.get(tuple(entry.data), [])
                else:
                    blobs = []
                for blob in blobs:
                    out.setdefault(blob, []).append(f"{short}:{entry.path}")
        except PannierError:
            continue  # the damaged tree is already named above
    return out
