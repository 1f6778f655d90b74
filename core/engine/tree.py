"""The snapshot tree: one record per entry, with its content's chunk ids, in index order.

Every snapshot has one *tree stream* (stream name ``"tree"`` in the snapshot object). It
is what restore walks, what ``ls``, ``diff`` and ``dump`` read, and what the next backup
compares the source with. Per-file metadata beyond what the engine needs (owners, xattrs,
ACLs, checksums) lives in the meta plugins' streams, joined by index.

Format (version :data:`TREE_FORMAT_VERSION`), a sequence of msgpack objects:

1. a header map ``{"format": "pannier-tree", "version": 1}``;
2. one array per entry, in index order (component-wise bytes order, each index unique)::

       [index, kind, mode, uid, gid, size, mtime_ns, ctime_ns, inode, data, flags]

   ``index`` is an array of bin components; ``kind`` a one-letter str (``f`` file, ``d``
   directory, ``l`` symlink, ``h`` hard link, ``p`` FIFO, ``c``/``b`` character/block
   device); ``mode`` the full ``st_mode``; ``uid``/``gid`` the numeric owner (the
   ``attr`` metadata stream has the names too); ``data`` is, by kind: ``f`` an array of 32-byte
   chunk ids (bin) whose plaintexts concatenated are the content, ``l`` the target (bin),
   ``h`` the index of the earlier entry it links to, ``c``/``b`` the device number (int),
   else nil; ``flags`` bit 0 means the file was sparse;
3. a trailer map ``{"end": N}`` with N the number of entries, so a truncated stream is
   detected.

The stream is stored in small content-defined pieces (deduplicated, in packs, shared with
the previous snapshot's tree where no entry changed) and the snapshot names their blob
list (see :class:`pannier.Snapshot`). Reading and writing use constant memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, Any, NamedTuple

import msgpack

from ..errors import CorruptObjectError, RepositoryFormatError
from ..source import Index, index_to_path
from .spool import spooled_file as spooled_file  # the spool of tree and meta streams

__all__ = [
    "FLAG_SPARSE",
    "TREE_FORMAT_VERSION",
    "TreeEntry",
    "TreeWriter",
    "iter_tree",
    "iter_tree_bytes",
]

#: The tree stream format version this pannier writes and the newest it reads.
TREE_FORMAT_VERSION = 1
#: ``flags`` bit: the file was sparse when backed up.
FLAG_SPARSE = 1

_FORMAT = "pannier-tree"


class TreeEntry(NamedTuple):
    """One entry of a snapshot tree (see the module docstring for each field)."""

    index: Index  # type: ignore[assignment]
    kind: str
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    data: Any
    flags: int = 0

    @property
    def path(self) -> str:
        """The entry's display path (``/`` for the top)."""
        return index_to_path(self.index)

    @property
    def chunks(self) -> list[bytes]:
        """The chunk ids of a file's content (empty for anything else)."""
        return list(self.data) if self.kind == "f" and self.data else []


class TreeWriter:
    """Write a tree stream to a binary file object, checking index order.

    :meth:`add` raises ValueError when an index is not after the previous one;
    :meth:`close` writes the trailer (it does not close ``fileobj``).
    """

    def __init__(self, fileobj: IO[bytes]) -> None:
        self._f = fileobj
        self._packer = msgpack.Packer(use_bin_type=True)
        self._last: Index | None = None
        self.count = 0
        self._f.write(self._packer.pack({"format": _FORMAT, "version": TREE_FORMAT_VERSION}))

    def add(self, entry: TreeEntry) -> None:
        """Append one entry."""
        if self._last is not None and entry.index <= self._last:
            raise ValueError(
                f"tree entries out of order: {index_to_path(entry.index)} after "
                f"{index_to_path(self._last)}"
            )
        self._last = entry.index
        self._f.write(self._packer.pack(tuple(entry)))
        self.count += 1

    def close(self) -> None:
        """Write the trailer."""
        self._f.write(self._packer.pack({"end": self.count}))


def iter_tree(chunks: Iterable[bytes], name: str = "tree stream") -> Iterator[TreeEntry]:
    """Yield the entries of a tree stream given as an iterable of byte strings (the
    plaintexts of its blobs, in order).

    Raises :class:`~pannier.RepositoryFormatError` for a newer format version and
    :class:`~pannier.CorruptObjectError` naming ``name`` and the record number for a
    malformed, out-of-order or truncated stream, or a record whose fields are not of the
    documented types and ranges (an unknown kind, a uid beyond 32 bits, a symlink target
    that is not bytes, a chunk id that is not 32 bytes...).
    """
    unpacker = msgpack.Unpacker(use_list=False, raw=False, max_buffer_size=0)
    state = 0  # 0 header expected, 1 records, 2 trailer seen
    count = 0
    last: Index | None = None
    for chunk in chunks:
        unpacker.feed(chunk)
        try:
            for obj in unpacker:
                if state == 0:
                    _check_header(obj, name)
                    state = 1
                    continue
                if state == 2:
                    raise CorruptObjectError(f"{name}: data after the trailer")
                if isinstance(obj, dict):
                    if obj.get("end") != count:
                        raise CorruptObjectError(
                            f"{name}: trailer says {obj.get('end')} entries, read {count}"
                        )
                    state = 2
                    continue
                entry = _decode(obj, name, count)
                if last is not None and entry.index <= last:
                    raise CorruptObjectError(f"{name}: record {count} is out of order")
                last = entry.index
                count += 1
                yield entry
        except (msgpack.ExtraData, msgpack.FormatError, msgpack.StackError, ValueError) as e:
            raise CorruptObjectError(f"{name}: record {count} is malformed ({e})") from e
    if state != 2:
        raise CorruptObjectError(f"{name}: truncated after record {count}")


