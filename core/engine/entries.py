"""From source entries to tree entries: merging sources, hard links, entry kinds.

:func:`merged_entries` yields every source's entries under their snapshot index, in index
order (one source at the top of the snapshot, several each under its name below a
:func:`synthetic_top`), and :class:`ScanAhead` walks them in a background thread while the
repository opens; :func:`tree_entry` turns a source entry into the tree record the
snapshot stores; :func:`link_target` gives a hard link's target as a snapshot index.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..errors import SourceError
from ..source import Index, Source, SourceEntry
from .tree import FLAG_SPARSE, TreeEntry

__all__ = ["ScanAhead", "link_target", "merged_entries", "synthetic_top", "tree_entry"]


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


class _Deferred:
    """A warning a source gave while scanning ahead, delivered in walk order."""

    __slots__ = ("message", "path")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message


_END: Any = object()
_HANDOVER: Any = object()


class ScanAhead:
    """:func:`merged_entries` of ``sources`` walked in a background thread, started
    before the repository is opened: the walk's system calls overlap the key derivation,
    the index and the parent tree, which release the GIL or wait.

    At most ``limit`` entries are held ahead (bounded memory). Once the consumer starts
    (:meth:`entries`), the background thread hands the rest of the walk over and the
    consumer walks on in its own thread: two threads never contend for the GIL over one
    walk. Only sources whose scan is cheap and has no side effect (``counting_scan``, a
    directory walk) are walked ahead: :meth:`wanted` says so. A source's warnings during
    the walk ahead are handed to the consumer's callback in walk order; an error of the
    walk (a missing source) is raised where the consumer reaches it. :meth:`close` stops
    the walk.
    """

    #: Entries handed over at once (a queue operation per batch, not per entry).
    BATCH = 256

    def __init__(self, sources: Sequence[Source], limit: int = 8192) -> None:
        self.sources = sources
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, limit // self.BATCH))
        self._stop = threading.Event()
        self._consuming = threading.Event()
        self._batch: list[Any] = []
        self._walk_it: Iterator[tuple[Source, Index, SourceEntry]] = merged_entries(sources)
        for s in sources:
            s.set_warning_callback(self._defer)
        self._thread = threading.Thread(target=self._walk, name="pannier-scan", daemon=True)
        self._thread.start()

    @staticmethod
    def wanted(sources: Sequence[Source]) -> bool:
        """True when every source allows a walk ahead (``counting_scan``)."""
        return bool(sources) and all(type(s).counting_scan for s in sources)

    def _defer(self, path: str, message: str) -> None:
        self._batch.append(_Deferred(path, message))

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _walk(self) -> None:
        walk = self._walk_it
        batch_size = self.BATCH
        end: Any = _END
        try:
            for item in walk:
                self._batch.append(item)
                if len(self._batch) >= batch_size:
                    batch, self._batch = self._batch, []
                    if not self._put(batch):
                        self._close_walk()
                        return
                    if self._consuming.is_set():  # the consumer walks on from here
                        self._put(_HANDOVER)
                        return
        except BaseException as e:  # handed to the consumer, raised there
            end = e
        batch, self._batch = self._batch, []
        if self._put(batch):
            self._put(end)

    def _close_walk(self) -> None:
        close = getattr(self._walk_it, "close", None)
        if close is not None:
            close()  # a walk given up releases its open directories now

    def entries(
        self, on_warning: Callable[[str, str], None] | None = None
    ) -> Iterator[tuple[Source, Index, SourceEntry]]:
        """The walk's ``(source, snapshot index, entry)`` items, in index order; the
        warnings given during the walk ahead go to ``on_warning`` where they occurred."""
        self._consuming.set()
        while True:
            batch = self._queue.get()
            if batch is _END:
                return
            if batch is _HANDOVER:
                self._thread.join()
                for s in self.sources:  # warnings from now on arrive as they occur
                    s.set_warning_callback(on_warning)
                yield from self._walk_it
                return
            if isinstance(batch, BaseException):
                raise batch
            for item in batch:
                if type(item) is _Deferred:
                    if on_warning is not None:
                        on_warning(item.path, item.message)
                    continue
                yield item

    def close(self) -> None:
        """Stop the walk (when the consumer gives up) and wait for the thread."""
        self._stop.set()
        while True:  # unblock a producer waiting for room
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()
        self._close_walk()
