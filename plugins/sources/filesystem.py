"""The ``filesystem`` source (the default): a directory tree, or a single file.

Everything a POSIX tree holds is recorded: regular files (sparse ones read hole by hole
with ``SEEK_DATA``/``SEEK_HOLE``), directories, symlinks (never followed, except a symlink
given as the source itself), hard links (the second and later names of an inode become
links to the first), FIFOs, character and block devices. Sockets are skipped. Names are
bytes and need not be valid UTF-8.

Options (keys of the backup options mapping):

``exclude``
    glob patterns; a pattern without ``/`` matches a name anywhere, one with ``/`` matches
    the whole absolute path (``*`` also crosses ``/``). Excluded directories are not
    entered.
``exclude_file``
    files holding one pattern per line (blank lines and ``#`` comments ignored).
``exclude_if_present``
    file names: a directory holding one of them is excluded with its contents.
``one_file_system``
    do not descend into directories on another filesystem (the mount point itself is
    stored, empty).

A directory or file that cannot be read is reported with :meth:`pannier.Source.warn`
and the walk goes on; a source path that does not exist raises
:class:`pannier.SourceError`.
"""

from __future__ import annotations

import fnmatch
import io
import operator
import os
import re
import stat
from collections.abc import Iterator, Mapping
from typing import IO, Any

from pannier import Index, Source, SourceEntry, SourceError, open_noatime

_SEEK_DATA = getattr(os, "SEEK_DATA", None)
_SEEK_HOLE = getattr(os, "SEEK_HOLE", None)


def _compile(pattern: str) -> tuple[bool, re.Pattern[bytes]]:
    """Return (matches_whole_path, compiled bytes regex) for one glob pattern."""
    pat = pattern.rstrip("/") or pattern
    whole = "/" in pat
    regex = fnmatch.translate(pat).encode("utf-8", "surrogateescape")
    return whole, re.compile(regex, re.DOTALL)


def read_exclude_file(path: str) -> list[str]:
    """Return the patterns of an exclude file (one per line; blanks and ``#`` ignored).

    Raises :class:`pannier.SourceError` naming the file when it cannot be read.
    """
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise SourceError(f"cannot read exclude file {path!r}: {e.strerror or e}") from e
    return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]


class SparseReader(io.RawIOBase):
    """A read-only file object over a sparse file that yields the holes as zeros
    without reading them from the disk."""

    def __init__(self, fd: int, size: int) -> None:
        super().__init__()
        self._fd = fd
        self._size = size
        self._pos = 0
        self._data_end = 0  # end of the current data region (pos < data_end: read it)
        self._hole_end = 0  # end of the current hole (pos < hole_end: zeros)

    def readable(self) -> bool:
        return True

    def _locate(self) -> None:
        assert _SEEK_DATA is not None and _SEEK_HOLE is not None
        try:
            data = os.lseek(self._fd, self._pos, _SEEK_DATA)
        except OSError:  # ENXIO: only a hole up to the end
            data = self._size
        if data > self._pos:
            self._hole_end = min(data, self._size)
            return
        self._data_end = min(os.lseek(self._fd, self._pos, _SEEK_HOLE), self._size)

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._pos >= self._size or not len(view):
            return 0
        if self._pos >= self._data_end and self._pos >= self._hole_end:
            self._locate()
        if self._pos < self._hole_end:
            n = min(len(view), self._hole_end - self._pos)
            view[:n] = bytes(n)
        else:
            want = min(len(view), self._data_end - self._pos)
            n = os.preadv(self._fd, [view[:want]], self._pos)
            if n == 0:  # the file shrank while we read it
                self._size = self._pos
                return 0
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


_by_name = operator.attrgetter("name")
_S_ISREG = stat.S_ISREG
_S_ISDIR = stat.S_ISDIR


