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

import os
import threading
from typing import IO, Any

import blake3

from ..meta import index_path
from ..source import Index, SourceEntry, open_noatime
from .meta import MetaRecorder

__all__ = [
    "SMALL_FILE",
    "Stored",
    "content_hasher",
    "store_content",
    "store_file",
    "store_files",
]

#: Files up to this size are read in one call and stored as one blob when the chunker
#: would make a single chunk of them anyway.
SMALL_FILE = 256 * 1024


class Stored:
    """Result of storing one file's content (and, read then, its metadata records)."""

    __slots__ = ("chunks", "digest", "error", "fresh", "nread", "records")

    def __init__(
        self, chunks: list[bytes] | None, nread: int, error: str | None, *, fresh: bool = True
    ) -> None:
        self.chunks = chunks
        self.nread = nread
        self.error = error
        self.fresh = fresh  # read now (False: chunk ids reused from the parent)
        self.records: list[Any] | None = None
        self.digest: bytes | None = None  # the content hash asked for, computed while read


def store_file(repo: Any, entry: SourceEntry, index: Index, meta: MetaRecorder) -> Stored:
    """Store a file's content, then read its metadata records while it is hot in the
    page cache (a worker thread runs this)."""
    stored = store_content(repo, entry, digest=meta.content_digest)
    if stored.error is None:
        stored.records = meta.compute(entry, index, digest=stored.digest)
    return stored


def store_files(
    repo: Any, work: list[tuple[SourceEntry, Index]], meta: MetaRecorder
) -> list[Stored]:
    """:func:`store_file` for each ``(entry, index)`` in turn (a batch of small files
    given to one worker thread)."""
    return [store_file(repo, entry, index, meta) for entry, index in work]


_LARGE_FILE = threading.Lock()


def content_hasher(name: str | None) -> Any:
    """A new hasher of the content digest ``name`` (see ``MetaPlugin.content_digest``),
    or None for None or a name the engine does not compute."""
    if name == "blake3":
        return blake3.blake3()
    return None


def store_content(repo: Any, entry: SourceEntry, *, digest: str | None = None) -> Stored:
    """Read one file and store its chunks; never raises for an unreadable file.

    With ``digest`` (a hash name, see :func:`content_hasher`) the result's ``digest`` is
    that hash of the bytes read, computed on the way.
    """
    size = entry.stat.st_size
    try:
        if size <= SMALL_FILE and entry.opener is None and entry.root is not None:
            data = _read_small(index_path(entry.root, entry.index), size)
            if data is not None:
                stored = Stored([repo.add_blob(data)[0]] if data else [], len(data), None)
                if digest == "blake3":
                    stored.digest = blake3.blake3(data).digest()
                return stored
        hasher = content_hasher(digest)
        with entry.open() as f:
            if entry.stat.st_size <= SMALL_FILE and not entry.sparse:
                data = f.read(SMALL_FILE + 1)
                if len(data) <= SMALL_FILE:
                    stored = Stored([repo.add_blob(data)[0]] if data else [], len(data), None)
                    if hasher is not None:
                        hasher.update(data)
                        stored.digest = hasher.digest()
                    return stored
                counted: _Counted = _Prefixed(data, f, hasher)
            else:
                counted = _Counted(f, hasher)
            # one large file at a time: the repository already chunks, hashes, compresses
            # and encrypts it in parallel, and several at once would multiply its buffers
            with _LARGE_FILE:
                chunks = list(repo.store_stream(counted))
            stored = Stored(chunks, counted.nread, None)
            if hasher is not None:
                stored.digest = hasher.digest()
            return stored
    except OSError as e:
        return Stored(None, 0, e.strerror or str(e))


def _read_small(path: bytes, size: int) -> bytes | None:
    """The content of the small file at ``path`` (``size`` bytes when it was listed),
    read with one system call into a buffer of its size; None when the file has grown
    (the caller reads it as a large file)."""
    fd = open_noatime(path)
    try:
        data = os.read(fd, size + 1)  # one byte more: a file that grew is seen
    finally:
        os.close(fd)
    return data if len(data) <= size else None


class _Counted:
    """A read-only file wrapper counting the bytes read (and hashing them, given a
    ``hasher``)."""

    def __init__(self, f: IO[bytes], hasher: Any = None) -> None:
        self._f = f
        self._hasher = hasher
        self.nread = 0

    def read(self, n: int = -1) -> bytes:
        data = self._f.read(n)
        self.nread += len(data)
        if self._hasher is not None:
            self._hasher.update(data)
        return data

    def readinto(self, buf: Any) -> int:
        n = int(self._f.readinto(buf) or 0)  # type: ignore[attr-defined]
        self.nread += n
        if self._hasher is not None and n:
            self._hasher.update(memoryview(buf).cast("B")[:n])
        return n


class _Prefixed(_Counted):
    """``data`` already read, followed by the rest of ``f``."""

    def __init__(self, data: bytes, f: IO[bytes], hasher: Any = None) -> None:
        super().__init__(f, hasher)
        self._head = data
        self.nread = len(data)
        if hasher is not None:
            hasher.update(data)

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                head, self._head = self._head, b""
                return head + super().read()
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
