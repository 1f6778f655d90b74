"""The index: where each blob is (pack, offset, length), in memory and as index objects.

In memory, :class:`Index` keeps every blob in a compact table: 65,536 buckets chosen by the
first two bytes of the blob id, each a ``bytearray`` of 49-byte records
``id (32) | pack number (u32) | offset (u32) | stored length (u32) | raw length (u32) |
kind (u8)``. A lookup is one C-level search in a bucket of a few dozen records; one
million blobs cost about 50 MB instead of the hundreds a dict of objects would.

On the backend, an *index object* (``index-<hex>``, hex being the BLAKE3 hash of the stored
object) is sealed like any object (associated data ``pannier:index``) and holds the
msgpack map::

    {"version": 1,
     "packs": [[pack id (32 bytes), records (bytes)], ...],
     "supersedes": [hex ids of index objects this one replaces]}

where records are 45-byte ``kind (u8) | blob id (32) | offset (u32 LE) | stored length
(u32 LE) | raw length (u32 LE)`` entries. ``supersedes`` lets prune write a new index
before it deletes the ones it replaces (a reader that sees both ignores the old ones).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping

import attrs
import msgpack

from ..errors import CorruptObjectError, RepositoryFormatError
from . import format as fmt
from .pack import PackEntry

__all__ = [
    "BlobLocation",
    "BlobSet",
    "Index",
    "decode_index_object",
    "decode_index_records",
    "decode_records",
    "encode_index_object",
    "encode_records",
]

INDEX_VERSION = 1
_MEM = struct.Struct("<IIIIB")  # pack number, offset, length, raw length, kind
_REC = fmt.ID_SIZE + _MEM.size
_WIRE = struct.Struct("<B32sIII")
_NBUCKETS = 1 << 16


@attrs.frozen
class BlobLocation:
    """Where a blob is stored: its pack's id, offset and stored length there, the length
    of its plaintext, and its kind."""

    pack_id: bytes
    offset: int
    length: int
    raw_length: int
    kind: int


class Index:
    """A compact map from blob id to :class:`BlobLocation`.

    Adding a blob that is already present keeps the first location. Not thread-safe for
    writers; the repository serialises them.
    """

    def __init__(self) -> None:
        self._buckets: list[bytearray | None] = [None] * _NBUCKETS
        self._packs: list[bytes] = []
        self._pack_no: dict[bytes, int] = {}
        self._pack_blobs: list[int] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, blob_id: object) -> bool:
        return isinstance(blob_id, bytes) and self._find(blob_id)[1] >= 0

    def _find(self, blob_id: bytes) -> tuple[bytearray | None, int]:
        bucket = self._buckets[(blob_id[0] << 8) | blob_id[1]]
        if bucket is None:
            return None, -1
        pos = bucket.find(blob_id)
        while pos >= 0:
            if pos % _REC == 0:
                return bucket, pos
            pos = bucket.find(blob_id, pos + 1)
        return bucket, -1

    def add(
        self, blob_id: bytes, pack_id: bytes, offset: int, length: int, raw_length: int, kind: int
    ) -> bool:
        """Record a blob; False (and nothing changed) when it is already known."""
        if len(blob_id) != fmt.ID_SIZE:
            raise ValueError("a blob id is 32 bytes")
        bucket, pos = self._find(blob_id)
        if pos >= 0:
            return False
        pack_no = self._pack_no.get(pack_id)
        if pack_no is None:
            pack_no = self._pack_no[pack_id] = len(self._packs)
            self._packs.append(pack_id)
            self._pack_blobs.append(0)
        if bucket is None:
            bucket = self._buckets[(blob_id[0] << 8) | blob_id[1]] = bytearray()
        bucket += blob_id
        bucket += _MEM.pack(pack_no, offset, length, raw_length, kind)
        self._pack_blobs[pack_no] += 1
        self._count += 1
        return True

    def add_pack(self, pack_id: bytes, entries: Iterable[PackEntry]) -> int:
        """Record every blob of a pack; return how many were new."""
        added = 0
        for e in entries:
            added += self.add(e.blob_id, pack_id, e.offset, e.length, e.raw_length, e.kind)
        if pack_id not in self._pack_no:  # an empty or fully duplicate pack is still known
            self._pack_no[pack_id] = len(self._packs)
            self._packs.append(pack_id)
            self._pack_blobs.append(0)
        return added

    def add_records(self, pack_id: bytes, records: bytes) -> int:
        """Record every blob of an index object's 45-byte wire records for one pack;
        return how many were new. The fast path for loading indexes."""
        pack_no = self._pack_no.get(pack_id)
        if pack_no is None:
            pack_no = self._pack_no[pack_id] = len(self._packs)
            self._packs.append(pack_id)
            self._pack_blobs.append(0)
        buckets = self._buckets
        pack_mem = _MEM.pack
        added = 0
        for kind, blob_id, offset, length, raw_length in _WIRE.iter_unpack(records):
            key = (blob_id[0] << 8) | blob_id[1]
            bucket = buckets[key]
            if bucket is None:
                bucket = buckets[key] = bytearray()
            else:
                pos = bucket.find(blob_id)
                while pos >= 0 and pos % _REC:
                    pos = bucket.find(blob_id, pos + 1)
                if pos >= 0:
                    continue
            bucket += blob_id
            bucket += pack_mem(pack_no, offset, length, raw_length, kind)
            added += 1
        self._pack_blobs[pack_no] += added
        self._count += added
        return added

    def lookup(self, blob_id: bytes) -> BlobLocation | None:
        """The location of a blob, or None when it is not indexed."""
        bucket, pos = self._find(blob_id)
        if bucket is None or pos < 0:
            return None
        pack_no, offset, length, raw_length, kind = _MEM.unpack_from(bucket, pos + fmt.ID_SIZE)
        return BlobLocation(self._packs[pack_no], offset, length, raw_length, kind)

    def packs(self) -> set[bytes]:
        """The ids of every pack that holds an indexed blob."""
        return set(self._pack_no)

    def __iter__(self) -> Iterator[tuple[bytes, BlobLocation]]:
        """Every ``(blob id, location)``, in no particular order."""
        for bucket in self._buckets:
            if not bucket:
                continue
            for pos in range(0, len(bucket), _REC):
                pack_no, offset, length, raw_length, kind = _MEM.unpack_from(
                    bucket, pos + fmt.ID_SIZE
                )
                yield (
                    bytes(bucket[pos : pos + fmt.ID_SIZE]),
                    BlobLocation(self._packs[pack_no], offset, length, raw_length, kind),
                )

    def by_pack(self) -> dict[bytes, list[tuple[bytes, BlobLocation]]]:
        """The indexed blobs grouped by pack id, each list sorted by offset."""
        groups: dict[bytes, list[tuple[bytes, BlobLocation]]] = {p: [] for p in self._packs}
        for blob_id, loc in self:
            groups[loc.pack_id].append((blob_id, loc))
        for items in groups.values():
            items.sort(key=lambda item: item[1].offset)
        return groups

    def memory_bytes(self) -> int:
        """About how many bytes the table takes (for the benchmark and its test)."""
        return sum(len(b) for b in self._buckets if b) + 64 * len(self._packs)


class BlobSet:
    """A compact set of 32-byte blob ids (32 bytes each, in 65,536 buckets), for the
    millions of ids prune holds. Not thread-safe."""

    def __init__(self, ids: Iterable[bytes] = ()) -> None:
        self._buckets: list[bytearray | None] = [None] * _NBUCKETS
        self._count = 0
        self.update(ids)

    def __len__(self) -> int:
        return self._count

    @staticmethod
    def _pos(bucket: bytearray, blob_id: bytes) -> int:
        pos = bucket.find(blob_id)
        while pos >= 0 and pos % fmt.ID_SIZE:
            pos = bucket.find(blob_id, pos + 1)
        return pos

    def __contains__(self, blob_id: object) -> bool:
        if not isinstance(blob_id, bytes) or len(blob_id) != fmt.ID_SIZE:
            return False
        bucket = self._buckets[(blob_id[0] << 8) | blob_id[1]]
        return bucket is not None and self._pos(bucket, blob_id) >= 0

    def add(self, blob_id: bytes) -> bool:
        """Add an id; False when it was already there."""
        if len(blob_id) != fmt.ID_SIZE:
            raise ValueError("a blob id is 32 bytes")
        key = (blob_id[0] << 8) | blob_id[1]
        bucket = self._buckets[key]
        if bucket is None:
            bucket = self._buckets[key] = bytearray()
        elif self._pos(bucket, blob_id) >= 0:
            return False
        bucket += blob_id
        self._count += 1
        return True

    def update(self, ids: Iterable[bytes]) -> None:
        """Add every id of ``ids``."""
        for blob_id in ids:
            self.add(blob_id)

    def __iter__(self) -> Iterator[bytes]:
        for bucket in self._buckets:
            if bucket:
                for pos in range(0, len(bucket), fmt.ID_SIZE):
                    yield bytes(bucket[pos : pos + fmt.ID_SIZE])


def encode_records(entries: Iterable[PackEntry]) -> bytes:
    """The wire records of a pack's entries."""
    return b"".join(
        _WIRE.pack(e.kind, e.blob_id, e.offset, e.length, e.raw_length) for e in entries
    )


