"""Backup: read sources into a repository and save a snapshot.

:func:`run_backup` walks every source once, in index order, side by side with the tree of
a *parent* snapshot (by default the latest one of the same host and paths):

* a regular file whose size, mtime, ctime and inode match the parent's entry is not read
  again: its chunk ids are reused (a snapshot's blobs stay in the repository as long as
  the snapshot does: write order and prune guarantee it; ``check`` finds damage) --
  except that each such file is re-read with probability ``reread_probability``
  (Deltaic's probabilistic full backup); a change found that way is stored and counted;
* any other file is read, chunked and stored (files are read by a small pool of threads,
  in order of the walk, memory bounded by :attr:`BackupOptions.max_pending`);
* every active metadata plugin records the entry in its stream;
* a file that cannot be read is a warning (``pannier_file_error``); the backup goes on,
  the snapshot lacks that file, and :attr:`BackupSummary.warnings` lists it.

Write order: content, then the tree and metadata streams, then ``repo.flush()`` (packs and
index), then the snapshot object last -- a snapshot that exists is complete. A source that
fails as a whole (:class:`~pannier.SourceError`, e.g. a failing dump command) aborts the
backup before the snapshot is written.
"""

from __future__ import annotations

import collections
import getpass
import os
import random
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs

from ..errors import SourceError
from ..meta import MetaPlugin
from ..source import Index, Source, SourceEntry, index_to_path
from .content import SMALL_FILE, Stored, store_file, store_files
from .entries import ScanAhead, link_target, merged_entries, synthetic_top, tree_entry
from .meta import MetaRecorder
from .progress import Progress, call_hook
from .snapshots import find_parent, load_tree
from .tree import TreeEntry, TreeWriter, spooled_file

__all__ = ["BackupOptions", "BackupSummary", "run_backup"]


#: The GIL switch interval during a backup (seconds; Python's default is 0.005).
SWITCH_INTERVAL = 0.001


@attrs.define
class BackupOptions:
    """What ``pannier backup`` was asked, besides the sources.

    :ivar tags: tags recorded in the snapshot.
    :ivar hostname: host name recorded (default: this machine's).
    :ivar parent: snapshot id (or prefix) to compare with; None picks the latest snapshot
        of the same host and paths; ``""`` forces a full read (no parent).
    :ivar reread_probability: chance (0..1) that an unchanged file is read anyway.
    :ivar dry_run: only compare with the parent and count what would be read; read no
        content and write nothing to the repository (``snapshot_id`` stays None).
    :ivar workers: threads reading and storing file content.
    :ivar max_pending: files read ahead of the one being recorded.
    :ivar random_seed: seed of the re-read draws (tests make them reproducible).
    """

    tags: list[str] = attrs.field(factory=list)
    hostname: str | None = None
    parent: str | None = None
    reread_probability: float = 0.001
    dry_run: bool = False
    workers: int = 4
    max_pending: int = 512
    random_seed: int | None = None


