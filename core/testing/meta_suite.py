"""The metadata-plugin conformance suite, for pytest.

Every built-in metadata plugin's test runs this suite, and a third party's plugin runs the
very same tests in its own pytest run, by subclassing (or with :func:`meta_plugin_suite`)::

    from pannier.testing.meta_suite import MetaPluginSuite
    from my_package import MyPlugin

    class TestMyPlugin(MetaPluginSuite):
        plugin_class = MyPlugin

        def prepare_tree(self, root):
            ...  # give the sample files the metadata the plugin records

The suite builds a sample tree of real files (directories, regular and empty files, a
symlink, a FIFO, names that are not UTF-8 and names that sort tricky, unusual permission
bits and times), calls :meth:`MetaPluginSuite.prepare_tree`, reads every file's record
with ``from_path``, and checks that:

* the class keeps the contract (``check_meta_plugin_class``) and declares a supported
  plugin API version;
* the plugin records something on the sample tree (else override ``prepare_tree``);
* reading the tree again gives equal records and leaves every file's times alone;
* a plugin that declares ``content_digest = "blake3"`` gives the same record when the
  engine passes the digest (``from_path(..., digest=)``) as when it reads the file itself;
* records written to a stream (a path or a file object) read back equal, in index order;
* writing a record out of order, or twice, raises MetaStreamError;
* ``get_objects(restrict_index=...)`` yields exactly the subtree of that index;
* ``join_iter`` puts the blank record (None) where the plugin has no record, and drops
  records whose index the main stream lacks, reporting each to ``on_orphan``;
* ``is_active`` answers a bool for FSAbilities with everything on, everything off, and a
  path;
* a truncated stream (cut anywhere) and a corrupt one (any flipped byte in a data frame)
  raise MetaStreamError naming the stream and a record number, never a short read;
* a stream of a newer format version raises MetaStreamError naming it;
* fields written by a newer plugin version are kept in ``extra`` and written back;
* ``apply`` on a fresh copy of the tree (content only) restores records that read back
  equal, except the plugin's ``unrestorable_fields``, and applying them again writes
  nothing;
* the meta manager writes and joins the plugin's stream with a main plugin.

Tests that need the filesystem to support the plugin are skipped, with the reason, where
``is_active`` says it does not.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import attrs
import msgpack
import pytest

from ..errors import MetaStreamError
from ..meta import (
    FSAbilities,
    Index,
    JoinItem,
    MetaPlugin,
    MetaRecord,
    check_meta_plugin_class,
    index_path,
)
from ..meta_manager import MetaManager
from ..meta_stream import FORMAT_VERSION, MAGIC, MetaStreamReader, MetaStreamWriter
from ..plugin import SUPPORTED_PLUGIN_API_VERSIONS

__all__ = [
    "IndexOnlyMainPlugin",
    "IndexRecord",
    "MetaPluginSuite",
    "make_sample_tree",
    "meta_plugin_suite",
]

#: Fixed modification times (ns) given to the sample files, far from "now".
SAMPLE_MTIME_NS = 1_000_000_000_123_456_789


def make_sample_tree(root: Path) -> None:
    """Create the suite's sample tree under ``root`` (which must not exist)."""
    root.mkdir()
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / "a-b").write_bytes(b"sorts after a.txt, before a/ when compared as bytes")
    (root / "empty").write_bytes(b"")
    (root / "d").mkdir()
    (root / "d" / "b.bin").write_bytes(bytes(range(256)) * 64)
    (root / "d" / "sub").mkdir()
    (root / "d" / "sub" / "c").write_bytes(b"deep\n")
    (root / "d-x").write_bytes(b"a sibling that sorts after d")
    os.mkdir(os.path.join(os.fsencode(root), b"caf\xe9-\xff"))
    with open(os.path.join(os.fsencode(root), b"caf\xe9-\xff", b"n\xfe"), "wb") as f:
        f.write(b"latin-1 names\n")
    os.symlink("a.txt", root / "link")
    os.mkfifo(root / "pipe")
    for path, mode in (
        (root / "a.txt", 0o640),
        (root / "a-b", 0o604),
        (root / "d" / "b.bin", 0o755),
        (root / "d" / "sub", 0o750),
        (root / "d-x", 0o4711),
    ):
        os.chmod(path, mode)
    for index in reversed(list(walk_indexes(os.fsencode(root)))):
        bpath = index_path(os.fsencode(root), index)
        os.utime(bpath, ns=(SAMPLE_MTIME_NS, SAMPLE_MTIME_NS + len(index)), follow_symlinks=False)


