"""Restore: write a snapshot's files back into a target directory, safely.

:func:`run_restore` walks the snapshot tree in index order and recreates every entry below
the target directory, then applies its metadata through the metadata plugins (owner when
run as root, mode, times, xattrs, ACLs); without a metadata stream it falls back to the
tree's own mode, owner and mtime.

Guarantees (each checked by a test):

* *Nothing outside the target*: every name is one path component (no ``/``, no ``.`` or
  ``..``, no NUL); directories are walked from the target's file descriptor with
  ``O_NOFOLLOW | O_DIRECTORY`` one component at a time, so a symlink -- planted by the
  snapshot itself or found in the target -- is never followed on the way. An entry that
  would need one is refused with :class:`~pannier.UnsafePathError` and reported.
* *No half-written files under real names*: content is written to a temporary name in the
  same directory and renamed over the real name only when complete; a failure (a full
  disk, a corrupt or missing pack) removes the temporary file and reports the file, and
  the other files still restore.
* *No unnecessary writes* (Deltaic): an existing file whose content already matches (same
  size and chunk ids, computed locally) is not rewritten, an existing symlink with the
  same target is kept, and metadata is compared before it is applied.
* *Hard links are restored as links* to the first name of the inode.
* Directory metadata (mtime above all) is applied last, deepest first.
* A non-empty target needs ``overwrite=True``.

From a local repository into an empty target, several processes restore at once (one per
CPU, at most :data:`MAX_PROCESSES`; see :mod:`pannier.engine.restore_team`): creating files
is kernel work that one process does on one CPU only.
"""

from __future__ import annotations

import fnmatch
import gc
import os
import re
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import attrs

from ..errors import ConfigError, PannierError
from ..meta import MetaPlugin
from ..source import Index, index_to_path, path_to_index
from .meta import MetaApplier
from .progress import Progress, call_hook
from .restore_team import RestoreTeam
from .snapshots import load_tree
from .target import (
    DIR_FLAGS,
    DirStack,
    apply_tree_meta,
    check_name,
    lstat_at,
    open_parent,
    remove_at,
    remove_temporary,
    same_content,
    tmp_name,
    write_file,
)
from .tree import FLAG_SPARSE, TreeEntry

__all__ = ["RestoreOptions", "RestoreSummary", "check_target", "run_restore"]

#: Small files of one directory restored together: at most this many, or this many bytes.
BATCH_FILES = 128
BATCH_BYTES = 8 << 20
#: Threads writing large files from a local repository (small files: the walking thread).
LOCAL_WORKERS = 2
#: Threads writing files from a remote repository (their reads wait on the network).
REMOTE_WORKERS = 4
#: The most processes a restore uses by default (one per CPU up to this).
MAX_PROCESSES = 4


@attrs.define
class RestoreOptions:
    """What ``pannier restore`` was asked.

    :ivar include: snapshot paths to restore (with everything below them); empty = all.
    :ivar exclude: glob patterns of entries not to restore (with everything below them);
        a pattern without ``/`` matches a name, one with ``/`` the whole snapshot path.
    :ivar overwrite: allow a non-empty target (existing files are compared and replaced
        only where they differ).
    :ivar workers: threads writing files; 0 writes every file in the calling thread;
        None (the default) chooses: from a local (``file://``) repository small files
        are written by the calling thread and large ones by :data:`LOCAL_WORKERS`
        threads, from any other by :data:`REMOTE_WORKERS` threads, whose reads overlap.
    :ivar processes: processes restoring at once, each writing its share of the files
        (see :mod:`pannier.engine.restore_team`; never more than 1 with ``overwrite``);
        None (the default) chooses one per CPU (at most :data:`MAX_PROCESSES`) from a
        local repository, else 1.
    """

    include: list[str] = attrs.field(factory=list)
    exclude: list[str] = attrs.field(factory=list)
    overwrite: bool = False
    workers: int | None = None
    processes: int | None = None


