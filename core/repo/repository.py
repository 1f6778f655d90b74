"""The repository: blobs in packs, an index, snapshots, keys and locks on one backend.

:meth:`Repository.init` creates one, :meth:`Repository.open` opens one. Writers store
content with :meth:`~Repository.store_stream` (chunk, hash, compress, encrypt and pack in
a thread pool, upload in a background thread, with bounded queues), make it durable with
:meth:`~Repository.flush`, and finish with :meth:`~Repository.save_snapshot`. Write order
is always: packs, then the index that names them, then the snapshot. An interrupted backup
leaves packs no index names; the next :meth:`open` that writes finds them by their headers
and reuses them without uploading again.

Thread safety: :meth:`add_blob`, :meth:`store_stream`, :meth:`store_bytes`,
:meth:`submit_stream`, :meth:`has_blob` and :meth:`read_blob` may be called from any
number of threads. Backend calls are serialised (one backend instance is used by one
thread at a time).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timezone
from functools import partial
from typing import IO, Any, TypeVar, cast

import attrs
import msgpack

from ..backend import Backend
from ..errors import (
    ConfigError,
    CorruptObjectError,
    FileMissingError,
    FolderMissingError,
    PannierError,
    RepositoryError,
    RepositoryFormatError,
    RepositoryNotFoundError,
    WrongPasswordError,
)
from . import format as fmt
from .chunker import Chunker
from .crypto import (
    Cipher,
    KdfParams,
    MasterKey,
    check_encryption,
    decode_payload,
    make_key_object,
    open_key_object,
    read_key_info,
)
from .index import Index, decode_index_object, decode_index_records, encode_index_object
from .locks import RepositoryLock
from .pack import (
    PackEntry,
    PackWriter,
    PartsReader,
    pack_name,
    parse_pack,
    read_pack_header,
)
from .snapshot import Snapshot

__all__ = ["KeyInfo", "Repository", "register_referenced_blobs"]

T = TypeVar("T")

#: Packs kept in memory when the backend cannot read ranges.
PACK_CACHE_SIZE = 3

#: A long backup writes an index after this many new packs (about 512 MiB), so an
#: interruption leaves little for the next backup to recover from pack headers.
INDEX_EVERY_PACKS = 64

ReferencedBlobs = Callable[["Repository", Snapshot], Iterable[bytes]]
_walkers: list[ReferencedBlobs] = []


_malloc_tuned = False


def _limit_malloc_arenas() -> None:
    """Ask glibc for at most two malloc arenas (unless ``MALLOC_ARENA_MAX`` is set).

    With one arena per thread, the short-lived megabyte buffers of the worker threads
    (chunks, compressed and sealed blobs) fragment many arenas and a backup's resident
    memory grows by a third for no speed gained. Done once per process, before the
    repository starts threads; a no-op where glibc is not the C library."""
    global _malloc_tuned
    if _malloc_tuned or os.environ.get("MALLOC_ARENA_MAX") or sys.platform != "linux":
        return
    _malloc_tuned = True
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = getattr(libc, "mallopt", None)
        if mallopt is not None:
            mallopt(-8, 2)  # M_ARENA_MAX
    except OSError:
        pass


def register_referenced_blobs(fn: ReferencedBlobs) -> ReferencedBlobs:
    """Register ``fn(repo, snapshot) -> blob ids``: every blob a snapshot references
    (its stream blobs and the content blobs its streams name). The engine registers the
    walker of its tree stream; ``check`` and ``prune`` use it. Usable as a decorator."""
    if fn not in _walkers:
        _walkers.append(fn)
    return fn


@attrs.frozen
class KeyInfo:
    """A key object as ``pannier key list`` shows it."""

    id: str
    created: str
    hostname: str
    username: str
    kdf: str
    current: bool = False


@attrs.define
class _Stats:
    blobs_new: int = 0
    bytes_new: int = 0
    bytes_stored: int = 0
    blobs_dup: int = 0
    packs_uploaded: int = 0


def _config_aad(repo_id: str) -> bytes:
    return fmt.AAD_CONFIG + b":" + repo_id.encode()


class Repository:
    """An open repository. Build one with :meth:`init` or :meth:`open`.

    :ivar backend: the storage backend.
    :ivar id: the repository id (64 hex digits).
    :ivar config: the settings (``compression``, ``chunker``, ``pack_size``, ...).
    :ivar encrypted: whether objects are encrypted.
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
        self.workers = workers or max(2, os.cpu_count() or 2)
        self.stats = _Stats()
        self._backend_factory = backend_factory
        self._idle_backends: queue.LifoQueue[Backend] = queue.LifoQueue()
        self._idle_backends.put(backend)
        self._backends: list[Backend] = [backend]
        self._extra_backends: list[Backend] = []
        self._max_backends = max(1, backend.get_capabilities().connections or 1)
        self._lock = threading.RLock()  # pending blobs, packers, unsaved packs, pools
        self._index_lock = threading.Lock()  # loading the index (never under _lock)
        self._grow_lock = threading.Lock()  # making backend instances
        self._ranged = backend.get_capabilities().ranged_get
        self._pack_cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._index: Index | None = None
        self._index_names: set[str] = set()
        #: Damaged index objects skipped on load (their packs are re-read from headers).
        self.index_errors: list[str] = []
        self._pending: set[bytes] = set()
        self._packers: dict[int, PackWriter] = {}
        self._unsaved: dict[bytes, list[PackEntry]] = {}
        self._recovered: dict[bytes, list[PackEntry]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._file_pool: ThreadPoolExecutor | None = None
        self._file_slots = threading.BoundedSemaphore(4 * self.workers)
        self._uploads: queue.Queue[tuple[bytes, PartsReader, list[PackEntry]] | None] | None = None
        self._uploaders: list[threading.Thread] = []
        self._upload_error: BaseException | None = None
        self._closed = False

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
        settings = {
            "compression": compression_level,
            "chunker": [fmt.CHUNK_MIN, fmt.CHUNK_AVG, fmt.CHUNK_MAX],
            "pack_size": fmt.PACK_TARGET_SIZE,
            "created": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        }
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
        try:
            raw = backend.get_bytes(fmt.CONFIG_NAME)
        except (FileMissingError, FolderMissingError):
            raise RepositoryNotFoundError(
                f"no repository at {backend.display_name} (create one with 'pannier init')"
            ) from None
        public = decode_config_public(raw)
        repo_id, encryption = public["id"], public["encryption"]
        master: MasterKey | None = None
        key_name = None
        if encryption == "repokey":
            if callable(password):
                password = password()
            if not password:
                raise ConfigError(
                    "the repository is encrypted: give its password (PANNIER_PASSWORD, "
                    "--password-file or a terminal prompt)"
                )
            key_names = sorted(e.name for e in backend.iter_list() if e.name.startswith("key-"))
            if not key_names:
                raise CorruptObjectError("the repository has no key object", object_name="key")
            settings_raw = b""
            for name in key_names:
                candidate = open_key_object(backend.get_bytes(name), password, name)
                if candidate is None:
                    continue
                try:  # a key left by an interrupted init holds another master key
                    settings_raw = Cipher(candidate).open(
                        public["settings"], _config_aad(repo_id), "config"
                    )
                except CorruptObjectError:
                    if master is None:
                        master = candidate  # remembered to report the config as corrupt
                    continue
                master, key_name = candidate, name
                break
            if master is None:
                raise WrongPasswordError(
                    f"wrong password: no key of {backend.display_name} opens with it"
                )
            cipher = Cipher(master)
            if key_name is None:
                settings_raw = cipher.open(public["settings"], _config_aad(repo_id), "config")
        elif encryption == "none":
            cipher = Cipher(None)
            settings_raw = cipher.open(public["settings"], _config_aad(repo_id), "config")
        else:
            raise RepositoryFormatError(f"unknown encryption {encryption!r} in config")
        try:
            settings = msgpack.unpackb(settings_raw, raw=False)
            if not isinstance(settings, dict):
                raise ValueError
        except Exception:
            raise CorruptObjectError("config is corrupt", object_name="config") from None
        return cls(
            backend,
            cipher,
            repo_id,
            settings,
            workers=workers,
            key_name=key_name,
            backend_factory=backend_factory,
        )

    @property
    def encrypted(self) -> bool:
        """Whether the repository's objects are encrypted."""
        return self.cipher.encrypted

    # --- backend access ---------------------------------------------------------------

    def call_backend(self, fn: Callable[[Backend], T]) -> T:
        """Run ``fn(backend)`` with a backend instance no other thread uses meanwhile.

        With a ``backend_factory``, up to the backend's ``connections`` capability
        instances are made on demand, so uploads and reads run in parallel; without one,
        calls take turns on :attr:`backend`."""
        b = self._take_backend()
        try:
            return fn(b)
        finally:
            self._idle_backends.put(b)

    def _take_backend(self) -> Backend:
        try:
            return self._idle_backends.get_nowait()
        except queue.Empty:
            pass
        if self._backend_factory is not None:
            with self._grow_lock:
                grow = len(self._backends) < self._max_backends
                if grow:
                    self._backends.append(self.backend)  # placeholder, replaced below
            if grow:
                try:
                    made = self._backend_factory()
                except BaseException:
                    with self._grow_lock:
                        self._backends.pop()
                    raise
                with self._grow_lock:
                    self._backends[-1] = made
                    self._extra_backends.append(made)
                return made
        return self._idle_backends.get()

    def list_names(self, prefix: str = "") -> dict[str, int]:
        """``{remote name: size}`` of every object whose name starts with ``prefix``."""
        return self.call_backend(
            lambda b: {e.name: e.size for e in b.iter_list() if e.name.startswith(prefix)}
        )

    # --- locks ------------------------------------------------------------------------

    def lock(self, exclusive: bool = False) -> RepositoryLock:
        """A lock on the repository, to use as a context manager: shared (backups,
        restores, checks) or exclusive (prune). Entering raises LockedError naming the
        owner of a conflicting live lock."""
        return RepositoryLock(
            self.backend, self.cipher, exclusive=exclusive, run_locked=self.call_backend
        )

    # --- index ------------------------------------------------------------------------

    @property
    def index(self) -> Index:
        """The in-memory index, loaded from the index objects on first use."""
        if self._index is None:
            with self._index_lock:
                if self._index is None:
                    self._index = self._load_index()
        return self._index

    def _load_index(self) -> Index:
        names = self.list_names()
        index_names = sorted(n for n in names if n.startswith("index-"))
        # Index objects are fetched, authenticated and decompressed in parallel (those
        # steps release the GIL); their records go straight into the compact table.
        with ThreadPoolExecutor(self.workers, thread_name_prefix="pannier-index") as pool:
            results = list(pool.map(self._try_read_index, index_names))
        raw = {}
        for name, result in zip(index_names, results, strict=True):
            if isinstance(result, CorruptObjectError):
                # Its packs are found again below from their own headers.
                self.index_errors.append(str(result))
            else:
                raw[name] = result
        superseded = {f"index-{s}" for _, sup in raw.values() for s in sup}
        index = Index()
        for name, (packs, _) in raw.items():
            if name in superseded:
                continue
            self._index_names.add(name)
            for pack_id, records in packs:
                index.add_records(pack_id, records)
        # Packs uploaded by an interrupted backup: no index names them. Their headers let
        # the next backup reuse their blobs without uploading them again.
        known = index.packs()
        for name, size in names.items():
            if not name.startswith("data-"):
                continue
            pack_id = bytes.fromhex(name[5:])
            if pack_id in known:
                continue
            try:
                if self._ranged:
                    entries = self.call_backend(
                        partial(_read_header, name=name, size=size, cipher=self.cipher)
                    )
                else:
                    whole = self.call_backend(partial(_get_bytes, name=name))
                    entries = parse_pack(whole, self.cipher, name)
            except (CorruptObjectError, RepositoryFormatError, FileMissingError):
                continue  # half-written or damaged: check reports it, prune removes it
            index.add_pack(pack_id, entries)
            self._recovered[pack_id] = entries
        return index

    def _try_read_index(
        self, name: str
    ) -> tuple[list[tuple[bytes, bytes]], list[str]] | CorruptObjectError:
        try:
            return self._read_index_raw(name)
        except CorruptObjectError as e:
            return e

    def _read_index_raw(self, name: str) -> tuple[list[tuple[bytes, bytes]], list[str]]:
        try:
            sealed = self.call_backend(lambda b: b.get_bytes(name))
        except FileMissingError:
            raise CorruptObjectError(f"index {name} is missing", object_name=name) from None
        plain = self.cipher.open_object(sealed, fmt.AAD_INDEX, f"index {name}")
        return decode_index_records(plain, name)

    def read_index_object(self, name: str) -> tuple[dict[bytes, list[PackEntry]], list[str]]:
        """The packs and superseded ids of the index object ``name``; CorruptObjectError
        naming it when it is damaged."""
        try:
            sealed = self.call_backend(lambda b: b.get_bytes(name))
        except FileMissingError:
            raise CorruptObjectError(f"index {name} is missing", object_name=name) from None
        plain = self.cipher.open_object(sealed, fmt.AAD_INDEX, f"index {name}")
        return decode_index_object(plain, name)

    @property
    def recovered_packs(self) -> dict[bytes, list[PackEntry]]:
        """Packs found without an index on open (left by an interrupted backup)."""
        _ = self.index
        return self._recovered

    def write_index(
        self, packs: dict[bytes, list[PackEntry]], supersedes: Iterable[str] = ()
    ) -> str:
        """Write an index object naming ``packs``; return its remote name."""
        plain = encode_index_object(packs, supersedes)
        sealed = self.cipher.seal_object(plain, fmt.AAD_INDEX, self.compression_level)
        import blake3

        name = fmt.object_name(fmt.ObjectType.INDEX, blake3.blake3(sealed).digest())
        self.call_backend(lambda b: b.put_bytes(name, sealed))
        self._index_names.add(name)
        return name

    # --- blobs ------------------------------------------------------------------------

    def blob_id(self, data: bytes | memoryview) -> bytes:
        """The 32-byte id of ``data`` (keyed BLAKE3 when encrypted)."""
        return self.cipher.blob_id(data)

    def has_blob(self, blob_id: bytes) -> bool:
        """Whether a blob is stored or pending upload."""
        index = self.index
        with self._lock:
            return blob_id in self._pending or blob_id in index

    def chunker_for(self, fileobj: IO[bytes] | int | str) -> Iterator[memoryview]:
        """The content-defined chunks of a file object, descriptor or path."""
        return self.chunker.chunk_file(fileobj)

    chunk_file = chunker_for

    def add_blob(
        self,
        data: bytes | memoryview,
        *,
        kind: str | int = "data",
        blob_id: bytes | None = None,
    ) -> tuple[bytes, int]:
        """Store one blob; return ``(id, bytes stored)``, 0 bytes for a blob already
        stored. Thread-safe. Compresses unless incompressible, seals, and packs it; a
        full pack goes to the background uploader (which applies back-pressure)."""
        self._raise_upload_error()
        kind_no = int(fmt.BlobKind.parse(kind))
        bid = blob_id if blob_id is not None else self.cipher.blob_id(data)
        index = self.index
        with self._lock:
            if bid in self._pending or bid in index:
                self.stats.blobs_dup += 1
                return bid, 0
        sealed = self.cipher.seal_payload(data, self.compression_level, bid)
        full: PackWriter | None = None
        with self._lock:
            if bid in self._pending or bid in index:
                self.stats.blobs_dup += 1
                return bid, 0
            self._pending.add(bid)
            packer = self._packers.get(kind_no)
            if packer is None:
                packer = self._packers[kind_no] = PackWriter()
            packer.add(kind_no, bid, sealed, len(data))
            self.stats.blobs_new += 1
            self.stats.bytes_new += len(data)
            self.stats.bytes_stored += len(sealed)
            if packer.size >= self.pack_size:
                full = packer
                del self._packers[kind_no]
        if full is not None:
            self._ship(full)
        return bid, len(sealed)

    def _ship(self, packer: PackWriter) -> None:
        pack_id, data = packer.finish_stream(self.cipher)
        if self._uploads is None:
            with self._lock:
                if self._uploads is None:
                    self._uploads = queue.Queue(maxsize=1)
                    # parallel uploads only when there are backend instances for them
                    count = 2 if self._backend_factory and self._max_backends > 1 else 1
                    for i in range(count):
                        t = threading.Thread(
                            target=self._upload_loop, name=f"pannier-upload-{i}", daemon=True
                        )
                        t.start()
                        self._uploaders.append(t)
        assert self._uploads is not None
        self._uploads.put((pack_id, data, packer.entries))

    def _upload_loop(self) -> None:
        assert self._uploads is not None
        while True:
            item = self._uploads.get()
            try:
                if item is None:
                    return
                pack_id, data, entries = item
                if self._upload_error is None:
                    name = pack_name(pack_id)
                    stream = cast(IO[bytes], data)
                    self.call_backend(
                        partial(_put_stream, stream=stream, name=name, size=data.size)
                    )
                    index = self.index
                    with self._lock:
                        index.add_pack(pack_id, entries)
                        self._unsaved[pack_id] = entries
                        self._pending.difference_update(e.blob_id for e in entries)
                        self.stats.packs_uploaded += 1
                        batch = self._take_unsaved(INDEX_EVERY_PACKS)
                    if batch:
                        self.write_index(batch)
            except BaseException as e:
                self._upload_error = e
            finally:
                self._uploads.task_done()

    def _raise_upload_error(self) -> None:
        err = self._upload_error
        if err is not None:
            if isinstance(err, PannierError):
                raise err
            raise RepositoryError(f"uploading a pack failed: {err}") from err

    def _blob_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="pannier-blob")
        return self._pool

    def store_bytes(self, data: bytes | memoryview, *, kind: str | int = "data") -> list[bytes]:
        """Chunk ``data`` and store every chunk; return the chunk ids in order."""
        return self._store_chunks(self.chunker.chunk_bytes(data), kind)

    def store_stream(
        self, fileobj: IO[bytes] | int | str, *, kind: str | int = "data"
    ) -> list[bytes]:
        """Chunk a file object, descriptor or path and store every chunk, hashing,
        compressing and encrypting in parallel; return the chunk ids in order (an empty
        list for empty content). Thread-safe."""
        return self._store_chunks(self.chunker.chunk_file(fileobj), kind)

    def _store_chunks(self, chunks: Iterable[memoryview], kind: str | int) -> list[bytes]:
        it = iter(chunks)
        first = next(it, None)
        if first is None:
            return []
        second = next(it, None)
        if second is None:  # one chunk: no round trip through the pool
            return [self.add_blob(first, kind=kind)[0]]
        pool = self._blob_pool()
        window: deque[Future[tuple[bytes, int]]] = deque()
        ids: list[bytes] = []
        limit = 2 * self.workers
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
        if self._file_pool is None:
            with self._lock:
                if self._file_pool is None:
                    self._file_pool = ThreadPoolExecutor(
                        self.workers, thread_name_prefix="pannier-file"
                    )
        self._file_slots.acquire()

        def run() -> list[bytes]:
            try:
                if isinstance(fileobj, (bytes, bytearray, memoryview)):
                    return self.store_bytes(fileobj, kind=kind)
                return self.store_stream(fileobj, kind=kind)
            finally:
                self._file_slots.release()

        try:
            return self._file_pool.submit(run)
        except BaseException:
            self._file_slots.release()
            raise

    def flush(self) -> None:
        """Upload every open pack, wait for the uploads, then write an index naming the
        new packs (write order: packs, then index). Raises the first upload error."""
        with self._lock:
            packers = list(self._packers.values())
            self._packers.clear()
        for packer in packers:
            if len(packer):
                self._ship(packer)
        if self._uploads is not None:
            self._uploads.join()
        self._raise_upload_error()
        with self._lock:
            packs = self._take_unsaved(1)
        if packs:
            self.write_index(packs)

    def _take_unsaved(self, threshold: int) -> dict[bytes, list[PackEntry]]:
        """The uploaded packs no index names yet (with the recovered ones), once there
        are ``threshold`` of them; the caller holds the lock and writes their index."""
        if len(self._unsaved) < threshold:
            return {}
        packs = dict(self._recovered)
        packs.update(self._unsaved)
        self._unsaved.clear()
        self._recovered.clear()
        return packs

    def read_blob(self, blob_id: bytes) -> bytes:
        """The verified plaintext of a blob (authenticated, decompressed, id checked).
        A blob not in the index or a damaged one raises CorruptObjectError naming the
        blob and its pack."""
        with self._lock:
            pending = blob_id in self._pending
        if pending:
            self.flush()
        loc = self.index.lookup(blob_id)
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

    def read_range(self, name: str, offset: int, length: int) -> bytes | memoryview:
        """``length`` bytes of the object ``name`` from ``offset``: a ranged get, or, on a
        backend without ranged reads, a slice of the whole object kept in a small cache
        of the last packs read (so reading a pack's blobs downloads it once)."""
        if self._ranged:
            return self.call_backend(lambda b: b.get_range(name, offset, length))
        with self._cache_lock:
            data = self._pack_cache.get(name)
            if data is not None:
                self._pack_cache.move_to_end(name)
        if data is None:
            data = self.call_backend(lambda b: b.get_bytes(name))
            with self._cache_lock:
                self._pack_cache[name] = data
                while len(self._pack_cache) > PACK_CACHE_SIZE:
                    self._pack_cache.popitem(last=False)
        return memoryview(data)[offset : offset + length]

    def decode_blob(self, blob_id: bytes, sealed: bytes | memoryview, pack: str) -> bytes:
        """Open, decompress and verify one sealed blob read from ``pack``."""
        what = f"blob {blob_id.hex()} in pack {pack}"
        if len(sealed) == 0:
            raise CorruptObjectError(f"{what} is truncated", object_name=pack)
        data = decode_payload(self.cipher.open(sealed, blob_id, what), what)
        if self.cipher.blob_id(data) != blob_id:
            raise CorruptObjectError(f"{what} does not match its id", object_name=pack)
        return data

    def iter_blobs(self, blob_ids: Iterable[bytes]) -> Iterator[bytes]:
        """The verified plaintexts of ``blob_ids``, in order. Neighbouring blobs of one
        pack are read with one ranged get, and reads and decryption run ahead in threads
        (a bounded window)."""
        pool = self._blob_pool()
        window: deque[Future[list[bytes]]] = deque()
        for batch in self._batches(blob_ids):
            window.append(pool.submit(self._read_batch, batch))
            if len(window) > self.workers * 2:
                yield from window.popleft().result()
        while window:
            yield from window.popleft().result()

    def _batches(self, blob_ids: Iterable[bytes]) -> Iterator[list[tuple[bytes, Any]]]:
        batch: list[tuple[bytes, Any]] = []
        end = 0
        for bid in blob_ids:
            with self._lock:
                pending = bid in self._pending
            if pending:
                self.flush()
            loc = self.index.lookup(bid)
            if batch and (
                loc is None
                or batch[0][1] is None
                or loc.pack_id != batch[0][1].pack_id
                or not 0 <= loc.offset - end <= 256 * 1024
                or end - batch[0][1].offset > 8 * 1024 * 1024
            ):
                yield batch
                batch = []
            batch.append((bid, loc))
            if loc is not None:
                end = loc.offset + loc.length
        if batch:
            yield batch

    def _read_batch(self, batch: list[tuple[bytes, Any]]) -> list[bytes]:
        first = batch[0][1]
        if first is None or len(batch) == 1:
            return [self.read_blob(batch[0][0])]
        start = first.offset
        stop = batch[-1][1].offset + batch[-1][1].length
        name = pack_name(first.pack_id)
        try:
            data = self.read_range(name, start, stop - start)
        except FileMissingError:
            raise CorruptObjectError(f"pack {name} is missing", object_name=name) from None
        view = memoryview(data)
        return [
            self.decode_blob(bid, view[loc.offset - start : loc.offset - start + loc.length], name)
            for bid, loc in batch
        ]

    # --- snapshots --------------------------------------------------------------------

    def save_snapshot(self, snap: Snapshot) -> str:
        """Flush, then write the snapshot object last; set and return its id."""
        self.flush()
        plain = snap.encode()
        snap_id = self.cipher.blob_id(plain).hex()
        sealed = self.cipher.seal_object(plain, fmt.AAD_SNAPSHOT, self.compression_level)
        self.call_backend(
            lambda b: b.put_bytes(fmt.object_name(fmt.ObjectType.SNAPSHOT, snap_id), sealed)
        )
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

    def referenced_blobs(self, snap: Snapshot) -> Iterator[bytes]:
        """Every blob ``snap`` references: its stream blobs, and what the registered
        walkers (the engine's tree walker) report."""
        seen: set[bytes] = set()
        for ids in snap.streams.values():
            for bid in ids:
                if bid not in seen:
                    seen.add(bid)
                    yield bid
        if not _walkers:
            try:
                import importlib

                importlib.import_module("pannier.engine")
            except ImportError:
                pass
        for walker in list(_walkers):
            for bid in walker(self, snap):
                if bid not in seen:
                    seen.add(bid)
                    yield bid

    # --- keys -------------------------------------------------------------------------

    def list_keys(self) -> list[KeyInfo]:
        """The key objects (one per password)."""
        out = []
        for name in sorted(self.list_names("key-")):
            body = read_key_info(self.call_backend(partial(_get_bytes, name=name)), name)
            out.append(
                KeyInfo(
                    name[4:],
                    str(body.get("created", "")),
                    str(body.get("hostname", "")),
                    str(body.get("username", "")),
                    str(body.get("kdf", "")),
                    name == self.key_name,
                )
            )
        return out

    def add_key(self, password: str, *, kdf: KdfParams | None = None) -> str:
        """Add a key object for another password; return its id."""
        if self.cipher.master is None:
            raise ConfigError("the repository is not encrypted: it has no keys")
        if not password:
            raise ConfigError("the new password is empty")
        key_id = os.urandom(8).hex()
        data = make_key_object(self.cipher.master, password, kdf=kdf)
        self.call_backend(lambda b: b.put_bytes(f"key-{key_id}", data))
        return key_id

    def remove_key(self, key_id: str) -> None:
        """Remove a key object. The key in use and the last key cannot be removed."""
        names = self.list_names("key-")
        name = key_id if key_id.startswith("key-") else f"key-{key_id}"
        if name not in names:
            raise ConfigError(f"no key {key_id!r} in the repository")
        if name == self.key_name:
            raise ConfigError(f"key {key_id} is the one in use: open with another password")
        if len(names) <= 1:
            raise ConfigError("cannot remove the last key")
        self.call_backend(lambda b: b.delete(name))

    # --- closing ----------------------------------------------------------------------

    def close(self) -> None:
        """Flush pending writes and stop the worker threads. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._pending or self._unsaved:
                self.flush()
        finally:
            if self._uploads is not None:
                for _ in self._uploaders:
                    self._uploads.put(None)
                for t in self._uploaders:
                    t.join()
            for pool in (self._file_pool, self._pool):
                if pool is not None:
                    pool.shutdown(wait=True)
            for extra in self._extra_backends:
                extra.close()
            self._extra_backends.clear()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chain(
    first: memoryview, second: memoryview, rest: Iterator[memoryview]
) -> Iterator[memoryview]:
    yield first
    yield second
    yield from rest


def encode_config(cipher: Cipher, repo_id: str, encryption: str, settings: dict[str, Any]) -> bytes:
    """The bytes of the ``config`` object: magic, then a msgpack map with the version,
    id and encryption in clear and the settings sealed (authenticated and encrypted when
    the repository is)."""
    sealed = cipher.seal(msgpack.packb(settings, use_bin_type=True), _config_aad(repo_id))
    body = {
        "version": fmt.FORMAT_VERSION,
        "id": repo_id,
        "encryption": encryption,
        "settings": sealed,
    }
    return fmt.CONFIG_MAGIC + bytes(msgpack.packb(body, use_bin_type=True))


def decode_config_public(raw: bytes) -> dict[str, Any]:
    """The clear part of a ``config`` object; CorruptObjectError when it is not one,
    RepositoryFormatError when its version is newer than this pannier reads."""
    if not raw.startswith(fmt.CONFIG_MAGIC):
        raise CorruptObjectError("config is not a pannier repository config", object_name="config")
    try:
        body = msgpack.unpackb(raw[len(fmt.CONFIG_MAGIC) :], raw=False)
        version = body["version"]
        _ = body["id"], body["encryption"], body["settings"]
    except Exception:
        raise CorruptObjectError("config is corrupt", object_name="config") from None
    if not isinstance(version, int) or version > fmt.FORMAT_VERSION:
        raise RepositoryFormatError(
            f"the repository has format version {version}; this pannier reads up to "
            f"{fmt.FORMAT_VERSION}: upgrade pannier"
        )
    return dict(body)


def blob_ids_from(data: bytes) -> list[bytes]:
    """Split concatenated 32-byte ids (a helper for streams of ids)."""
    return [data[i : i + fmt.ID_SIZE] for i in range(0, len(data), fmt.ID_SIZE)]


def _get_bytes(backend: Backend, name: str) -> bytes:
    return backend.get_bytes(name)


def _put_stream(backend: Backend, stream: IO[bytes], name: str, size: int) -> None:
    backend.put_stream(stream, name, size)


def _read_header(backend: Backend, name: str, size: int, cipher: Cipher) -> list[PackEntry]:
    return read_pack_header(backend, name, size, cipher)
