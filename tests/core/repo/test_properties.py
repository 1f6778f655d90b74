"""Property tests: the compact structures behave like the plain ones they replace."""

from __future__ import annotations

import io

from hypothesis import given, settings, strategies as st
from pannier.repo import chunker as chunker_module
from pannier.repo.chunker import Chunker
from pannier.repo.index import BlobSet, Index, decode_index_records, encode_index_object
from pannier.repo.pack import PackEntry, PartsReader

ids = st.binary(min_size=32, max_size=32)
# ids that share their first bytes land in the same bucket: the interesting case
close_ids = st.builds(lambda tail: b"\x00\x01" + tail, st.binary(min_size=30, max_size=30))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.one_of(ids, close_ids), st.integers(0, 2**32 - 1)), max_size=200))
def test_index_behaves_like_a_dict_keeping_first(items: list[tuple[bytes, int]]) -> None:
    index, model = Index(), {}
    pack = b"\x07" * 32
    for blob_id, offset in items:
        added = index.add(blob_id, pack, offset, 1, 2, 0)
        assert added == (blob_id not in model)
        model.setdefault(blob_id, offset)
    assert len(index) == len(model)
    for blob_id, offset in model.items():
        loc = index.lookup(blob_id)
        assert loc is not None and loc.offset == offset
    probe = b"\x00\x01" + b"\xff" * 30
    assert (probe in index) == (probe in model)
    assert set(BlobSet(model)) == set(model)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), ids, st.integers(0, 2**32 - 1)), max_size=50))
def test_index_objects_round_trip_through_the_table(entries: list[tuple[int, bytes, int]]) -> None:
    pack = b"\x09" * 32
    pack_entries = [PackEntry(k, b, off, 10, 20) for k, b, off in entries]
    records, _ = decode_index_records(encode_index_object({pack: pack_entries}), "i")
    fast, slow = Index(), Index()
    for pack_id, raw in records:
        fast.add_records(pack_id, raw)
    slow.add_pack(pack, pack_entries)
    assert sorted(fast) == sorted(slow)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.binary(max_size=300), max_size=20),
    st.lists(st.integers(1, 500), min_size=1, max_size=20),
)
def test_parts_reader_reads_the_concatenation(parts: list[bytes], sizes: list[int]) -> None:
    reader = PartsReader(list(parts))
    got = b""
    i = 0
    while chunk := reader.read(sizes[i % len(sizes)]):
        got += chunk
        i += 1
    assert got == b"".join(parts)


class Trickle(io.RawIOBase):
    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._pos, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(b), self._step, len(self._data) - self._pos)
        b[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 3_000_000), st.integers(1, 2_000_000), st.integers(0, 2**20))
def test_stream_chunks_do_not_depend_on_reads(size: int, step: int, seed: int) -> None:
    import blake3

    data = blake3.blake3(seed.to_bytes(4, "little")).digest(length=size)
    c = Chunker(seed)
    saved = chunker_module.READ_SIZE, chunker_module.FIRST_READ_SIZE
    chunker_module.READ_SIZE, chunker_module.FIRST_READ_SIZE = 700_000, 300_000
    try:
        streamed = [bytes(x) for x in c.chunk_file(Trickle(data, step))]
    finally:
        chunker_module.READ_SIZE, chunker_module.FIRST_READ_SIZE = saved
    assert streamed == [bytes(x) for x in c.chunk_bytes(data)]
