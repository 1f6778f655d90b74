"""The restore target: walking it safely and writing files into it atomically.

Everything here works relative to open directory file descriptors:

* :func:`check_name` refuses a snapshot name that is not one plain path component
  (empty, ``.``, ``..``, containing ``/`` or NUL);
* :class:`DirStack` and :func:`open_parent` walk from the target's descriptor one
  component at a time with ``O_NOFOLLOW | O_DIRECTORY``, so a symlink -- planted by a
  snapshot or found in the target -- is never followed (:class:`~pannier.UnsafePathError`);
* :func:`write_file` writes content to a temporary name (:func:`tmp_name`, created with
  ``O_EXCL``) and renames it over the real name only when complete; any failure removes
  the temporary file;
* :func:`same_content` compares an existing file with a tree entry by chunking and
  hashing it locally, so an unchanged file is not rewritten;
* :func:`apply_tree_meta` applies the tree's own owner, mode and mtime, comparing first.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import secrets
import stat
from typing import Any, NamedTuple

from ..errors import UnsafePathError
from ..source import Index, index_to_path
from .tree import FLAG_SPARSE, TreeEntry

__all__ = [
    "DIR_FLAGS",
    "SMALL_FILE",
    "TMP_PREFIX",
    "DirStack",
    "Written",
    "apply_tree_meta",
    "check_name",
    "lstat_at",
    "open_dir",
    "open_parent",
    "remove_at",
    "remove_temporary",
    "same_content",
    "tmp_name",
    "write_file",
]

#: Flags opening a directory of the target: never through a symlink.
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
#: Temporary files written by a restore start with this.
TMP_PREFIX = ".pannier-tmp-"
#: Files up to this size are compared with one blob id (as backup stores them).
SMALL_FILE = 256 * 1024


def check_name(name: bytes, index: Index) -> bytes:
    """Return ``name`` if it is a safe single path component, else raise UnsafePathError."""
    if not name or name in (b".", b"..") or b"/" in name or b"\0" in name:
        raise UnsafePathError(
            f"snapshot entry {index_to_path(index)!r} has an unsafe name {os.fsdecode(name)!r}"
        )
    return name


class DirStack:
    """Open directory fds along the current path, walked without following symlinks."""

    def __init__(self, top_fd: int) -> None:
        self.top = top_fd
        self.stack: list[tuple[bytes, int]] = []  # (name, fd), below top

    def fd_for(self, parent: Index, create: bool = True) -> int:
        """The fd of directory ``parent`` (created when missing and ``create``)."""
        depth = 0
        while (
            depth < len(self.stack)
            and depth < len(parent)
            and self.stack[depth][0] == parent[depth]
        ):
            depth += 1
        while len(self.stack) > depth:
            os.close(self.stack.pop()[1])
        for i in range(depth, len(parent)):
            name = check_name(parent[i], parent)
            dfd = self.stack[-1][1] if self.stack else self.top
            fd = open_dir(dfd, name, parent[: i + 1], create)
            self.stack.append((name, fd))
        return self.stack[-1][1] if self.stack else self.top

    def close(self) -> None:
        while self.stack:
            os.close(self.stack.pop()[1])


def open_dir(dfd: int, name: bytes, index: Index, create: bool) -> int:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dfd)
    except FileNotFoundError:
        if not create:
            raise
        # another restore process may create it at the same moment
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=dfd)
        return open_dir(dfd, name, index, create=False)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePathError(
                f"{index_to_path(index)} is not a directory in the target (a symlink or a "
                f"file is in the way); refusing to follow it"
            ) from None
        raise


def open_parent(top_fd: int, index: Index) -> int:
    """Open (a new fd of) the parent directory of ``index``, never following symlinks."""
    fd = os.dup(top_fd)
    try:
        for i in range(len(index) - 1):
            nfd = open_dir(fd, check_name(index[i], index), index[: i + 1], create=False)
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


#: Temporary names are this process's random prefix and a counter (O_EXCL makes a clash
#: an error, never an overwrite).
_TMP_RUN = f"{TMP_PREFIX}{secrets.token_hex(6)}-"
_tmp_counter = itertools.count()


def _new_temporary_prefix() -> None:
    """Give a forked process (a restore helper) its own prefix: names never clash."""
    global _TMP_RUN, _tmp_counter
    _TMP_RUN = f"{TMP_PREFIX}{secrets.token_hex(6)}-"
    _tmp_counter = itertools.count()


os.register_at_fork(after_in_child=_new_temporary_prefix)


def remove_temporary(dfd: int, tmp: bytes, error: BaseException) -> None:
    """Remove the temporary ``tmp`` after ``error`` stopped the step that creates it and
    renames it into place: it may exist or not; a FileExistsError of its creation means
    the name is someone else's, which stays."""
    if not isinstance(error, FileExistsError):
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dfd)


def tmp_name() -> bytes:
    return f"{_TMP_RUN}{next(_tmp_counter)}".encode()


def lstat_at(dfd: int, name: bytes) -> os.stat_result | None:
    try:
        return os.lstat(name, dir_fd=dfd)
    except FileNotFoundError:
        return None


def remove_at(dfd: int, name: bytes) -> None:
    """Remove whatever is at ``name`` (a directory tree too) without following links."""
    st = lstat_at(dfd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, DIR_FLAGS, dir_fd=dfd)
        try:
            for child in os.listdir(fd):
                remove_at(fd, os.fsencode(child))
        finally:
            os.close(fd)
        os.rmdir(name, dir_fd=dfd)
    else:
        os.unlink(name, dir_fd=dfd)


