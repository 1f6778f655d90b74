"""Reading a file and storing its content (a backup's worker threads run this).

:func:`store_file` reads one regular file of a source, stores its content in the
repository and returns a :class:`Stored` with the chunk ids, the bytes read and, read
while the file is hot in the page cache, its metadata records. A file that cannot be read
gives a :class:`Stored` with an ``error`` instead of raising: the backup goes on.

Small files (up to :data:`SMALL_FILE`) are read in one call and stored as one blob,
exactly the chunk the chunker would cut; larger ones go through the repository's parallel
chunking pipeline one at a time, which bounds memory.
"""

from __future__ import annotations

import threading
from typing import IO, Any

from ..source import Index, SourceEntry
from .meta import MetaRecorder

__all__ = ["SMALL_FILE", "Stored", "store_content", "store_file"]

#: Files up to this size are read in one call and stored as one blob when the chunker
#: would make a single chunk of them anyway.
SMALL_FILE = 256 * 1024


class Stored:
    """Result of storing one file's content (and, read then, its metadata records)."""

    __slots__ = ("chunks", "error", "fresh", "nread", "records")

    def __init__(
        self, chunks: list[bytes] | None, nread: int, error: str | None, *, fresh: bool = True
    ) -> None:
        self.chunks = chunks
        self.nread = nread
        self.error = error
        self.fresh = fresh  # read now (False: chunk ids reused from the parent)
        self.records: list[Any] | None = None


def store_file(repo: Any, entry: SourceEntry, index: Index, meta: MetaRecorder) -> Stored:
    """Store a file's content, then read its metadata records while it is hot in the
    page cache (a worker thread runs this)."""
    stored = store_content(repo, entry)
    if stored.error is None:
        stored.records = meta.compute(entry, index)
    return stored


_LARGE_FILE = threading.Lock()


def store_content(repo: Any, entry: SourceEntry) -> Stored:
    """Read one file and store its chunks; never raises for an unreadable file."""
    try:
        with entry.open() as f:
            if entry.stat.st_size <= SMALL_FILE and not entry.sparse:
                data = f.read(SMALL_FILE + 1)
                if len(data) <= SMALL_FILE:
                    if not data:
                        return Stored([], 0, None)
                    blob_id, _ = repo.add_blob(data)
                    return Stored([blob_id], len(data), None)
                counted: _Counted = _Prefixed(data, f)
            else:
                counted = _Counted(f)
            # one large file at a time: the repository already chunks, hashes, compresses
            # and encrypts it in parallel, and several at once would multiply its buffers
            with _LARGE_FILE:
                chunks = list(repo.store_stream(counted))
            return Stored(chunks, counted.nread, None)
    except OSError as e:
        return Stored(None, 0, e.strerror or str(e))


class _Counted:
    """A read-only file wrapper counting the bytes read."""

    def __init__(self, f: IO[bytes]) -> None:
        self._f = f
        self.nread = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.nread += len(data)
        return data

    def readinto(self, buf: Any) -> int:
        n = self._f.readinto(buf)  # type: ignore[attr-defined]
        self.nread += n or 0
        return int(n or 0)


class _Prefixed(_Counted):
    """``data`` already read, followed by the rest of ``f``."""

    def __init__(self, data: bytes, f: IO[bytes]) -> None:
        super().__init__(f)
        self._head = data
        self.nread = len(data)

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                head, self._head = self._head, b""
                rest = self._f.read()
                self.nread += len(rest)
                return head + rest
            data, self._head = self._head[:n], self._head[n:]
            return data
        return super().read(n)

    def readinto(self, buf: Any) -> int:
        if self._head:
            view = memoryview(buf).cast("B")
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        return super().readinto(buf)