def walk_indexes(root: bytes) -> Iterator[Index]:
    """Yield the index of every file under ``root`` (``()`` first), in index order.

    A depth-first walk visiting names in sorted bytes order yields exactly index order.
    """
    yield ()

    def walk(index: Index) -> Iterator[Index]:
        for name in sorted(os.listdir(index_path(root, index))):
            child = (*index, name)
            yield child
            if stat.S_ISDIR(os.lstat(index_path(root, child)).st_mode):
                yield from walk(child)

    yield from walk(())


def copy_skeleton(source: bytes, target: bytes) -> None:
    """Recreate ``source`` at ``target`` with contents and node types but no metadata.

    Directories, regular files (content only), symlinks (same target) and FIFOs are
    created with default permissions, owner and times; nothing else is copied.
    """
    for index in walk_indexes(source):
        src = index_path(source, index)
        dst = index_path(target, index)
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            os.mkdir(dst)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(src, dst)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(dst)


@attrs.define
class IndexRecord(MetaRecord):
    """The record of :class:`IndexOnlyMainPlugin`: the index and the file type bits."""

    kind: int


class IndexOnlyMainPlugin(MetaPlugin):
    """A minimal main plugin (file type only), used to test a non-main plugin's joins."""

    plugin_api_version = 1
    record_class = IndexRecord

    @classmethod
    def get_prefix(cls) -> str:
        """The prefix ``suite-main``."""
        return "suite-main"

    @classmethod
    def is_main_meta(cls) -> bool:
        """True: this is the main plugin of the suite's manager tests."""
        return True

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> IndexRecord:
        """The file type bits of ``st``."""
        return IndexRecord(index, stat.S_IFMT(st.st_mode))

    @classmethod
    def apply(cls, record: Any, root: bytes, index: Index, *, dry_compare: bool = True) -> bool:
        """Nothing to apply."""
        return False


def _without(record: MetaRecord, fields: frozenset[str]) -> dict[str, Any]:
    values = attrs.asdict(record, recurse=False)
    return {k: v for k, v in values.items() if k not in fields}


