"""Spool files: a backup's tree and metadata streams, kept in memory up to a bound, then
spilled to an unnamed temporary file, encrypted.

A backup writes its tree stream and each metadata stream (every file name, size and
owner of the source) in one pass, then stores each once it is complete. A stream up to
:data:`MEMORY_LIMIT` stays in memory; beyond it, :class:`EncryptedSpool` moves it to a
temporary file in ``$TMPDIR`` that has no name (unlinked as it is created, mode 0600,
gone when the process exits, even when killed), in frames sealed with AES-256-GCM under a
random key that exists only in this process's memory. The file therefore never holds a
name or any other plaintext of the source, and a frame altered on disk is detected when
read back.

On disk, frame ``i`` holds the bytes ``[i * FRAME_SIZE, (i + 1) * FRAME_SIZE)`` of the
stream as ``AES-256-GCM(key, nonce = 4 zero bytes || i as 8 bytes big-endian, frame)``
(ciphertext then 16-byte tag) at offset ``i * (FRAME_SIZE + 16)``. Frames are written
once, when full; the unfinished last frame stays in memory. Memory use is bounded by
:data:`MEMORY_LIMIT` before the spill and by about two frames after it.
"""

from __future__ import annotations

import io
import tempfile
from typing import IO, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["FRAME_SIZE", "MEMORY_LIMIT", "EncryptedSpool", "spooled_file"]

#: Bytes of a stream kept in memory before it is spilled to disk.
MEMORY_LIMIT = 1 << 20
#: Plaintext bytes per sealed frame on disk.
FRAME_SIZE = 256 << 10
_TAG = 16
_SEALED = FRAME_SIZE + _TAG


def spooled_file(encrypted: bool = True) -> IO[bytes]:
    """A temporary binary file for one stream: in memory up to :data:`MEMORY_LIMIT`,
    then on disk in an unnamed 0600 file. With ``encrypted`` (the default) what reaches
    the disk is sealed under a key held only in memory (:class:`EncryptedSpool`); without
    it the file holds the plaintext (``tempfile.SpooledTemporaryFile``)."""
    if not encrypted:
        return tempfile.SpooledTemporaryFile(max_size=MEMORY_LIMIT)
    return cast(IO[bytes], EncryptedSpool())


def _nonce(frame: int) -> bytes:
    return b"\x00\x00\x00\x00" + frame.to_bytes(8, "big")


class EncryptedSpool(io.RawIOBase):
    """A seekable binary file that is written by appending and read anywhere.

    Bytes are kept in memory up to ``memory_limit``; beyond it every full frame is sealed
    and written to an unnamed temporary file (see the module docstring). Writing appends
    at the end whatever the position (like a file opened in ``"a"`` mode); reading starts
    at the position set by :meth:`seek`. A frame whose bytes on disk were altered raises
    OSError when read. :meth:`close` releases the file and forgets the key.
    """

    def __init__(self, memory_limit: int = MEMORY_LIMIT, frame_size: int = FRAME_SIZE) -> None:
        super().__init__()
        self._limit = memory_limit
        self._frame = frame_size
        self._aead: AESGCM | None = None
        self._disk: IO[bytes] | None = None
        self._frames = 0  # frames on disk
        self._tail = bytearray()  # the bytes after the last frame on disk
        self._pos = 0
        self._at_end = False  # written since the last seek: the position is the end
        self._threshold = memory_limit + 1  # tail length that makes write spill
        self._cached: tuple[int, bytes] | None = None  # (frame number, its plaintext)

    @property
    def spilled(self) -> bool:
        """Whether part of the stream is on disk."""
        return self._disk is not None

    def readable(self) -> bool:
        """Always True."""
        return True

    def writable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """Always True."""
        return True

    def _size(self) -> int:
        return self._frames * self._frame + len(self._tail)

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        """Append ``data``; return its length. The position moves to the end."""
        tail = self._tail
        tail += data
        self._at_end = True
        if len(tail) >= self._threshold:
            self._overflow()
        return len(data)

    def _overflow(self) -> None:
        """The tail reached the threshold: start spilling, or spill full frames."""
        if self.closed:
            self._tail = bytearray()
            raise ValueError("write to a closed spool")
        if self._disk is None:
            self._disk = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
            self._aead = AESGCM(AESGCM.generate_key(bit_length=256))
            self._threshold = self._frame
        self._spill()

    def _spill(self) -> None:
        assert self._disk is not None and self._aead is not None
        full = len(self._tail) // self._frame
        self._disk.seek(self._frames * (self._frame + _TAG))
        with memoryview(self._tail) as view:
            for i in range(full):
                with view[i * self._frame : (i + 1) * self._frame] as part:
                    self._disk.write(self._aead.encrypt(_nonce(self._frames), part, None))
                self._frames += 1
        del self._tail[: full * self._frame]

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the read position; return it."""
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self.tell() + offset
        elif whence == io.SEEK_END:
            pos = self._size() + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos, self._at_end = pos, False
        return pos

    def tell(self) -> int:
        """The position."""
        return self._size() if self._at_end else self._pos

    def _read_frame(self, number: int) -> bytes:
        if self._cached is not None and self._cached[0] == number:
            return self._cached[1]
        assert self._disk is not None and self._aead is not None
        self._cached = None  # one frame in memory at a time
        size = self._frame + _TAG
        self._disk.seek(number * size)
        sealed = self._disk.read(size)
        try:
            plain = self._aead.decrypt(_nonce(number), sealed, None)
        except InvalidTag:
            raise OSError(f"the temporary spool file was altered (frame {number})") from None
        self._cached = (number, plain)
        return plain

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Read up to ``len(buffer)`` bytes at the position into ``buffer``; return how
        many (0 at the end)."""
        if self.closed:
            raise ValueError("read from a closed spool")
        if self._at_end:
            self._pos, self._at_end = self._size(), False
        with memoryview(buffer) as view, view.cast("B") as out:
            want, done = len(out), 0
            on_disk = self._frames * self._frame
            while done < want and self._pos < self._size():
                if self._pos < on_disk:
                    number, start = divmod(self._pos, self._frame)
                    src: bytes | bytearray = self._read_frame(number)
                else:
                    start, src = self._pos - on_disk, self._tail
                n = min(want - done, len(src) - start)
                with memoryview(src) as whole, whole[start : start + n] as part:
                    out[done : done + n] = part
                done += n
                self._pos += n
            return done

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes from the position (all the rest when negative or None)."""
        if size is None or size < 0:
            size = max(0, self._size() - self.tell())
        buf = bytearray(size)
        n = self.readinto(buf)
        del buf[n:]
        return bytes(buf)

    def close(self) -> None:
        """Release the temporary file and the key."""
        if self._disk is not None:
            self._disk.close()
            self._disk = None
        self._aead = None
        self._cached = None
        self._tail = bytearray()
        self._threshold = 0  # the next write raises
        super().close()
