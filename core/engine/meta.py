"""The engine's side of metadata plugins: recording streams on backup, applying on restore.

On backup, :class:`MetaRecorder` asks every active metadata plugin for each entry's
record (``from_path(root, index, stat)``) and writes it to that plugin's stream; the
streams are stored in the snapshot as ``"meta/<prefix>"``. On restore,
:class:`MetaApplier` reads the streams of the plugins present, joins them to the tree by
index (the plugins' ``join_iter``), and calls each plugin's ``apply`` on the restored file.
A stream whose plugin is not installed stays in the snapshot untouched and is reported.
"""

from __future__ import annotations

import io
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import IO, Any

import attrs

from ..errors import PannierError, PluginError
from ..meta import MetaPlugin, record_fields
from ..meta_stream import MetaStreamReader, MetaStreamWriter
from ..source import Index, SourceEntry, index_to_path
from .tree import spooled_file

__all__ = ["MetaApplier", "MetaRecorder", "StreamReader", "active_meta_plugins"]

STREAM_PREFIX = "meta/"


def active_meta_plugins() -> list[type[MetaPlugin]]:
    """The metadata plugin classes to use, main plugin first (from the meta manager)."""
    try:
        from ..meta_manager import get_meta_manager
    except ImportError:  # pragma: no cover - the meta manager is part of pannier
        return []
    return list(get_meta_manager().get_meta_list())


