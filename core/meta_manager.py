"""The meta manager: every metadata plugin together, writing and joining their streams.

The engine uses it in two places:

Backup
    ``writer = manager.get_writer(directory_or_factory, fs=source_root)`` opens one stream
    per active plugin; for every file, in index order, ``writer.write(root, index, st)``
    asks each plugin's ``from_path`` for a record and appends it to that plugin's stream;
    ``writer.close()`` finishes every stream (``with`` does it, and on an exception leaves
    no stream behind in a directory target).

Restore
    ``for index, records in manager.iter_joined(streams): ...`` reads every stream and
    yields, per file of the main stream, ``records``: a dict of prefix to that plugin's
    record, or None where the plugin has none for the file. The engine then calls
    ``manager.get_meta_dict()[prefix].apply(record, root, index)`` for each record that
    is not None (directories after their contents, so their times stay).

Join policy for a record with no file: a non-main plugin's record whose index is not in
the main stream (an *orphan*, e.g. from a damaged or hand-edited snapshot) is dropped; the
join counts orphans per prefix (:attr:`MetaJoin.orphans`) and logs one warning per
prefix when the iteration ends. It never stops the restore.

Streams of plugins that are not installed are never lost: :meth:`MetaManager.iter_joined`
skips them (listing them in :attr:`MetaJoin.unknown_prefixes`), and
:meth:`MetaManager.pass_through` copies them verbatim into a new snapshot's streams.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import IO, Any

from .errors import MetaStreamError, PluginContractError
from .meta import FSAbilities, Index, JoinItem, MetaPlugin, MetaRecord, index_path
from .meta_stream import PathOrFile, copy_stream
from .plugin import PluginKind

__all__ = [
    "STREAM_SUFFIX",
    "MetaJoin",
    "MetaManager",
    "MetaWriter",
    "find_streams",
    "get_meta_dict",
    "get_meta_list",
    "get_meta_manager",
    "stream_file_name",
]

log = logging.getLogger("pannier.meta")

#: The file name suffix of a metadata stream stored in a directory.
STREAM_SUFFIX = ".meta"

#: A stream target: a directory, or a function returning a writable binary file for a
#: prefix (the caller closes those files).
StreamTarget = str | bytes | os.PathLike[str] | os.PathLike[bytes] | Callable[[str], IO[bytes]]

FSArg = FSAbilities | str | bytes | os.PathLike[str] | os.PathLike[bytes] | None


def stream_file_name(prefix: str) -> str:
    """The file name of a plugin's stream in a directory: ``<prefix>.meta``."""
    return prefix + STREAM_SUFFIX


def find_streams(directory: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> dict[str, str]:
    """Map prefix to path for every ``*.meta`` stream in ``directory``."""
    root = os.fsdecode(directory)
    found = {}
    for entry in sorted(os.listdir(root)):
        if entry.endswith(STREAM_SUFFIX) and not entry.startswith("."):
            found[entry[: -len(STREAM_SUFFIX)]] = os.path.join(root, entry)
    return found


class MetaWriter:
    """The combined writer: one stream per plugin, fed one file at a time.

    Built by :meth:`MetaManager.get_writer`. Files must come in strictly increasing index
    order (parents before children). Use it as a context manager, or call :meth:`close`
    (or :meth:`abort` on failure).
    """

    def __init__(self, plugins: list[type[MetaPlugin]], target: StreamTarget) -> None:
        self.plugins = list(plugins)
        self._main = self.plugins[0].get_prefix()
        self._directory: str | None = None
        self._temps: dict[str, str] = {}
        self._streams: list[tuple[str, MetaPlugin, type[MetaPlugin]]] = []
        self._done = False
        try:
            for cls in self.plugins:
                prefix = cls.get_prefix()
                if callable(target):
                    stream = cls(target(prefix), "w", name=prefix)
                else:
                    directory = os.fsdecode(target)
                    self._directory = directory
                    temp = os.path.join(directory, f".{stream_file_name(prefix)}.tmp")
                    self._temps[prefix] = temp
                    stream = cls(temp, "w", name=stream_file_name(prefix))
                self._streams.append((prefix, stream, cls))
            self._writes = [(prefix, stream.write_object) for prefix, stream, _ in self._streams]
        except BaseException:
            self.abort()
            raise

    def write(self, root: bytes, index: Index, st: os.stat_result | None = None) -> dict[str, Any]:
        """Record the file at ``index`` below ``root`` in every plugin's stream.

        ``st`` is the file's ``os.lstat`` result (taken here when None). Every plugin's
        ``from_path`` is asked before anything is written, so an OSError from one (an
        unreadable file) leaves every stream without the file. Returns the records, by
        prefix (None where a plugin had none). The main plugin must return a record.
        """
        if st is None:
            st = os.lstat(index_path(root, index))
        records = {prefix: cls.from_path(root, index, st) for prefix, _, cls in self._streams}
        if records[self._main] is None:
            raise PluginContractError(
                f"main meta plugin {self._main} returned no record for {index!r}"
            )
        self.write_records(records)
        return records

    def write_records(self, records: Mapping[str, MetaRecord | None]) -> None:
        """Append already-built records of one file, by prefix (None or absent: none).

        The main plugin's record is required.
        """
        get = records.get
        if get(self._main) is None:
            raise PluginContractError(f"no record of the main meta plugin {self._main}")
        for prefix, write in self._writes:
            record = get(prefix)
            if record is not None:
                write(record)

    @property
    def counts(self) -> dict[str, int]:
        """How many records each plugin's stream holds so far, by prefix."""
        return {prefix: _rows(stream) for prefix, stream, _ in self._streams}

    def close(self) -> dict[str, int]:
        """Finish every stream; in a directory, move them into place. Returns counts."""
        if self._done:
            return self.counts
        try:
            for _, stream, _ in self._streams:
                stream.close()
        except BaseException:
            self.abort()
            raise
        self._done = True
        if self._directory is not None:
            for prefix, temp in self._temps.items():
                os.replace(temp, os.path.join(self._directory, stream_file_name(prefix)))
        return self.counts

    def abort(self) -> None:
        """Stop writing; in a directory, remove every unfinished stream."""
        self._done = True
        for _, stream, _ in self._streams:
            try:
                if stream._writer is not None:
                    stream._writer.abort()
            except OSError:
                pass
        for temp in self._temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)

    def __enter__(self) -> MetaWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _rows(stream: MetaPlugin) -> int:
    writer = stream._writer
    return writer.rows_written if writer is not None else 0


