"""The encrypted spool of tree and metadata streams: what goes in comes out, nothing of
it reaches the disk in clear, memory stays bounded, and an altered frame is detected."""

from __future__ import annotations

import io
import os
import tracemalloc

import pytest
from pannier.engine.spool import FRAME_SIZE, MEMORY_LIMIT, EncryptedSpool, spooled_file

MARKER = b"NAME-MARKER-5f0e"


def records(total: int) -> bytes:
    """Tree-like bytes: many short records holding the marker."""
    out = bytearray()
    i = 0
    while len(out) < total:
        out += MARKER + b"/dir/file-%07d\x00" % i
        i += 1
    return bytes(out[:total])


def deleted_fds() -> set[int]:
    """The open file descriptors of this process whose file has no name."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").endswith(" (deleted)"):
                out.add(int(fd))
        except OSError:
            continue  # the descriptor listdir itself used
    return out


def write_in_pieces(f: io.RawIOBase, data: bytes, piece: int) -> None:
    for i in range(0, len(data), piece):
        f.write(data[i : i + piece])


@pytest.mark.parametrize("size", [0, 1, 1000, MEMORY_LIMIT, MEMORY_LIMIT + 1, 5_000_003])
@pytest.mark.parametrize("piece", [97, 65536])
def test_what_is_written_is_read_back(size: int, piece: int) -> None:
    data = records(size)
    with EncryptedSpool() as f:
        write_in_pieces(f, data, piece)
        assert f.spilled == (size > MEMORY_LIMIT)
        assert f.seek(0) == 0
        assert f.read() == data
        assert f.read() == b""
        f.seek(0)
        got = bytearray()
        buf = bytearray(1 << 21)  # how the chunker reads it
        while n := f.readinto(buf):
            got += buf[:n]
        assert got == data


def test_reads_from_any_position() -> None:
    data = records(3 * FRAME_SIZE + MEMORY_LIMIT + 123)
    with EncryptedSpool() as f:
        f.write(data)
        for pos in (0, FRAME_SIZE - 1, FRAME_SIZE, 2 * FRAME_SIZE + 5, len(data) - 3):
            f.seek(pos)
            assert f.read(FRAME_SIZE + 10) == data[pos : pos + FRAME_SIZE + 10]
        assert f.seek(-4, io.SEEK_END) == len(data) - 4
        assert f.read() == data[-4:]
        f.seek(len(data) + 10)
        assert f.read(5) == b""


def test_writes_append_after_a_read() -> None:
    first, second = records(MEMORY_LIMIT + 5000), b"more" * 100_000
    with EncryptedSpool() as f:
        f.write(first)
        f.seek(0)
        assert f.read(10) == first[:10]
        f.write(second)
        f.seek(0)
        assert f.read() == first + second


def test_the_file_on_disk_holds_no_plaintext() -> None:
    data = records(5_000_000)
    before = deleted_fds()
    with EncryptedSpool() as f:
        f.write(data)
        spilled = deleted_fds() - before
        assert len(spilled) == 1  # one file, unnamed: deleted as it was created
        fd = spilled.pop()
        raw = _read_fd(fd)
        assert len(raw) >= len(data) - FRAME_SIZE
        assert MARKER not in raw
        assert os.fstat(fd).st_mode & 0o777 == 0o600
    assert deleted_fds() - before == set()


def _read_fd(fd: int) -> bytes:
    with open(f"/proc/self/fd/{fd}", "rb") as f:
        return f.read()


def test_an_altered_frame_is_detected() -> None:
    before = deleted_fds()
    with EncryptedSpool() as f:
        f.write(records(MEMORY_LIMIT + 2 * FRAME_SIZE))
        spilled = deleted_fds() - before
        assert len(spilled) == 1
        with open(f"/proc/self/fd/{spilled.pop()}", "r+b") as disk:
            disk.seek(FRAME_SIZE + 20)  # inside frame 1
            byte = disk.read(1)
            disk.seek(FRAME_SIZE + 20)
            disk.write(bytes([byte[0] ^ 1]))
        f.seek(0)
        assert len(f.read(FRAME_SIZE)) == FRAME_SIZE  # frame 0 is intact
        with pytest.raises(OSError, match="spool file was altered"):
            f.read(10)


def test_memory_stays_bounded() -> None:
    data = records(8 << 20)
    tracemalloc.start()
    try:
        with EncryptedSpool() as f:
            write_in_pieces(f, data, 4096)
            f.seek(0)
            buf = bytearray(1 << 20)
            tracemalloc.reset_peak()
            base, _ = tracemalloc.get_traced_memory()
            while f.readinto(buf):
                pass
            _, read_peak = tracemalloc.get_traced_memory()
            read_peak -= base
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    # the test's own 8 MiB of data plus about one limit and two frames
    assert peak < len(data) + MEMORY_LIMIT + 4 * FRAME_SIZE + (1 << 20)
    assert read_peak < 4 * FRAME_SIZE  # a sealed frame, its plaintext, a read buffer


def test_closing_forgets_everything() -> None:
    f = EncryptedSpool()
    f.write(records(MEMORY_LIMIT + FRAME_SIZE))
    f.close()
    assert f.closed
    with pytest.raises(ValueError):
        f.write(b"x")
    with pytest.raises(ValueError):
        f.read(1)


def test_plain_spool_on_request() -> None:
    f = spooled_file(encrypted=False)
    f.write(b"abc")
    f.seek(0)
    assert f.read() == b"abc"
    assert not isinstance(f, EncryptedSpool)
    f.close()
    assert isinstance(spooled_file(), EncryptedSpool)
