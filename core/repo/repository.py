"""The repository: blobs in packs, an index, snapshots, keys and locks on one backend.

:meth:`Repository.init` creates one, :meth:`Repository.open` opens one. Writers store
content with :meth:`~Repository.store_stream` (chunk, hash, compress, encrypt and pack in
a thread pool, upload in the background, with bounded queues), make it durable with
:meth:`~Repository.flush`, and finish with :meth:`~Repository.save_snapshot`. Write order
is always: packs, then the index that names them, then the snapshot. An interrupted backup
leaves packs no index names; the next :meth:`~Repository.open` finds them by their headers
and reuses them without uploading again.

The work is shared by a few collaborators, each in its own module: the backend instances
(:class:`~pannier.repo.backend_pool.BackendPool`), packing and uploading
(:class:`~pannier.repo.uploader.PackUploader`), reading
(:class:`~pannier.repo.reader.BlobReader`), the config and keys
(:mod:`pannier.repo.config`, :mod:`pannier.repo.keys`) and locks
(:mod:`pannier.repo.locks`).

Thread safety: :meth:`~Repository.add_blob`, :meth:`~Repository.store_stream`,
:meth:`~Repository.store_bytes`, :meth:`~Repository.submit_stream`,
:meth:`~Repository.has_blob`, :meth:`~Repository.read_blob` and
:meth:`~Repository.iter_blobs` may be called from any number of threads.
"""

from __future__ import annotations

import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, Any, TypeVar

import blake3

from ..backend import Backend
from ..errors import (
    ConfigError,
    CorruptObjectError,
    FileMissingError,
    FolderMissingError,
    RepositoryError,
    RepositoryFormatError,
)
from . import format as fmt
from .backend_pool import BackendPool
from .chunker import Chunker
from .config import encode_config, new_settings, open_with_password, read_config
from .crypto import Cipher, KdfParams, MasterKey, check_encryption, make_key_object
from .index import Index, decode_index_object, decode_index_records, encode_index_object
from .keys import KeyInfo, add_key, list_keys, remove_key
from .locks import RepositoryLock
from .pack import PackEntry, parse_pack, read_pack_header
from .reader import BlobReader
from .snapshot import Snapshot
from .uploader import PackUploader, WriteStats

__all__ = ["Repository", "register_referenced_blobs"]

T = TypeVar("T")

ReferencedBlobs = Callable[["Repository", Snapshot], Iterable[bytes]]
_walkers: list[ReferencedBlobs] = []
_malloc_tuned = False


def register_referenced_blobs(fn: ReferencedBlobs) -> ReferencedBlobs:
    """Register ``fn(repo, snapshot) -> blob ids``: every blob a snapshot references
    (its stream blobs and the content blobs its streams name). The engine registers the
    walker of its tree stream; ``check`` and ``prune`` use it. Usable as a decorator."""
    if fn not in _walkers:
        _walkers.append(fn)
    return fn


def _limit_malloc_arenas() -> None:
    """Ask glibc for at most two malloc arenas (unless ``MALLOC_ARENA_MAX`` is set), and
    to map every buffer of 1 MiB or more on its own (unless ``MALLOC_MMAP_THRESHOLD_``
    is set).

    With one arena per thread, the short-lived megabyte buffers of the worker threads
    (chunks, compressed and sealed blobs) fragment many arenas and a backup's resident
    memory grows by a third for no speed gained. glibc also raises its mmap threshold
    each time such a buffer is freed, after which they come from the heap and stay
    resident: a fixed threshold returns each to the system when freed (peak RSS of a
    backup of 357 MB of large files 89 -> 78 MiB, for about 0.3 s more system time).
    Done once per process, before the repository starts threads; a no-op where glibc is
    not the C library."""
    global _malloc_tuned
    if _malloc_tuned or sys.platform != "linux":
        return
    _malloc_tuned = True
    try:
        import ctypes

        mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
        if mallopt is not None:
            if not os.environ.get("MALLOC_ARENA_MAX"):
                mallopt(-8, 2)  # M_ARENA_MAX
            if not os.environ.get("MALLOC_MMAP_THRESHOLD_"):
                mallopt(-3, 1 << 20)  # M_MMAP_THRESHOLD (fixed: no dynamic raise)
    except OSError:
        pass