class MetaJoin(Iterator[JoinItem]):
    """An iteration over a snapshot's joined metadata, from :meth:`MetaManager.iter_joined`.

    Yields ``(index, records)`` per file of the main stream, in index order; ``records``
    maps each prefix that has a stream to its record, or None. After (or during) the
    iteration, :attr:`orphans` counts dropped records per prefix and
    :attr:`unknown_prefixes` lists streams no installed plugin reads.
    """

    def __init__(
        self,
        main: type[MetaPlugin],
        others: list[type[MetaPlugin]],
        streams: Mapping[str, PathOrFile],
        unknown_prefixes: list[str],
        restrict_index: Index | None,
    ) -> None:
        self.orphans: dict[str, int] = {}
        self.unknown_prefixes = unknown_prefixes
        self._open: list[MetaPlugin] = []
        self._finished = False
        main_prefix = main.get_prefix()
        try:
            main_stream = main(streams[main_prefix], "r", name=_stream_name(main_prefix, streams))
            self._open.append(main_stream)
            joined: Iterator[JoinItem] = (
                (r.index, {main_prefix: r}) for r in main_stream.get_objects(restrict_index)
            )
            for cls in others:
                prefix = cls.get_prefix()
                stream = cls(streams[prefix], "r", name=_stream_name(prefix, streams))
                self._open.append(stream)
                joined = cls.join_iter(
                    joined,
                    stream.get_objects(restrict_index),
                    on_orphan=self._orphan_counter(prefix),
                )
        except BaseException:
            self.close()
            raise
        self._iter = self._run(joined)

    def _orphan_counter(self, prefix: str) -> Callable[[MetaRecord], None]:
        orphans = self.orphans

        def count(record: MetaRecord) -> None:
            orphans[prefix] = orphans.get(prefix, 0) + 1

        return count

    def _run(self, joined: Iterator[JoinItem]) -> Iterator[JoinItem]:
        try:
            yield from joined
        except BaseException:
            self.close()
            raise
        self._finish()

    def __iter__(self) -> Iterator[JoinItem]:
        return self._iter

    def __next__(self) -> JoinItem:
        return next(self._iter)

    def _finish(self) -> None:
        if not self._finished:
            self._finished = True
            for prefix, count in sorted(self.orphans.items()):
                log.warning(
                    "meta stream %s: dropped %d record(s) of files absent from the main stream",
                    prefix,
                    count,
                )
            self.close()

    def close(self) -> None:
        """Close every stream opened for the join (also done when it ends)."""
        for stream in self._open:
            stream.close()
        self._open = []

    def __enter__(self) -> MetaJoin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _stream_name(prefix: str, streams: Mapping[str, PathOrFile]) -> str:
    source = streams[prefix]
    if isinstance(source, (str, bytes, os.PathLike)):
        return os.fsdecode(source)
    return stream_file_name(prefix)