class FilesystemSource(Source):
    """A directory tree (or one file) on this machine."""

    plugin_api_version = 1
    counting_scan = True

    def __init__(self, spec: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(spec, options)
        patterns = list(self.options.get("exclude") or ())
        for path in self.options.get("exclude_file") or ():
            patterns.extend(read_exclude_file(path))
        self._name_patterns: list[re.Pattern[bytes]] = []
        self._path_patterns: list[re.Pattern[bytes]] = []
        for p in patterns:
            whole, rx = _compile(p)
            (self._path_patterns if whole else self._name_patterns).append(rx)
        self._if_present = [os.fsencode(n) for n in self.options.get("exclude_if_present") or ()]
        self._one_fs = bool(self.options.get("one_file_system"))
        self._hardlinks: dict[tuple[int, int], Index] = {}
        self.root: bytes = b""

    @classmethod
    def get_name(cls) -> str:
        """``filesystem``."""
        return "filesystem"

    @property
    def display(self) -> str:
        """The absolute path, so the parent snapshot is found from any directory."""
        return os.path.abspath(self.spec)

    @classmethod
    def description(cls) -> str:
        return "a directory tree or a file on this machine (the default)"

    def _excluded(self, name: bytes, path: bytes) -> bool:
        for rx in self._name_patterns:
            if rx.match(name):
                return True
        return any(rx.match(path) for rx in self._path_patterns)

    def _entry(self, index: Index, st: os.stat_result, path: bytes) -> SourceEntry | None:
        mode = st.st_mode
        entry = SourceEntry(index, st, self.root)
        if stat.S_ISREG(mode):
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                first = self._hardlinks.get(key)
                if first is not None:
                    entry.hardlink_to = first
                    return entry
                self._hardlinks[key] = index
            if st.st_blocks * 512 < st.st_size and _SEEK_DATA is not None:
                entry.sparse = True
                size = st.st_size

                def open_sparse() -> IO[bytes]:
                    fd = open_noatime(path)
                    return io.BufferedReader(SparseReader(fd, size), 1 << 20)

                entry.opener = open_sparse
        elif stat.S_ISLNK(mode):
            try:
                entry.link_target = os.readlink(path)
            except OSError as e:
                self.warn(os.fsdecode(path), f"cannot read symlink: {e.strerror or e}")
                return None
        elif stat.S_ISSOCK(mode):
            return None
        return entry

    def scan(self) -> Iterator[SourceEntry]:
        """Walk the tree depth first, each directory's names sorted as bytes (index
        order); a single file is yielded below its directory as the top."""
        top = os.path.abspath(os.fsencode(self.spec))
        try:
            st = os.stat(top)  # a symlink given as the source is followed
        except OSError as e:
            raise SourceError(f"source {self.spec!r} cannot be read: {e.strerror or e}") from e
        if not stat.S_ISDIR(st.st_mode):
            # One file: its directory is the top, the file its only child.
            self.root = os.path.dirname(top)
            try:
                parent = os.stat(self.root)
            except OSError as e:
                raise SourceError(f"source {self.spec!r} cannot be read: {e.strerror}") from e
            yield SourceEntry((), parent, None)
            name = os.path.basename(top)
            entry = self._entry((name,), os.lstat(top), top)
            if entry is not None:
                yield entry
            return
        self.root = top
        yield SourceEntry((), st, top)
        if not (self._if_present and self._has_marker(top)):
            yield from self._walk(top, (), st.st_dev)

    def _walk(self, path: bytes, index: Index, dev: int) -> Iterator[SourceEntry]:
        try:
            with os.scandir(path) as it:
                children = sorted(it, key=_by_name)
        except OSError as e:
            self.warn(os.fsdecode(path), f"cannot list directory: {e.strerror or e}")
            return
        excluding = bool(self._name_patterns or self._path_patterns)
        root = self.root
        for child in children:
            name = child.name
            if excluding and self._excluded(name, child.path):
                continue
            try:
                st = child.stat(follow_symlinks=False)
            except OSError as e:
                self.warn(os.fsdecode(child.path), f"cannot stat: {e.strerror or e}")
                continue
            child_index = (*index, name)
            mode = st.st_mode
            if _S_ISREG(mode) and st.st_nlink == 1 and st.st_blocks * 512 >= st.st_size:
                yield SourceEntry(child_index, st, root)  # the common case: a plain file
            elif _S_ISDIR(mode):
                child_path = child.path
                if self._if_present and self._has_marker(child_path):
                    continue
                yield SourceEntry(child_index, st, root)
                if self._one_fs and st.st_dev != dev:
                    continue
                yield from self._walk(child_path, child_index, dev)
            else:
                entry = self._entry(child_index, st, child.path)
                if entry is not None:
                    yield entry

    def _has_marker(self, path: bytes) -> bool:
        return any(os.path.lexists(os.path.join(path, n)) for n in self._if_present)


def get_plugin_class() -> type[Source]:
    """Return the filesystem source class (the plugin entry)."""
    return FilesystemSource
