"""Verify: compare a snapshot with the live source it was taken from.

:func:`verify_snapshot` walks the sources and the snapshot tree side by side (index order,
constant memory) and yields a :class:`Difference` for each entry that is only on one side,
has another type, size, link target or device, other content, or other metadata (mode,
owner, mtime, and the records of every metadata plugin whose stream the snapshot has).

Content is compared without reading the repository: the live file is chunked and hashed
locally and its chunk ids are compared with the snapshot's. With ``content=False`` only
sizes and metadata are compared.
"""

from __future__ import annotations

import stat
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

import attrs

from ..meta import MetaPlugin
from ..source import Index, Source, SourceEntry, index_to_path
from .entries import merged_entries, tree_entry
from .meta import STREAM_PREFIX, MetaApplier
from .snapshots import load_tree
from .tree import TreeEntry

__all__ = ["Difference", "verify_snapshot"]


class Difference(NamedTuple):
    """One difference between the snapshot and the source.

    ``kind``: ``+`` only in the source, ``-`` only in the snapshot, ``T`` type, ``M``
    content (size, chunks, link target, device), ``U`` metadata; ``detail`` says what.
    """

    kind: str
    path: str
    detail: str


def _chunk_ids(repo: Any, entry: SourceEntry) -> list[bytes]:
    with entry.open() as f:
        if entry.stat.st_size <= 256 * 1024 and not entry.sparse:
            data = f.read()
            return [repo.blob_id(data)] if data else []
        return [repo.blob_id(c) for c in repo.chunk_file(f)]


def _compare(
    repo: Any, old: TreeEntry, new: TreeEntry, entry: SourceEntry, content: bool
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if old.kind != new.kind:
        return [("T", f"was {old.kind}, is {new.kind}")]
    if old.kind == "f":
        if old.size != new.size:
            out.append(("M", f"size was {old.size}, is {new.size}"))
        elif content:
            try:
                if _chunk_ids(repo, entry) != list(old.data or ()):
                    out.append(("M", "content differs"))
            except OSError as e:
                out.append(("M", f"cannot read: {e.strerror or e}"))
    elif old.kind in "lcbh" and old.data != new.data:
        out.append(("M", "link target or device differs"))
    if stat.S_IMODE(old.mode) != stat.S_IMODE(new.mode):
        out.append(("U", f"mode was {stat.S_IMODE(old.mode):o}, is {stat.S_IMODE(new.mode):o}"))
    if (old.uid, old.gid) != (new.uid, new.gid):
        out.append(("U", f"owner was {old.uid}:{old.gid}, is {new.uid}:{new.gid}"))
    if old.kind not in "dh" and old.mtime_ns != new.mtime_ns:
        out.append(("U", "mtime differs"))
    return out


def verify_snapshot(
    repo: Any,
    snapshot: Any,
    sources: Sequence[Source],
    *,
    content: bool = True,
    meta_plugins: Sequence[type[MetaPlugin]] | None = None,
) -> Iterator[Difference]:
    """Yield the differences between ``snapshot`` and the live ``sources``, in index
    order."""
    meta = MetaApplier(repo, snapshot, meta_plugins)
    compared = [c for c in meta.plugins if STREAM_PREFIX + c.get_prefix() in snapshot.streams]
    ignored = {
        c.get_prefix(): set(getattr(c, "unrestorable_fields", ())) | {"extra"} for c in compared
    }
    try:
        main: Iterator[tuple[Index, dict[str, Any]]] = (
            (e.index, {"": e}) for e in load_tree(repo, snapshot)
        )
        snap_it = meta.join(main)
        cur = next(snap_it, None)
        if len(sources) > 1 and cur is not None and cur[0] == ():
            cur = next(snap_it, None)  # the synthetic top of a several-source snapshot
        for _src, index, entry in merged_entries(sources):
            while cur is not None and cur[0] < index:
                yield Difference("-", index_to_path(cur[0]), "not in the source")
                cur = next(snap_it, None)
            if cur is None or cur[0] != index:
                yield Difference("+", index_to_path(index), "not in the snapshot")
                continue
            old: TreeEntry = cur[1][""]
            records = cur[1]
            cur = next(snap_it, None)
            new = tree_entry(entry, index, None)
            for kind, detail in _compare(repo, old, new, entry, content):
                yield Difference(kind, index_to_path(index), detail)
            if entry.root is None or old.kind != new.kind:
                continue
            for cls in compared:
                prefix = cls.get_prefix()
                stored = records.get(prefix)
                try:
                    live = cls.from_path(entry.root, entry.index, entry.stat)
                except Exception as e:  # a plugin's failure is reported, not fatal
                    why = e.strerror if isinstance(e, OSError) else f"{type(e).__name__}: {e}"
                    yield Difference("U", index_to_path(index), f"{prefix}: cannot read: {why}")
                    continue
                if _differs(stored, live, ignored[prefix], index):
                    yield Difference("U", index_to_path(index), f"{prefix} metadata differs")
        while cur is not None:
            yield Difference("-", index_to_path(cur[0]), "not in the source")
            cur = next(snap_it, None)
        for message in meta.stream_errors:
            yield Difference("U", "/", message)
    finally:
        meta.close()


def _differs(stored: Any, live: Any, ignored: set[str], index: Index) -> bool:
    if stored is None or live is None:
        return (stored is None) != (live is None)
    a = {
        k: v
        for k, v in attrs.asdict(stored, recurse=False).items()
        if k not in ignored and k != "index"
    }
    b = {
        k: v
        for k, v in attrs.asdict(live, recurse=False).items()
        if k not in ignored and k != "index"
    }
    return a != b
