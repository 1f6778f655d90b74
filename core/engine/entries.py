"""From source entries to tree entries: merging sources, hard links, entry kinds.

:func:`merged_entries` yields every source's entries under their snapshot index, in index
order (one source at the top of the snapshot, several each under its name below a
:func:`synthetic_top`); :func:`tree_entry` turns a source entry into the tree record the
snapshot stores; :func:`link_target` gives a hard link's target as a snapshot index.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import SourceError
from ..source import Index, Source, SourceEntry
from .tree import FLAG_SPARSE, TreeEntry

__all__ = ["link_target", "merged_entries", "synthetic_top", "tree_entry"]


def link_target(entry: SourceEntry, index: Index) -> Index:
    """The snapshot index of the file ``entry`` (stored at ``index``) is a hard link to:
    the source's own index of it, under the same prefix as the entry (several sources)."""
    assert entry.hardlink_to is not None
    prefix = index[: len(index) - len(entry.index)]
    return (*prefix, *entry.hardlink_to)


def tree_entry(entry: SourceEntry, index: Index, chunks: list[bytes] | None) -> TreeEntry:
    """The tree record of ``entry`` stored at ``index`` (``chunks``: its content's blob
    ids). A socket or an unknown file type raises :class:`~pannier.SourceError`."""
    st = entry.stat
    mode = st.st_mode
    data: Any = None
    flags = 0
    if entry.hardlink_to is not None:
        kind = "h"
        data = link_target(entry, index)
    elif stat.S_ISREG(mode):
        kind = "f"
        data = chunks or []
        if entry.sparse:
            flags |= FLAG_SPARSE
    elif stat.S_ISDIR(mode):
        kind = "d"
    elif stat.S_ISLNK(mode):
        kind = "l"
        data = entry.link_target or b""
    elif stat.S_ISFIFO(mode):
        kind = "p"
    elif stat.S_ISCHR(mode):
        kind = "c"
        data = st.st_rdev
    elif stat.S_ISBLK(mode):
        kind = "b"
        data = st.st_rdev
    else:
        raise SourceError(f"unsupported file type {oct(stat.S_IFMT(mode))}")
    size = st.st_size if kind in "fhl" else 0
    return TreeEntry(
        index,
        kind,
        mode,
        st.st_uid,
        st.st_gid,
        size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        data,
        flags,
    )


def merged_entries(sources: Sequence[Source]) -> Iterator[tuple[Source, Index, SourceEntry]]:
    """Every source's entries under their snapshot index, in index order.

    One source is stored at the top of the snapshot; several are stored each under its
    name (the last component of its spec), below a synthetic top directory.
    """
    if len(sources) == 1:
        src = sources[0]
        for e in src.scan():
            yield src, e.index, e
        return
    names = [s.name for s in sources]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        shown = ", ".join(sorted(os.fsdecode(n) for n in dupes))
        raise SourceError(f"several sources have the same name: {shown}")
    for src in sorted(sources, key=lambda s: s.name):
        for e in src.scan():
            yield src, (src.name, *e.index), e


def synthetic_top(now_ns: int) -> TreeEntry:
    """The top directory of a snapshot of several sources (mode 0755, owned by us)."""
    return TreeEntry(
        (), "d", stat.S_IFDIR | 0o755, os.getuid(), os.getgid(), 0, now_ns, now_ns, 0, None, 0
    )
