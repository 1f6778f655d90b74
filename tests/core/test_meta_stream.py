"""The metadata stream format: golden bytes, round trips, truncation and corruption."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings, strategies as st
from pannier import MetaStreamError
from pannier.meta_stream import (
    FORMAT_VERSION,
    MAGIC,
    MetaStreamReader,
    MetaStreamWriter,
    StreamHeader,
    copy_stream,
)

HEADER = StreamHeader(plugin="demo", plugin_version="1.2", prefix="demo", fields=("index", "size"))
ROWS = [((), 0), ((b"a",), 5), ((b"a", b"\xff"), 7, {"later": True})]

#: The stream of HEADER and ROWS, as format version 1 lays it out (docs/meta-plugins.md).
GOLDEN = bytes.fromhex(
    "89504e4d4554410d0a1a0a"
    "00000047" "00000000" "43bb176f"
    "85a6666f726d617401a6706c7567696ea464656d6fae706c7567696e5f76657273696f6ea3312e32"
    "a6707265666978a464656d6fa66669656c647392a5696e646578a473697a65"
    "0000001a" "00000003" "3808c715"
    "929000" "9291c4016105" "9392c40161c401ff0781a56c61746572c3"
    "0000000a" "00000000" "db82fdcf"
    "81a77265636f72647303"
)  # fmt: skip


def write(rows: list[tuple[object, ...]], header: StreamHeader = HEADER) -> bytes:
    buffer = io.BytesIO()
    with MetaStreamWriter(buffer, header) as writer:
        for row in rows:
            writer.write_row(row)
    return buffer.getvalue()


def read(data: bytes, name: str = "demo.meta") -> list[tuple[object, ...]]:
    with MetaStreamReader(io.BytesIO(data), name=name) as reader:
        return list(reader.iter_rows())


def test_golden_bytes() -> None:
    assert write(ROWS) == GOLDEN
    assert read(GOLDEN) == ROWS


def test_golden_bytes_follow_the_documented_layout() -> None:
    """Decode GOLDEN by hand, with struct, zlib and msgpack only (no pannier)."""
    assert GOLDEN.startswith(MAGIC) and len(MAGIC) == 11
    pos = len(MAGIC)
    frames = []
    while pos < len(GOLDEN):
        length, count, crc = struct.unpack(">III", GOLDEN[pos : pos + 12])
        payload = GOLDEN[pos + 12 : pos + 12 + length]
        assert zlib.crc32(payload) == crc
        frames.append((count, payload))
        pos += 12 + length
    header, data, end = frames
    assert header[0] == 0 and msgpack.unpackb(header[1]) == {
        "format": 1,
        "plugin": "demo",
        "plugin_version": "1.2",
        "prefix": "demo",
        "fields": ["index", "size"],
    }
    unpacker = msgpack.Unpacker(use_list=False)
    unpacker.feed(data[1])
    assert data[0] == 3 and list(unpacker) == ROWS
    assert end[0] == 0 and msgpack.unpackb(end[1]) == {"records": 3}


def test_header_round_trip_keeps_unknown_keys(tmp_path: Path) -> None:
    header = StreamHeader(
        plugin="p", plugin_version="9", prefix="p", fields=("index",), extra={"future": [1, 2]}
    )
    with MetaStreamReader(io.BytesIO(write([], header))) as reader:
        assert reader.header == header
        assert reader.header.extra == {"future": (1, 2)}
        assert reader.header.format_version == FORMAT_VERSION
    (tmp_path / "a.meta").write_bytes(write([((b"x",),)], header))
    copy_stream(tmp_path / "a.meta", tmp_path / "b.meta")
    assert (tmp_path / "b.meta").read_bytes() == (tmp_path / "a.meta").read_bytes()


def test_many_frames_round_trip_with_bounded_memory(tmp_path: Path) -> None:
    rows = [((b"dir", b"%08d" % n), n, "x" * (n % 50)) for n in range(200_000)]
    path = tmp_path / "big.meta"
    with MetaStreamWriter(path, HEADER) as writer:
        for row in rows:
            writer.write_row(row)
    assert path.stat().st_size > 20 * 64 * 1024, "many frames"
    tracemalloc.start()
    try:
        count = 0
        with MetaStreamReader(path) as reader:
            for row, expected in zip(reader.iter_rows(), rows, strict=True):
                assert row == expected
                count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == len(rows)
    assert peak < 4 * 1024 * 1024, f"reading held {peak} bytes at once"


def frames(data: bytes) -> list[bytes]:
    """The frames of a stream (header, data and end frames), as bytes."""
    out, pos = [], len(MAGIC)
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        out.append(data[pos : pos + 12 + length])
        pos += 12 + length
    return out


def test_frames_end_where_the_content_says_so_a_change_touches_one_frame() -> None:
    rows = [((b"dir", b"file-%06d" % n), n) for n in range(20_000)]
    before = frames(write(rows))
    changed = list(rows)
    changed[7_000] = (changed[7_000][0], -1)  # a record changed
    del changed[12_000]  # one removed
    changed.insert(15_000, ((b"dir", b"file-015000a"), 5))  # one added
    after = frames(write(changed))
    assert len(before) > 20 * 2  # most frames are far below the 64 KiB limit
    assert max(len(f) for f in before) < 64 * 1024
    shared = set(before) & set(after)
    # all but the frames holding the three changes (and the end frame) are the same bytes
    assert len(after) - 4 <= len(shared) <= len(after) - 1
    assert read(b"".join([MAGIC, *after])) == changed


@pytest.mark.parametrize("cut", range(len(GOLDEN)))
def test_every_truncation_is_an_error(cut: int) -> None:
    with pytest.raises(MetaStreamError, match=r"demo\.meta") as info:
        read(GOLDEN[:cut])
    message = str(info.value)
    assert "\n" not in message
    if cut >= 11 + 12 + 0x47:  # past the header: the record number is named
        assert "record" in message


@pytest.mark.parametrize("position", range(len(GOLDEN)))
def test_every_flipped_byte_is_an_error(position: int) -> None:
    bad = bytearray(GOLDEN)
    bad[position] ^= 0x01
    with pytest.raises(MetaStreamError, match=r"demo\.meta"):
        read(bytes(bad))


def test_corrupt_frame_names_its_records(tmp_path: Path) -> None:
    rows = [((b"%06d" % n,), n) for n in range(30_000)]
    data = bytearray(write(rows))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(MetaStreamError) as info:
        read(bytes(data), name="attr.meta")
    message = str(info.value)
    assert message.startswith("metadata stream attr.meta is corrupt at record ")
    first = int(message.split("record ")[1].split()[0])
    assert 5_000 < first < 25_000 and "checksum mismatch" in message


def test_rows_before_a_corrupt_frame_are_yielded(tmp_path: Path) -> None:
    rows = [((b"%06d" % n,), n) for n in range(30_000)]
    data = bytearray(write(rows))
    data[-100] ^= 0xFF
    got = []
    with (
        pytest.raises(MetaStreamError),
        MetaStreamReader(io.BytesIO(bytes(data)), name="x") as reader,
    ):
        for row in reader.iter_rows():
            got.append(row)
    assert got and got == rows[: len(got)]


def test_truncated_between_frames_names_the_next_record() -> None:
    data = write(ROWS)
    without_end = data[: -(12 + 10)]
    with pytest.raises(MetaStreamError, match=r"demo.meta is truncated at record 4 "):
        read(without_end)


def test_data_after_the_end_is_an_error() -> None:
    with pytest.raises(MetaStreamError, match="data after the end frame"):
        read(GOLDEN + b"\x00")


def test_not_a_stream() -> None:
    with pytest.raises(MetaStreamError, match=r"demo\.meta is not a pannier metadata stream"):
        read(b"PK\x03\x04 something else entirely")


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.meta"
    with MetaStreamWriter(path, StreamHeader("p", "1", "p", ("index",), format_version=2)):
        pass
    with pytest.raises(MetaStreamError) as info:
        MetaStreamReader(path)
    assert str(info.value) == (
        f"metadata stream {path} has format version 2; this pannier reads versions up to 1 "
        "(upgrade pannier)"
    )


def test_malformed_header_is_refused() -> None:
    payload = msgpack.packb({"format": 1, "plugin": "p"})
    data = MAGIC + struct.pack(">III", len(payload), 0, zlib.crc32(payload)) + payload
    with pytest.raises(MetaStreamError, match=r"demo\.meta: malformed header"):
        read(data)


def test_out_of_order_and_duplicate_writes_are_refused() -> None:
    writer = MetaStreamWriter(io.BytesIO(), HEADER, name="w.meta")
    writer.write_row(((b"b",), 1))
    with pytest.raises(MetaStreamError, match=r"w.meta: record 2 is out of order"):
        writer.write_row(((b"a",), 1))
    with pytest.raises(MetaStreamError, match="out of order"):
        writer.write_row(((b"b",), 1))
    writer.write_row(((b"b", b"c"), 1))  # a child sorts right after its directory
    writer.close()


def test_index_must_be_a_tuple_of_bytes() -> None:
    writer = MetaStreamWriter(io.BytesIO(), HEADER)
    with pytest.raises(TypeError, match="tuple of bytes"):
        writer.write_row((("a",), 1))
    with pytest.raises(TypeError, match="tuple of bytes"):
        writer.write_row(([b"a"], 1))


def test_index_order_is_component_wise_bytes_order() -> None:
    indexes = [(b"a", b"x"), (b"a-b",), (b"a",), (), (b"b",), (b"\xff",), (b"a", b"\x00")]
    ordered = sorted(indexes)
    assert ordered == [(), (b"a",), (b"a", b"\x00"), (b"a", b"x"), (b"a-b",), (b"b",), (b"\xff",)]
    assert read(write([(i, 0) for i in ordered])) == [(i, 0) for i in ordered]


def test_abort_leaves_a_stream_that_reads_as_truncated(tmp_path: Path) -> None:
    path = tmp_path / "aborted.meta"
    with pytest.raises(RuntimeError), MetaStreamWriter(path, HEADER) as writer:
        writer.write_row(((b"a",), 1))
        raise RuntimeError("boom")
    with pytest.raises(MetaStreamError, match=r"aborted\.meta is truncated"):
        list(MetaStreamReader(path).iter_rows())


def test_copy_stream_verifies_its_source(tmp_path: Path) -> None:
    (tmp_path / "bad.meta").write_bytes(GOLDEN[:-3])
    with pytest.raises(MetaStreamError, match=r"bad\.meta is truncated"):
        copy_stream(tmp_path / "bad.meta", io.BytesIO())
    out = io.BytesIO()
    assert copy_stream(io.BytesIO(GOLDEN), out) == 3
    assert out.getvalue() == GOLDEN


def test_a_stream_is_read_once() -> None:
    with MetaStreamReader(io.BytesIO(GOLDEN)) as reader:
        list(reader.iter_rows())
        with pytest.raises(MetaStreamError, match="only once"):
            list(reader.iter_rows())


# --- properties -------------------------------------------------------------------------

indexes = st.lists(st.binary(min_size=1, max_size=8), max_size=4).map(tuple)
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.text(max_size=20),
    st.binary(max_size=40),
    st.tuples(st.integers(min_value=-(2**63), max_value=2**63), st.binary(max_size=5)),
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(indexes, values, max_size=60))
def test_any_rows_round_trip(rows_by_index: dict[tuple[bytes, ...], object]) -> None:
    rows = [(index, rows_by_index[index]) for index in sorted(rows_by_index)]
    assert read(write(rows)) == rows


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(indexes, values, min_size=1, max_size=30), st.data())
def test_any_truncation_is_an_error(
    rows_by_index: dict[tuple[bytes, ...], object], data: st.DataObject
) -> None:
    rows = [(index, rows_by_index[index]) for index in sorted(rows_by_index)]
    encoded = write(rows)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(MetaStreamError, match=r"demo\.meta"):
        read(encoded[:cut])


def test_a_value_msgpack_cannot_encode_fails_the_stream_loudly(tmp_path: Path) -> None:
    path = tmp_path / "bad.meta"
    writer = MetaStreamWriter(path, HEADER)
    writer.write_row(((b"a",), 1))
    with pytest.raises(TypeError, match=r"bad\.meta: record 2 could not be encoded"):
        writer.write_row(((b"b",), 2**70))
    with pytest.raises(MetaStreamError, match="the stream is incomplete"):
        writer.close()
    with pytest.raises(MetaStreamError, match="truncated"):
        list(MetaStreamReader(path).iter_rows())
