"""Packs: many sealed blobs in one remote object, with a header at the end.

Layout of a pack (``data-<hex>``, where hex is the plain BLAKE3 hash of the whole object)::

    blob 0 | blob 1 | ... | blob n-1 | header | header length (u32 LE) | b"PNRPACK1"

Each blob is the sealed payload of one chunk (see :mod:`pannier.repo.crypto`): encrypted,
``nonce || AES-GCM(flag || data) || tag`` bound to the blob's id; unencrypted, just
``flag || data``. The header is sealed the same way (associated data
``pannier:pack-header``); its plaintext is one version byte (1) then, per blob in order, a
41-byte record ``kind (u8) | id (32) | stored length (u32 LE) | raw length (u32 LE)``.
Offsets are the running sum of stored lengths.

Because every pack describes itself, an index can be rebuilt from packs alone, and the
packs of an interrupted backup (uploaded but not yet indexed) are found and reused.
"""

from __future__ import annotations

import bisect
import io
import struct
from collections.abc import Sequence
from typing import Any

import attrs
import blake3

from ..backend import Backend
from ..errors import CorruptObjectError, FileMissingError, RepositoryFormatError
from . import format as fmt
from .crypto import Cipher

__all__ = ["PackEntry", "PackWriter", "parse_pack", "read_pack_header"]

PACK_HEADER_VERSION = 1
_RECORD = struct.Struct("<B32sII")
_TRAILER = struct.Struct("<I8s")


@attrs.frozen
class PackEntry:
    """One blob of a pack: kind, id, offset and stored length in the pack, and the length
    of its plaintext."""

    kind: int
    blob_id: bytes
    offset: int
    length: int
    raw_length: int


class PackWriter:
    """Collects sealed blobs in memory until the pack is finished. Not thread-safe: the
    repository guards it with its lock."""

    def __init__(self) -> None:
        self._parts: list[bytes | bytearray] = []
        self.entries: list[PackEntry] = []
        self.size = 0

    def __len__(self) -> int:
        return len(self.entries)

    def add(
        self, kind: int, blob_id: bytes, sealed: bytes | bytearray, raw_length: int
    ) -> PackEntry:
        """Append a sealed blob; return its entry."""
        entry = PackEntry(kind, blob_id, self.size, len(sealed), raw_length)
        self._parts.append(sealed)
        self.entries.append(entry)
        self.size += len(sealed)
        return entry

    def finish(self, cipher: Cipher) -> tuple[bytes, bytes]:
        """``(pack id, pack bytes)``: the blobs, the sealed header and the trailer."""
        pack_id, reader = self.finish_stream(cipher)
        return pack_id, reader.read()

    def finish_stream(self, cipher: Cipher) -> tuple[bytes, PartsReader]:
        """``(pack id, reader)``: like :meth:`finish` without copying the blobs into one
        buffer; the reader is seekable, so an upload can be retried."""
        header = encode_header(self.entries)
        sealed = cipher.seal(header, fmt.AAD_PACK_HEADER)
        self._parts.append(sealed)
        self._parts.append(_TRAILER.pack(len(sealed), fmt.PACK_MAGIC))
        hasher = blake3.blake3()
        for part in self._parts:
            hasher.update(part)
        parts, self._parts = self._parts, []
        return hasher.digest(), PartsReader(parts)


