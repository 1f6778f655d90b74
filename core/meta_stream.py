"""The metadata stream: how one meta plugin's records of one snapshot are stored.

A metadata stream is a byte stream written by :class:`MetaStreamWriter` and read back by
:class:`MetaStreamReader`. It holds a header (the stream format version, the plugin that
wrote it, the plugin's version and the names of its record fields) and then the records,
each one a msgpack array of field values, sorted by index.

Layout (all integers big-endian)::

    magic      11 bytes  b"\\x89PNMETA\\r\\n\\x1a\\n"
    frame      header frame: payload is a msgpack map (see StreamHeader)
    frame ...  data frames: payload is ``count`` msgpack arrays, one per record
    frame      end frame: payload is a msgpack map {"records": total}

    frame   = payload_length (u32) | count (u32) | crc32(payload) (u32) | payload

The header and end frames have ``count == 0``; a data frame has ``count >= 1``. A record
is the array ``[index, field1, ..., fieldN]`` in the order the header's ``fields`` names,
optionally followed by one msgpack map of further fields (unknown fields kept from a newer
plugin version). An index is an array of byte strings (path components).

Guarantees a test checks:

* the reader's memory is bounded by one frame (a frame is closed once it holds 64 KiB of
  records, a size the writer looks at every 32 records), however many records the stream
  holds;
* frame boundaries follow the content: besides the size limit, the writer closes a frame
  after each record whose last index component has a CRC-32 with its low
  :data:`FRAME_CUT_BITS` bits zero (one record in 32 on average). A record added, changed
  or removed changes only its own frame, so the streams of two snapshots share every
  other frame byte for byte, and the repository stores those parts once;
* a stream cut short anywhere, including exactly between two frames, raises
  :class:`~pannier.MetaStreamError` naming the stream and the record number;
* a flipped byte anywhere raises :class:`~pannier.MetaStreamError` (CRC-32 of each frame);
* a stream with a newer format version than :data:`FORMAT_VERSION` raises
  :class:`~pannier.MetaStreamError` naming the stream and both versions;
* records must be written in strictly increasing index order (component-wise bytes
  order); writing one out of order raises :class:`~pannier.MetaStreamError`.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import IO, Any

import attrs
import msgpack

from .errors import MetaStreamError

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MetaStreamReader",
    "MetaStreamWriter",
    "StreamHeader",
    "check_index",
    "copy_stream",
]

#: The stream format version this pannier writes and the newest it reads.
FORMAT_VERSION = 1

#: The first bytes of every metadata stream.
MAGIC = b"\x89PNMETA\r\n\x1a\n"

_FRAME = struct.Struct(">III")
_FRAME_SIZE = _FRAME.size
#: A data frame is flushed once its payload reaches this many bytes.
FRAME_TARGET_BYTES = 64 * 1024
#: A frame also ends after a record whose last index component's CRC-32 has these low bits
#: all zero: content-defined frame boundaries (see the module docstring).
FRAME_CUT_BITS = 5
_CUT_MASK = (1 << FRAME_CUT_BITS) - 1
#: How often (in rows) the writer looks at the size of the frame it is filling.
_CHECK_EVERY = 32
#: A frame longer than this is taken as corruption rather than allocated.
_MAX_FRAME_BYTES = 256 * 1024 * 1024

PathOrFile = str | bytes | os.PathLike[str] | os.PathLike[bytes] | IO[bytes]


@attrs.frozen
class StreamHeader:
    """The header of a metadata stream.

    :param plugin: the name of the plugin that wrote the stream.
    :param plugin_version: that plugin's version string.
    :param prefix: the plugin's stream prefix (the stream's name in a snapshot).
    :param fields: the record field names, in the order record arrays hold them; the
        first is always ``"index"``.
    :param format_version: the stream format version (:data:`FORMAT_VERSION` on write).
    :param extra: header keys this pannier does not know, kept for a round trip.
    """

    plugin: str
    plugin_version: str
    prefix: str
    fields: tuple[str, ...]
    format_version: int = FORMAT_VERSION
    extra: Mapping[str, Any] = attrs.field(factory=dict, eq=False)

    def to_map(self) -> dict[str, Any]:
        """The header as the msgpack map stored in the stream."""
        data: dict[str, Any] = dict(self.extra)
        data.update(
            format=self.format_version,
            plugin=self.plugin,
            plugin_version=self.plugin_version,
            prefix=self.prefix,
            fields=list(self.fields),
        )
        return data

    @classmethod
    def from_map(cls, data: Any, name: str) -> StreamHeader:
        """Build a header from its stored map; a malformed one raises MetaStreamError."""
        known = ("format", "plugin", "plugin_version", "prefix", "fields")
        if not isinstance(data, Mapping) or any(k not in data for k in known):
            raise MetaStreamError(f"metadata stream {name}: malformed header")
        fields = data["fields"]
        if (
            not isinstance(data["format"], int)
            or not isinstance(fields, (list, tuple))
            or not fields
            or fields[0] != "index"
            or not all(isinstance(f, str) for f in fields)
        ):
            raise MetaStreamError(f"metadata stream {name}: malformed header")
        return cls(
            plugin=str(data["plugin"]),
            plugin_version=str(data["plugin_version"]),
            prefix=str(data["prefix"]),
            fields=tuple(fields),
            format_version=data["format"],
            extra={k: v for k, v in data.items() if k not in known},
        )


def _describe(target: PathOrFile, name: str | None) -> str:
    if name is not None:
        return name
    if isinstance(target, (str, bytes, os.PathLike)):
        return os.fsdecode(target)
    fname = getattr(target, "name", None)
    if isinstance(fname, (str, bytes)):
        return os.fsdecode(fname)
    return "<stream>"


def _open(target: PathOrFile, mode: str) -> tuple[IO[bytes], bool]:
    if isinstance(target, (str, bytes, os.PathLike)):
        return open(target, mode + "b"), True
    return target, False


def _pack_frame(payload: bytes, count: int) -> bytes:
    return _FRAME.pack(len(payload), count, zlib.crc32(payload)) + payload


def check_index(index: object) -> tuple[bytes, ...]:
    """Return ``index`` if it is a tuple of byte strings, else raise TypeError."""
    if type(index) is not tuple or not all(type(c) is bytes for c in index):
        raise TypeError(f"a record index is a tuple of bytes, not {index!r}")
    return index


class MetaStreamWriter:
    """Write records into a metadata stream, in content-defined frames of at most 64 KiB.

    :param target: a path (the file is created) or a binary file object open for writing
        (left open by :meth:`close`).
    :param header: the stream header; its ``fields`` say what each row holds.
    :param name: the stream's name in error messages (default: the path or file name).

    Rows are tuples ``(index, value1, ..., valueN[, extra_map])``. Indexes must increase
    strictly; :meth:`close` writes the end frame, without which a reader reports the
    stream as truncated.
    """

    def __init__(
        self, target: PathOrFile, header: StreamHeader, *, name: str | None = None
    ) -> None:
        self.name = _describe(target, name)
        self.header = header
        self._file, self._owned = _open(target, "w")
        self._packer = msgpack.Packer(use_bin_type=True)
        self._file.write(MAGIC + _pack_frame(self._packer.pack(header.to_map()), 0))
        # Rows are packed straight into the packer's buffer (no bytes object per row);
        # its size is looked at every _CHECK_EVERY rows.
        self._frame = msgpack.Packer(use_bin_type=True, autoreset=False)
        self._pack = self._frame.pack
        self._flushed = 0
        self._pending = 0
        self._next_check = _CHECK_EVERY
        self._last: Any = None
        self._closed = False
        self._broken: str | None = None

    @property
    def rows_written(self) -> int:
        """How many rows were written so far."""
        return self._flushed + self._pending

    def write_row(self, row: Sequence[Any]) -> None:
        """Append one record row; its index (``row[0]``) must exceed the previous one.

        The index must be a tuple of bytes (TypeError otherwise). A row msgpack cannot
        encode raises TypeError and leaves the writer unusable: :meth:`close` then
        raises MetaStreamError rather than finish a stream that lacks records.
        """
        index = row[0]
        try:
            ordered = index > self._last
        except TypeError:
            check_index(index)
            if self._last is not None:
                raise
            ordered = True
        if not ordered:
            raise MetaStreamError(
                f"metadata stream {self.name}: record {self.rows_written + 1} is out of "
                f"order (index {index!r} after {self._last!r})"
            )
        if self._broken is not None:
            raise MetaStreamError(self._broken)
        try:
            self._pack(row)
        except Exception as exc:
            self._broken = (
                f"metadata stream {self.name}: record {self.rows_written + 1} could not be "
                f"encoded ({exc}); the stream is incomplete"
            )
            raise TypeError(self._broken) from exc
        self._last = index
        self._pending += 1
        if index and not zlib.crc32(index[-1]) & _CUT_MASK:
            self._flush()
        elif self._pending >= self._next_check:
            self._next_check += _CHECK_EVERY
            if len(self._frame.getbuffer()) >= FRAME_TARGET_BYTES:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            payload = self._frame.bytes()
            self._frame.reset()
            self._file.write(_pack_frame(payload, self._pending))
            self._flushed += self._pending
            self._pending = 0
            self._next_check = _CHECK_EVERY

    def close(self) -> None:
        """Write the pending frame and the end frame; close the file if we opened it."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._broken is not None:
                raise MetaStreamError(self._broken)
            self._flush()
            end = self._packer.pack({"records": self.rows_written})
            self._file.write(_pack_frame(end, 0))
            self._file.flush()
        finally:
            if self._owned:
                self._file.close()

    def abort(self) -> None:
        """Stop without writing the end frame (the stream then reads as truncated)."""
        self._closed = True
        if self._owned:
            self._file.close()

    def __enter__(self) -> MetaStreamWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class MetaStreamReader:
    """Read a metadata stream written by :class:`MetaStreamWriter`.

    :param source: a path or a binary file object open for reading (left open by
        :meth:`close`).
    :param name: the stream's name in error messages (default: the path or file name).

    Opening reads and checks the magic and the header: a file that is not a metadata
    stream, or one of a newer format version, raises MetaStreamError naming it.
    """

    def __init__(self, source: PathOrFile, *, name: str | None = None) -> None:
        self.name = _describe(source, name)
        self._file, self._owned = _open(source, "r")
        try:
            magic = self._file.read(len(MAGIC))
            if magic != MAGIC:
                if MAGIC.startswith(magic):
                    raise MetaStreamError(f"metadata stream {self.name} is truncated in its header")
                raise MetaStreamError(f"{self.name} is not a pannier metadata stream (bad magic)")
            payload, count = self._read_frame(0)
            if payload is None or count != 0:
                raise MetaStreamError(f"metadata stream {self.name}: malformed header")
            header_map = msgpack.unpackb(payload, raw=False, use_list=False)
            if isinstance(header_map, Mapping) and isinstance(header_map.get("format"), int):
                version = header_map["format"]
                if version > FORMAT_VERSION:
                    raise MetaStreamError(
                        f"metadata stream {self.name} has format version {version}; this "
                        f"pannier reads versions up to {FORMAT_VERSION} (upgrade pannier)"
                    )
            self.header = StreamHeader.from_map(header_map, self.name)
        except (ValueError, msgpack.UnpackException) as exc:
            self.close()
            raise MetaStreamError(f"metadata stream {self.name}: corrupt header ({exc})") from exc
        except BaseException:
            self.close()
            raise
        self._started = False

    def _read_frame(self, records_before: int) -> tuple[bytes | None, int]:
        """Read one frame: (payload, count); checks its length and CRC."""
        head = self._file.read(_FRAME_SIZE)
        if len(head) < _FRAME_SIZE:
            raise MetaStreamError(
                f"metadata stream {self.name} is truncated at record {records_before + 1} "
                f"(frame header cut short)"
            )
        length, count, crc = _FRAME.unpack(head)
        if length > _MAX_FRAME_BYTES:
            raise MetaStreamError(
                f"metadata stream {self.name} is corrupt at record {records_before + 1} "
                f"(frame length {length})"
            )
        payload = self._file.read(length)
        if len(payload) < length:
            raise MetaStreamError(
                f"metadata stream {self.name} is truncated at record {records_before + 1} "
                f"(frame of {count} records cut short)"
            )
        if zlib.crc32(payload) != crc:
            last = records_before + max(count, 1)
            raise MetaStreamError(
                f"metadata stream {self.name} is corrupt at record {records_before + 1} "
                f"(checksum mismatch in the frame of records {records_before + 1}-{last})"
            )
        return payload, count

    def iter_frames(self) -> Iterator[tuple[bytes, int]]:
        """Yield each data frame's verified ``(payload, count)``; check the end frame.

        This is the raw layer :func:`copy_stream` uses; most callers want
        :meth:`iter_rows`.
        """
        if self._started:
            raise MetaStreamError(f"metadata stream {self.name} can be read only once")
        self._started = True
        total = 0
        while True:
            payload, count = self._read_frame(total)
            assert payload is not None
            if count == 0:
                self._check_end(payload, total)
                return
            yield payload, count
            total += count

    def _check_end(self, payload: bytes, total: int) -> None:
        try:
            end = msgpack.unpackb(payload, raw=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise MetaStreamError(
                f"metadata stream {self.name} is corrupt after record {total} (end frame)"
            ) from exc
        if not isinstance(end, Mapping) or end.get("records") != total:
            raise MetaStreamError(
                f"metadata stream {self.name} is corrupt after record {total} "
                f"(end frame counts {end.get('records') if isinstance(end, Mapping) else '?'})"
            )
        if self._file.read(1):
            raise MetaStreamError(
                f"metadata stream {self.name} is corrupt after record {total} "
                f"(data after the end frame)"
            )

    def iter_rows(self) -> Iterator[tuple[Any, ...]]:
        """Yield every record row (a tuple whose first item is the index), in order.

        Raises MetaStreamError naming the stream and record number on truncation,
        corruption or an index out of order; the rows before the bad one are yielded.
        """
        total = 0
        last: tuple[bytes, ...] = ()
        first = True
        for payload, count in self.iter_frames():
            unpacker = msgpack.Unpacker(None, raw=False, use_list=False, max_buffer_size=0)
            unpacker.feed(payload)
            n = 0
            try:
                for row in unpacker:
                    n += 1
                    if type(row) is not tuple or not row:
                        raise TypeError("a record is not an array")
                    index = row[0]
                    if first:
                        first = False
                    elif not index > last:
                        raise MetaStreamError(
                            f"metadata stream {self.name} is corrupt at record {total + n} "
                            f"(index out of order)"
                        )
                    last = index
                    yield row
            except (ValueError, TypeError, IndexError, msgpack.UnpackException) as exc:
                raise MetaStreamError(
                    f"metadata stream {self.name} is corrupt at record {total + n + 1} ({exc})"
                ) from exc
            if n != count:
                raise MetaStreamError(
                    f"metadata stream {self.name} is corrupt at record {total + n + 1} "
                    f"(frame holds {n} records, its header says {count})"
                )
            total += count

    def close(self) -> None:
        """Close the file if the reader opened it."""
        if self._owned:
            self._file.close()

    def __enter__(self) -> MetaStreamReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def copy_stream(source: PathOrFile, target: PathOrFile, *, name: str | None = None) -> int:
    """Copy a metadata stream byte for byte, verifying every frame on the way.

    This is how a stream whose plugin is absent is kept: nothing in it is decoded beyond
    its header, so records of any plugin version survive unchanged. Returns the number of
    records copied; a truncated or corrupt source raises MetaStreamError and the caller
    discards the partial target.
    """
    with MetaStreamReader(source, name=name) as reader:
        out, owned = _open(target, "w")
        try:
            packer = msgpack.Packer(use_bin_type=True)
            out.write(MAGIC + _pack_frame(packer.pack(reader.header.to_map()), 0))
            total = 0
            for payload, count in reader.iter_frames():
                out.write(_pack_frame(payload, count))
                total += count
            out.write(_pack_frame(packer.pack({"records": total}), 0))
            out.flush()
        finally:
            if owned:
                out.close()
    return total
