"""Golden bytes: fixed keys, nonces and inputs give exactly the bytes docs/format.md
specifies. A change here is a change of the repository format and needs a new version."""

from __future__ import annotations

import blake3
import pytest
from pannier.errors import CorruptObjectError
from pannier.repo.chunker import Chunker
from pannier.repo.config import decode_config_public, encode_config
from pannier.repo.crypto import (
    Cipher,
    decode_payload,
    encode_payload,
    make_key_object,
    open_key_object,
)
from pannier.repo.format import PACK_MAGIC
from pannier.repo.index import decode_index_object, encode_index_object
from pannier.repo.pack import PackWriter, parse_pack

from .conftest import FAST_KDF, FIXED_MASTER


def fixed_cipher() -> Cipher:
    return Cipher(FIXED_MASTER, nonce_source=lambda n: b"\x07" * n)


def test_plain_blob_id_is_blake3() -> None:
    # the published BLAKE3 test value of b"hello"
    assert (
        Cipher(None).blob_id(b"hello").hex()
        == "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
    )


def test_keyed_blob_id() -> None:
    assert (
        fixed_cipher().blob_id(b"hello").hex()
        == "f8a707ccac6d5c7344f3075c205236c529ad840925ffae5a62011aefc9a895a9"
    )
    assert (
        fixed_cipher().blob_id(b"hello")
        == blake3.blake3(b"hello", key=FIXED_MASTER.id_key).digest()
    )


def test_sealed_bytes() -> None:
    sealed = fixed_cipher().seal(b"hello", b"aad")
    assert sealed.hex() == (
        "070707070707070707070707" + "670fca3000" + "06304805da83ff067c8cef5d75f00e54"
    )
    assert fixed_cipher().open(sealed, b"aad", "x") == b"hello"


@pytest.mark.parametrize("flip", [0, 12, 16, 32])
def test_altered_sealed_object_fails(flip: int) -> None:
    sealed = bytearray(fixed_cipher().seal(b"hello" * 4, b"aad"))
    sealed[flip] ^= 1
    with pytest.raises(CorruptObjectError, match="thing fails authentication"):
        fixed_cipher().open(bytes(sealed), b"aad", "thing")


def test_sealed_object_bound_to_its_role() -> None:
    sealed = fixed_cipher().seal(b"hello", b"pannier:index")
    with pytest.raises(CorruptObjectError):
        fixed_cipher().open(sealed, b"pannier:snapshot", "snapshot x")


def test_payload_encoding() -> None:
    assert encode_payload(b"short", 3) == b"\x00short"  # too small to compress
    assert encode_payload(b"a" * 100, 0) == b"\x00" + b"a" * 100  # level 0: raw
    # a zstd frame (flag 1) as written by zstd 1.5 at level 3
    frame = bytes.fromhex("0128b52ffd206445000010616101003f012c")
    assert decode_payload(frame, "p") == b"a" * 100
    assert decode_payload(encode_payload(b"a" * 100, 3), "p") == b"a" * 100
    with pytest.raises(CorruptObjectError, match="unknown payload encoding 9"):
        decode_payload(b"\x09abc", "p")
    with pytest.raises(CorruptObjectError, match="does not decompress"):
        decode_payload(b"\x01garbage", "p")


def test_key_object_bytes() -> None:
    data = make_key_object(
        FIXED_MASTER,
        "pw",
        kdf=FAST_KDF,
        salt=b"s" * 16,
        nonce=b"n" * 12,
        created="2026-01-01T00:00:00Z",
        hostname="host",
        username="user",
    )
    assert len(data) == 351
    assert (
        blake3.blake3(data).hexdigest()
        == "c9d7e76b137cdf1fe16a20e0feecdac1428e53cdbddbaf26fb7cb8799d4e8a3e"
    )
    opened = open_key_object(data, "pw")
    assert opened is not None and opened.to_dict() == FIXED_MASTER.to_dict()
    assert open_key_object(data, "wrong") is None
    assert "secret" in repr(opened) and FIXED_MASTER.encryption_key.hex() not in repr(opened)


def test_corrupt_key_object_is_named() -> None:
    with pytest.raises(CorruptObjectError, match="key object key-1 is corrupt"):
        open_key_object(b"\xc1not msgpack", "pw", "key-1")


