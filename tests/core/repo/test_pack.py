"""Packs: streaming upload reader, headers read back with ranged gets, damage named."""

from __future__ import annotations

import io
import os

import pytest
from pannier.errors import CorruptObjectError
from pannier.repo.crypto import Cipher, MasterKey
from pannier.repo.pack import PackWriter, PartsReader, parse_pack, read_pack_header

from .conftest import DirBackend


def test_parts_reader_reads_and_seeks() -> None:
    parts = [os.urandom(n) for n in (0, 5, 1000, 1, 70_000)]
    whole = b"".join(parts)
    r = PartsReader(parts)
    assert r.size == len(whole)
    got = b""
    while chunk := r.read(333):
        got += chunk
    assert got == whole
    r.seek(0)
    assert r.read() == whole
    r.seek(1004)
    assert r.read(3) == whole[1004:1007]
    assert r.seek(-2, io.SEEK_END) == len(whole) - 2 and r.read() == whole[-2:]


@pytest.mark.parametrize("master", [None, MasterKey.generate()])
def test_large_header_read_with_ranged_gets(master: MasterKey | None, backend: DirBackend) -> None:
    backend.directory.mkdir()
    cipher = Cipher(master)
    w = PackWriter()
    blobs = [os.urandom(20) for _ in range(3000)]  # header of about 120 KiB: two reads
    for b in blobs:
        bid = cipher.blob_id(b)
        w.add(0, bid, cipher.seal(b"\x00" + b, bid), len(b))
    pack_id, data = w.finish(cipher)
    name = f"data-{pack_id.hex()}"
    backend.put_bytes(name, data)
    entries = read_pack_header(backend, name, len(data), cipher)
    assert entries == parse_pack(data, cipher, name)
    assert [e.blob_id for e in entries] == [cipher.blob_id(b) for b in blobs]
    assert read_pack_header(backend, name, -1, cipher) == entries


def test_truncated_or_foreign_pack_is_named(backend: DirBackend) -> None:
    backend.directory.mkdir()
    cipher = Cipher(MasterKey.generate())
    w = PackWriter()
    bid = cipher.blob_id(b"x")
    w.add(0, bid, cipher.seal(b"\x00x", bid), 1)
    _, data = w.finish(cipher)
    for name, content in [("data-aa", data[:-3]), ("data-bb", b"not a pack at all, really")]:
        backend.put_bytes(name, content)
        with pytest.raises(CorruptObjectError, match=name):
            read_pack_header(backend, name, len(content), cipher)
    other = Cipher(MasterKey.generate())
    with pytest.raises(CorruptObjectError, match="header fails authentication"):
        parse_pack(data, other, "data-cc")
