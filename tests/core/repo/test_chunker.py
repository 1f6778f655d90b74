"""Content-defined chunking: bounds, stability across buffer boundaries, seeding."""

from __future__ import annotations

import io
import os
from pathlib import Path

import blake3
import pytest
from pannier.repo import chunker as chunker_module
from pannier.repo.chunker import Chunker
from pannier.repo.format import CHUNK_MAX, CHUNK_MIN

DATA = blake3.blake3(b"chunker test").digest(length=12_000_000)


def test_sizes_within_bounds_and_concatenation() -> None:
    chunks = [bytes(c) for c in Chunker(0).chunk_bytes(DATA)]
    assert b"".join(chunks) == DATA
    assert all(CHUNK_MIN <= len(c) <= CHUNK_MAX for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= CHUNK_MAX


def test_small_and_empty_inputs() -> None:
    c = Chunker(0)
    assert list(c.chunk_bytes(b"")) == []
    assert [bytes(x) for x in c.chunk_bytes(b"abc")] == [b"abc"]
    assert list(c.chunk_file(io.BytesIO(b""))) == []


def test_file_chunks_equal_buffer_chunks_across_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunker_module, "READ_SIZE", 5_000_000)  # several refills
    c = Chunker(0)
    whole = [bytes(x) for x in c.chunk_bytes(DATA)]
    streamed = [bytes(x) for x in c.chunk_file(io.BytesIO(DATA))]
    assert streamed == whole


class Dribble(io.RawIOBase):
    """A stream that returns at most 1000 bytes per read, like a pipe."""

    def __init__(self, data: bytes) -> None:
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        return self._buf.read(min(n, 1000) if n > 0 else 1000)


def test_short_reads_do_not_change_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunker_module, "READ_SIZE", 3_000_000)
    data = DATA[:7_000_000]
    c = Chunker(0)
    assert [bytes(x) for x in c.chunk_file(Dribble(data))] == [
        bytes(x) for x in c.chunk_bytes(data)
    ]


def test_path_and_descriptor_sources(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(DATA[:4_000_000])
    c = Chunker(0)
    expected = [bytes(x) for x in c.chunk_bytes(DATA[:4_000_000])]
    assert [bytes(x) for x in c.chunk_file(str(p))] == expected
    fd = os.open(p, os.O_RDONLY)
    try:
        assert [bytes(x) for x in c.chunk_file(fd)] == expected
    finally:
        os.close(fd)


def test_insertion_only_changes_nearby_chunks() -> None:
    c = Chunker(0)
    before = {blake3.blake3(x).digest() for x in c.chunk_bytes(DATA)}
    edited = DATA[:6_000_000] + b"inserted bytes" + DATA[6_000_000:]
    after = {blake3.blake3(x).digest() for x in c.chunk_bytes(edited)}
    assert len(before - after) <= 2


def test_seed_changes_boundaries() -> None:
    plain = [len(x) for x in Chunker(0).chunk_bytes(DATA)]
    seeded = [len(x) for x in Chunker(987654321).chunk_bytes(DATA)]
    assert plain != seeded