def test_pack_bytes() -> None:
    c = fixed_cipher()
    w = PackWriter()
    for i, d in enumerate([b"alpha" * 50, b"beta"]):
        bid = c.blob_id(d)
        w.add(i % 2, bid, c.seal(encode_payload(d, 0), bid), len(d))
    pack_id, data = w.finish(c)
    assert len(data) == 435
    assert data.endswith(PACK_MAGIC)
    assert pack_id.hex() == "1272e0a96129719beee7bcc680f0627297405823203989b4ae653085a74b9a3e"
    assert pack_id == blake3.blake3(data).digest()
    entries = parse_pack(data, c, "data-x")
    assert [(e.kind, e.offset, e.length, e.raw_length) for e in entries] == [
        (0, 0, 279, 250),
        (1, 279, 33, 4),
    ]
    index_plain = encode_index_object({pack_id: entries})
    assert (
        blake3.blake3(index_plain).hexdigest()
        == "3fcc72403554c4404fc47c0113dc4fcdc25925cf214738325351ea3aa9117750"
    )
    packs, supersedes = decode_index_object(index_plain, "index-x")
    assert packs == {pack_id: entries} and supersedes == []


def test_config_bytes() -> None:
    raw = encode_config(fixed_cipher(), "ab" * 32, "repokey", {"compression": 3})
    assert raw.startswith(b"PANNIER\n")
    assert (
        blake3.blake3(raw).hexdigest()
        == "f1cbba6b65a839b7317047b3a8e8543c297ec1b5eb752898f5290157a86a2060"
    )
    public = decode_config_public(raw)
    assert public["version"] == 1 and public["encryption"] == "repokey"


def test_chunk_boundaries() -> None:
    stream = blake3.blake3(b"seed").digest(length=3_000_000)
    assert [len(x) for x in Chunker(0).chunk_bytes(stream)] == [607959, 1191989, 1200052]
    seeded = Chunker(FIXED_MASTER.chunker_seed).chunk_bytes(stream)
    assert [len(x) for x in seeded] == [1381218, 1618782]


@pytest.mark.parametrize("size", [10, 70_000, 1_500_000])
@pytest.mark.parametrize("compressible", [True, False])
def test_in_place_sealing_gives_the_same_bytes(size: int, compressible: bool) -> None:
    data = b"z" * size if compressible else blake3.blake3(b"x").digest(length=size)
    fast = fixed_cipher().seal_payload(data, 3, b"blob-id")
    plain = fixed_cipher().seal(encode_payload(data, 3), b"blob-id")
    assert bytes(fast) == plain
    assert decode_payload(fixed_cipher().open(fast, b"blob-id", "b"), "b") == data


def test_frame_declaring_a_huge_size_is_refused() -> None:
    import struct

    # a zstd frame header: magic, descriptor with an 8-byte content size, 2**40 bytes
    frame = b"\x28\xb5\x2f\xfd" + bytes([0xE0]) + struct.pack("<Q", 1 << 40) + b"\x01\x00\x00"
    with pytest.raises(CorruptObjectError, match="invalid size"):
        decode_payload(b"\x01" + frame, "p")


def test_key_object_with_absurd_kdf_parameters_is_refused() -> None:
    import msgpack

    data = make_key_object(FIXED_MASTER, "pw", kdf=FAST_KDF)
    body = msgpack.unpackb(data)
    body["memory_cost"] = 1 << 40  # would ask for a petabyte
    with pytest.raises(CorruptObjectError, match="key-x is corrupt"):
        open_key_object(msgpack.packb(body), "pw", "key-x")


def test_newer_snapshot_and_pack_header_versions_are_refused() -> None:
    import msgpack
    from pannier.errors import RepositoryFormatError
    from pannier.repo.pack import decode_header
    from pannier.repo.snapshot import Snapshot

    with pytest.raises(RepositoryFormatError, match="snapshot abcdef12 has format version 9"):
        Snapshot.decode(msgpack.packb({"version": 9}), "abcdef12" * 8)
    with pytest.raises(RepositoryFormatError, match="header version 2"):
        decode_header(b"\x02", "data-x", 0)