def same_content(repo: Any, dfd: int, name: bytes, entry: TreeEntry) -> bool:
    """True when the regular file at ``name`` has exactly the entry's content (compared by
    chunk ids computed locally; nothing is read from the repository)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dfd)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode) or st.st_size != entry.size:
            return False
        chunks = list(entry.data or ())
        if entry.size == 0:
            return not chunks
        if entry.size <= SMALL_FILE and len(chunks) == 1:
            return bool(repo.blob_id(f.read()) == chunks[0])
        i = 0
        for piece in repo.chunk_file(f):
            if i >= len(chunks) or repo.blob_id(piece) != chunks[i]:
                return False
            i += 1
        return i == len(chunks)


class Written(NamedTuple):
    """What :func:`write_file` wrote: the byte count and, when asked, the BLAKE3 digest
    of those bytes in file order (None for a sparse file: its holes are not written)."""

    size: int
    digest: bytes | None


def write_file(
    repo: Any,
    dfd: int,
    name: bytes,
    entry: TreeEntry,
    data: bytes | None = None,
    *,
    digest: bool = False,
    umask: int = 0,
) -> Written:
    """Write the entry's content (``data`` when already read, else its blobs read from
    the repository) to a temporary name, rename it to ``name``; return what was written.

    The file is created with the entry's permission bits (never setuid, setgid or sticky
    before its owner is set; ``umask`` bits the process would clear are set again) and
    gets the entry's mtime before it is renamed, so that the metadata step usually
    finds nothing left to do. With ``digest`` the BLAKE3 digest of the bytes written is
    computed on the way. On any failure the temporary file is removed and the error
    raised.
    """
    tmp = tmp_name()
    mode = stat.S_IMODE(entry.mode) & 0o777
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    written = 0
    sparse = bool(entry.flags & FLAG_SPARSE)
    hasher = _blake3() if digest and not sparse else None
    fd = -1
    try:
        # created inside the try: an interruption (Ctrl-C, SIGTERM) right after the
        # create still removes it
        fd = os.open(tmp, flags, mode, dir_fd=dfd)
        if mode & umask:
            os.fchmod(fd, mode)
        chunks = entry.data or ()
        if sparse:
            written = _write_sparse(repo, fd, list(chunks))
            os.ftruncate(fd, written)
        elif chunks:
            if data is not None and len(chunks) == 1:
                written = _write_all(fd, data)
                if hasher is not None:
                    hasher.update(data)
            else:
                for piece in repo.iter_blobs(list(chunks)):
                    written += _write_all(fd, piece)
                    if hasher is not None:
                        hasher.update(piece)
        if written != entry.size:
            raise UnsafePathError(
                f"{index_to_path(entry.index)}: content is {written} bytes, the snapshot says "
                f"{entry.size}"
            )
        os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
        os.close(fd)
        fd = -1
        os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
    except BaseException as e:
        if fd >= 0:
            os.close(fd)
        remove_temporary(dfd, tmp, e)
        raise
    return Written(written, None if hasher is None else hasher.digest())


_hasher: Any = None


def _blake3() -> Any:
    """A new BLAKE3 hasher (blake3, a core dependency, is imported when first needed)."""
    global _hasher
    if _hasher is None:
        import blake3

        _hasher = blake3.blake3
    return _hasher()


def _write_all(fd: int, data: bytes) -> int:
    """Write all of ``data`` to ``fd``; return its length."""
    k = os.write(fd, data)
    if k == len(data):
        return k
    view = memoryview(data)[k:]
    while view:
        view = view[os.write(fd, view) :]
    return len(data)


def _write_sparse(repo: Any, fd: int, chunks: list[bytes]) -> int:
    """Write a sparse file's chunks, seeking over the all-zero ones (a hole's chunk id
    repeats: it is read once); return the length written."""
    holes: dict[bytes, int] = {}  # chunk id of an all-zero blob -> its length
    written = 0
    for blob_id in chunks:
        n = holes.get(blob_id)
        if n is None:
            data = repo.read_blob(blob_id)
            n = len(data)
            if data == bytes(n):
                holes[blob_id] = n
            else:
                _write_all(fd, data)
                written += n
                continue
        os.lseek(fd, n, os.SEEK_CUR)
        written += n
    return written


def apply_tree_meta(dfd: int, name: bytes, entry: TreeEntry) -> bool:
    """Apply the tree's own owner, mode and mtime (when no ``attr`` stream is there)."""
    st = os.lstat(name, dir_fd=dfd)
    changed = False
    # what is there decides, not the entry's kind: a hard link to a symlink is a symlink,
    # and chmod would follow it out of the target
    is_link = stat.S_ISLNK(st.st_mode)
    if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (entry.uid, entry.gid):
        os.chown(name, entry.uid, entry.gid, dir_fd=dfd, follow_symlinks=False)
        changed = True
        st = os.lstat(name, dir_fd=dfd)
    if not is_link and stat.S_IMODE(st.st_mode) != stat.S_IMODE(entry.mode):
        os.chmod(name, stat.S_IMODE(entry.mode), dir_fd=dfd)
        changed = True
    if st.st_mtime_ns != entry.mtime_ns:
        os.utime(name, ns=(entry.mtime_ns, entry.mtime_ns), dir_fd=dfd, follow_symlinks=False)
        changed = True
    return changed