def iter_tree_bytes(data: bytes, name: str = "tree stream") -> Iterator[TreeEntry]:
    """:func:`iter_tree` over one byte string."""
    return iter_tree([data], name)


def _check_header(obj: Any, name: str) -> None:
    if not isinstance(obj, dict) or obj.get("format") != _FORMAT:
        raise CorruptObjectError(f"{name}: not a pannier tree stream")
    version = obj.get("version")
    if not isinstance(version, int) or version > TREE_FORMAT_VERSION:
        raise RepositoryFormatError(
            f"{name}: tree format version {version} is newer than this pannier reads "
            f"({TREE_FORMAT_VERSION})"
        )


def _decode(obj: Any, name: str, number: int) -> TreeEntry:
    if not isinstance(obj, tuple) or len(obj) < 11:
        raise CorruptObjectError(f"{name}: record {number} is not a tree entry")
    index = obj[0]
    if not isinstance(index, tuple) or not all(isinstance(p, bytes) for p in index):
        raise CorruptObjectError(f"{name}: record {number} has a bad index")
    entry = _make_entry(obj if len(obj) == 11 else obj[:11])
    problem = _field_problem(entry)
    if problem:
        raise CorruptObjectError(f"{name}: record {number} ({entry.path}) {problem}")
    return entry


#: Bounds of the integer fields a reader accepts (what the kernel's types can hold).
_U32 = 1 << 32
_U64 = 1 << 64
_I64 = 1 << 63
_KINDS = frozenset("fdlhpcb")


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < high


_make_entry = TreeEntry._make


def _field_problem(e: TreeEntry) -> str | None:
    """What is wrong with the types or ranges of an entry's fields (a hostile or damaged
    stream), or None: restore and ls may then use them without further checks."""
    _, kind, mode, uid, gid, size, mtime, ctime, ino, data, flags = e
    if (  # the fast path of every sound entry (a backup reads its parent's whole tree)
        type(kind) is str
        and type(mode) is int
        and type(uid) is int
        and type(gid) is int
        and type(size) is int
        and type(mtime) is int
        and type(ctime) is int
        and type(ino) is int
        and type(flags) is int
        and 0 <= mode < _U32
        and 0 <= uid < _U32
        and 0 <= gid < _U32
        and 0 <= size < _U64
        and -_I64 <= mtime < _I64
        and -_I64 <= ctime < _I64
        and 0 <= ino < _U64
        and 0 <= flags < _U64
    ):
        if kind == "f":
            if data is None or (
                type(data) is tuple and all(type(c) is bytes and len(c) == 32 for c in data)
            ):
                return None
        elif kind == "d" or kind == "p":
            return None
    return _field_problem_slow(e)


def _field_problem_slow(e: TreeEntry) -> str | None:
    """:func:`_field_problem` for every kind of entry, naming the first bad field."""
    if not isinstance(e.kind, str) or e.kind not in _KINDS:
        return f"has an unknown kind {e.kind!r}"
    ranges = (
        ("mode", e.mode, 0, _U32),
        ("uid", e.uid, 0, _U32),
        ("gid", e.gid, 0, _U32),
        ("size", e.size, 0, _U64),
        ("mtime", e.mtime_ns, -_I64, _I64),
        ("ctime", e.ctime_ns, -_I64, _I64),
        ("inode", e.ino, 0, _U64),
        ("flags", e.flags, 0, _U64),
    )
    for field, value, low, high in ranges:
        if not _int_in(value, low, high):
            return f"has a bad {field} {value!r:.40}"
    data = e.data
    if e.kind == "f":
        ok = data is None or (  # nil: no content, like an empty array
            isinstance(data, tuple) and all(isinstance(c, bytes) and len(c) == 32 for c in data)
        )
    elif e.kind == "l":
        ok = isinstance(data, bytes)
    elif e.kind == "h":
        ok = isinstance(data, tuple) and bool(data) and all(isinstance(c, bytes) for c in data)
    elif e.kind in "cb":
        ok = _int_in(data, 0, _U64)
    else:
        ok = True
    return None if ok else f"has bad data for kind {e.kind!r}"
