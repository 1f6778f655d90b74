"""The source contract: what a backup reads from.

A *source* is a plugin (kind ``source``) that turns a user's specification -- a directory,
a SQLite database, a command line -- into a stream of :class:`SourceEntry` objects, one
per file, directory, symlink or special file, in *index order*.

An *index* is a tuple of path components as ``bytes`` (names need not be valid UTF-8);
``()`` is the top of the source. Index order is component-wise bytes order, which is what
a depth-first walk that lists each directory's names sorted as bytes produces: a directory
comes before its contents, and ``(b"a", b"z")`` comes before ``(b"a0",)``. The engine
relies on this order to match a backup against its parent snapshot in one pass, and
raises :class:`~pannier.SourceError` when a source breaks it.

Following Deltaic's principles a source stores data in its natural granularity and format
(a file as a file, a database as a database file, a dump as one file) and commits only
clean data: a source that cannot produce a consistent copy raises
:class:`~pannier.SourceError` and no snapshot is written. A single file that cannot be
read is different: the source calls :meth:`Source.warn` and goes on; the backup then
completes and exits with code 3.

A plugin module exposes ``get_plugin_class()`` returning a subclass of :class:`Source`
that sets ``plugin_api_version = 1``::

    class MySource(Source):
        plugin_api_version = 1

        @classmethod
        def get_name(cls) -> str:
            return "mysource"

        def scan(self) -> Iterator[SourceEntry]:
            ...

    def get_plugin_class() -> type[Source]:
        return MySource
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, ClassVar

import attrs

from .errors import ConfigError

__all__ = [
    "Index",
    "Source",
    "SourceEntry",
    "index_to_path",
    "open_noatime",
    "path_to_index",
]

#: A path inside a snapshot: a tuple of ``bytes`` components, ``()`` being the top.
Index = tuple[bytes, ...]


def index_to_path(index: Index) -> str:
    """Return ``index`` as a display path (``/`` for the top), undecodable bytes escaped
    with ``surrogateescape`` so :func:`path_to_index` gives the same index back."""
    if not index:
        return "/"
    return "/" + "/".join(os.fsdecode(part) for part in index)


def path_to_index(path: str | bytes) -> Index:
    """Return the index of a snapshot path such as ``"etc/passwd"`` or ``"/etc/passwd"``.

    Empty components and ``.`` are dropped. A ``..`` component raises
    :class:`~pannier.ConfigError`: snapshot paths never climb.
    """
    raw = os.fsencode(path)
    parts = tuple(p for p in raw.split(b"/") if p and p != b".")
    if b".." in parts:
        raise ConfigError(f"path {os.fsdecode(raw)!r} contains '..'")
    return parts


_NOATIME = getattr(os, "O_NOATIME", 0)


def open_noatime(path: bytes) -> int:
    """Open ``path`` read-only without following a final symlink, and without updating
    its access time when allowed (``O_NOATIME`` needs to own the file: otherwise the
    file is opened normally). Returns the file descriptor."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if _NOATIME:
        try:
            return os.open(path, flags | _NOATIME)
        except PermissionError:
            pass
    return os.open(path, flags)


@attrs.define(slots=True, eq=False)
class SourceEntry:
    """One file, directory, symlink or special file a source yields.

    :ivar index: where the entry goes in the snapshot (tuple of bytes components).
    :ivar stat: its ``os.stat_result`` (from ``lstat``: symlinks are not followed), or any
        object with the same ``st_*`` attributes.
    :ivar root: a real directory such that ``root/index...`` is the entry's path on this
        machine, or None when the entry has no real path. Metadata plugins read extra
        metadata (xattrs, ACLs, checksums) from that path.
    :ivar link_target: the target of a symlink, as bytes.
    :ivar hardlink_to: the index of an earlier entry that is the same inode (a hard link);
        the engine stores a link instead of the content.
    :ivar sparse: the file has holes; reading it yields zeros there, and restore may
        write holes back.
    """

    index: Index
    stat: os.stat_result
    root: bytes | None = None
    link_target: bytes | None = None
    hardlink_to: Index | None = None
    sparse: bool = False
    opener: Callable[[], IO[bytes]] | None = None

    @property
    def path(self) -> bytes | None:
        """The real path of the entry, or None."""
        if self.root is None:
            return None
        return os.path.join(self.root, *self.index) if self.index else self.root

    @property
    def is_file(self) -> bool:
        """True for a regular file (whose content the engine stores)."""
        return stat_module.S_ISREG(self.stat.st_mode)

    @property
    def is_dir(self) -> bool:
        """True for a directory."""
        return stat_module.S_ISDIR(self.stat.st_mode)

    def open(self) -> IO[bytes]:
        """Open the content of a regular file for reading (binary).

        Raises OSError when the file cannot be read; the engine turns that into a warning.
        """
        if self.opener is not None:
            return self.opener()
        path = self.path
        if path is None:
            raise OSError(f"{index_to_path(self.index)}: entry has no content")
        return os.fdopen(open_noatime(path), "rb", buffering=0)