@attrs.define
class BackupSummary:
    """What a backup did (also the snapshot's ``summary`` and the JSON summary line)."""

    snapshot_id: str | None = None
    parent: str | None = None
    files_new: int = 0
    files_changed: int = 0
    files_unchanged: int = 0
    files_reread: int = 0
    files_reread_changed: int = 0
    dirs: int = 0
    others: int = 0
    total_files: int = 0
    total_bytes: int = 0
    bytes_read: int = 0
    bytes_added: int = 0
    seconds: float = 0.0
    warnings: list[str] = attrs.field(factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return attrs.asdict(self)


def run_backup(
    repo: Any,
    sources: Sequence[Source],
    options: BackupOptions | None = None,
    *,
    progress: Progress | None = None,
    meta_plugins: Sequence[type[MetaPlugin]] | None = None,
    scan_ahead: ScanAhead | None = None,
) -> BackupSummary:
    """Back up ``sources`` into ``repo`` (open, shared-locked) and save a snapshot.

    Returns the summary with ``snapshot_id`` set. Raises :class:`~pannier.SourceError`
    (no snapshot written) when a source fails as a whole; unreadable files only add to
    ``summary.warnings``. ``meta_plugins`` overrides the active metadata plugins (tests).
    ``scan_ahead``, a :class:`~pannier.engine.entries.ScanAhead` of the same
    ``sources`` started before the repository was opened, gives the entries (it is
    closed when the backup ends).
    """
    opts = options or BackupOptions()
    prog = progress or Progress("backup", quiet=True)
    started = time.monotonic()
    summary = BackupSummary()
    hostname = opts.hostname or socket.gethostname()
    paths = [s.display for s in sources]

    parent = find_parent(repo, opts.parent, hostname=hostname, paths=paths)
    summary.parent = parent.id if parent is not None else None
    info = {"paths": paths, "hostname": hostname, "tags": list(opts.tags), "parent": summary.parent}
    call_hook("pannier_backup_start", info=info)

    def on_warning(path: str, message: str) -> None:
        summary.warnings.append(f"{path}: {message}")
        prog.file_error(path, message)

    for s in sources:
        s.set_warning_callback(on_warning)
    # A thread back from a system call or a compression (which release the GIL) waits
    # for the GIL at most this long: the default 5 ms leaves a CPU idle too often.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL))
    try:
        stored_before = _repo_stored(repo)
        run = _BackupRun(repo, sources, opts, prog, summary, parent, meta_plugins, on_warning)
        streams = run.run(scan_ahead)
        if streams is not None:
            summary.bytes_added = _repo_stored(repo) - stored_before
            summary.seconds = round(time.monotonic() - started, 3)
            snap = _make_snapshot(hostname, paths, opts, summary, streams, sources)
            summary.snapshot_id = repo.save_snapshot(snap)
    except BaseException:
        summary.seconds = round(time.monotonic() - started, 3)
        prog.clear()
        call_hook("pannier_backup_end", summary=summary.as_dict())
        raise
    finally:
        sys.setswitchinterval(switch_interval)
        if scan_ahead is not None:
            scan_ahead.close()
        for s in sources:
            s.set_warning_callback(None)
    summary.seconds = round(time.monotonic() - started, 3)
    prog.finish()
    if summary.snapshot_id is not None:
        call_hook(
            "pannier_snapshot_saved", snapshot_id=summary.snapshot_id, summary=summary.as_dict()
        )
    call_hook("pannier_backup_end", summary=summary.as_dict())
    return summary


class _BackupRun:
    """The body of :func:`run_backup`: one walk of the sources against the parent's tree.

    The main thread walks and decides, per entry, whether the content is reused or read
    (:meth:`plan`); worker threads read and store; :meth:`emit` records each entry in the
    tree and metadata streams, in index order; :meth:`save` writes the streams and the
    snapshot last.
    """

    def __init__(
        self,
        repo: Any,
        sources: Sequence[Source],
        opts: BackupOptions,
        prog: Progress,
        summary: BackupSummary,
        parent: Any,
        meta_plugins: Sequence[type[MetaPlugin]] | None,
        on_warning: Callable[[str, str], None],
    ) -> None:
        self.repo = repo
        self.sources = sources
        self.opts = opts
        self.prog = prog
        self.summary = summary
        self.parent = parent
        self.warn = on_warning
        self.rng = random.Random(opts.random_seed)
        self.meta = MetaRecorder(
            meta_plugins, warn=on_warning, parent=(repo, parent) if parent is not None else None
        )
        self.tree_file = spooled_file()
        self.tree = TreeWriter(self.tree_file)
        self.failed: set[Index] = set()  # files not stored: their later links are skipped
        self._batch: _Batch | None = None  # small files waiting to be handed to a worker
        self._done_files = self._done_bytes = 0  # recorded, not yet told to the progress

    def run(self, ahead: ScanAhead | None = None) -> dict[str, list[bytes]] | None:
        """Walk (or take the walk of ``ahead``), store and record everything; return the
        streams (None for a dry run)."""
        opts, meta = self.opts, self.meta
        if self.prog.wanted:
            _start_counting(self.sources, self.prog, self.parent)
        parent_iter: Iterator[TreeEntry] = (
            iter(load_tree(self.repo, self.parent)) if self.parent else iter(())
        )
        parent_entry: TreeEntry | None = next(parent_iter, None)
        pending: collections.deque[_Pending] = collections.deque()
        last_index: Index | None = None
        try:
            workers = max(1, opts.workers)
            with ThreadPoolExecutor(workers, thread_name_prefix="pannier-read") as pool:
                if len(self.sources) > 1:
                    self.tree.add(synthetic_top(time.time_ns()))
                walk = merged_entries(self.sources) if ahead is None else ahead.entries(self.warn)
                for src, index, entry in walk:
                    if last_index is not None and index <= last_index:
                        raise SourceError(
                            f"source {src.get_name()!r} yielded {index_to_path(index)} out of order"
                        )
                    last_index = index
                    while parent_entry is not None and parent_entry.index < index:
                        parent_entry = next(parent_iter, None)
                    old = parent_entry if parent_entry and parent_entry.index == index else None
                    if not meta.started and entry.root is not None:
                        meta.start(entry.root)
                    pending.append(self.plan(pool, index, entry, old))
                    while pending and (len(pending) > opts.max_pending or pending[0].ready()):
                        if pending[0].batch is self._batch:
                            self._batch_submit(pool)  # the next entry waits for it
                        self.emit(pending.popleft())
                self._batch_submit(pool)
                while pending:
                    self.emit(pending.popleft())
                self._report_done()
            for s in self.sources:
                s.finish()
            if opts.dry_run:
                return None
            self.tree.close()
            self.tree_file.seek(0)
            blobs = {"tree": self.repo.store_stream(self.tree_file, kind="tree")}
            for name, fileobj in meta.finish():
                blobs[name] = self.repo.store_stream(fileobj, kind="tree")
                fileobj.close()
            streams = {name: self.repo.store_stream_list(ids) for name, ids in blobs.items()}
            self.repo.flush()
            return streams
        finally:
            self.tree_file.close()
            meta.close()

    def plan(
        self, pool: ThreadPoolExecutor, index: Index, entry: SourceEntry, old: TreeEntry | None
    ) -> _Pending:
        """Decide what to do with one entry: reuse the parent's content and metadata,
        or have a worker read and store it; count it."""
        summary, opts, meta = self.summary, self.opts, self.meta
        item = _Pending(index, entry)
        if entry.is_file and entry.hardlink_to is None:
            st = entry.stat
            unchanged = (
                old is not None
                and old.kind == "f"
                and old.size == st.st_size
                and old.mtime_ns == st.st_mtime_ns
                and old.ctime_ns == st.st_ctime_ns
                and old.ino == st.st_ino
            )
            p_reread = opts.reread_probability
            if unchanged and p_reread > 0 and self.rng.random() < p_reread:
                unchanged = False
                item.reread = True
                item.old = old
            if unchanged:
                assert old is not None
                summary.files_unchanged += 1
                item.work = Stored(list(old.data), 0, None, fresh=False)
            else:
                if item.reread:
                    pass  # counted as changed or unchanged once read
                elif old is not None and old.kind == "f":
                    summary.files_changed += 1
                else:
                    summary.files_new += 1
                if opts.dry_run:  # count what would be read
                    item.work = Stored([], st.st_size, None, fresh=False)
                elif st.st_size <= SMALL_FILE and not entry.sparse:
                    self._batch_add(pool, item)
                else:
                    self._batch_submit(pool)  # keep the batch order of the walk
                    item.work = pool.submit(store_file, self.repo, entry, index, meta)
        elif entry.is_dir:
            summary.dirs += 1
        else:
            summary.others += 1
        if opts.dry_run:
            item.records = []
        elif item.batch is None and not isinstance(item.work, Future) and not item.reread:
            known = None
            if _same_inode(old, entry):
                known = meta.lookup_parent(index)
                item.same = old  # nothing changed: the parent's tree entry is this one's
            item.records = meta.compute(entry, index, known)
        return item

    def _batch_add(self, pool: ThreadPoolExecutor, item: _Pending) -> None:
        """Queue a small file into the open batch; submit the batch once it is full."""
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
        item.batch = batch
        batch.items.append(item)
        batch.nbytes += item.entry.stat.st_size
        if len(batch.items) >= BATCH_FILES or batch.nbytes >= BATCH_BYTES:
            self._batch_submit(pool)

    def _batch_submit(self, pool: ThreadPoolExecutor) -> None:
        """Hand the open batch of small files to a worker (one task for many files:
        a task's overhead is paid once per batch, not per file)."""
        batch, self._batch = self._batch, None
        if batch is not None:
            work = [(i.entry, i.index) for i in batch.items]
            batch.future = pool.submit(store_files, self.repo, work, self.meta)

    def emit(self, item: _Pending) -> None:
        """Record one entry (its content stored or reused) in the tree and metadata
        streams; a file that could not be read is a warning and is left out."""
        summary = self.summary
        chunks: list[bytes] | None = None
        work = item.work
        if item.batch is not None:
            work = item.batch.result(item)
        elif isinstance(work, Future):
            work = work.result()
        entry = item.entry
        if entry.hardlink_to is not None and link_target(entry, item.index) in self.failed:
            self.warn(_shown(item), "hard link to a file that could not be read")
            return
        if work is not None:
            if work.error is not None:
                self.failed.add(item.index)
                self.warn(_shown(item), work.error)
                return
            chunks = work.chunks
            summary.bytes_read += work.nread
            if item.reread:
                summary.files_reread += 1
                if item.old is not None and list(item.old.data) != chunks:
                    summary.files_reread_changed += 1
                    summary.files_changed += 1
                else:
                    summary.files_unchanged += 1
        if item.same is not None:
            te = item.same
        else:
            try:
                te = tree_entry(entry, item.index, chunks)
            except SourceError as e:  # a file type the tree cannot hold (a socket): skipped
                self.warn(_shown(item), str(e))
                return
        if work is not None and work.fresh and te.kind == "f" and te.size != work.nread:
            # the file changed size while it was read: record what was stored
            te = te._replace(size=work.nread)
        if te.kind == "f":
            summary.total_files += 1
            summary.total_bytes += te.size
        self.tree.add(te)
        records = work.records if work is not None and work.records is not None else item.records
        if records is None:
            records = self.meta.compute(entry, item.index)
        self.meta.write(records)
        if te.kind == "f":
            self._done_files += 1
            self._done_bytes += te.size
            if self._done_files >= 64 or self._done_bytes >= 1 << 24:
                self._report_done()

    def _report_done(self) -> None:
        """Pass the files recorded since the last call on to the progress."""
        if self._done_files:
            self.prog.add(files=self._done_files, nbytes=self._done_bytes)
            self._done_files = self._done_bytes = 0


def _same_inode(old: TreeEntry | None, entry: SourceEntry) -> bool:
    """True when nothing about the inode changed since the parent (its ctime would have):
    the parent's metadata records can be reused."""
    if old is None or entry.hardlink_to is not None:
        return False
    st = entry.stat
    return (
        old.mode == st.st_mode
        and old.ctime_ns == st.st_ctime_ns
        and old.mtime_ns == st.st_mtime_ns
        and old.ino == st.st_ino
        and old.uid == st.st_uid
        and old.gid == st.st_gid
        and (old.size == st.st_size or old.kind not in "fl")
    )


def _shown(item: _Pending) -> str:
    """How a warning names the entry: its real path, else its snapshot path."""
    path = item.entry.path
    return index_to_path(item.index) if path is None else os.fsdecode(path)


class _Pending:
    """An entry waiting to be recorded, with the work storing its content (its own
    future, or its place in a batch of small files)."""

    __slots__ = ("batch", "entry", "index", "old", "records", "reread", "same", "work")

    def __init__(self, index: Index, entry: SourceEntry) -> None:
        self.index = index
        self.entry = entry
        self.records: list[Any] | None = None
        self.work: Future[Stored] | Stored | None = None
        self.batch: _Batch | None = None
        self.same: TreeEntry | None = None  # the parent's entry, when nothing changed
        self.reread = False
        self.old: TreeEntry | None = None

    def ready(self) -> bool:
        """True when recording it now would not wait."""
        if self.batch is not None:
            future = self.batch.future
            return future is not None and future.done()
        return not isinstance(self.work, Future) or self.work.done()


#: A batch of small files handed to one worker holds at most this many files...
BATCH_FILES = 32
#: ... or about this many bytes.
BATCH_BYTES = 1 << 20


class _Batch:
    """Small files stored by one worker task, in walk order."""

    __slots__ = ("future", "items", "nbytes")

    def __init__(self) -> None:
        self.items: list[_Pending] = []
        self.nbytes = 0
        self.future: Future[list[Stored]] | None = None

    def result(self, item: _Pending) -> Stored:
        """The stored content of ``item`` (waits for the batch)."""
        assert self.future is not None
        return self.future.result()[self.items.index(item)]


def _start_counting(sources: Sequence[Source], prog: Progress, parent: Any) -> None:
    """Give the progress its totals: from a background walk of fresh instances of the
    sources when they allow it (``counting_scan``), else from the parent's summary."""
    if all(type(s).counting_scan for s in sources):

        def count() -> None:
            files = nbytes = 0
            try:
                for s in sources:
                    fresh = type(s)(s.spec, s.options)
                    try:
                        for e in fresh.scan():
                            if e.is_file and e.hardlink_to is None:
                                files += 1
                                nbytes += e.stat.st_size
                    finally:
                        fresh.close()
            except Exception:  # counting only serves the progress line: never fail for it
                return
            prog.set_total(files, nbytes)

        threading.Thread(target=count, name="pannier-count", daemon=True).start()
        return
    total = getattr(parent, "summary", None) or {}
    if isinstance(total, dict) and "total_bytes" in total:
        prog.set_total(int(total.get("total_files", 0)), int(total["total_bytes"]))


def _repo_stored(repo: Any) -> int:
    """Bytes the repository has stored so far in this session (0 when it does not say)."""
    value = getattr(getattr(repo, "stats", None), "bytes_stored", 0)
    return int(value) if isinstance(value, int) else 0


def _make_snapshot(
    hostname: str,
    paths: list[str],
    opts: BackupOptions,
    summary: BackupSummary,
    streams: dict[str, list[bytes]],
    sources: Sequence[Source],
) -> Any:
    """The snapshot object of a finished backup (saved last by the caller)."""
    from .. import __version__
    from ..repo import Snapshot

    try:
        username = getpass.getuser()
    except (KeyError, OSError):
        username = str(os.getuid())
    summary_dict = summary.as_dict()
    summary_dict.pop("snapshot_id", None)
    return Snapshot(
        hostname=hostname,
        username=username,
        paths=paths,
        tags=list(opts.tags),
        parent=summary.parent,
        streams=streams,
        summary=summary_dict,
        program_version=__version__,
        source_kinds=sorted({s.get_name() for s in sources}),
    )