class StreamReader(io.RawIOBase):
    """A read-only binary file over an iterable of byte strings (a stream's blobs)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        super().__init__()
        self._it = iter(chunks)
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while self._pos >= len(self._buf):
            nxt = next(self._it, None)
            if nxt is None:
                return 0
            self._buf, self._pos = bytes(nxt), 0
        n = min(len(view), len(self._buf) - self._pos)
        view[:n] = self._buf[self._pos : self._pos + n]
        self._pos += n
        return n


#: The content hash the engine computes for plugins that declare it (``content_digest``).
_DIGEST = "blake3"

#: In a list of parent records: this plugin has no stream in the parent snapshot.
ABSENT: Any = object()


class MetaRecorder:
    """Write one stream per active metadata plugin while a backup walks its sources.

    :param plugins: the plugin classes (default: :func:`active_meta_plugins`); a plugin
        whose ``is_active`` says no for the first source root is left out.
    :param warn: called ``(path, message)`` when a file's metadata cannot be read.
    :param parent: ``(repo, snapshot)`` of the parent snapshot, whose records are reused
        for entries the engine found unchanged (same type, size, mtime, ctime and inode:
        nothing about the inode changed, so neither did its metadata).

    The engine calls :meth:`start` with the first real root, :meth:`lookup_parent` for
    each index in order, :meth:`compute` (thread-safe: worker threads call it right
    after reading a file) and :meth:`write` in index order.
    """

    def __init__(
        self,
        plugins: Sequence[type[MetaPlugin]] | None = None,
        warn: Callable[[str, str], None] | None = None,
        parent: tuple[Any, Any] | None = None,
    ) -> None:
        self._candidates = list(active_meta_plugins() if plugins is None else plugins)
        self._warn = warn
        self._parent = parent
        self.plugins: list[type[MetaPlugin]] = []
        self._writers: list[tuple[Any, IO[bytes]]] = []
        self._getters: list[Callable[[Any], tuple[Any, ...]]] = []
        self._cursors: list[_Cursor | None] = []
        self._wants_digest: list[bool] = []
        #: The content hash the engine computes while reading a file (``"blake3"`` when
        #: an active plugin declares it in ``content_digest``), else None.
        self.content_digest: str | None = None
        self.started = False

    def start(self, root: bytes) -> None:
        """Choose the active plugins (``is_active`` on ``root``) and open the streams.

        A parent stream written with the same record fields is copied row by row
        without decoding (a reused record is a raw row tuple); another layout (an older
        plugin version) is decoded into records and written again.
        """
        self.started = True
        from .snapshots import iter_stream

        parent_streams: dict[str, Any] = {}
        if self._parent is not None:
            parent_streams = getattr(self._parent[1], "streams", None) or {}
        for cls in self._candidates:
            try:
                active = cls.is_active(root)
            except OSError:
                active = False
            if not active:
                continue
            prefix = cls.get_prefix()
            f = spooled_file()
            header = cls.stream_header()
            self.plugins.append(cls)
            wants = getattr(cls, "content_digest", None) == _DIGEST
            self._wants_digest.append(wants)
            if wants:
                self.content_digest = _DIGEST
            self._getters.append(operator.attrgetter(*record_fields(cls.record_class)))
            self._writers.append((MetaStreamWriter(f, header, name=STREAM_PREFIX + prefix), f))
            cursor = None
            if self._parent is not None and STREAM_PREFIX + prefix in parent_streams:
                repo, snap = self._parent
                reader = io.BufferedReader(
                    StreamReader(iter_stream(repo, snap, STREAM_PREFIX + prefix)), 1 << 16
                )
                name = f"parent {STREAM_PREFIX}{prefix}"
                raw = MetaStreamReader(reader, name=name)
                if tuple(raw.header.fields) == tuple(header.fields):
                    cursor = _Cursor(raw.iter_rows(), raw.close, raw_rows=True)
                else:
                    raw.close()
                    reader = io.BufferedReader(
                        StreamReader(iter_stream(repo, snap, STREAM_PREFIX + prefix)), 1 << 16
                    )
                    plugin = cls(reader, "r", name=name)
                    cursor = _Cursor(plugin.get_objects(), plugin.close, raw_rows=False)
            self._cursors.append(cursor)

    def lookup_parent(self, index: Index) -> list[Any] | None:
        """The parent's records of ``index`` per plugin (None where the parent has no
        record, :data:`ABSENT` where the parent has no stream of that plugin), or None
        when there is no parent stream at all. Call with increasing indexes."""
        if not any(self._cursors):
            return None
        return [c.get(index) if c is not None else ABSENT for c in self._cursors]

    def compute(
        self,
        entry: SourceEntry,
        index: Index,
        known: list[Any] | None = None,
        *,
        digest: bytes | None = None,
    ) -> list[Any]:
        """The records of ``entry`` (stored under ``index``) per plugin: taken from
        ``known`` where it has one, else read with ``from_path``. An entry without a
        real path has no records. ``digest`` is the file's :attr:`content_digest`,
        computed while its content was read (None: not read); it is passed as
        ``from_path(..., digest=)`` to the plugins that declare that hash."""
        root = entry.root
        out: list[Any] = []
        for i, cls in enumerate(self.plugins):
            if known is not None and known[i] is not ABSENT:
                out.append(known[i])
                continue
            if root is None:
                out.append(None)
                continue
            try:
                if self._wants_digest[i]:
                    rec = cls.from_path(  # type: ignore[call-arg]
                        root, entry.index, entry.stat, digest=digest
                    )
                else:
                    rec = cls.from_path(root, entry.index, entry.stat)
            except Exception as e:  # a plugin's failure costs one record, not the backup
                if self._warn is not None:
                    reason = e.strerror if isinstance(e, OSError) else None
                    what = reason or f"{type(e).__name__}: {e}"
                    self._warn(index_to_path(index), f"metadata plugin {cls.get_prefix()}: {what}")
                rec = None
            if rec is not None and index != entry.index:
                rec = attrs.evolve(rec, index=index)
            out.append(rec)
        return out

    def write(self, records: list[Any]) -> None:
        """Append one entry's records (from :meth:`compute`) to the streams."""
        for (writer, _), get, rec in zip(self._writers, self._getters, records, strict=False):
            if rec is None:
                continue
            if type(rec) is tuple:  # a parent's row, copied as is
                writer.write_row(rec)
                continue
            row = get(rec)
            if rec.extra:
                row = (*row, rec.extra)
            writer.write_row(row)

    def finish(self) -> Iterator[tuple[str, IO[bytes]]]:
        """Close the streams and yield ``(stream name, file rewound to 0)`` per plugin."""
        for cls, (writer, f) in zip(self.plugins, self._writers, strict=False):
            writer.close()
            f.seek(0)
            yield STREAM_PREFIX + cls.get_prefix(), f

    def close(self) -> None:
        """Release the temporary files and the parent streams."""
        for _, f in self._writers:
            f.close()
        for c in self._cursors:
            if c is not None:
                c.close()
        self._writers = []
        self._cursors = []


