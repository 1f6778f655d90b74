"""Metadata plugins: the rdiff-backup contract, records, and filesystem abilities.

A metadata plugin records one kind of per-file metadata (ownership and times, extended
attributes, ACLs, a content hash...) while a backup walks a source, stores it as one
metadata stream per snapshot, and applies it back to the files a restore writes.

A plugin is a subclass of :class:`MetaPlugin` returned by its module's
``get_plugin_class()``. It names a *record class*, an attrs class derived from
:class:`MetaRecord`, whose first field is the file's *index*.

The index
    A file is named by its index: a tuple of path components as **bytes** relative to
    the root of the source (names need not be UTF-8); ``()`` is the root itself. Streams
    are sorted by index, comparing tuples component by component as bytes, so a
    directory comes right before everything under it: ``()``, ``(b"a",)``,
    ``(b"a", b"x")``, ``(b"a-b",)``, ``(b"b",)``.

Records
    A record is an instance of the plugin's record class. Its fields hold msgpack-able
    values only: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, tuples of
    those, and maps with string keys. Use tuples, not lists: a stream gives back tuples,
    and a record must compare equal after a round trip. Fields a reader's record class
    does not know (written by a newer version of the plugin) are kept in the record's
    ``extra`` map and written back unchanged.
"""

from __future__ import annotations

import errno
import operator
import os
from collections.abc import Callable, Iterator, Mapping
from typing import IO, Any, ClassVar, Literal, TypeVar

import attrs

from .errors import MetaStreamError, PluginContractError
from .meta_stream import MetaStreamReader, MetaStreamWriter, StreamHeader, check_index

__all__ = [
    "FSAbilities",
    "Index",
    "JoinItem",
    "MetaPlugin",
    "MetaRecord",
    "check_meta_plugin_class",
    "index_path",
    "record_fields",
]

#: A file's index: its path components below the source root, as bytes.
Index = tuple[bytes, ...]

#: One item of a joined metadata iteration: the index and, per plugin prefix, the record
#: (or None where that plugin has no record for the file).
JoinItem = tuple[Index, dict[str, Any]]


@attrs.define
class MetaRecord:
    """Base of every record class: the file's index, and fields kept from newer writers.

    Derive a plugin's record class with ``@attrs.define`` and add fields after
    ``index``::

        @attrs.define
        class MimeRecord(MetaRecord):
            mime_type: str

    Records are mutable slotted attrs classes rather than frozen ones: building a frozen
    record costs several times as much, which shows when a snapshot holds millions.

    :param index: the file's index (see the module documentation).
    :param extra: fields this record class does not know, read from a stream written by
        a newer plugin version; None when there are none. They are written back as read.
    """

    index: Index
    extra: dict[str, Any] | None = attrs.field(default=None, kw_only=True)


def record_fields(record_class: type[MetaRecord]) -> tuple[str, ...]:
    """The stored field names of a record class: ``"index"`` first, ``extra`` left out."""
    names = tuple(f.name for f in attrs.fields(record_class) if f.name != "extra")
    if not names or names[0] != "index":
        raise PluginContractError(
            f"record class {record_class.__qualname__} must have 'index' as its first field"
        )
    return names


def index_path(root: bytes, index: Index) -> bytes:
    """The filesystem path of ``index`` below ``root`` (``root`` itself for ``()``):
    ``os.path.join(root, *index)``."""
    if not index:
        return root
    tail = b"/".join(index)
    if tail[:1] == b"/" or b"//" in tail or root[-1:] == b"/" or not root:
        return os.path.join(root, *index)  # the rare shapes: exactly os.path.join's result
    return root + b"/" + tail


@attrs.frozen
class FSAbilities:
    """What the filesystem at hand supports, as ``is_active`` asks it.

    :param xattr: extended attributes can be read (and, for a restore target, written).
    :param acl: POSIX ACLs (``system.posix_acl_*``) are supported.
    :param is_root: the process runs as root (may read ``trusted.*``, chown, mknod).
    :param path: the path probed, or None for abilities built by hand.
    """

    xattr: bool = True
    acl: bool = True
    is_root: bool = attrs.field(factory=lambda: os.geteuid() == 0)
    path: bytes | None = None

    @classmethod
    def probe(cls, path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> FSAbilities:
        """Find the abilities of the filesystem holding ``path``, without writing to it.

        A path that does not exist raises FileNotFoundError.
        """
        bpath = os.fsencode(path)
        os.stat(bpath)
        xattr = _supports(bpath, "user.pannier-probe")
        acl = xattr and _supports(bpath, "system.posix_acl_access")
        return cls(xattr=xattr, acl=acl, is_root=os.geteuid() == 0, path=bpath)

    @classmethod
    def of(
        cls, fs: FSAbilities | str | bytes | os.PathLike[str] | os.PathLike[bytes]
    ) -> FSAbilities:
        """``fs`` itself if it is an FSAbilities, else the abilities probed at that path."""
        return fs if isinstance(fs, FSAbilities) else cls.probe(fs)


def _supports(path: bytes, attribute: str) -> bool:
    """Whether reading ``attribute`` is supported (absent or present) at ``path``."""
    try:
        os.getxattr(path, attribute)
    except OSError as exc:
        return exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP)
    return True