class PartsReader(io.RawIOBase):
    """A seekable, read-only file over a list of byte strings (a pack being uploaded)."""

    def __init__(self, parts: list[bytes | bytearray]) -> None:
        super().__init__()
        self._parts = parts
        self._starts: list[int] = []
        pos = 0
        for p in parts:
            self._starts.append(pos)
            pos += len(p)
        self.size = pos
        self._pos = 0

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """Always True: a failed upload can be retried from the start."""
        return True

    def tell(self) -> int:
        """The current position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` (from the start, the current position or the end)."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _pieces(self, size: int) -> list[memoryview]:
        """Views of the next ``size`` bytes (fewer at the end), advancing the position."""
        pieces = []
        while size > 0 and self._pos < self.size:
            i = bisect.bisect_right(self._starts, self._pos) - 1
            part = self._parts[i]
            start = self._pos - self._starts[i]
            n = min(len(part) - start, size)
            pieces.append(memoryview(part)[start : start + n])
            self._pos += n
            size -= n
        return pieces

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the current position; return the bytes copied."""
        view = memoryview(buffer).cast("B")
        done = 0
        for piece in self._pieces(len(view)):
            view[done : done + len(piece)] = piece
            done += len(piece)
        return done

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when negative)."""
        if size is None or size < 0:
            size = self.size - self._pos
        return b"".join(self._pieces(size))

    def readall(self) -> bytes:
        """Everything from the current position."""
        return self.read(-1)


def encode_header(entries: Sequence[PackEntry]) -> bytes:
    """The plaintext of a pack header for ``entries``."""
    return bytes([PACK_HEADER_VERSION]) + b"".join(
        _RECORD.pack(e.kind, e.blob_id, e.length, e.raw_length) for e in entries
    )


def decode_header(plain: bytes, name: str, blobs_end: int) -> list[PackEntry]:
    """The entries of a pack header's plaintext; CorruptObjectError naming the pack when
    the header does not describe exactly the bytes before it."""
    if not plain:
        raise CorruptObjectError(f"pack {name} has an empty header", object_name=name)
    if plain[0] > PACK_HEADER_VERSION:
        raise RepositoryFormatError(
            f"pack {name} has header version {plain[0]}; this pannier reads up to "
            f"{PACK_HEADER_VERSION}: upgrade pannier"
        )
    body = memoryview(plain)[1:]
    if len(body) % _RECORD.size:
        raise CorruptObjectError(f"pack {name} has a malformed header", object_name=name)
    entries: list[PackEntry] = []
    offset = 0
    for kind, blob_id, length, raw_length in _RECORD.iter_unpack(body):
        entries.append(PackEntry(kind, blob_id, offset, length, raw_length))
        offset += length
    if offset != blobs_end:
        raise CorruptObjectError(
            f"pack {name} header describes {offset} bytes of blobs, the pack has {blobs_end}",
            object_name=name,
        )
    return entries


def _split_trailer(tail: bytes, pack_size: int, name: str) -> int:
    """The sealed header's length, from the last 12 bytes of a pack."""
    if pack_size < _TRAILER.size or len(tail) < _TRAILER.size:
        raise CorruptObjectError(f"pack {name} is truncated", object_name=name)
    header_len, magic = _TRAILER.unpack(tail[-_TRAILER.size :])
    if magic != fmt.PACK_MAGIC:
        raise CorruptObjectError(f"pack {name} is truncated or not a pack", object_name=name)
    if header_len + _TRAILER.size > pack_size:
        raise CorruptObjectError(f"pack {name} has a bad header length", object_name=name)
    return int(header_len)


def parse_pack(data: bytes, cipher: Cipher, name: str) -> list[PackEntry]:
    """The entries of a whole pack held in memory (header authenticated)."""
    header_len = _split_trailer(data, len(data), name)
    end = len(data) - _TRAILER.size
    start = end - header_len
    plain = cipher.open(memoryview(data)[start:end], fmt.AAD_PACK_HEADER, f"pack {name} header")
    return decode_header(plain, name, start)


def read_pack_header(backend: Backend, name: str, size: int, cipher: Cipher) -> list[PackEntry]:
    """The entries of the remote pack ``name`` of ``size`` bytes, read with ranged gets
    (the tail, then the header when it is longer). Raises CorruptObjectError or
    FileMissingError."""
    if size < 0:
        size = backend.query(name)
        if size < 0:
            raise FileMissingError(f"{name} does not exist")
    guess = min(size, 64 * 1024)
    tail = backend.get_range(name, size - guess, guess)
    if len(tail) != guess:
        raise CorruptObjectError(f"pack {name} is truncated", object_name=name)
    header_len = _split_trailer(tail, size, name)
    need = header_len + _TRAILER.size
    if need > len(tail):
        tail = backend.get_range(name, size - need, need)
        if len(tail) != need:
            raise CorruptObjectError(f"pack {name} is truncated", object_name=name)
    sealed = memoryview(tail)[len(tail) - need : len(tail) - _TRAILER.size]
    plain = cipher.open(sealed, fmt.AAD_PACK_HEADER, f"pack {name} header")
    return decode_header(plain, name, size - need)


def pack_name(pack_id: bytes) -> str:
    """The remote name of a pack."""
    return fmt.object_name(fmt.ObjectType.DATA, pack_id)