def decode_records(records: bytes) -> list[PackEntry]:
    """The entries of a pack's wire records."""
    return [PackEntry(*r) for r in _WIRE.iter_unpack(records)]


def encode_index_object(
    packs: Mapping[bytes, list[PackEntry] | bytes], supersedes: Iterable[str] = ()
) -> bytes:
    """The msgpack plaintext of an index object for ``packs`` (before sealing); a pack's
    blobs are given as entries or as their wire records."""
    body = {
        "version": INDEX_VERSION,
        "packs": [
            [pack_id, entries if isinstance(entries, bytes) else encode_records(entries)]
            for pack_id, entries in packs.items()
        ],
        "supersedes": sorted(supersedes),
    }
    return bytes(msgpack.packb(body, use_bin_type=True))


def decode_index_records(plain: bytes, name: str) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """``([(pack id, wire records)], superseded index ids)`` of an index object's
    plaintext, records unparsed; CorruptObjectError or RepositoryFormatError naming
    ``name``."""
    try:
        body = msgpack.unpackb(plain, raw=False)
        version = body["version"]
    except Exception:
        raise CorruptObjectError(f"index {name} is corrupt", object_name=name) from None
    if not isinstance(version, int) or version > INDEX_VERSION:
        raise RepositoryFormatError(
            f"index {name} has format version {version}; this pannier reads up to "
            f"{INDEX_VERSION}: upgrade pannier"
        )
    try:
        packs = []
        for pack_id, records in body["packs"]:
            if len(pack_id) != fmt.ID_SIZE or len(records) % _WIRE.size:
                raise ValueError
            packs.append((bytes(pack_id), bytes(records)))
        supersedes = [str(s) for s in body.get("supersedes", [])]
    except (TypeError, ValueError, KeyError):
        raise CorruptObjectError(f"index {name} is corrupt", object_name=name) from None
    return packs, supersedes


def decode_index_object(plain: bytes, name: str) -> tuple[dict[bytes, list[PackEntry]], list[str]]:
    """``({pack id: entries}, superseded index ids)`` of an index object's plaintext;
    CorruptObjectError or RepositoryFormatError naming ``name``."""
    raw, supersedes = decode_index_records(plain, name)
    packs = {pack_id: decode_records(records) for pack_id, records in raw}
    return packs, supersedes