class MetaPlugin:
    """Base class of metadata plugins (rdiff-backup's meta plug-in contract).

    A plugin sets ``plugin_api_version = 1`` (the base class does not), names its
    ``record_class``, and overrides :meth:`get_prefix`, :meth:`from_path` and
    :meth:`apply`; the rest has working defaults.

    Class side (asked without a stream):

    * :meth:`get_name`, :meth:`get_desc`, :meth:`get_version` describe the plugin;
    * :meth:`get_prefix` is the stream's name in a snapshot; prefixes are unique;
    * :meth:`is_active` says whether the plugin applies to a filesystem;
    * :meth:`is_main_meta` is true for the one main plugin (``attr``), whose stream has a
      record for every file and drives :meth:`join_iter`;
    * :meth:`from_path` reads a file's record, :meth:`apply` writes it back.

    Instance side: ``MetaPlugin(path_or_fileobj, "w")`` opens a stream for writing
    (:meth:`write_object`, then :meth:`close`), ``MetaPlugin(path_or_fileobj, "r")`` for
    reading (:meth:`get_objects`).
    """

    #: The plugin API version the plugin was written for; every plugin sets it.
    plugin_api_version: ClassVar[int]
    #: The attrs class of this plugin's records (a MetaRecord subclass).
    record_class: ClassVar[type[MetaRecord]] = MetaRecord
    #: Fields :meth:`apply` cannot restore (an inode number, a ctime); the conformance
    #: suite ignores them when it compares a restored file's record with the original.
    unrestorable_fields: ClassVar[frozenset[str]] = frozenset()
    #: The name of a content hash this plugin records (``"blake3"``), or None. When a
    #: plugin names one, the engine computes that digest over a regular file's bytes
    #: while it reads them anyway (a backup storing the file, a restore writing it) and
    #: passes it as the keyword ``digest=`` to :meth:`from_path` and :meth:`apply`, so
    #: the plugin need not read the file again. ``digest`` is None when the engine did
    #: not read the content (or does not know the hash): the plugin then reads the file
    #: itself. The only name the engine computes today is ``"blake3"`` (the 32-byte
    #: BLAKE3 digest); with any other name the plugin always gets None.
    content_digest: ClassVar[str | None] = None

    # --- description -------------------------------------------------------------------

    @classmethod
    def get_prefix(cls) -> str:
        """The stream prefix, e.g. ``"attr"``: letters, digits, ``-`` and ``_``."""
        raise NotImplementedError(f"{cls.__qualname__} must define get_prefix()")

    @classmethod
    def get_name(cls) -> str:
        """The plugin's name (by default its prefix)."""
        return cls.get_prefix()

    @classmethod
    def get_desc(cls) -> str:
        """A one-line description (by default the first line of the class docstring)."""
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @classmethod
    def get_version(cls) -> str:
        """The plugin's own version, stored in every stream it writes."""
        return "0"

    @classmethod
    def is_active(
        cls, fs: FSAbilities | str | bytes | os.PathLike[str] | os.PathLike[bytes]
    ) -> bool:
        """Whether the plugin records (or restores) metadata on this filesystem.

        ``fs`` is an :class:`FSAbilities` or a path to probe. Default: always.
        """
        return True

    @classmethod
    def is_main_meta(cls) -> bool:
        """True for the one main plugin, whose stream has a record for every file."""
        return False

    # --- joining -----------------------------------------------------------------------

    @classmethod
    def join_iter(
        cls,
        main_iter: Iterator[JoinItem],
        meta_iter: Iterator[MetaRecord],
        *,
        on_orphan: Callable[[MetaRecord], None] | None = None,
    ) -> Iterator[JoinItem]:
        """Merge this plugin's records into the main stream by index.

        ``main_iter`` yields ``(index, records)`` pairs in index order, ``records`` a dict
        of prefix to record; ``meta_iter`` yields this plugin's records in index order.
        Each pair is yielded again with ``records[prefix]`` set to this plugin's record of
        that index, or to None (the blank record) where it has none. A record whose index
        the main stream lacks (an *orphan*) is dropped and passed to ``on_orphan``; the
        join never fails on one.
        """
        prefix = cls.get_prefix()
        meta = iter(meta_iter)
        pending = next(meta, None)
        for item in main_iter:
            # the common case first: this plugin's next record is further on (or none)
            if pending is None or pending.index > item[0]:
                item[1][prefix] = None
                yield item
                continue
            index = item[0]
            while pending is not None and pending.index < index:
                if on_orphan is not None:
                    on_orphan(pending)
                pending = next(meta, None)
            if pending is not None and pending.index == index:
                item[1][prefix] = pending
                pending = next(meta, None)
            else:
                item[1][prefix] = None
            yield item
        while pending is not None:
            if on_orphan is not None:
                on_orphan(pending)
            pending = next(meta, None)

    # --- the filesystem ----------------------------------------------------------------

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> MetaRecord | None:
        """Read the record of the file at ``index`` below ``root``, or None if it has none.

        ``st`` is the file's ``os.lstat`` result, taken once by the caller. Raises
        OSError when the file cannot be read. A plugin that declares
        :attr:`content_digest` accepts a keyword ``digest: bytes | None = None``: the
        digest of the file's content the engine computed while reading it, or None
        (then the plugin reads the file itself); the record must be the same either way.
        """
        raise NotImplementedError(f"{cls.__qualname__} must define from_path()")

    @classmethod
    def apply(cls, record: Any, root: bytes, index: Index, *, dry_compare: bool = True) -> bool:
        """Apply ``record`` to the existing file at ``index`` below ``root``.

        With ``dry_compare`` (the default) the file's current metadata is compared first
        and only what differs is written. Returns True if anything was written; applying
        the same record twice returns False the second time. A plugin that declares
        :attr:`content_digest` accepts a keyword ``digest: bytes | None = None``: the
        digest of the bytes the engine just wrote to the file, or None (then the plugin
        reads the file itself).
        """
        raise NotImplementedError(f"{cls.__qualname__} must define apply()")

    # --- the stream --------------------------------------------------------------------

    @classmethod
    def stream_header(cls) -> StreamHeader:
        """The header this plugin writes at the start of its streams."""
        return StreamHeader(
            plugin=cls.get_name(),
            plugin_version=cls.get_version(),
            prefix=cls.get_prefix(),
            fields=record_fields(cls.record_class),
        )

    def __init__(
        self,
        path_or_fileobj: str | bytes | os.PathLike[str] | os.PathLike[bytes] | IO[bytes],
        mode: Literal["r", "w"] = "r",
        *,
        name: str | None = None,
    ) -> None:
        """Open a metadata stream for reading (``"r"``) or writing (``"w"``).

        Opening a stream written under another prefix raises MetaStreamError.

        :param name: the stream's name in error messages (default: the file's name).
        """
        if mode not in ("r", "w"):
            raise ValueError(f"mode must be 'r' or 'w', not {mode!r}")
        self.mode = mode
        self._writer: MetaStreamWriter | None = None
        self._reader: MetaStreamReader | None = None
        self._fields = record_fields(self.record_class)
        if mode == "w":
            self._writer = MetaStreamWriter(path_or_fileobj, self.stream_header(), name=name)
            self._write_row = self._writer.write_row
            self._get = operator.attrgetter(*self._fields)
        else:
            self._reader = MetaStreamReader(path_or_fileobj, name=name)
            prefix = self._reader.header.prefix
            if prefix != self.get_prefix():
                self._reader.close()
                raise MetaStreamError(
                    f"metadata stream {self._reader.name} holds records of the plugin "
                    f"{self._reader.header.plugin} (prefix {prefix!r}), not of "
                    f"{self.get_name()} (prefix {self.get_prefix()!r})"
                )

    @property
    def header(self) -> StreamHeader:
        """The header of the stream (read from it, or the one being written)."""
        if self._reader is not None:
            return self._reader.header
        assert self._writer is not None
        return self._writer.header

    def write_object(self, record: MetaRecord) -> None:
        """Append ``record``; its index must be greater than the previous record's."""
        if self._writer is None:
            raise ValueError("write_object on a metadata stream opened for reading")
        extra = record.extra
        if extra:
            self._write_row((*self._get(record), extra))
        else:
            self._write_row(self._get(record))

    def get_objects(self, restrict_index: Index | None = None) -> Iterator[MetaRecord]:
        """Iterate over the stream's records in index order.

        With ``restrict_index``, only the record of that index and those below it (its
        subtree). A truncated or corrupt stream raises MetaStreamError naming the stream
        and the record number, after the records before it. A stream is read once.
        """
        reader = self._reader
        if reader is None:
            raise ValueError("get_objects on a metadata stream opened for writing")
        rows = reader.iter_rows()
        if restrict_index is not None:
            rows = _restrict(rows, check_index(restrict_index))
        return self._decode(reader.header, rows)

    def _decode(
        self, header: StreamHeader, rows: Iterator[tuple[Any, ...]]
    ) -> Iterator[MetaRecord]:
        """Turn the rows of a stream with ``header`` into records."""
        cls = self.record_class
        own = self._fields
        width = len(header.fields)
        name = header.plugin
        if header.fields == own:
            for row in rows:
                if len(row) == width:
                    yield cls(*row)
                else:
                    yield cls(*row[:width], extra=_extra_map(row, width, name))
            return
        positions = {f: i for i, f in enumerate(header.fields)}
        known = set(own)
        unknown = [(f, i) for i, f in enumerate(header.fields) if f not in known]
        fields_by_name = {f.name: f for f in attrs.fields(cls)}
        for f in own:
            if f not in positions and fields_by_name[f].default is attrs.NOTHING:
                raise MetaStreamError(
                    f"metadata stream of plugin {name} lacks the field {f!r} that "
                    f"{cls.__qualname__} requires"
                )
        present = [(f, positions[f]) for f in own if f in positions]
        for row in rows:
            extra = {f: row[i] for f, i in unknown}
            if len(row) > width:
                extra.update(_extra_map(row, width, name))
            yield cls(**{f: row[i] for f, i in present}, extra=extra or None)

    def close(self) -> None:
        """Finish the stream (writing its end frame) and close the file if we opened it."""
        if self._writer is not None:
            self._writer.close()
        if self._reader is not None:
            self._reader.close()

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is not None and self._writer is not None:
            self._writer.abort()
        self.close()


