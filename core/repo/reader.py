"""Reading blobs back: ranged reads, verification, and read-ahead for many blobs.

Every blob read is verified: opened (authenticated when encrypted), decompressed and
re-hashed against its id. :meth:`BlobReader.iter_blobs` reads neighbouring blobs of one
pack with a single ranged get and runs reads and decryption ahead in threads, within a
bounded window. On a backend without ranged reads the last few packs read are kept whole
in memory instead. On a remote backend (one that does not declare itself ``local``) a
short ranged read fetches the whole run of small blobs around it within a fixed window of
:data:`SPAN_SIZE` bytes of the pack (its bounds are blob boundaries the index knows), and
the last spans read, up to :data:`SPAN_CACHE_BYTES`, are kept: the other blobs of that run
are served from memory, one request for many files. As every read inside a run and window
gets the same span, a pack is downloaded about once, in whatever order its blobs are asked
for (several restore threads ask for the blobs of one pack out of order).
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice

from ..errors import CorruptObjectError, FileMissingError
from .backend_pool import BackendPool
from .crypto import Cipher, decode_payload
from .index import BlobLocation, Index
from .pack import pack_name

__all__ = ["PACK_CACHE_SIZE", "SPAN_CACHE_BYTES", "SPAN_SIZE", "BlobReader"]

#: Packs kept in memory when the backend cannot read ranges.
PACK_CACHE_SIZE = 3
#: Blobs of one pack closer than this are read together.
MAX_GAP = 256 * 1024
#: The most one batched read spans.
MAX_SPAN = 4 * 1024 * 1024
#: The most one span read from a remote backend covers.
SPAN_SIZE = 16 * 1024 * 1024
#: The most bytes of spans kept in memory (remote backends with ranged reads); the span
#: read last is kept whatever its size.
SPAN_CACHE_BYTES = 64 * 1024 * 1024
#: A blob at least this long is read on its own, never as part of a span (it is worth its
#: request, and the chunks of large files are read in parallel rather than wait for one
#: span).
SPAN_MIN_DIRECT = 1024 * 1024

_Batch = list[tuple[bytes, BlobLocation | None]]


class BlobReader:
    """Reads and verifies blobs. Thread-safe.

    :param index: returns the repository's in-memory index.
    :param before_read: called with a blob id before it is looked up (the repository
        flushes when the blob is still waiting to be uploaded).
    :param executor: returns the thread pool used for read-ahead.
    """

    def __init__(
        self,
        cipher: Cipher,
        pool: BackendPool,
        index: Callable[[], Index],
        before_read: Callable[[bytes], None],
        executor: Callable[[], ThreadPoolExecutor],
        *,
        window: int,
    ) -> None:
        self.cipher = cipher
        self.pool = pool
        self._index = index
        self._before_read = before_read
        self._executor = executor
        self._window = window
        caps = pool.backend.get_capabilities()
        self._ranged = caps.ranged_get
        self._spans = caps.ranged_get and not caps.local
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_lock = threading.Lock()
        # span reads: the blob ends of each pack (built from the index when first needed)
        self._ends: dict[str, list[tuple[int, int]]] = {}  # (end, length) of each blob
        self._ends_of: Index | None = None
        self._span_cache: list[tuple[str, int, int, Future[bytes]]] = []

    def read_range(self, name: str, offset: int, length: int) -> bytes | memoryview:
        """``length`` bytes of the object ``name`` from ``offset``: a ranged get (through
        the span cache on a remote backend, :meth:`_read_span`), or, on a backend without
        ranged reads, a slice of the whole object kept in a small cache of the last packs
        read (so reading a pack's blobs downloads it once)."""
        if self._spans:
            return self._read_span(name, offset, length)
        if self._ranged:
            return self.pool.call(lambda b: b.get_range(name, offset, length))
        with self._cache_lock:
            data = self._cache.get(name)
            if data is not None:
                self._cache.move_to_end(name)
        if data is None:
            data = self.pool.call(lambda b: b.get_bytes(name))
            with self._cache_lock:
                self._cache[name] = data
                while len(self._cache) > PACK_CACHE_SIZE:
                    self._cache.popitem(last=False)
        return memoryview(data)[offset : offset + length]

    def _read_span(self, name: str, offset: int, length: int) -> bytes | memoryview:
        """``read_range`` on a remote backend: served from a cached span when one covers
        the range (waiting for it when another thread is downloading it); else a range of
        small blobs becomes a new span (:meth:`_span_bounds`), and one holding a blob of
        :data:`SPAN_MIN_DIRECT` bytes or more is read as is. A failed span read is
        forgotten (the next read tries again) and re-raised."""
        stop = offset + length
        fut: Future[bytes] | None = None
        mine = False
        with self._cache_lock:
            for i, span in enumerate(self._span_cache):
                if span[0] == name and span[1] <= offset and stop <= span[2]:
                    self._span_cache.append(self._span_cache.pop(i))
                    _, start, end, fut = span
                    break
            else:
                start, end = self._span_bounds(name, offset, stop)
                if (start, end) != (offset, stop):
                    fut = Future()
                    self._span_cache.append((name, start, end, fut))
                    kept = end - start
                    for i in range(len(self._span_cache) - 2, -1, -1):
                        kept += self._span_cache[i][2] - self._span_cache[i][1]
                        if kept > SPAN_CACHE_BYTES:
                            del self._span_cache[: i + 1]
                            break
                    mine = True
        if fut is None:
            return self.pool.call(lambda b: b.get_range(name, offset, length))
        if mine:
            try:
                fut.set_result(self.pool.call(lambda b: b.get_range(name, start, end - start)))
            except BaseException as e:
                fut.set_exception(e)
                with self._cache_lock:
                    self._span_cache = [s for s in self._span_cache if s[3] is not fut]
        data = fut.result()
        if len(data) != end - start:  # a short read: do not trust the span
            return self.pool.call(lambda b: b.get_range(name, offset, length))
        return memoryview(data)[offset - start : stop - start]

    def _span_bounds(self, name: str, offset: int, stop: int) -> tuple[int, int]:
        """The span to read for ``[offset, stop)`` of pack ``name``: the run of blobs
        shorter than :data:`SPAN_MIN_DIRECT` around it, within the window of
        :data:`SPAN_SIZE` bytes of the pack that holds ``offset`` (windows are fixed, so
        every read in a run gets the same span). ``(offset, stop)``, a read as asked,
        when the range holds a large blob (read on its own) or the pack is unknown.
        Called with the cache lock held."""
        index = self._index()
        if index is not self._ends_of:  # a pack added to it later is read without spans
            self._ends = {
                pack_name(pid): [(loc.offset + loc.length, loc.length) for _, loc in items]
                for pid, items in index.by_pack().items()
            }
            self._ends_of = index
        blobs = self._ends.get(name)
        if not blobs:
            return offset, stop
        # blobs[first:after] are the blobs of the range (they end in (offset, stop])
        first = bisect_right(blobs, (offset, -1))
        if first < len(blobs) and blobs[first][0] == offset:
            first += 1
        after = bisect_right(blobs, (stop, -1))
        if after < len(blobs) and blobs[after][0] == stop:
            after += 1
        if any(length >= SPAN_MIN_DIRECT for _, length in islice(blobs, first, after)):
            return offset, stop
        window = offset - offset % SPAN_SIZE
        start = offset
        for k in range(first - 1, -1, -1):  # back over the small blobs just before
            blob_end, length = blobs[k]
            if blob_end != start or blob_end - length < window or length >= SPAN_MIN_DIRECT:
                break
            start = blob_end - length
        end, limit = stop, window + SPAN_SIZE
        for blob_end, length in islice(blobs, after, None):  # on over those just after
            if blob_end - length != end or blob_end > limit or length >= SPAN_MIN_DIRECT:
                break
            end = blob_end
        return start, end

    def decode_blob(self, blob_id: bytes, sealed: bytes | memoryview, pack: str) -> bytes:
        """Open, decompress and verify one sealed blob read from ``pack``;
        CorruptObjectError naming the blob and the pack."""
        what = f"blob {blob_id.hex()} in pack {pack}"
        if len(sealed) == 0:
            raise CorruptObjectError(f"{what} is truncated", object_name=pack)
        data = decode_payload(self.cipher.open(sealed, blob_id, what), what)
        if self.cipher.blob_id(data) != blob_id:
            raise CorruptObjectError(f"{what} does not match its id", object_name=pack)
        return data

    def read_blob(self, blob_id: bytes) -> bytes:
        """The verified plaintext of a blob; CorruptObjectError naming the blob (and its
        pack) when it is not indexed, its pack is missing, or it is damaged."""
        self._before_read(blob_id)
        loc = self._index().lookup(blob_id)
        if loc is None:
            raise CorruptObjectError(
                f"blob {blob_id.hex()} is not in the index", object_name=blob_id.hex()
            )
        name = pack_name(loc.pack_id)
        try:
            sealed = self.read_range(name, loc.offset, loc.length)
        except FileMissingError:
            raise CorruptObjectError(
                f"pack {name} is missing (needed for blob {blob_id.hex()})", object_name=name
            ) from None
        return self.decode_blob(blob_id, sealed, name)

    def iter_blobs(self, blob_ids: Iterable[bytes], *, ahead: bool = True) -> Iterator[bytes]:
        """The verified plaintexts of ``blob_ids``, in order, read ahead in threads; with
        ``ahead=False`` read in the calling thread (no hand-over: cheaper when the
        reads never wait, as from a local disk, and the caller has other threads busy)."""
        batches = self._batches(blob_ids)
        if not ahead:
            for batch in batches:
                yield from self._read_batch(batch)
            return
        first = next(batches, None)
        if first is None:
            return
        second = next(batches, None)
        if second is None:  # one read: no hand-over to another thread
            yield from self._read_batch(first)
            return
        pool = self._executor()
        window: deque[Future[list[bytes]]] = deque()
        for batch in _chain(first, second, batches):
            window.append(pool.submit(self._read_batch, batch))
            if len(window) > self._window:
                yield from window.popleft().result()
        while window:
            yield from window.popleft().result()

    def _batches(self, blob_ids: Iterable[bytes]) -> Iterator[_Batch]:
        """Runs of neighbouring blobs of one pack (a blob not indexed is alone; with
        spans, so is a blob read on its own, so that a run of small blobs is read
        through the spans and never a second time in a larger read)."""
        batch: _Batch = []
        start = end = 0
        alone = False  # the batch is a blob to be read on its own
        for bid in blob_ids:
            self._before_read(bid)
            loc = self._index().lookup(bid)
            first = batch[0][1] if batch else None
            large = self._spans and loc is not None and loc.length >= SPAN_MIN_DIRECT
            if batch and (
                loc is None
                or first is None
                or loc.pack_id != first.pack_id
                or not 0 <= loc.offset - end <= MAX_GAP
                or loc.offset + loc.length - start > MAX_SPAN
                or large
                or alone
            ):
                yield batch
                batch = []
            alone = large
            if not batch and loc is not None:
                start = loc.offset
            batch.append((bid, loc))
            if loc is not None:
                end = loc.offset + loc.length
        if batch:
            yield batch

    def _read_batch(self, batch: _Batch) -> list[bytes]:
        first = batch[0][1]
        if first is None or len(batch) == 1:
            return [self.read_blob(batch[0][0])]
        last = batch[-1][1]
        assert last is not None
        start, stop = first.offset, last.offset + last.length
        name = pack_name(first.pack_id)
        try:
            data = memoryview(self.read_range(name, start, stop - start))
        except FileMissingError:
            raise CorruptObjectError(f"pack {name} is missing", object_name=name) from None
        out = []
        for bid, loc in batch:
            assert loc is not None
            piece = data[loc.offset - start : loc.offset - start + loc.length]
            out.append(self.decode_blob(bid, piece, name))
        return out


def _chain(first: _Batch, second: _Batch, rest: Iterator[_Batch]) -> Iterator[_Batch]:
    yield first
    yield second
    yield from rest
