"""Content-defined chunking: cut a stream into chunks whose boundaries follow the content.

pannier uses FastCDC 2020 (the Cython ``pyfastcdc``, measured the fastest correct chunker
available: about 4 GB/s on one core) with a minimum of 256 KiB, an average of about
1.25 MiB and a maximum of 4 MiB. In an encrypted repository the chunker's gear table is
seeded with the secret ``chunker_seed`` of the master key, so the sizes of stored chunks
do not reveal which known file was backed up. Tree and metadata streams are cut by a
second chunker with small sizes (see ``STREAM_CHUNK_*`` in ``pannier.repo.format``).

The chunks of a stream do not depend on how it is read: :meth:`Chunker.chunk_file` reads
large buffers and re-cuts the last, incomplete chunk of each buffer with the next one, so
the result equals :meth:`Chunker.chunk_bytes` of the whole content (a test checks it).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import IO, Any

from pyfastcdc import FastCDC

from . import format as fmt

__all__ = ["Chunker"]

#: How much of a stream is read at once (the first read is smaller).
READ_SIZE = 2 * 1024 * 1024
FIRST_READ_SIZE = 1024 * 1024


class Chunker:
    """Cuts bytes and files into content-defined chunks.

    :param seed: the gear-table seed (0 for an unencrypted repository).
    :param min_size: the smallest chunk, except a stream's last one.
    :param avg_size: FastCDC's average parameter (chunks average ``avg + min``).
    :param max_size: the largest chunk.
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        min_size: int = fmt.CHUNK_MIN,
        avg_size: int = fmt.CHUNK_AVG,
        max_size: int = fmt.CHUNK_MAX,
    ) -> None:
        self.seed = seed
        self.min_size = min_size
        self.avg_size = avg_size
        self.max_size = max_size
        self._cdc = FastCDC(
            avg_size, min_size=min_size, max_size=max_size, normalized_chunking=1, seed=seed
        )

    def chunk_bytes(self, data: bytes | bytearray | memoryview) -> Iterator[memoryview]:
        """The chunks of ``data``, as views into it. Empty data yields no chunk."""
        if not data:
            return
        if len(data) <= self.min_size:
            yield memoryview(data)
            return
        for chunk in self._cdc.cut_buf(data):
            yield chunk.data

    def chunk_file(self, source: IO[bytes] | int | str | os.PathLike[str]) -> Iterator[memoryview]:
        """The chunks of a file object, an open file descriptor or a path, read in
        2 MiB buffers; each chunk stays valid after the next one is produced."""
        if isinstance(source, int):
            with os.fdopen(os.dup(source), "rb", buffering=0) as f:
                yield from self._chunk_stream(f)
        elif isinstance(source, (str, os.PathLike)):
            with open(source, "rb", buffering=0) as f:
                yield from self._chunk_stream(f)
        else:
            yield from self._chunk_stream(source)

    def _chunk_stream(self, f: IO[bytes]) -> Iterator[memoryview]:
        carry: bytes | bytearray = b""
        size = FIRST_READ_SIZE  # small files need no large buffer
        readinto = getattr(f, "readinto", None)
        if getattr(type(f), "readinto", None) is io.RawIOBase.readinto:
            readinto = None  # a raw stream that implements only read()
        while True:
            if readinto is not None:
                buf = bytearray(len(carry) + size)
                buf[: len(carry)] = carry
                with memoryview(buf) as view:
                    got = _readinto_full(readinto, view[len(carry) :])
                eof = got < size
                if eof:
                    del buf[len(carry) + got :]
            else:
                block = _read_full(f, size)
                eof = len(block) < size
                buf = bytearray(carry) + block if carry else bytearray(block)
            if eof:
                yield from self.chunk_bytes(buf)
                return
            chunks = list(self.chunk_bytes(buf))
            # The last chunk may have been cut only by the end of the buffer: re-cut it
            # together with what follows.
            yield from chunks[:-1]
            carry = bytes(chunks[-1])
            size = READ_SIZE


def _readinto_full(readinto: Any, view: memoryview) -> int:
    """Fill ``view`` from ``readinto``, short only at end of file."""
    got = 0
    while got < len(view):
        n = readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _read_full(f: IO[bytes], size: int) -> bytes:
    """Read ``size`` bytes, or fewer only at end of file (short reads are retried)."""
    first = f.read(size)
    if first is None:
        first = b""
    if len(first) == size or not first:
        return first
    parts = [first]
    got = len(first)
    while got < size:
        more = f.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)