class _Cursor:
    """Walks one parent stream forward by index: raw rows (index first) or records."""

    __slots__ = ("_close", "_it", "_key", "_next", "_next_index")

    def __init__(self, items: Iterator[Any], close: Callable[[], None], *, raw_rows: bool) -> None:
        self._it = items
        self._close = close
        self._key: Callable[[Any], Index] = (
            operator.itemgetter(0) if raw_rows else operator.attrgetter("index")
        )
        self._next: Any = None
        self._next_index: Index | None = None
        self._advance()

    def _advance(self) -> None:
        nxt = self._next = next(self._it, None)
        self._next_index = None if nxt is None else self._key(nxt)

    def get(self, index: Index) -> Any:
        """The item of ``index``, or None; call with increasing indexes."""
        at = self._next_index
        if at is None or index < at:  # the common cases: nothing here, or further on
            return None
        if at == index:
            found = self._next
            self._advance()
            return found
        while at is not None and at < index:
            self._advance()
            at = self._next_index
        if at is not None and at == index:
            found = self._next
            self._advance()
            return found
        return None

    def close(self) -> None:
        self._close()


class MetaApplier:
    """Apply a snapshot's metadata streams to restored files, joined by index.

    :param repo: the repository (for reading the streams).
    :param snapshot: the snapshot restored.
    :param plugins: the plugin classes available (default: :func:`active_meta_plugins`).

    :attr:`missing` lists stream names whose plugin is not available.
    """

    def __init__(
        self, repo: Any, snapshot: Any, plugins: Sequence[type[MetaPlugin]] | None = None
    ) -> None:
        from .snapshots import iter_stream

        available = {
            c.get_prefix(): c for c in (active_meta_plugins() if plugins is None else plugins)
        }
        streams = getattr(snapshot, "streams", None) or {}
        self.missing: list[str] = []
        self.plugins: list[type[MetaPlugin]] = []
        self.orphans = 0
        self.stream_errors: list[str] = []
        self._readers: list[tuple[type[MetaPlugin], Any]] = []
        self._order_key: tuple[type[MetaPlugin], ...] | None = None
        self._order_cache: list[tuple[type[MetaPlugin], str, bool]] = []
        names = [n for n in streams if n.startswith(STREAM_PREFIX)]
        # the main plugin first, then by prefix
        ordered = sorted(
            names, key=lambda n: (not _is_main(available.get(n[len(STREAM_PREFIX) :])), n)
        )
        for name in ordered:
            cls = available.get(name[len(STREAM_PREFIX) :])
            if cls is None:
                self.missing.append(name)
                continue
            try:  # a damaged blob list fails here, a damaged stream blob in the plugin
                blobs = iter_stream(repo, snapshot, name)
                reader = io.BufferedReader(StreamReader(blobs), 1 << 16)
                self._readers.append((cls, cls(reader, "r", name=name)))
            except PannierError as e:
                self.stream_errors.append(f"metadata stream {name} is damaged: {e}")
                continue
            self.plugins.append(cls)

    def restrict_to(self, target: bytes) -> list[str]:
        """Stop applying the plugins whose ``is_active`` says the filesystem of ``target``
        cannot hold their metadata (no xattrs, no ACLs there); return their stream names.
        Their records are still read (and joined), just not applied."""
        inactive = []
        for cls in list(self.plugins):
            try:
                active = cls.is_active(target)
            except OSError:
                active = True  # cannot tell: try, and report what fails
            if not active:
                self.plugins.remove(cls)
                inactive.append(STREAM_PREFIX + cls.get_prefix())
        return inactive

    def join(
        self, main: Iterator[tuple[Index, dict[str, Any]]]
    ) -> Iterator[tuple[Index, dict[str, Any]]]:
        """Join every stream into ``main`` (pairs of index and a dict): each dict gets one
        key per plugin prefix, its record or None.

        A metadata stream that turns out damaged (a corrupt blob, a broken frame) ends
        there: the entries after get no record of that plugin, and :attr:`stream_errors`
        says which stream failed and why. The restore of content goes on.
        """
        joined = main
        for cls, plugin in self._readers:
            records = self._guarded(STREAM_PREFIX + cls.get_prefix(), plugin.get_objects())
            joined = cls.join_iter(joined, records, on_orphan=self._orphan)
        return joined

    def _guarded(self, name: str, records: Iterator[Any]) -> Iterator[Any]:
        try:
            yield from records
        except PannierError as e:
            self.stream_errors.append(f"metadata stream {name} is damaged: {e}")

    def _orphan(self, record: Any) -> None:
        self.orphans += 1

    def apply(
        self, records: dict[str, Any], root: bytes, index: Index, *, digest: bytes | None = None
    ) -> bool:
        """Apply every plugin's record of ``index`` to the file below ``root``; return
        True when anything was written.

        ``digest`` is the BLAKE3 digest of the content the engine has just written to
        the file (None when it wrote none): a plugin whose ``content_digest`` is
        ``"blake3"`` gets it as ``digest=`` instead of reading the file again.

        Every plugin is tried even when one fails; then the first failure is raised: an
        OSError as it is, anything else (a plugin's own error) as a
        :class:`~pannier.PannierError` naming the plugin.
        """
        changed = False
        failure: BaseException | None = None
        for cls, prefix, takes_digest in self._order:
            rec = records.get(prefix)
            if rec is None:
                continue
            try:
                if takes_digest and digest is not None:
                    done = cls.apply(rec, root, index, digest=digest)  # type: ignore[call-arg]
                else:
                    done = cls.apply(rec, root, index)
                if done:
                    changed = True
            except (OSError, PannierError) as e:
                failure = failure or e
            except Exception as e:  # a plugin's bug must not stop the restore
                failure = failure or PluginError(
                    f"metadata plugin {cls.get_prefix()}: {type(e).__name__}: {e}"
                )
        if failure is not None:
            raise failure
        return changed

    @property
    def _order(self) -> list[tuple[type[MetaPlugin], str, bool]]:
        """(class, prefix, takes a blake3 digest) of each plugin, in the order applied:
        the main plugin (owner, mode, times) last, since other plugins' writes change
        ctime and an ACL's mask changes the mode's group bits."""
        key = tuple(self.plugins)
        if self._order_key != key:
            self._order_key = key
            self._order_cache = [
                (c, c.get_prefix(), getattr(c, "content_digest", None) == "blake3")
                for c in (*self.plugins[1:], *self.plugins[:1])
            ]
        return self._order_cache

    def wants_digest(self) -> bool:
        """True when a plugin applied takes the blake3 digest of a restored file."""
        return any(takes for _, _, takes in self._order)

    def has(self, prefix: str) -> bool:
        """True when the stream of plugin ``prefix`` is read."""
        return any(c.get_prefix() == prefix for c in self.plugins)

    def close(self) -> None:
        """Close the streams."""
        for _, plugin in self._readers:
            plugin.close()


def _is_main(cls: type[MetaPlugin] | None) -> bool:
    return bool(cls is not None and cls.is_main_meta())