@attrs.define
class RestoreSummary:
    """What a restore did."""

    snapshot_id: str | None = None
    target: str = ""
    files_restored: int = 0
    files_unchanged: int = 0
    dirs: int = 0
    links: int = 0
    others: int = 0
    bytes_written: int = 0
    metadata_changed: int = 0
    seconds: float = 0.0
    errors: list[str] = attrs.field(factory=list)
    missing_meta_streams: list[str] = attrs.field(factory=list)
    unsupported_meta_streams: list[str] = attrs.field(factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict."""
        return attrs.asdict(self)


class _Excluder:
    """Matches snapshot entries against ``--exclude`` glob patterns."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self._names: list[re.Pattern[str]] = []
        self._paths: list[re.Pattern[str]] = []
        for p in patterns:
            pat = p.rstrip("/") or p
            rx = re.compile(fnmatch.translate(pat), re.DOTALL)
            (self._paths if "/" in pat else self._names).append(rx)

    def __call__(self, index: Index) -> bool:
        """True when the entry at ``index`` is excluded (not its descendants' test)."""
        if not index or not (self._names or self._paths):
            return False
        name = os.fsdecode(index[-1])
        if any(rx.match(name) for rx in self._names):
            return True
        path = index_to_path(index)
        return any(rx.match(path) for rx in self._paths)


def _is_within(index: Index, includes: Sequence[Index]) -> tuple[bool, bool]:
    """(restore it, it is only an ancestor of an included path)."""
    if not includes:
        return True, False
    for inc in includes:
        if index[: len(inc)] == inc:
            return True, False
    for inc in includes:
        if inc[: len(index)] == index:
            return True, True
    return False, False


class _Restorer:
    """One restore run: the walk of the tree (main thread), file writing (a pool of worker
    threads, small files of a directory in batches), then hard links, then directory
    metadata deepest first. Every failure is recorded per entry in the summary."""

    def __init__(
        self,
        repo: Any,
        target: str,
        opts: RestoreOptions,
        prog: Progress,
        meta: MetaApplier,
        team: RestoreTeam | None = None,
    ) -> None:
        self.repo = repo
        self.team = team
        #: The process that makes hard links and directory metadata (the only one, or
        #: the first of a team).
        self.lead = team is None or team.part == 0
        # the target itself may be a symlink the user chose; nothing below it is followed
        self.target = os.fsencode(os.path.realpath(target))
        self.opts = opts
        self.prog = prog
        self.meta = meta
        self.summary = RestoreSummary(target=target)
        self.lock = threading.Lock()
        self.use_attr = meta.has("attr")
        self.want_digest = meta.wants_digest()
        self.umask = _umask()
        self.excluded: set[Index] = set()  # entries left out by --exclude

    def error(self, index: Index, message: str) -> None:
        path = index_to_path(index)
        with self.lock:
            self.summary.errors.append(f"{path}: {message}")
        self.prog.file_error(path, message)

    def apply_meta(
        self, dfd: int, entry: TreeEntry, records: dict[str, Any], digest: bytes | None = None
    ) -> None:
        """Apply the entry's metadata records (the tree's own owner, mode and mtime when
        there is no ``attr`` record); ``digest`` is the BLAKE3 digest of the content just
        written, if any. An OSError is reported, not raised."""
        try:
            changed = (
                self.meta.apply(records, self.target, entry.index, digest=digest)
                if self.meta.plugins
                else False
            )
            if not self.use_attr or records.get("attr") is None:
                changed = (
                    apply_tree_meta(dfd, entry.index[-1] if entry.index else b".", entry) or changed
                )
        except OSError as e:
            self.error(entry.index, f"cannot set metadata: {e.strerror or e}")
            return
        if changed:
            with self.lock:
                self.summary.metadata_changed += 1

    def restore_file(
        self,
        dfd: int,
        entry: TreeEntry,
        records: dict[str, Any],
        data: bytes | None = None,
        *,
        compare: bool = True,
    ) -> None:
        """Restore one regular file into the directory ``dfd``: keep an existing file
        with the same content (when ``compare``), else write it; then its metadata.
        Errors are reported, not raised."""
        name = entry.index[-1]
        digest = None
        try:
            st = lstat_at(dfd, name) if compare else None
            if (
                st is not None
                and stat.S_ISREG(st.st_mode)
                and same_content(self.repo, dfd, name, entry)
            ):
                with self.lock:
                    self.summary.files_unchanged += 1
            else:
                if st is not None and stat.S_ISDIR(st.st_mode):
                    remove_at(dfd, name)
                n, digest = write_file(
                    self.repo, dfd, name, entry, data, digest=self.want_digest, umask=self.umask
                )
                with self.lock:
                    self.summary.files_restored += 1
                    self.summary.bytes_written += n
            self.apply_meta(dfd, entry, records, digest)
            self.prog.add(files=1, nbytes=entry.size)
        except (OSError, PannierError) as e:
            self.error(entry.index, _message(e))

    def file_task(self, dfd: int, entry: TreeEntry, records: dict[str, Any]) -> None:
        """Restore one (large) file in a worker thread; closes ``dfd``."""
        try:
            self.restore_file(dfd, entry, records, compare=self.opts.overwrite)
        finally:
            os.close(dfd)

    def batch_task(
        self, dfd: int, items: list[tuple[TreeEntry, dict[str, Any]]], ahead: bool = True
    ) -> None:
        """Restore small files of one directory, reading their blobs with one
        :meth:`iter_blobs` call (neighbouring blobs of a pack come in one ranged read;
        read ahead in threads when ``ahead``); closes ``dfd``. A blob that cannot be
        read fails its file only."""
        try:
            todo = items
            if self.opts.overwrite:
                todo = []
                for entry, records in items:
                    if lstat_at(dfd, entry.index[-1]) is None:
                        todo.append((entry, records))
                    else:  # compare with (or replace) what is there
                        self.restore_file(dfd, entry, records)
            single = [(e, r) for e, r in todo if len(e.data or ()) == 1]
            others = [(e, r) for e, r in todo if len(e.data or ()) != 1]
            done = 0
            try:
                ids = [e.data[0] for e, _ in single]
                blobs = (
                    self.repo.iter_blobs(ids) if ahead else self.repo.iter_blobs(ids, ahead=False)
                )
                for (entry, records), data in zip(single, blobs, strict=False):
                    self.restore_file(dfd, entry, records, data, compare=False)
                    done += 1
            except (OSError, PannierError):
                # read the rest one by one: each damaged file is reported, the others restore
                for entry, records in single[done:]:
                    self.restore_file(dfd, entry, records, compare=False)
            for entry, records in others:
                self.restore_file(dfd, entry, records, compare=False)
        finally:
            os.close(dfd)

    def make_special(self, dfd: int, entry: TreeEntry) -> bool:
        """Create a symlink, FIFO or device at the entry's name unless an identical one is
        there; return True when something was created."""
        name = entry.index[-1]
        if entry.kind == "l" and not self.opts.overwrite:
            # the target was empty: a symlink is created at its name directly (atomic;
            # whatever is found there already is compared below)
            try:
                os.symlink(bytes(entry.data or b""), name, dir_fd=dfd)
                return True
            except FileExistsError:
                pass
        st = lstat_at(dfd, name)
        if st is not None:
            if entry.kind == "l" and stat.S_ISLNK(st.st_mode):
                if os.readlink(name, dir_fd=dfd) == bytes(entry.data or b""):
                    return False
            elif stat.S_IFMT(st.st_mode) == stat.S_IFMT(entry.mode) and (
                entry.kind == "p" or st.st_rdev == entry.data
            ):
                return False
        tmp = tmp_name()
        try:
            if entry.kind == "l":
                os.symlink(bytes(entry.data or b""), tmp, dir_fd=dfd)
            elif entry.kind == "p":
                os.mkfifo(tmp, 0o600, dir_fd=dfd)
            else:
                os.mknod(tmp, stat.S_IFMT(entry.mode) | 0o600, int(entry.data or 0), dir_fd=dfd)
            if st is not None and stat.S_ISDIR(st.st_mode):
                remove_at(dfd, name)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException as e:
            remove_temporary(dfd, tmp, e)
            raise
        return True

    def make_dir(self, dfd: int, entry: TreeEntry) -> None:
        name = entry.index[-1]
        st = lstat_at(dfd, name)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=dfd)
            st = None
        if st is None:
            try:
                os.mkdir(name, 0o700, dir_fd=dfd)
            except FileExistsError:  # made meanwhile by another process of the restore
                st = lstat_at(dfd, name)
                if st is None or not stat.S_ISDIR(st.st_mode):
                    raise

    def merge(self, other: dict[str, Any]) -> None:
        """Add the summary of another process of the restore (as a dict) to this one's,
        and report its errors."""
        for name in (
            "files_restored",
            "files_unchanged",
            "links",
            "others",
            "bytes_written",
            "metadata_changed",
        ):
            setattr(self.summary, name, getattr(self.summary, name) + int(other.get(name, 0)))
        for message in other.get("errors", []):
            path, _, error = str(message).partition(": ")
            with self.lock:
                self.summary.errors.append(str(message))
            self.prog.file_error(path, error)

    def link(self, top: int, entry: TreeEntry) -> None:
        """Create the hard link ``entry`` to the earlier entry it names."""
        target_index = tuple(entry.data)
        sfd = open_parent(top, target_index)
        try:
            dfd = open_parent(top, entry.index)
            try:
                name = check_name(entry.index[-1], entry.index)
                src = check_name(target_index[-1], target_index)
                st = lstat_at(dfd, name)
                sst = os.lstat(src, dir_fd=sfd)
                if st is not None and (st.st_dev, st.st_ino) == (sst.st_dev, sst.st_ino):
                    return
                tmp = tmp_name()
                try:
                    os.link(src, tmp, src_dir_fd=sfd, dst_dir_fd=dfd, follow_symlinks=False)
                    if st is not None and stat.S_ISDIR(st.st_mode):
                        remove_at(dfd, name)
                    os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
                except BaseException as e:
                    remove_temporary(dfd, tmp, e)
                    raise
            finally:
                os.close(dfd)
        finally:
            os.close(sfd)

    def run(self, snapshot: Any) -> RestoreSummary:
        includes = [path_to_index(p) for p in self.opts.include]
        os.makedirs(self.target, exist_ok=True)
        top = os.open(self.target, DIR_FLAGS)
        dirs = DirStack(top)
        upward: DirStack | None = None
        dir_meta: list[tuple[TreeEntry, dict[str, Any]]] = []
        links: list[tuple[TreeEntry, dict[str, Any]]] = []
        matched = not includes
        # A directory missing from the snapshot is made on the way, by a process alone:
        # in a team, another process may be about to put a symlink at that name.
        alone = self.team is None
        excluded = _Excluder(self.opts.exclude)
        skipped: Index | None = None  # the excluded directory being skipped
        try:
            main: Iterator[tuple[Index, dict[str, Any]]] = (
                (e.index, {"": e}) for e in load_tree(self.repo, snapshot)
            )
            local = _is_local(self.repo)
            workers = self.opts.workers
            if workers is None:
                workers = LOCAL_WORKERS if local else REMOTE_WORKERS
            # Every thread more that runs Python at once costs GIL hand-overs, a futex
            # call at nearly every syscall: small files from a local repository, whose
            # reads never wait, are written by this thread itself; large files (long
            # reads, decoding and writes outside the GIL) go to the workers.
            inline_small = workers <= 0 or (self.opts.workers is None and local)
            inline_large = workers <= 0
            workers = max(1, workers)
            with ThreadPoolExecutor(workers, thread_name_prefix="pannier-restore") as pool:
                pending: list[Future[None]] = []
                # the walking thread writes small files meanwhile: let large ones queue
                slots = threading.BoundedSemaphore(workers * (32 if inline_small else 4))
                batch: list[tuple[TreeEntry, dict[str, Any]]] = []
                batch_dir: Index | None = None
                batch_fd = -1
                batch_bytes = 0

                def submit(fn: Any, *args: Any, inline: bool = False) -> None:
                    if inline:
                        fn(*args)
                        return
                    slots.acquire()

                    def run() -> None:
                        try:
                            fn(*args)
                        finally:
                            slots.release()

                    pending.append(pool.submit(run))

                def flush_batch() -> None:
                    nonlocal batch, batch_bytes, batch_fd
                    if batch:
                        submit(
                            self.batch_task,
                            batch_fd,
                            batch,
                            not inline_small,
                            inline=inline_small,
                        )
                        batch, batch_bytes, batch_fd = [], 0, -1

                for index, records in self.meta.join(main):
                    entry: TreeEntry = records.pop("")
                    wanted, ancestor = _is_within(index, includes)
                    if not wanted:
                        continue
                    if skipped is not None and index[: len(skipped)] == skipped:
                        continue
                    if not ancestor and excluded(index):
                        skipped = index
                        self.excluded.add(index)
                        continue
                    matched = matched or not ancestor
                    if (
                        self.team is not None
                        and entry.kind != "d"
                        and (not self.lead if entry.kind == "h" else not self.team.owns_next())
                    ):
                        continue  # another process of the restore does it (and reports it)
                    try:
                        if index:
                            check_name(index[-1], index)
                        if entry.kind == "d":
                            if index:  # every process makes the directories it needs
                                self.make_dir(dirs.fd_for(index[:-1], create=alone), entry)
                            if self.lead:
                                self.summary.dirs += 1
                                dir_meta.append((entry, records))
                            continue
                        if ancestor or not index:
                            continue
                        check_name(index[-1], index)
                        dfd = dirs.fd_for(index[:-1], create=alone)
                        if entry.kind == "f":
                            if len(entry.data or ()) > 1 or entry.flags & FLAG_SPARSE:
                                submit(
                                    self.file_task, os.dup(dfd), entry, records, inline=inline_large
                                )
                                continue
                            if (
                                batch_dir != index[:-1]
                                or len(batch) >= BATCH_FILES
                                or (batch_bytes >= BATCH_BYTES)
                            ):
                                flush_batch()
                                batch_dir = index[:-1]
                            if batch_fd < 0:
                                batch_fd = os.dup(dfd)
                            batch.append((entry, records))
                            batch_bytes += entry.size
                        elif entry.kind == "h":
                            links.append((entry, records))
                        else:
                            self.make_special(dfd, entry)
                            self.summary.others += 1
                            self.apply_meta(dfd, entry, records)
                    except (OSError, PannierError) as e:
                        if self.lead or entry.kind != "d":  # every process meets directories
                            self.error(index, _message(e))
                flush_batch()
                for f in pending:
                    f.result()
            dirs.close()
            if not self.lead:
                return self.summary
            if self.team is not None:
                for other in self.team.wait(self.prog):
                    self.merge(other)
            self.restore_links(top, snapshot, links, includes)
            # deepest first: one walk down keeps the parents open (never through a symlink)
            upward = DirStack(top)
            for entry, records in reversed(dir_meta):
                try:
                    if entry.index:
                        dfd = upward.fd_for(entry.index[:-1], create=False)
                        self.apply_meta(dfd, entry, records)
                    else:
                        self._apply_top(entry, records)
                except (OSError, PannierError) as e:
                    self.error(entry.index, _message(e))
        finally:
            dirs.close()
            if upward is not None:
                upward.close()
            os.close(top)
            self.meta.close()
        if includes and not matched:
            raise ConfigError(
                "no file in the snapshot matches --include " + ", ".join(self.opts.include)
            )
        self.summary.missing_meta_streams = list(self.meta.missing)
        for message in self.meta.stream_errors:
            self.error((), message)
        return self.summary

    def restore_links(
        self,
        top: int,
        snapshot: Any,
        links: list[tuple[TreeEntry, dict[str, Any]]],
        includes: list[Index],
    ) -> None:
        """Create the hard links; a link whose first name was not restored (left out by
        ``--include``) gets the content itself, and later links of it link to it."""
        outside: dict[Index, list[tuple[TreeEntry, dict[str, Any]]]] = {}
        for entry, records in links:
            target = tuple(entry.data)
            wanted, ancestor = _is_within(target, includes)
            if not wanted or ancestor or any(target[: len(x)] == x for x in self.excluded):
                outside.setdefault(target, []).append((entry, records))
                continue
            self._link_one(top, entry, records)
        if not outside:
            return
        for te in load_tree(self.repo, snapshot):
            group = outside.pop(te.index, None)
            if not group:
                continue
            first, records = group[0]
            as_file = te._replace(index=first.index)
            try:
                dfd = open_parent(top, first.index)
            except (OSError, PannierError) as e:
                self.error(first.index, _message(e))
                continue
            self.file_task(dfd, as_file, records)
            for entry, recs in group[1:]:
                self._link_one(top, entry._replace(data=first.index), recs)
        for target, group in outside.items():
            for entry, _ in group:
                self.error(
                    entry.index,
                    f"hard link to {index_to_path(target)} which is not in the snapshot",
                )

    def _link_one(self, top: int, entry: TreeEntry, records: dict[str, Any]) -> None:
        try:
            self.link(top, entry)
            self.summary.links += 1
            dfd = open_parent(top, entry.index)
            try:
                self.apply_meta(dfd, entry, records)
            finally:
                os.close(dfd)
        except (OSError, PannierError) as e:
            self.error(
                entry.index, f"cannot link to {index_to_path(tuple(entry.data))}: {_message(e)}"
            )

    def _apply_top(self, entry: TreeEntry, records: dict[str, Any]) -> None:
        """Apply the top entry's metadata to the target directory itself."""
        try:
            changed = self.meta.apply(records, self.target, ()) if self.meta.plugins else False
            if not self.use_attr or records.get("attr") is None:
                parent = os.open(os.path.dirname(self.target) or b"/", os.O_RDONLY | os.O_DIRECTORY)
                try:
                    named = entry._replace(index=(os.path.basename(self.target),))
                    changed = apply_tree_meta(parent, named.index[-1], named) or changed
                finally:
                    os.close(parent)
        except OSError as e:
            self.error((), f"cannot set metadata: {e.strerror or e}")
            return
        if changed:
            self.summary.metadata_changed += 1