class MetaManager:
    """All metadata plugins of this run, by prefix (rdiff-backup's meta manager).

    :param plugins: the plugin classes to use; by default those the plugin registry
        loads (``get_plugin_manager().load_all(PluginKind.META)``). Tests pass an
        explicit list.

    Two plugins with the same prefix raise PluginContractError naming both.
    """

    def __init__(self, plugins: Iterable[type[MetaPlugin]] | None = None) -> None:
        classes = list(_load_registered() if plugins is None else plugins)
        by_prefix: dict[str, type[MetaPlugin]] = {}
        for cls in classes:
            prefix = cls.get_prefix()
            if prefix in by_prefix:
                raise PluginContractError(
                    f"meta plugins {by_prefix[prefix].get_name()} and {cls.get_name()} "
                    f"both use the stream prefix {prefix!r}"
                )
            by_prefix[prefix] = cls
        self._plugins = by_prefix

    def get_meta_dict(self, fs: FSArg = None) -> dict[str, type[MetaPlugin]]:
        """Prefix to plugin class, for every plugin active on ``fs`` (all when None).

        ``fs`` is an :class:`FSAbilities` or a path whose filesystem is probed once.
        """
        if fs is None:
            return dict(self._plugins)
        abilities = FSAbilities.of(fs)
        return {p: cls for p, cls in self._plugins.items() if cls.is_active(abilities)}

    def get_main(self) -> type[MetaPlugin]:
        """The one main plugin; none or more than one raises PluginContractError."""
        mains = [cls for cls in self._plugins.values() if cls.is_main_meta()]
        if len(mains) != 1:
            if not mains:
                raise PluginContractError("no main meta plugin is loaded (the attr plugin)")
            names = ", ".join(sorted(cls.get_name() for cls in mains))
            raise PluginContractError(f"more than one main meta plugin: {names}")
        return mains[0]

    def get_meta_list(self, fs: FSArg = None) -> list[type[MetaPlugin]]:
        """The active plugins: the one main plugin first, then the others by name.

        None or two main plugins raise PluginContractError naming them.
        """
        main = self.get_main()
        active = self.get_meta_dict(fs)
        others = sorted(
            (cls for cls in active.values() if cls is not main), key=lambda c: c.get_name()
        )
        return [main, *others]

    def get_writer(self, target: StreamTarget, fs: FSArg = None) -> MetaWriter:
        """A :class:`MetaWriter` feeding every plugin active on ``fs``.

        ``target`` is a directory (streams named ``<prefix>.meta`` appear only when the
        writer closes) or a function called once per prefix that returns a writable
        binary file object (the caller closes it).
        """
        return MetaWriter(self.get_meta_list(fs), target)

    def iter_joined(
        self,
        streams: Mapping[str, PathOrFile] | str | bytes | os.PathLike[str] | os.PathLike[bytes],
        *,
        restrict_index: Index | None = None,
    ) -> MetaJoin:
        """Join a snapshot's streams into the main stream by index (see :class:`MetaJoin`).

        ``streams`` maps prefix to a path or readable binary file, or is a directory of
        ``<prefix>.meta`` files. The main plugin's stream is required (MetaStreamError
        otherwise); streams of unknown prefixes are skipped and listed. With
        ``restrict_index`` only that file and its subtree are yielded.
        """
        if not isinstance(streams, Mapping):
            streams = find_streams(streams)
        main = self.get_main()
        main_prefix = main.get_prefix()
        if main_prefix not in streams:
            raise MetaStreamError(
                f"the metadata has no stream of the main plugin {main.get_name()} "
                f"(streams: {', '.join(sorted(streams)) or 'none'})"
            )
        others = sorted(
            (self._plugins[p] for p in streams if p in self._plugins and p != main_prefix),
            key=lambda c: c.get_name(),
        )
        unknown = sorted(p for p in streams if p not in self._plugins)
        for prefix in unknown:
            log.info("meta stream %s: no installed plugin reads it; kept, not joined", prefix)
        return MetaJoin(main, others, streams, unknown, restrict_index)

    def pass_through(
        self,
        streams: Mapping[str, PathOrFile] | str | bytes | os.PathLike[str] | os.PathLike[bytes],
        target: StreamTarget,
    ) -> dict[str, int]:
        """Copy, verified and byte for byte, every stream no loaded plugin reads.

        Returns prefix to record count for the streams copied. This keeps the metadata
        of a plugin that is absent here when a snapshot's metadata is rewritten.
        """
        if not isinstance(streams, Mapping):
            streams = find_streams(streams)
        copied = {}
        for prefix in sorted(streams):
            if prefix in self._plugins:
                continue
            if callable(target):
                copied[prefix] = copy_stream(streams[prefix], target(prefix), name=prefix)
                continue
            directory = os.fsdecode(target)
            temp = os.path.join(directory, f".{stream_file_name(prefix)}.tmp")
            try:
                copied[prefix] = copy_stream(streams[prefix], temp, name=prefix)
            except BaseException:
                if os.path.exists(temp):
                    os.unlink(temp)
                raise
            os.replace(temp, os.path.join(directory, stream_file_name(prefix)))
        return copied