class Repository:
    """An open repository. Build one with :meth:`init` or :meth:`open`.

    :ivar backend: the storage backend.
    :ivar id: the repository id (64 hex digits).
    :ivar config: the settings (``compression``, ``chunker``, ``pack_size``, ...).
    :ivar chunker: cuts file content (large chunks).
    :ivar stream_chunker: cuts tree and metadata streams (small chunks, see
        :meth:`chunker_of`).
    :ivar key_name: the key object that opened it (None when not encrypted).
    :ivar stats: counters of what was stored since it was opened.
    :ivar index_errors: damaged index objects skipped on load (their packs were found
        again from their headers).
    """

    def __init__(
        self,
        backend: Backend,
        cipher: Cipher,
        repo_id: str,
        config: dict[str, Any],
        *,
        workers: int | None = None,
        key_name: str | None = None,
        backend_factory: Callable[[], Backend] | None = None,
    ) -> None:
        _limit_malloc_arenas()
        self.backend = backend
        self.cipher = cipher
        self.id = repo_id
        self.config = config
        self.key_name = key_name
        self.compression_level = int(config.get("compression", 3))
        self.pack_size = int(config.get("pack_size", fmt.PACK_TARGET_SIZE))
        cmin, cavg, cmax = config.get("chunker", (fmt.CHUNK_MIN, fmt.CHUNK_AVG, fmt.CHUNK_MAX))
        seed = cipher.master.chunker_seed if cipher.master else 0
        self.chunker = Chunker(seed, min_size=cmin, avg_size=cavg, max_size=cmax)
        smin, savg, smax = config.get(
            "stream_chunker", (fmt.STREAM_CHUNK_MIN, fmt.STREAM_CHUNK_AVG, fmt.STREAM_CHUNK_MAX)
        )
        self.stream_chunker = Chunker(seed, min_size=smin, avg_size=savg, max_size=smax)
        self.workers = workers or max(2, os.cpu_count() or 2)
        self.index_errors: list[str] = []
        self._pool = BackendPool(backend, backend_factory)
        self._index: Index | None = None
        self._index_lock = threading.Lock()
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._file_pool: ThreadPoolExecutor | None = None
        self._file_slots = threading.BoundedSemaphore(4 * self.workers)
        self._uploader = PackUploader(
            cipher,
            self._pool,
            lambda: self.index,
            self.write_index,
            pack_size=self.pack_size,
            compression_level=self.compression_level,
            threads=1,  # one upload at a time: bounded memory; reads use the pool
        )
        self._reader = BlobReader(
            cipher,
            self._pool,
            lambda: self.index,
            self._before_read,
            self._blob_executor,
            window=self.workers + 1,
        )
        self._locks: list[RepositoryLock] = []
        self._listing: dict[str, int] | None = None  # the listing made by open, used once
        self._closed = False
        _open_repositories.add(self)

    def _forget_thread_pools(self) -> None:
        """In a forked child (a restore helper): the pools' threads stayed in the parent,
        so new pools are made when needed."""
        self._executor = None
        self._file_pool = None

    # --- creating and opening ---------------------------------------------------------

    @classmethod
    def init(
        cls,
        backend: Backend,
        password: str | None,
        *,
        encryption: str = "repokey",
        compression_level: int = 3,
        kdf: KdfParams | None = None,
        workers: int | None = None,
        backend_factory: Callable[[], Backend] | None = None,
    ) -> Repository:
        """Create a repository on ``backend`` and return it open.

        Encryption ``repokey`` needs a non-empty password (ConfigError otherwise);
        ``none`` ignores it. A location that already holds a repository raises
        RepositoryError; a missing folder is created. The key object is written before
        the config, so a location with a config is always complete.
        """
        encryption = check_encryption(encryption)
        if not 0 <= compression_level <= 22:
            raise ConfigError(f"compression level {compression_level} is not between 0 and 22")
        if encryption == "repokey" and not password:
            raise ConfigError("encryption 'repokey' needs a password (set PANNIER_PASSWORD)")
        try:
            backend.test()
        except FolderMissingError:
            backend.create_folder()
        if backend.exists(fmt.CONFIG_NAME):
            raise RepositoryError(f"{backend.display_name} already holds a repository")
        repo_id = os.urandom(32).hex()
        master = MasterKey.generate() if encryption == "repokey" else None
        cipher = Cipher(master)
        key_name = None
        if master is not None:
            assert password is not None
            key_name = fmt.object_name(fmt.ObjectType.KEY, os.urandom(8))
            backend.put_bytes(key_name, make_key_object(master, password, kdf=kdf))
        settings = new_settings(compression_level)
        backend.put_bytes(fmt.CONFIG_NAME, encode_config(cipher, repo_id, encryption, settings))
        return cls(
            backend,
            cipher,
            repo_id,
            settings,
            workers=workers,
            key_name=key_name,
            backend_factory=backend_factory,
        )

    @classmethod
    def open(
        cls,
        backend: Backend,
        password: str | Callable[[], str | None] | None,
        *,
        workers: int | None = None,
        backend_factory: Callable[[], Backend] | None = None,
    ) -> Repository:
        """Open the repository on ``backend``.

        ``password`` may be a callable, called only when the repository is encrypted
        (so a prompt is shown only when needed). ``backend_factory`` makes more instances
        of the same backend for parallel transfers (see :meth:`call_backend`); the
        repository closes those, the caller closes ``backend``.

        Raises RepositoryNotFoundError when there is none, RepositoryFormatError when it
        is of a newer format, ConfigError when it is encrypted and no password is given,
        WrongPasswordError when no key opens with the password, CorruptObjectError naming
        a damaged config or key.
        """
        public = read_config(backend)
        if public["encryption"] == "repokey" and callable(password):
            password = password()
        listing = {e.name: e.size for e in backend.iter_list()}  # reused to load the index
        cipher, key_name, settings = open_with_password(
            backend, public, None if callable(password) else password, listing
        )
        repo = cls(
            backend,
            cipher,
            public["id"],
            settings,
            workers=workers,
            key_name=key_name,
            backend_factory=backend_factory,
        )
        repo._listing = listing
        return repo

    @property
    def encrypted(self) -> bool:
        """Whether the repository's objects are encrypted."""
        return self.cipher.encrypted

    @property
    def stats(self) -> WriteStats:
        """Counters of what was stored since the repository was opened."""
        return self._uploader.stats

    # --- backend access ---------------------------------------------------------------

    def call_backend(self, fn: Callable[[Backend], T]) -> T:
        """Run ``fn(backend)`` with a backend instance no other thread uses meanwhile.

        With a ``backend_factory``, up to the backend's ``connections`` capability
        instances are made on demand, so uploads and reads run in parallel; without one,
        calls take turns on :attr:`backend`."""
        return self._pool.call(fn)

    def list_names(self, prefix: str = "") -> dict[str, int]:
        """``{remote name: size}`` of every object whose name starts with ``prefix``."""
        return self.call_backend(
            lambda b: {e.name: e.size for e in b.iter_list() if e.name.startswith(prefix)}
        )

    def _blob_executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="pannier-blob")
            return self._executor

    # --- locks ------------------------------------------------------------------------

    def lock(self, exclusive: bool = False) -> RepositoryLock:
        """A lock on the repository, to use as a context manager: shared (backups,
        restores, checks) or exclusive (prune). Entering raises LockedError naming the
        owner of a conflicting live lock.

        The index is loaded from a listing made under the lock: what another process
        wrote before the lock was taken (a backup that finished meanwhile) is seen."""
        with self._index_lock:
            if self._index is None:
                self._listing = None
        held = RepositoryLock(
            self.backend, self.cipher, exclusive=exclusive, run_locked=self.call_backend
        )
        self._locks.append(held)
        return held

    def check_locks(self) -> None:
        """Raise LockedError when a lock this repository holds could not be refreshed in
        time (see :attr:`RepositoryLock.lost`); called before writing an index or a
        snapshot."""
        for held in self._locks:
            held.check()

    # --- index ------------------------------------------------------------------------

    @property
    def index(self) -> Index:
        """The in-memory index, loaded from the index objects on first use."""
        if self._index is None:
            with self._index_lock:
                if self._index is None:
                    self._index = self._load_index()
        return self._index

    def reset_index(self) -> None:
        """Forget the in-memory index (after prune rewrote it); it is loaded again on
        next use."""
        with self._index_lock:
            self._index = None
            self._uploader.recovered = {}
            self.index_errors = []

    def _load_index(self) -> Index:
        names, self._listing = self._listing or self.list_names(), None
        index_names = sorted(n for n in names if _is_index_name(n))
        # Index objects are fetched, authenticated and decompressed in parallel (those
        # steps release the GIL); their records go straight into the compact table.
        with ThreadPoolExecutor(self.workers, thread_name_prefix="pannier-index") as pool:
            results = list(pool.map(self._try_read_index, index_names))
        loaded = {}
        for name, result in zip(index_names, results, strict=True):
            if isinstance(result, CorruptObjectError):
                self.index_errors.append(str(result))  # its packs are recovered below
            else:
                loaded[name] = result
        superseded = {f"index-{s}" for _, sup in loaded.values() for s in sup}
        index = Index()
        for name, (packs, _) in loaded.items():
            if name not in superseded:
                for pack_id, records in packs:
                    index.add_records(pack_id, records)
        # Packs uploaded by an interrupted backup: no index names them. Their headers let
        # the next backup reuse their blobs without uploading them again.
        known = index.packs()
        strays = [
            (name, size, stray)
            for name, size in names.items()
            if (stray := fmt.pack_id_of(name)) is not None and stray not in known
        ]
        recovered: dict[bytes, list[PackEntry]] = {}
        if strays:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="pannier-index") as pool:
                headers = list(pool.map(lambda s: self._try_read_pack_header(s[0], s[1]), strays))
            for (_, _, stray_id), entries in zip(strays, headers, strict=True):
                if entries is not None:  # None: half-written or damaged, prune removes it
                    index.add_pack(stray_id, entries)
                    recovered[stray_id] = entries
        self._uploader.recovered = recovered
        return index

    def _try_read_pack_header(self, name: str, size: int) -> list[PackEntry] | None:
        try:
            return self._read_pack_header(name, size)
        except (CorruptObjectError, RepositoryFormatError, FileMissingError):
            return None

    def _read_pack_header(self, name: str, size: int) -> list[PackEntry]:
        if self.backend.get_capabilities().ranged_get:
            return self.call_backend(lambda b: read_pack_header(b, name, size, self.cipher))
        return parse_pack(self.call_backend(lambda b: b.get_bytes(name)), self.cipher, name)

    def _try_read_index(
        self, name: str
    ) -> tuple[list[tuple[bytes, bytes]], list[str]] | CorruptObjectError:
        try:
            return self.read_index_records(name)
        except CorruptObjectError as e:
            return e

    def _open_index(self, name: str) -> bytes:
        try:
            sealed = self.call_backend(lambda b: b.get_bytes(name))
        except FileMissingError:
            raise CorruptObjectError(f"index {name} is missing", object_name=name) from None
        # The name is the plain BLAKE3 of the stored bytes: this catches an altered index
        # even without encryption, where nothing else authenticates it.
        if blake3.blake3(sealed).hexdigest() != name.removeprefix("index-"):
            raise CorruptObjectError(
                f"index {name} does not match its name (content altered)", object_name=name
            )
        return self.cipher.open_object(sealed, fmt.AAD_INDEX, f"index {name}")

    def read_index_records(self, name: str) -> tuple[list[tuple[bytes, bytes]], list[str]]:
        """``([(pack id, 45-byte wire records)], superseded ids)`` of the index object
        ``name``, records unparsed (compact); CorruptObjectError naming it when damaged."""
        return decode_index_records(self._open_index(name), name)

    def read_index_object(self, name: str) -> tuple[dict[bytes, list[PackEntry]], list[str]]:
        """The packs and superseded ids of the index object ``name``; CorruptObjectError
        naming it when it is damaged."""
        return decode_index_object(self._open_index(name), name)

    @property
    def recovered_packs(self) -> dict[bytes, list[PackEntry]]:
        """Packs found without an index on open (left by an interrupted backup) and not
        yet named by a new index."""
        _ = self.index
        return self._uploader.recovered

    def write_index(
        self, packs: Mapping[bytes, list[PackEntry] | bytes], supersedes: Iterable[str] = ()
    ) -> str:
        """Write an index object naming ``packs`` (entries or wire records per pack);
        return its remote name."""
        self.check_locks()
        plain = encode_index_object(packs, supersedes)
        sealed = self.cipher.seal_object(plain, fmt.AAD_INDEX, self.compression_level)
        name = fmt.object_name(fmt.ObjectType.INDEX, blake3.blake3(sealed).digest())
        self.call_backend(lambda b: b.put_bytes(name, sealed))
        return name

    # --- writing blobs ----------------------------------------------------------------

    def blob_id(self, data: bytes | bytearray | memoryview) -> bytes:
        """The 32-byte id of ``data`` (keyed BLAKE3 when encrypted)."""
        return self.cipher.blob_id(data)

    def has_blob(self, blob_id: bytes) -> bool:
        """Whether a blob is stored or pending upload."""
        index = self.index
        # pending first: an uploaded blob enters the index before it leaves pending
        return self._uploader.is_pending(blob_id) or blob_id in index

    def chunker_for(self, fileobj: IO[bytes] | int | str) -> Iterator[memoryview]:
        """The content-defined chunks of a file object, descriptor or path."""
        return self.chunker.chunk_file(fileobj)

    chunk_file = chunker_for

    def add_blob(
        self,
        data: bytes | bytearray | memoryview,
        *,
        kind: str | int = "data",
        blob_id: bytes | None = None,
    ) -> tuple[bytes, int]:
        """Store one blob; return ``(id, bytes stored)``, 0 bytes for a blob already
        stored. Thread-safe. Compresses unless incompressible, seals, and packs it; a
        full pack goes to the background uploader (which applies back-pressure)."""
        self._uploader.raise_error()
        kind_no = _KIND_NUMBERS.get(kind)
        if kind_no is None:
            kind_no = int(fmt.BlobKind.parse(kind))
        bid = blob_id if blob_id is not None else self.cipher.blob_id(data)
        return bid, self._uploader.add(bid, kind_no, data)

    def chunker_of(self, kind: str | int) -> Chunker:
        """The chunker for blobs of ``kind``: :attr:`stream_chunker` (small pieces, so
        that snapshots share the unchanged parts of their tree and metadata streams) for
        ``"tree"``, :attr:`chunker` for file content."""
        if _KIND_NUMBERS.get(kind, kind) == fmt.BlobKind.TREE:
            return self.stream_chunker
        return self.chunker

    def store_bytes(
        self, data: bytes | bytearray | memoryview, *, kind: str | int = "data"
    ) -> list[bytes]:
        """Chunk ``data`` with :meth:`chunker_of` ``kind`` and store every chunk; return
        the chunk ids in order."""
        return self._store_chunks(self.chunker_of(kind).chunk_bytes(data), kind)

    def store_stream(
        self, fileobj: IO[bytes] | int | str, *, kind: str | int = "data"
    ) -> list[bytes]:
        """Chunk a file object, descriptor or path with :meth:`chunker_of` ``kind`` and
        store every chunk, hashing, compressing and encrypting in parallel; return the
        chunk ids in order (an empty list for empty content). Thread-safe."""
        return self._store_chunks(self.chunker_of(kind).chunk_file(fileobj), kind)

    def _store_chunks(self, chunks: Iterable[memoryview], kind: str | int) -> list[bytes]:
        it = iter(chunks)
        first = next(it, None)
        if first is None:
            return []
        second = next(it, None)
        if second is None:  # one chunk: no round trip through the pool
            return [self.add_blob(first, kind=kind)[0]]
        pool = self._blob_executor()
        window: deque[Future[tuple[bytes, int]]] = deque()
        ids: list[bytes] = []
        limit = self.workers + 1
        for chunk in _chain(first, second, it):
            window.append(pool.submit(self.add_blob, chunk, kind=kind))
            if len(window) >= limit:
                ids.append(window.popleft().result()[0])
        while window:
            ids.append(window.popleft().result()[0])
        return ids

    def submit_stream(
        self, fileobj: IO[bytes] | int | str | bytes, *, kind: str | int = "data"
    ) -> Future[list[bytes]]:
        """Like :meth:`store_stream` (or :meth:`store_bytes` for bytes) but in a
        background thread: returns a Future of the chunk ids. Blocks while many files
        are in flight (bounded memory). Lets a caller back up many small files at once."""
        with self._lock:
            if self._file_pool is None:
                self._file_pool = ThreadPoolExecutor(
                    self.workers, thread_name_prefix="pannier-file"
                )
            file_pool = self._file_pool
        self._file_slots.acquire()

        def run() -> list[bytes]:
            try:
                if isinstance(fileobj, (bytes, bytearray, memoryview)):
                    return self.store_bytes(fileobj, kind=kind)
                return self.store_stream(fileobj, kind=kind)
            finally:
                self._file_slots.release()

        try:
            return file_pool.submit(run)
        except BaseException:
            self._file_slots.release()
            raise

    def flush(self) -> None:
        """Upload every open pack, wait for the uploads, then write an index naming the
        new packs (write order: packs, then index). Raises the first upload error."""
        self._uploader.flush()

    # --- reading blobs ----------------------------------------------------------------

    def _before_read(self, blob_id: bytes) -> None:
        if self._uploader.is_pending(blob_id):
            self.flush()

    def read_blob(self, blob_id: bytes) -> bytes:
        """The verified plaintext of a blob (authenticated, decompressed, id checked).
        A blob not in the index or a damaged one raises CorruptObjectError naming the
        blob and its pack."""
        return self._reader.read_blob(blob_id)

    def iter_blobs(self, blob_ids: Iterable[bytes], *, ahead: bool = True) -> Iterator[bytes]:
        """The verified plaintexts of ``blob_ids``, in order. Neighbouring blobs of one
        pack are read with one ranged get, and reads and decryption run ahead in threads
        (a bounded window); with ``ahead=False`` all of it runs in the calling thread."""
        return self._reader.iter_blobs(blob_ids, ahead=ahead)

    def read_range(self, name: str, offset: int, length: int) -> bytes | memoryview:
        """``length`` bytes of the object ``name`` from ``offset`` (see
        :meth:`BlobReader.read_range`)."""
        return self._reader.read_range(name, offset, length)

    def decode_blob(self, blob_id: bytes, sealed: bytes | memoryview, pack: str) -> bytes:
        """Open, decompress and verify one sealed blob read from ``pack``."""
        return self._reader.decode_blob(blob_id, sealed, pack)

    # --- snapshots --------------------------------------------------------------------

    def save_snapshot(self, snap: Snapshot) -> str:
        """Flush, then write the snapshot object last; set and return its id."""
        self.flush()
        self.check_locks()
        plain = snap.encode()
        snap_id = self.cipher.blob_id(plain).hex()
        sealed = self.cipher.seal_object(plain, fmt.AAD_SNAPSHOT, self.compression_level)
        name = fmt.object_name(fmt.ObjectType.SNAPSHOT, snap_id)
        self.call_backend(lambda b: b.put_bytes(name, sealed))
        snap.id = snap_id
        return snap_id

    def snapshot_ids(self) -> list[str]:
        """The hex ids of every snapshot."""
        return sorted(n[len("snapshot-") :] for n in self.list_names("snapshot-"))

    def read_snapshot(self, snap_id: str) -> Snapshot:
        """The snapshot with the full id ``snap_id``; CorruptObjectError naming it when it
        is missing or damaged."""
        name = fmt.object_name(fmt.ObjectType.SNAPSHOT, snap_id)
        try:
            sealed = self.call_backend(lambda b: b.get_bytes(name))
        except FileMissingError:
            raise CorruptObjectError(
                f"snapshot {snap_id[:8]} is missing", object_name=name
            ) from None
        plain = self.cipher.open_object(sealed, fmt.AAD_SNAPSHOT, f"snapshot {snap_id[:8]}")
        if self.cipher.blob_id(plain).hex() != snap_id:
            raise CorruptObjectError(
                f"snapshot {snap_id[:8]} does not match its id", object_name=name
            )
        return Snapshot.decode(plain, snap_id)

    def list_snapshots(self) -> list[Snapshot]:
        """Every snapshot, oldest first."""
        ids = self.snapshot_ids()
        if len(ids) > 1:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="pannier-snap") as pool:
                snaps = list(pool.map(self.read_snapshot, ids))
        else:
            snaps = [self.read_snapshot(i) for i in ids]
        snaps.sort(key=lambda s: (s.datetime, s.id or ""))
        return snaps

    def load_snapshot(
        self,
        id_or_prefix: str,
        *,
        hostname: str | None = None,
        paths: Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
    ) -> Snapshot:
        """The snapshot named by a full id, a unique id prefix, or ``latest`` (the newest,
        optionally only among those of ``hostname``, with all of ``paths`` and all of
        ``tags``). An unknown or ambiguous name raises ConfigError naming the candidates."""
        if id_or_prefix == "latest":
            want_paths, want_tags = set(paths or ()), set(tags or ())
            snaps = [
                s
                for s in self.list_snapshots()
                if (hostname is None or s.hostname == hostname)
                and want_paths <= set(s.paths)
                and want_tags <= set(s.tags)
            ]
            if not snaps:
                raise ConfigError("no snapshot matches 'latest'")
            return snaps[-1]
        prefix = id_or_prefix.lower()
        if not prefix or any(c not in "0123456789abcdef" for c in prefix):
            raise ConfigError(f"{id_or_prefix!r} is not a snapshot id")
        matches = [i for i in self.snapshot_ids() if i.startswith(prefix)]
        if not matches:
            raise ConfigError(f"no snapshot {id_or_prefix!r} in the repository")
        if len(matches) > 1:
            raise ConfigError(
                f"snapshot id {id_or_prefix!r} is ambiguous: "
                + ", ".join(m[:12] for m in matches[:10])
            )
        return self.read_snapshot(matches[0])

    def remove_snapshots(self, ids: Iterable[str]) -> None:
        """Delete the snapshot objects with these full ids (their data stays until prune)."""
        names = [fmt.object_name(fmt.ObjectType.SNAPSHOT, i) for i in ids]
        self.call_backend(lambda b: b.delete_list(names))

    @staticmethod
    def walkers_registered() -> bool:
        """Whether a walker of snapshot trees is registered (importing ``pannier.engine``,
        which registers one, when none is). Without one, only stream blobs are known to
        be referenced: prune refuses to run."""
        if not _walkers:
            try:
                import importlib

                importlib.import_module("pannier.engine")
            except ImportError:
                pass
        return bool(_walkers)

    def store_stream_list(self, blob_ids: Iterable[bytes]) -> list[bytes]:
        """Store the ids of a stream's blobs as its *blob list* (the 32-byte ids
        concatenated, cut like a stream) and return the ids of the list's blobs: what a
        snapshot of version 2 names for the stream."""
        return self.store_bytes(b"".join(blob_ids), kind="tree")

    def stream_blob_ids(self, snap: Snapshot, name: str) -> list[bytes]:
        """The ids of the blobs of stream ``name`` of ``snap``, in order (empty when it
        has no such stream): read from the stream's blob list in a snapshot of version 2,
        as listed in one of version 1. A damaged list raises CorruptObjectError naming
        the snapshot and the stream."""
        stored = snap.streams.get(name) or []
        if not snap.lists_streams:
            return list(stored)
        listing = b"".join(self.iter_blobs(stored))
        if len(listing) % fmt.ID_SIZE:
            raise CorruptObjectError(
                f"snapshot {snap.short_id}: the blob list of stream {name} is damaged "
                f"({len(listing)} bytes, not a whole number of ids)"
            )
        return [listing[i : i + fmt.ID_SIZE] for i in range(0, len(listing), fmt.ID_SIZE)]

    def referenced_blobs(self, snap: Snapshot) -> Iterator[bytes]:
        """Every blob ``snap`` references: its streams' blob lists and blobs, and what
        the registered walkers (the engine's tree walker) report."""
        seen: set[bytes] = set()
        for ids in snap.streams.values():
            for bid in ids:
                if bid not in seen:
                    seen.add(bid)
                    yield bid
        if snap.lists_streams:
            for name in snap.streams:
                for bid in self.stream_blob_ids(snap, name):
                    if bid not in seen:
                        seen.add(bid)
                        yield bid
        self.walkers_registered()
        for walker in list(_walkers):
            for bid in walker(self, snap):
                if bid not in seen:
                    seen.add(bid)
                    yield bid

    # --- keys -------------------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        """The key objects (one per password)."""
        return list_keys(self._pool, self.key_name, self.cipher.master)

    def add_key(self, password: str, *, kdf: KdfParams | None = None) -> str:
        """Add a key object for another password; return its id."""
        return add_key(self._pool, self.cipher.master, password, kdf)

    def remove_key(self, key_id: str) -> None:
        """Remove a key object. The key in use and the last key cannot be removed."""
        remove_key(self._pool, key_id, self.key_name)

    # --- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """Flush pending writes and stop the worker threads. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._uploader.has_pending:
                self.flush()
        finally:
            self._uploader.close()
            for pool in (self._file_pool, self._executor):
                if pool is not None:
                    pool.shutdown(wait=True)
            self._pool.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: Every Repository object alive, so that a forked child can drop their thread pools.
_open_repositories: weakref.WeakSet[Repository] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for repo in list(_open_repositories):
        repo._forget_thread_pools()


os.register_at_fork(after_in_child=_after_fork_in_child)


#: The blob kinds by name and number (``BlobKind.parse`` for any other spelling).
_KIND_NUMBERS: dict[str | int, int] = {
    "data": int(fmt.BlobKind.DATA),
    "tree": int(fmt.BlobKind.TREE),
    **{int(k): int(k) for k in fmt.BlobKind},
}


def _is_index_name(name: str) -> bool:
    parsed = fmt.parse_object_name(name)
    return parsed is not None and parsed[0] is fmt.ObjectType.INDEX and len(parsed[1]) == 64


def _chain(
    first: memoryview, second: memoryview, rest: Iterator[memoryview]
) -> Iterator[memoryview]:
    yield first
    yield second
    yield from rest