def _meta_applier(
    repo: Any, snapshot: Any, plugins: Sequence[type[MetaPlugin]] | None, target: str
) -> tuple[MetaApplier, list[str]]:
    """The metadata applier of a restore, and the streams the target cannot hold."""
    meta = MetaApplier(repo, snapshot, plugins)
    return meta, meta.restrict_to(os.fsencode(os.path.realpath(target)))


def _processes(repo: Any, opts: RestoreOptions) -> int:
    """How many processes restore (see :attr:`RestoreOptions.processes`)."""
    if opts.overwrite or not hasattr(os, "fork"):
        return 1  # several processes only into an empty target
    if opts.processes is not None:
        return max(1, opts.processes)
    if opts.workers is not None or not _is_local(repo):
        return 1
    return max(1, min(os.cpu_count() or 1, MAX_PROCESSES))


def _is_local(repo: Any) -> bool:
    """True when ``repo`` is on a local ``file://`` backend (reads never wait long)."""
    url = getattr(getattr(repo, "backend", None), "url", None)
    return getattr(url, "scheme", None) == "file"


def _umask() -> int:
    """The process's umask (read from /proc where it can be, else set and set back)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _message(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e)


def check_target(target: str, overwrite: bool) -> None:
    """Raise ConfigError when ``target`` is not a directory, or is not empty and
    ``overwrite`` is false."""
    if os.path.lexists(target):
        if not os.path.isdir(target):  # a symlink to a directory is followed (only there)
            raise ConfigError(f"restore target {target!r} exists and is not a directory")
        if not overwrite and os.listdir(target):
            raise ConfigError(
                f"restore target {target!r} is not empty; use --overwrite to restore into it "
                "(only files that differ are rewritten)"
            )


def run_restore(
    repo: Any,
    snapshot: Any,
    target: str,
    options: RestoreOptions | None = None,
    *,
    progress: Progress | None = None,
    meta_plugins: Sequence[type[MetaPlugin]] | None = None,
) -> RestoreSummary:
    """Restore ``snapshot`` from ``repo`` into the directory ``target``.

    Raises :class:`~pannier.ConfigError` for a non-empty target without ``overwrite`` (or
    a target that is not a directory) before writing anything. Files that cannot be
    restored (corrupt data, unsafe names, a full disk) are listed in
    ``summary.errors``; everything else is restored.
    """
    opts = options or RestoreOptions()
    prog = progress or Progress("restore", quiet=True)
    check_target(target, opts.overwrite)
    started = time.monotonic()
    total = getattr(snapshot, "summary", None) or {}
    if isinstance(total, dict) and "total_bytes" in total and not opts.include:
        prog.set_total(int(total.get("total_files", 0)), int(total["total_bytes"]))
    call_hook("pannier_restore_start", info={"snapshot": snapshot.id, "target": target})
    os.makedirs(target, exist_ok=True)
    # what is alive now (the index above all) is not scanned again by every collection,
    # nor copied by the helper processes
    gc.freeze()
    team: RestoreTeam | None = None
    try:
        processes = _processes(repo, opts)
        if processes > 1:
            _ = repo.index  # loaded once, before the fork, for every process
            team = RestoreTeam.fork(processes)
            prog.others = team.others_done
            if team.part:
                helper = team
                team.run_helper(
                    lambda: (
                        _Restorer(
                            repo,
                            target,
                            opts,
                            helper.progress(prog.stream),
                            _meta_applier(repo, snapshot, meta_plugins, target)[0],
                            helper,
                        )
                        .run(snapshot)
                        .as_dict()
                    )
                )
        meta, unsupported = _meta_applier(repo, snapshot, meta_plugins, target)
        restorer = _Restorer(repo, target, opts, prog, meta, team)
        restorer.summary.unsupported_meta_streams = unsupported
        restorer.summary.snapshot_id = snapshot.id
        try:
            summary = restorer.run(snapshot)
        except BaseException:
            restorer.summary.seconds = round(time.monotonic() - started, 3)
            prog.clear()
            call_hook("pannier_restore_end", summary=restorer.summary.as_dict())
            raise
    finally:
        if team is not None:
            team.stop()  # only those still running: after a failure of this process
        gc.unfreeze()
    summary.seconds = round(time.monotonic() - started, 3)
    prog.finish()
    call_hook("pannier_restore_end", summary=summary.as_dict())
    return summary
