"""The tree stream: round trip, order, truncation, corruption, newer versions."""

from __future__ import annotations

import io

import msgpack
import pytest
from pannier.engine.tree import TREE_FORMAT_VERSION, TreeEntry, TreeWriter, iter_tree
from pannier.errors import CorruptObjectError, RepositoryFormatError


def entry(*index: bytes, kind: str = "f", data: object = None) -> TreeEntry:
    return TreeEntry(tuple(index), kind, 0o100644, 0, 0, 5, 1, 2, 3, data, 0)


def write(entries: list[TreeEntry]) -> bytes:
    f = io.BytesIO()
    w = TreeWriter(f)
    for e in entries:
        w.add(e)
    w.close()
    return f.getvalue()


ENTRIES = [
    entry(kind="d"),
    entry(b"a", kind="d"),
    entry(b"a", b"z", data=[b"\x01" * 32, b"\x02" * 32]),
    entry(b"a0", kind="l", data=b"target"),
    entry(b"\xff\xfe", kind="h", data=(b"a", b"z")),
]


def test_round_trip_in_pieces() -> None:
    data = write(ENTRIES)
    pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
    got = list(iter_tree(pieces))
    assert [e.index for e in got] == [e.index for e in ENTRIES]
    assert got[2].chunks == [b"\x01" * 32, b"\x02" * 32]
    assert got[3].data == b"target"
    assert got[4].data == (b"a", b"z")
    assert got[2].path == "/a/z"


def test_writer_refuses_out_of_order_and_duplicates() -> None:
    w = TreeWriter(io.BytesIO())
    w.add(entry(b"a0"))
    with pytest.raises(ValueError, match="out of order"):
        w.add(entry(b"a", b"z"))
    with pytest.raises(ValueError, match="out of order"):
        w.add(entry(b"a0"))


def test_truncated_stream_is_named() -> None:
    data = write(ENTRIES)
    with pytest.raises(CorruptObjectError, match="tree of x: truncated after record"):
        list(iter_tree([data[:-3]], "tree of x"))


def test_missing_trailer_is_truncation() -> None:
    packer = msgpack.Packer(use_bin_type=True)
    data = packer.pack({"format": "pannier-tree", "version": 1}) + packer.pack(tuple(ENTRIES[0]))
    with pytest.raises(CorruptObjectError, match="truncated after record 1"):
        list(iter_tree([data]))


def test_wrong_trailer_count() -> None:
    packer = msgpack.Packer(use_bin_type=True)
    data = packer.pack({"format": "pannier-tree", "version": 1}) + packer.pack({"end": 5})
    with pytest.raises(CorruptObjectError, match="trailer says 5 entries, read 0"):
        list(iter_tree([data]))


def test_newer_version_refused() -> None:
    packer = msgpack.Packer(use_bin_type=True)
    data = packer.pack({"format": "pannier-tree", "version": TREE_FORMAT_VERSION + 1})
    with pytest.raises(RepositoryFormatError, match="newer"):
        list(iter_tree([data]))


def test_not_a_tree() -> None:
    with pytest.raises(CorruptObjectError, match="not a pannier tree stream"):
        list(iter_tree([msgpack.packb({"format": "other"})]))


def test_garbage_record_is_named() -> None:
    packer = msgpack.Packer(use_bin_type=True)
    data = packer.pack({"format": "pannier-tree", "version": 1}) + packer.pack([1, 2])
    with pytest.raises(CorruptObjectError, match="record 0 is not a tree entry"):
        list(iter_tree([data]))


def test_reader_refuses_out_of_order() -> None:
    packer = msgpack.Packer(use_bin_type=True)
    data = packer.pack({"format": "pannier-tree", "version": 1})
    data += packer.pack(tuple(entry(b"b"))) + packer.pack(tuple(entry(b"a")))
    data += packer.pack({"end": 2})
    with pytest.raises(CorruptObjectError, match="record 1 is out of order"):
        list(iter_tree([data]))