class MetaPluginSuite:
    """Subclass as ``TestSomething`` and set :attr:`plugin_class` to run the suite."""

    #: The plugin class under test.
    plugin_class: ClassVar[type[MetaPlugin]]

    # --- hooks for the subclass ---------------------------------------------------------

    def prepare_tree(self, root: Path) -> None:
        """Give the sample tree at ``root`` the metadata the plugin records (default: none).

        Called after the tree is made, before records are read; files may be added too.
        """

    # --- fixtures -----------------------------------------------------------------------

    @pytest.fixture
    def tree(self, tmp_path: Path) -> bytes:
        """The sample tree, prepared, as a bytes path."""
        root = tmp_path / "source"
        make_sample_tree(root)
        self.prepare_tree(root)
        return os.fsencode(root)

    @pytest.fixture
    def records(self, tree: bytes) -> list[MetaRecord]:
        """The plugin's records of the sample tree, in index order (skips if inactive)."""
        self._require_active(tree)
        found = []
        for index in walk_indexes(tree):
            record = self.plugin_class.from_path(tree, index, os.lstat(index_path(tree, index)))
            if record is not None:
                found.append(record)
        return found

    def _require_active(self, path: bytes) -> None:
        if not self.plugin_class.is_active(FSAbilities.probe(path)):
            pytest.skip(f"{self.plugin_class.get_name()} is inactive on this filesystem")

    def _write(self, target: Any, records: list[MetaRecord]) -> None:
        with self.plugin_class(target, "w") as stream:
            for record in records:
                stream.write_object(record)

    def _read(self, source: Any, restrict: Index | None = None) -> list[MetaRecord]:
        with self.plugin_class(source, "r") as stream:
            return list(stream.get_objects(restrict))

    # --- the contract -------------------------------------------------------------------

    def test_contract(self) -> None:
        """The class passes the contract checks and declares a supported API version."""
        cls = check_meta_plugin_class(self.plugin_class)
        assert cls.plugin_api_version in SUPPORTED_PLUGIN_API_VERSIONS
        assert isinstance(cls.get_desc(), str)
        assert isinstance(cls.is_main_meta(), bool)

    def test_records_something(self, tree: bytes, records: list[MetaRecord]) -> None:
        """The plugin records something on the prepared sample tree; each record carries
        the index it was asked for; a main plugin has a record of every file."""
        self._require_active(tree)
        assert records, "the plugin recorded nothing; override prepare_tree()"
        assert all(isinstance(r, self.plugin_class.record_class) for r in records)
        for index in walk_indexes(tree):
            record = self.plugin_class.from_path(tree, index, os.lstat(index_path(tree, index)))
            assert record is None or record.index == index, "a record carries the index asked"
            if self.plugin_class.is_main_meta():
                assert record is not None, f"the main plugin has no record of {index!r}"

    def test_from_path_is_stable_and_read_only(
        self, tree: bytes, records: list[MetaRecord]
    ) -> None:
        """Reading the tree again gives equal records and changes no file's mtime or ctime."""

        def times() -> list[tuple[int, int]]:
            return [
                (st.st_mtime_ns, st.st_ctime_ns)
                for st in (os.lstat(index_path(tree, i)) for i in walk_indexes(tree))
            ]

        before = times()
        again = [
            self.plugin_class.from_path(tree, i, os.lstat(index_path(tree, i)))
            for i in walk_indexes(tree)
        ]
        assert [r for r in again if r is not None] == records
        assert times() == before, "from_path wrote to the files it read"

    def test_content_digest_gives_the_same_record(self, tree: bytes) -> None:
        """With ``content_digest = "blake3"``, ``from_path(..., digest=)`` (the digest the
        engine computed while reading the file) gives the record the plugin reads itself."""
        cls = self.plugin_class
        if getattr(cls, "content_digest", None) != "blake3":
            pytest.skip("the plugin declares no content_digest the engine computes")
        import blake3

        checked = 0
        for index in walk_indexes(tree):
            path = index_path(tree, index)
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                continue
            with open(path, "rb") as f:
                digest = blake3.blake3(f.read()).digest()
            given = cls.from_path(tree, index, st, digest=digest)  # type: ignore[call-arg]
            assert given == cls.from_path(tree, index, st), f"{index!r}: digest= changes it"
            checked += 1
        assert checked, "the sample tree has no regular file"

    # --- the stream ---------------------------------------------------------------------

    def test_round_trip_file(self, tmp_path: Path, records: list[MetaRecord]) -> None:
        """Records written to a file read back equal, with the plugin named in the header."""
        path = tmp_path / "stream.meta"
        self._write(path, records)
        assert self._read(path) == records
        with self.plugin_class(path, "r") as stream:
            assert stream.header.plugin == self.plugin_class.get_name()
            assert stream.header.plugin_version == self.plugin_class.get_version()
            assert stream.header.prefix == self.plugin_class.get_prefix()

    def test_round_trip_fileobj(self, records: list[MetaRecord]) -> None:
        """Records written to a file object read back equal; the object stays open."""
        buffer = io.BytesIO()
        self._write(buffer, records)
        assert not buffer.closed
        buffer.seek(0)
        assert self._read(buffer) == records

    def test_round_trip_empty(self, tmp_path: Path) -> None:
        """A stream with no records reads back empty."""
        self._write(tmp_path / "empty.meta", [])
        assert self._read(tmp_path / "empty.meta") == []

    def test_out_of_order_write_fails(self, tmp_path: Path, records: list[MetaRecord]) -> None:
        """Writing a record whose index is not greater than the previous one fails."""
        if len(records) < 2:
            pytest.skip("needs two records")
        for bad in ([records[1], records[0]], [records[0], records[0]]):
            with (
                pytest.raises(MetaStreamError, match="out of order"),
                self.plugin_class(tmp_path / "bad.meta", "w") as stream,
            ):
                for record in bad:
                    stream.write_object(record)

    def test_restrict_index(self, tmp_path: Path, records: list[MetaRecord]) -> None:
        """get_objects(restrict_index) yields exactly that index and its subtree."""
        path = tmp_path / "stream.meta"
        self._write(path, records)
        candidates = {r.index[:1] for r in records if r.index} | {(b"d",), (b"nothing",)}
        for restrict in sorted(candidates):
            expected = [r for r in records if r.index[: len(restrict)] == restrict]
            assert self._read(path, restrict) == expected, restrict
        assert self._read(path, ()) == records

    def test_truncated_stream_fails(self, tmp_path: Path, records: list[MetaRecord]) -> None:
        """A stream cut short anywhere raises MetaStreamError naming it and a record."""
        path = tmp_path / "stream.meta"
        self._write(path, records)
        data = path.read_bytes()
        cuts = sorted({0, 5, len(MAGIC) + 3, len(data) // 2, len(data) - 13, len(data) - 1})
        for cut in cuts:
            cut_path = tmp_path / f"cut-{cut}.meta"
            cut_path.write_bytes(data[:cut])
            with pytest.raises(MetaStreamError) as info:
                self._read(cut_path)
            assert f"cut-{cut}.meta" in str(info.value)
            if cut > 40:
                assert "record" in str(info.value)

    def test_corrupt_stream_fails(self, tmp_path: Path, records: list[MetaRecord]) -> None:
        """A flipped byte in the records raises MetaStreamError naming stream and record."""
        path = tmp_path / "stream.meta"
        self._write(path, records)
        data = bytearray(path.read_bytes())
        with MetaStreamReader(path) as reader:
            header_end = reader._file.tell()
        for position in sorted({header_end + 12, (header_end + len(data)) // 2, len(data) - 20}):
            bad = bytearray(data)
            bad[position] ^= 0x55
            bad_path = tmp_path / f"flip-{position}.meta"
            bad_path.write_bytes(bytes(bad))
            with pytest.raises(MetaStreamError, match=rf"flip-{position}\.meta.*record"):
                self._read(bad_path)

    def test_newer_format_version_fails(self, tmp_path: Path) -> None:
        """A stream of a newer format version raises MetaStreamError naming it."""
        path = tmp_path / "future.meta"
        header = self.plugin_class.stream_header()
        with MetaStreamWriter(path, attrs.evolve(header, format_version=FORMAT_VERSION + 1)):
            pass
        with pytest.raises(MetaStreamError, match=r"future\.meta.*format version"):
            self._read(path)

    def test_unknown_fields_kept(self, tmp_path: Path, records: list[MetaRecord]) -> None:
        """Fields of a newer plugin version are kept in ``extra`` and written back."""
        header = self.plugin_class.stream_header()
        newer = attrs.evolve(header, fields=(*header.fields, "future_field"))
        path = tmp_path / "newer.meta"
        with MetaStreamWriter(path, newer) as writer:
            for n, record in enumerate(records):
                row = tuple(getattr(record, f) for f in header.fields)
                writer.write_row((*row, f"future {n}", {"later": n}))
        read = self._read(path)
        assert [attrs.evolve(r, extra=None) for r in read] == records
        assert [r.extra for r in read] == [
            {"future_field": f"future {n}", "later": n} for n in range(len(records))
        ]
        again = tmp_path / "again.meta"
        self._write(again, read)
        assert self._read(again) == read
        with MetaStreamReader(again) as reader:
            rows = list(reader.iter_rows())
        assert all(row[-1]["future_field"] == f"future {n}" for n, row in enumerate(rows))

    def test_header_is_msgpack(self, tmp_path: Path) -> None:
        """The header is a msgpack map naming the format version, plugin and fields."""
        path = tmp_path / "stream.meta"
        self._write(path, [])
        data = path.read_bytes()
        assert data.startswith(MAGIC)
        length = int.from_bytes(data[len(MAGIC) : len(MAGIC) + 4], "big")
        start = len(MAGIC) + 12
        header = msgpack.unpackb(data[start : start + length])
        assert header["format"] == FORMAT_VERSION
        assert header["plugin"] == self.plugin_class.get_name()
        assert header["fields"][0] == "index"

    # --- joining ------------------------------------------------------------------------

    def test_join_iter_gaps(self, tree: bytes, records: list[MetaRecord]) -> None:
        """join_iter gives each main item this plugin's record or the blank record None."""
        prefix = self.plugin_class.get_prefix()
        indexes = list(walk_indexes(tree))
        main = iter([(index, {"main": index}) for index in indexes])
        joined = list(self.plugin_class.join_iter(main, iter(records)))
        assert [item[0] for item in joined] == indexes
        by_index = {r.index: r for r in records}
        for index, found in joined:
            assert found["main"] == index
            assert found[prefix] == by_index.get(index)
        if len(records) < len(indexes):
            assert any(found[prefix] is None for _, found in joined)

    def test_join_iter_orphans(self, records: list[MetaRecord]) -> None:
        """Records whose index the main stream lacks are dropped and reported."""
        prefix = self.plugin_class.get_prefix()
        kept = records[::2]
        orphans: list[MetaRecord] = []
        main: Iterator[JoinItem] = iter([(r.index, {}) for r in kept])
        joined = list(self.plugin_class.join_iter(main, iter(records), on_orphan=orphans.append))
        assert [found[prefix] for _, found in joined] == kept
        assert orphans == records[1::2]
        tail: list[MetaRecord] = []
        empty = list(self.plugin_class.join_iter(iter([]), iter(records), on_orphan=tail.append))
        assert empty == [] and tail == records

    # --- the filesystem -----------------------------------------------------------------

    def test_is_active(self, tmp_path: Path) -> None:
        """is_active answers a bool for abilities all on, all off, and for a path."""
        everything = FSAbilities(xattr=True, acl=True, is_root=True)
        nothing = FSAbilities(xattr=False, acl=False, is_root=False)
        for fs in (everything, nothing, FSAbilities.probe(tmp_path)):
            assert isinstance(self.plugin_class.is_active(fs), bool)
        assert isinstance(self.plugin_class.is_active(tmp_path), bool)
        assert isinstance(self.plugin_class.is_active(os.fsencode(tmp_path)), bool)
        assert self.plugin_class.is_active(everything)

    def test_apply_restores(self, tmp_path: Path, tree: bytes, records: list[MetaRecord]) -> None:
        """apply on a bare copy restores the records; applying again writes nothing
        (returns False and changes no file's ctime)."""
        self._require_active(tree)
        target = os.fsencode(tmp_path / "restored")
        copy_skeleton(tree, target)
        for record in reversed(records):  # children before their directory
            self.plugin_class.apply(record, target, record.index)
        ignore = self.plugin_class.unrestorable_fields
        for record in records:
            again = self.plugin_class.from_path(
                target, record.index, os.lstat(index_path(target, record.index))
            )
            assert again is not None, record.index
            assert _without(again, ignore) == _without(record, ignore), record.index
        ctimes = [os.lstat(index_path(target, r.index)).st_ctime_ns for r in records]
        time.sleep(0.05)  # past the kernel's coarse clock tick, so a write shows in ctime
        for record in reversed(records):
            assert not self.plugin_class.apply(record, target, record.index), record.index
        after = [os.lstat(index_path(target, r.index)).st_ctime_ns for r in records]
        assert after == ctimes, "a second apply changed files (compare before writing)"

    def test_through_manager(self, tmp_path: Path, tree: bytes, records: list[MetaRecord]) -> None:
        """The meta manager writes the plugin's stream and joins it back by index."""
        self._require_active(tree)
        plugins = [self.plugin_class]
        if not self.plugin_class.is_main_meta():
            plugins.insert(0, IndexOnlyMainPlugin)
        manager = MetaManager(plugins)
        out = tmp_path / "streams"
        out.mkdir()
        with manager.get_writer(out, fs=tree) as writer:
            for index in walk_indexes(tree):
                writer.write(tree, index)
        prefix = self.plugin_class.get_prefix()
        by_index = {r.index: r for r in records}
        joined = list(manager.iter_joined(out))
        assert [index for index, _ in joined] == list(walk_indexes(tree))
        for index, found in joined:
            assert found[prefix] == by_index.get(index), index


def meta_plugin_suite(
    plugin_class: type[MetaPlugin],
    *,
    prepare_tree: Callable[[Path], None] | None = None,
    name: str | None = None,
) -> type[MetaPluginSuite]:
    """A pytest test class running the whole suite on ``plugin_class``.

    The functional form of subclassing :class:`MetaPluginSuite`; bind the result to a
    name starting with ``Test`` in a test module::

        TestMyPlugin = meta_plugin_suite(MyPlugin, prepare_tree=add_my_metadata)

    :param prepare_tree: called with the sample tree's root, as
        :meth:`MetaPluginSuite.prepare_tree` is.
    :param name: the class name (default ``Test`` + the plugin class's name).
    """
    namespace: dict[str, Any] = {"plugin_class": plugin_class, "__module__": __name__}
    if prepare_tree is not None:
        prepare = prepare_tree

        def prepare_method(self: MetaPluginSuite, root: Path) -> None:
            prepare(root)

        namespace["prepare_tree"] = prepare_method
    return type(name or f"Test{plugin_class.__name__}", (MetaPluginSuite,), namespace)
