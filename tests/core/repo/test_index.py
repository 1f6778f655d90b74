"""The in-memory index and index objects."""

from __future__ import annotations

import os

import msgpack
import pytest
from pannier.errors import CorruptObjectError, RepositoryFormatError
from pannier.repo.index import (
    BlobSet,
    Index,
    decode_index_object,
    decode_index_records,
    encode_index_object,
)
from pannier.repo.pack import PackEntry


def test_add_lookup_and_first_location_wins() -> None:
    idx = Index()
    a, b, pack1, pack2 = (os.urandom(32) for _ in range(4))
    assert idx.add(a, pack1, 0, 10, 8, 0)
    assert not idx.add(a, pack2, 99, 10, 8, 0)
    assert idx.add(b, pack2, 10, 20, 30, 1)
    loc = idx.lookup(a)
    assert loc is not None and (loc.pack_id, loc.offset) == (pack1, 0)
    loc = idx.lookup(b)
    assert loc is not None and (loc.pack_id, loc.offset, loc.length, loc.raw_length, loc.kind) == (
        pack2,
        10,
        20,
        30,
        1,
    )
    assert a in idx and os.urandom(32) not in idx
    assert len(idx) == 2
    assert idx.packs() == {pack1, pack2}
    assert sorted(bid for bid, _ in idx) == sorted([a, b])


def test_ids_sharing_bytes_across_record_boundaries() -> None:
    """A search hit that is not aligned on a record must not be taken for a match."""
    idx = Index()
    pack = b"\x01" * 32
    first = b"\x00\x00" + b"\xaa" * 30
    idx.add(first, pack, 0, 1, 1, 0)
    # an id made of the tail of the first record and the start of another
    tricky = b"\x00\x00" + b"\xaa" * 29 + b"\x00"
    assert tricky not in idx
    assert idx.lookup(tricky) is None


def test_many_blobs_stay_compact() -> None:
    idx = Index()
    pack = os.urandom(32)
    n = 200_000
    ids = [os.urandom(32) for _ in range(n)]
    for i, bid in enumerate(ids):
        idx.add(bid, pack, i * 100, 100, 120, 0)
    assert all(bid in idx for bid in ids[:: n // 1000])
    # 49 bytes of table per blob: a million blobs cost about 50 MB
    assert idx.memory_bytes() / n < 60


def test_index_object_round_trip_and_errors() -> None:
    pack = os.urandom(32)
    entries = [PackEntry(0, os.urandom(32), 0, 100, 90), PackEntry(1, os.urandom(32), 100, 5, 4)]
    plain = encode_index_object({pack: entries}, supersedes=["ab"])
    assert decode_index_object(plain, "i") == ({pack: entries}, ["ab"])
    with pytest.raises(CorruptObjectError, match="index index-x is corrupt"):
        decode_index_object(b"\xc1", "index-x")
    newer = msgpack.packb({"version": 7, "packs": []})
    with pytest.raises(RepositoryFormatError, match="version 7"):
        decode_index_object(newer, "index-x")
    bad = msgpack.packb({"version": 1, "packs": [[pack, b"short"]]})
    with pytest.raises(CorruptObjectError):
        decode_index_object(bad, "index-x")


def test_add_records_matches_add_pack_and_keeps_first() -> None:
    pack1, pack2 = os.urandom(32), os.urandom(32)
    entries = [PackEntry(i % 2, os.urandom(32), i * 10, 10, 12) for i in range(300)]
    plain = encode_index_object({pack1: entries, pack2: entries[:5]})
    raw, _ = decode_index_records(plain, "i")
    fast, slow = Index(), Index()
    added = [fast.add_records(p, r) for p, r in raw]
    slow.add_pack(pack1, entries)
    assert added == [300, 0]  # the second pack only repeats blobs already known
    assert len(fast) == len(slow) == 300
    for e in entries:
        assert fast.lookup(e.blob_id) == slow.lookup(e.blob_id)
        loc = fast.lookup(e.blob_id)
        assert loc is not None and loc.pack_id == pack1


def test_blob_set_is_a_compact_set() -> None:
    ids = [os.urandom(32) for _ in range(5000)]
    s = BlobSet(ids[:4000])
    assert len(s) == 4000
    assert all(i in s for i in ids[:4000]) and not any(i in s for i in ids[4000:])
    assert not s.add(ids[0]) and s.add(ids[4000]) and len(s) == 4001
    assert sorted(s) == sorted(ids[:4001])
    # an id made of the end of one member and the start of another is not a member
    a, b = b"\x00\x00" + b"\x11" * 30, b"\x00\x00" + b"\x22" * 30
    pair = BlobSet([a, b])
    assert (a[16:] + b[:16]) not in pair and "text" not in pair