def _registry() -> Any:
    from .registry import get_plugin_manager  # type: ignore[import-not-found,unused-ignore]

    return get_plugin_manager()


def _load_registered(registry: Any = None, *, quiet: bool = False) -> list[type[MetaPlugin]]:
    """The meta plugin classes the registry loads, with clashing plugins left out.

    Unless the registry is strict, a plugin that cannot work beside the others is left
    out with an error logged, and the rest keep working: a plugin whose prefix another
    already uses (a built-in wins, then the first loaded), and a plugin that claims to
    be the main plugin beside the built-in main plugin. In strict mode every clash is
    kept, so the manager raises PluginContractError naming the plugins.
    """
    registry = registry or _registry()
    loaded: Any = registry.load_all(PluginKind.META)
    items = loaded.values() if isinstance(loaded, Mapping) else loaded
    classes = []
    for item in items:
        cls = item if isinstance(item, type) else getattr(item, "plugin_class", None)
        if isinstance(cls, type) and issubclass(cls, MetaPlugin):
            classes.append(cls)
    if getattr(registry, "strict", False):
        return classes
    records = getattr(registry, "records", None)
    builtin = {
        id(r.plugin_class) for r in (records(PluginKind.META) if records else []) if r.builtin
    }
    # built-ins first, each group in load order: the first of a prefix wins
    ordered = sorted(classes, key=lambda c: id(c) not in builtin)
    kept: dict[str, type[MetaPlugin]] = {}
    for cls in ordered:
        prefix = cls.get_prefix()
        if prefix in kept:
            _refuse(
                registry,
                cls,
                quiet=quiet,
                reason=f"not used: its stream prefix {prefix!r} is the one of "
                f"{kept[prefix].get_name()}",
            )
            continue
        kept[prefix] = cls
    mains = [c for c in kept.values() if c.is_main_meta()]
    builtin_mains = [c for c in mains if id(c) in builtin]
    if len(mains) > 1 and len(builtin_mains) == 1:
        for cls in mains:
            if cls is not builtin_mains[0]:
                _refuse(
                    registry,
                    cls,
                    quiet=quiet,
                    reason="not used: it claims to be the main meta plugin, which "
                    f"{builtin_mains[0].get_name()} is",
                )
                del kept[cls.get_prefix()]
    return [cls for cls in classes if kept.get(cls.get_prefix()) is cls]


def _refuse(registry: Any, cls: type[MetaPlugin], *, reason: str, quiet: bool) -> None:
    """Leave a clashing plugin out: log it (unless ``quiet``), and mark its record failed
    in the registry, so that ``pannier plugins`` shows it with this one-line reason."""
    if not quiet:
        log.error("meta plugin %s is %s", cls.get_name(), reason)
    records = getattr(registry, "records", None)
    mark_failed = getattr(registry, "_plugin_failed", None)
    if records is None or mark_failed is None:
        return
    for record in records(PluginKind.META):
        if record.plugin_class is cls:
            mark_failed(record, PluginContractError(f"meta plugin {cls.get_name()}: {reason}"))


def check_meta_plugins(registry: Any = None) -> None:
    """Apply the clash policy of :func:`get_meta_manager` to the registry's meta plugins
    (non-strictly): each plugin it would leave out is marked failed with its reason."""
    registry = registry or _registry()
    strict, registry.strict = registry.strict, False
    try:
        _load_registered(registry, quiet=True)
    finally:
        registry.strict = strict


#: The shared manager and the plugin registry it was built from.
_shared: tuple[MetaManager, Any] | None = None


def get_meta_manager(
    refresh: bool = False, *, plugins: Iterable[type[MetaPlugin]] | None = None
) -> MetaManager:
    """The meta manager of this process, built from the plugin registry on first use.

    It is built again when ``refresh`` is true or when the registry itself was rebuilt
    (``pannier.registry.reset_plugin_manager()``). With ``plugins``, a new manager over
    exactly those classes is returned and the shared one is left alone.
    """
    global _shared
    if plugins is not None:
        return MetaManager(plugins)
    registry = _registry()
    if _shared is None or refresh or _shared[1] is not registry:
        _shared = (MetaManager(_load_registered(registry)), registry)
    return _shared[0]


def get_meta_dict(fs: FSArg = None) -> dict[str, type[MetaPlugin]]:
    """``get_meta_manager().get_meta_dict(fs)``: prefix to active plugin class."""
    return get_meta_manager().get_meta_dict(fs)


def get_meta_list(fs: FSArg = None) -> list[type[MetaPlugin]]:
    """``get_meta_manager().get_meta_list(fs)``: the main plugin first, then by name."""
    return get_meta_manager().get_meta_list(fs)