class Source:
    """Base class of every source plugin (``pannier.Source``).

    The engine creates one instance per specification given to ``pannier backup``, calls
    :meth:`scan` once, and :meth:`close` at the end whatever happened.

    :param spec: what to back up, as the user wrote it (a path, a command line).
    :param options: the backup options as a mapping; every source ignores the keys it does
        not know. Keys the built-ins use: ``exclude`` (list of glob patterns),
        ``exclude_file`` (list of files of patterns), ``exclude_if_present`` (list of
        names), ``one_file_system`` (bool), ``filename`` (name of the stored file for
        single-file sources), and ``source_options`` (a ``dict[str, str]`` of
        ``--source-option KEY=VALUE`` pairs, for third-party sources).

    Subclasses set ``plugin_api_version`` (the base class does not) and implement
    :meth:`get_name` and :meth:`scan`.
    """

    plugin_api_version: ClassVar[int]
    #: True when a second :meth:`scan` of a fresh instance is cheap and has no side
    #: effect (a directory walk): the engine then counts the files in a background walk
    #: to show a percentage and an ETA on the first backup. False (the default) for
    #: sources whose scan runs a command or copies data.
    counting_scan: ClassVar[bool] = False

    def __init__(self, spec: str, options: Mapping[str, Any] | None = None) -> None:
        self.spec = spec
        self.options: Mapping[str, Any] = dict(options or {})
        self.warnings: list[str] = []
        self._warn_callback: Callable[[str, str], None] | None = None

    @classmethod
    def get_name(cls) -> str:
        """The source's name, as given to ``pannier backup --source NAME``."""
        raise NotImplementedError

    @classmethod
    def description(cls) -> str:
        """One line saying what the source backs up."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else cls.get_name()

    @property
    def name(self) -> bytes:
        """The name of the top of this source when several sources share one snapshot
        (the engine stores source *i* under ``(name,)``). Defaults to the spec's last
        path component."""
        base = os.path.basename(os.path.abspath(self.spec))
        return os.fsencode(base) if base not in ("", ".", "..") else b"root"

    @property
    def display(self) -> str:
        """The spec as recorded in the snapshot's ``paths`` list."""
        return self.spec

    def scan(self) -> Iterator[SourceEntry]:
        """Yield every entry of the source in index order, starting with ``()``.

        Raises :class:`~pannier.SourceError` when the source cannot be read at all; calls
        :meth:`warn` and skips an entry that cannot be read.
        """
        raise NotImplementedError

    def warn(self, path: str, message: str) -> None:
        """Record that ``path`` could not be read (``message`` says why)."""
        self.warnings.append(f"{path}: {message}")
        if self._warn_callback is not None:
            self._warn_callback(path, message)

    def set_warning_callback(self, callback: Callable[[str, str], None] | None) -> None:
        """Have :meth:`warn` also call ``callback(path, message)`` (the engine's)."""
        self._warn_callback = callback

    def finish(self) -> None:
        """Called after the content of every entry was read; a source whose data came
        from a process checks it succeeded here and raises :class:`~pannier.SourceError`
        otherwise, so no snapshot is written."""

    def close(self) -> None:
        """Release what :meth:`scan` set up (temporary copies, processes)."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