_P = TypeVar("_P", bound=MetaPlugin)


def _restrict(rows: Iterator[tuple[Any, ...]], restrict: Index) -> Iterator[tuple[Any, ...]]:
    """The rows of ``restrict`` and its subtree (contiguous in index order)."""
    depth = len(restrict)
    for row in rows:
        index = row[0]
        if index[:depth] == restrict:
            yield row
        elif index > restrict:
            break


def _extra_map(row: tuple[Any, ...], width: int, name: str) -> dict[str, Any]:
    extra = row[width]
    if len(row) != width + 1 or not isinstance(extra, Mapping):
        raise MetaStreamError(f"metadata stream of plugin {name}: malformed record {row[0]!r}")
    return dict(extra)


_CLASS_METHODS = (
    "get_name",
    "get_desc",
    "get_version",
    "get_prefix",
    "is_active",
    "is_main_meta",
    "join_iter",
    "from_path",
    "apply",
)


def check_meta_plugin_class(cls: object) -> type[MetaPlugin]:
    """Check that ``cls`` keeps the metadata-plugin contract and return it.

    Raises PluginContractError with a one-line reason when it is not a MetaPlugin
    subclass, lacks ``plugin_api_version``, has a prefix that is not a short word of
    letters, digits, ``-`` or ``_``, names a record class that is not an attrs
    MetaRecord subclass with ``index`` first, or does not implement ``from_path`` and
    ``apply``. The plugin API version's value is checked by the plugin registry.
    """
    if not isinstance(cls, type) or not issubclass(cls, MetaPlugin):
        raise PluginContractError(f"{cls!r} is not a subclass of pannier.MetaPlugin")
    label = cls.__qualname__
    if not isinstance(getattr(cls, "plugin_api_version", None), int):
        raise PluginContractError(f"meta plugin {label} does not set plugin_api_version")
    for method in _CLASS_METHODS:
        if not callable(getattr(cls, method, None)):
            raise PluginContractError(f"meta plugin {label} lacks {method}()")
    try:
        prefix = cls.get_prefix()
        name = cls.get_name()
        version = cls.get_version()
    except Exception as exc:
        raise PluginContractError(f"meta plugin {label}: {type(exc).__name__}: {exc}") from exc
    if (
        not isinstance(prefix, str)
        or not prefix
        or len(prefix) > 40
        or not all(c.isascii() and (c.isalnum() or c in "-_") for c in prefix)
    ):
        raise PluginContractError(
            f"meta plugin {label}: get_prefix() must return a short name of letters, "
            f"digits, '-' or '_', not {prefix!r}"
        )
    if not isinstance(name, str) or not name or not isinstance(version, str):
        raise PluginContractError(f"meta plugin {label}: get_name()/get_version() must be str")
    record_class: object = cls.record_class
    if (
        not isinstance(record_class, type)
        or not attrs.has(record_class)
        or not issubclass(record_class, MetaRecord)
    ):
        raise PluginContractError(
            f"meta plugin {label}: record_class must be an attrs subclass of MetaRecord"
        )
    record_fields(record_class)
    if cls.from_path.__func__ is MetaPlugin.from_path.__func__:  # type: ignore[attr-defined]
        raise PluginContractError(f"meta plugin {label} does not implement from_path()")
    if cls.apply.__func__ is MetaPlugin.apply.__func__:  # type: ignore[attr-defined]
        raise PluginContractError(f"meta plugin {label} does not implement apply()")
    return cls
