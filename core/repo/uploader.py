"""Packing and uploading: sealed blobs into packs, packs to the backend, then an index.

:class:`PackUploader` keeps one open pack per blob kind in memory. A pack that reaches the
target size is finished (header, trailer, BLAKE3 name) and handed to background upload
threads through a queue of one, so a writer that outruns the backend waits (bounded
memory). An uploaded pack's blobs enter the in-memory index; every
:data:`INDEX_EVERY_PACKS` uploaded packs, and at :meth:`PackUploader.flush`, an index object
naming them is written: packs always before the index that names them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from typing import IO, cast

import attrs

from ..errors import PannierError, RepositoryError
from .backend_pool import BackendPool
from .crypto import Cipher
from .index import Index, encode_records
from .pack import PackEntry, PackWriter, PartsReader, pack_name

__all__ = ["INDEX_EVERY_PACKS", "PackUploader", "WriteStats"]

#: A long backup writes an index after this many new packs (about 256 MiB), so an
#: interruption leaves little for the next backup to recover from pack headers.
INDEX_EVERY_PACKS = 64


@attrs.define
class WriteStats:
    """Counters of what a repository stored since it was opened."""

    blobs_new: int = 0
    bytes_new: int = 0
    bytes_stored: int = 0
    blobs_dup: int = 0
    packs_uploaded: int = 0


class PackUploader:
    """Packs sealed blobs and uploads the packs. Thread-safe.

    :param index: returns the repository's in-memory index (loaded on first use).
    :param write_index: writes an index object naming the packs given.
    :param threads: upload threads (more than one only with parallel backend instances).
    """

    def __init__(
        self,
        cipher: Cipher,
        pool: BackendPool,
        index: Callable[[], Index],
        write_index: Callable[[Mapping[bytes, list[PackEntry] | bytes]], str],
        *,
        pack_size: int,
        compression_level: int,
        threads: int = 1,
    ) -> None:
        self.cipher = cipher
        self.pool = pool
        self._index = index
        self._write_index = write_index
        self.pack_size = pack_size
        self.compression_level = compression_level
        self.stats = WriteStats()
        self._threads = threads
        self._lock = threading.RLock()
        self._pending: set[bytes] = set()
        self._packers: dict[int, PackWriter] = {}
        self._unsaved: dict[bytes, bytes] = {}  # pack id -> wire records (compact)
        #: Packs found without an index on open; written into the next index.
        self.recovered: dict[bytes, list[PackEntry]] = {}
        self._queue: queue.Queue[tuple[bytes, PartsReader, list[PackEntry]] | None] | None = None
        self._workers: list[threading.Thread] = []
        self._error: BaseException | None = None

    def is_pending(self, blob_id: bytes) -> bool:
        """Whether a blob was added but its pack is not uploaded yet."""
        with self._lock:
            return blob_id in self._pending

    @property
    def has_pending(self) -> bool:
        """Whether anything is added but not yet named by an index."""
        with self._lock:
            return bool(self._pending or self._unsaved)

    def add(self, blob_id: bytes, kind: int, data: bytes | bytearray | memoryview) -> int:
        """Seal and pack one blob unless it is known; return the bytes stored (0 for a
        blob already stored or pending). Raises the error of a failed upload."""
        self.raise_error()
        index = self._index()
        with self._lock:
            if blob_id in self._pending or blob_id in index:
                self.stats.blobs_dup += 1
                return 0
        sealed = self.cipher.seal_payload(data, self.compression_level, blob_id)
        full: PackWriter | None = None
        with self._lock:
            if blob_id in self._pending or blob_id in index:
                self.stats.blobs_dup += 1
                return 0
            self._pending.add(blob_id)
            packer = self._packers.get(kind)
            if packer is None:
                packer = self._packers[kind] = PackWriter()
            packer.add(kind, blob_id, sealed, len(data))
            self.stats.blobs_new += 1
            self.stats.bytes_new += len(data)
            self.stats.bytes_stored += len(sealed)
            if packer.size >= self.pack_size:
                full = packer
                del self._packers[kind]
        if full is not None:
            self._ship(full)
        return len(sealed)

    def _ship(self, packer: PackWriter) -> None:
        pack_id, data = packer.finish_stream(self.cipher)
        with self._lock:
            if self._queue is None:
                self._queue = queue.Queue(maxsize=1)
                for i in range(self._threads):
                    t = threading.Thread(
                        target=self._upload_loop, name=f"pannier-upload-{i}", daemon=True
                    )
                    t.start()
                    self._workers.append(t)
            uploads = self._queue
        uploads.put((pack_id, data, packer.entries))

    def _upload_loop(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                pack_id, data, entries = item
                if self._error is None:
                    self._upload(pack_id, data, entries)
            except BaseException as e:
                self._error = e
            finally:
                self._queue.task_done()

    def _upload(self, pack_id: bytes, data: PartsReader, entries: list[PackEntry]) -> None:
        name = pack_name(pack_id)
        stream = cast(IO[bytes], data)
        self.pool.call(lambda b: b.put_stream(stream, name, data.size))
        index = self._index()
        with self._lock:
            index.add_pack(pack_id, entries)  # in the index before it leaves pending
            self._unsaved[pack_id] = encode_records(entries)
            self._pending.difference_update(e.blob_id for e in entries)
            self.stats.packs_uploaded += 1
            batch = self._take_unsaved(INDEX_EVERY_PACKS)
        if batch:
            self._write_index(batch)

    def _take_unsaved(self, threshold: int) -> dict[bytes, list[PackEntry] | bytes]:
        """The uploaded packs no index names yet (with the recovered ones), once there
        are ``threshold`` of them; the caller holds the lock and writes their index."""
        if len(self._unsaved) < threshold:
            return {}
        packs: dict[bytes, list[PackEntry] | bytes] = dict(self.recovered)
        packs.update(self._unsaved)
        self._unsaved.clear()
        self.recovered.clear()
        return packs

    def raise_error(self) -> None:
        """Raise the error of a failed upload, if any."""
        err = self._error
        if err is not None:
            if isinstance(err, PannierError):
                raise err
            raise RepositoryError(f"uploading a pack failed: {err}") from err

    def flush(self) -> None:
        """Upload every open pack, wait for the uploads, then write an index naming the
        new packs and the recovered ones. Raises the first upload error."""
        with self._lock:
            packers = list(self._packers.values())
            self._packers.clear()
            uploads = self._queue
        for packer in packers:
            if len(packer):
                self._ship(packer)
                uploads = self._queue
        if uploads is not None:
            uploads.join()
        self.raise_error()
        with self._lock:
            # recovered packs too: a writer that only reused them still indexes them
            packs = self._take_unsaved(0) if (self._unsaved or self.recovered) else {}
        if packs:
            self._write_index(packs)

    def close(self) -> None:
        """Stop the upload threads (after :meth:`flush`, or to give up)."""
        with self._lock:
            uploads, workers = self._queue, self._workers
            self._workers = []
        if uploads is not None:
            for _ in workers:
                uploads.put(None)
            for t in workers:
                t.join()
