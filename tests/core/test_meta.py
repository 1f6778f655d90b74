"""The MetaPlugin base class: records, streams, join_iter, the contract check."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from pannier import MetaStreamError, PluginContractError
from pannier.meta import (
    FSAbilities,
    Index,
    JoinItem,
    MetaPlugin,
    MetaRecord,
    check_meta_plugin_class,
    index_path,
    record_fields,
)
from pannier.meta_stream import MetaStreamWriter, StreamHeader


@attrs.define
class SizeRecord(MetaRecord):
    size: int
    label: str | None = None


class SizePlugin(MetaPlugin):
    """Sizes of regular files."""

    plugin_api_version = 1
    record_class = SizeRecord

    @classmethod
    def get_prefix(cls) -> str:
        return "size"

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> SizeRecord:
        return SizeRecord(index, st.st_size)

    @classmethod
    def apply(cls, record: Any, root: bytes, index: Index, *, dry_compare: bool = True) -> bool:
        return False


RECORDS = [
    SizeRecord((), 1),
    SizeRecord((b"a",), 2, "two"),
    SizeRecord((b"a", b"x"), 3),
    SizeRecord((b"a", b"x", b"deep"), 4),
    SizeRecord((b"a-b",), 5),
    SizeRecord((b"b",), 6),
]


def stream_of(records: list[SizeRecord]) -> io.BytesIO:
    buffer = io.BytesIO()
    with SizePlugin(buffer, "w") as stream:
        for record in records:
            stream.write_object(record)
    buffer.seek(0)
    return buffer


def test_defaults_describe_the_plugin() -> None:
    assert SizePlugin.get_name() == "size"
    assert SizePlugin.get_desc() == "Sizes of regular files."
    assert SizePlugin.get_version() == "0"
    assert SizePlugin.is_main_meta() is False
    assert SizePlugin.is_active(FSAbilities(xattr=False, acl=False)) is True
    assert "plugin_api_version" not in vars(MetaPlugin), "the base does not set it"


def test_record_fields_and_index_path() -> None:
    assert record_fields(SizeRecord) == ("index", "size", "label")
    assert index_path(b"/r", ()) == b"/r"
    assert index_path(b"/r", (b"a", b"\xff")) == b"/r/a/\xff"


def test_round_trip_and_header() -> None:
    with SizePlugin(stream_of(RECORDS), "r") as stream:
        assert stream.header.fields == ("index", "size", "label")
        assert stream.header.plugin == "size"
        assert list(stream.get_objects()) == RECORDS


@pytest.mark.parametrize(
    ("restrict", "expected"),
    [
        ((), RECORDS),
        ((b"a",), RECORDS[1:4]),
        ((b"a", b"x"), RECORDS[2:4]),
        ((b"a-b",), RECORDS[4:5]),
        ((b"zzz",), []),
        ((b"a", b"y"), []),
    ],
)
def test_restrict_index(restrict: Index, expected: list[SizeRecord]) -> None:
    with SizePlugin(stream_of(RECORDS), "r") as stream:
        assert list(stream.get_objects(restrict)) == expected


def test_restrict_index_must_be_bytes() -> None:
    with (
        SizePlugin(stream_of(RECORDS), "r") as stream,
        pytest.raises(TypeError, match="tuple of bytes"),
    ):
        list(stream.get_objects(("a",)))  # type: ignore[arg-type]


def test_older_stream_without_an_optional_field_reads_with_its_default() -> None:
    buffer = io.BytesIO()
    with MetaStreamWriter(buffer, StreamHeader("size", "0", "size", ("index", "size"))) as w:
        w.write_row(((b"a",), 7))
    buffer.seek(0)
    with SizePlugin(buffer, "r") as stream:
        assert list(stream.get_objects()) == [SizeRecord((b"a",), 7, None)]


def test_stream_lacking_a_required_field_is_refused() -> None:
    buffer = io.BytesIO()
    with MetaStreamWriter(buffer, StreamHeader("size", "0", "size", ("index", "label"))) as w:
        w.write_row(((b"a",), "x"))
    buffer.seek(0)
    with (
        SizePlugin(buffer, "r") as stream,
        pytest.raises(MetaStreamError, match="lacks the field 'size'"),
    ):
        list(stream.get_objects())


def test_unknown_fields_survive_a_rewrite_in_another_order() -> None:
    buffer = io.BytesIO()
    fields = ("index", "new_first", "label", "size")
    with MetaStreamWriter(buffer, StreamHeader("size", "2", "size", fields)) as w:
        w.write_row(((b"a",), [1, 2], "l", 3))
    buffer.seek(0)
    with SizePlugin(buffer, "r") as stream:
        (record,) = stream.get_objects()
    assert record == SizeRecord((b"a",), 3, "l", extra={"new_first": (1, 2)})
    with SizePlugin(stream_of([record]), "r") as stream:
        assert list(stream.get_objects()) == [record]


def test_modes_are_checked() -> None:
    with pytest.raises(ValueError, match="mode must be 'r' or 'w'"):
        SizePlugin(io.BytesIO(), "a")  # type: ignore[arg-type]
    with (
        SizePlugin(stream_of([]), "r") as reader,
        pytest.raises(ValueError, match="opened for reading"),
    ):
        reader.write_object(RECORDS[0])
    with SizePlugin(io.BytesIO(), "w") as writer, pytest.raises(ValueError, match="for writing"):
        list(writer.get_objects())


def test_exception_inside_with_leaves_a_truncated_stream(tmp_path: Path) -> None:
    path = tmp_path / "size.meta"
    with pytest.raises(KeyError), SizePlugin(path, "w") as stream:
        stream.write_object(RECORDS[0])
        raise KeyError("x")
    with SizePlugin(path, "r") as reader, pytest.raises(MetaStreamError, match="truncated"):
        list(reader.get_objects())


# --- join_iter ------------------------------------------------------------------------


def main_items(indexes: list[Index]) -> Iterator[JoinItem]:
    return iter([(index, {"main": index}) for index in indexes])


def test_join_iter_blank_where_no_record_and_orphans_dropped() -> None:
    main = [(), (b"a",), (b"a", b"x"), (b"b",), (b"c",)]
    meta = [
        SizeRecord((b"0",), 0),  # orphan before a/
        SizeRecord((b"a",), 1),
        SizeRecord((b"a", b"w"), 9),  # orphan in the middle
        SizeRecord((b"b",), 2),
        SizeRecord((b"d",), 3),  # orphan at the end
    ]
    orphans: list[MetaRecord] = []
    joined = list(SizePlugin.join_iter(main_items(main), iter(meta), on_orphan=orphans.append))
    assert [(i, r["main"], r["size"]) for i, r in joined] == [
        ((), (), None),
        ((b"a",), (b"a",), meta[1]),
        ((b"a", b"x"), (b"a", b"x"), None),
        ((b"b",), (b"b",), meta[3]),
        ((b"c",), (b"c",), None),
    ]
    assert orphans == [meta[0], meta[2], meta[4]]


def test_join_iter_is_lazy() -> None:
    def endless() -> Iterator[JoinItem]:
        n = 0
        while True:
            yield ((b"%09d" % n,), {})
            n += 1

    joined = SizePlugin.join_iter(endless(), iter([SizeRecord((b"%09d" % 2,), 5)]))
    first = [next(joined) for _ in range(4)]
    assert [r["size"] for _, r in first] == [None, None, SizeRecord((b"000000002",), 5), None]


# --- the contract check ---------------------------------------------------------------


def make_plugin(**attributes: Any) -> type[MetaPlugin]:
    return type("Broken", (SizePlugin,), attributes)


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        (object, "is not a subclass of pannier.MetaPlugin"),
        (type("NoVersion", (MetaPlugin,), {}), "does not set plugin_api_version"),
        (
            make_plugin(get_prefix=classmethod(lambda cls: "has space")),
            "get_prefix\\(\\) must return a short name",
        ),
        (make_plugin(get_prefix=classmethod(lambda cls: 1 / 0)), "ZeroDivisionError"),
        (make_plugin(record_class=dict), "record_class must be an attrs subclass of MetaRecord"),
        (
            make_plugin(record_class=attrs.define(type("R", (MetaRecord,), {}))),
            None,
        ),
        (
            make_plugin(from_path=MetaPlugin.__dict__["from_path"]),
            "does not implement from_path",
        ),
        (make_plugin(apply=MetaPlugin.__dict__["apply"]), "does not implement apply"),
    ],
)
def test_contract_check(candidate: Any, message: str | None) -> None:
    if message is None:
        assert check_meta_plugin_class(candidate) is candidate
        return
    with pytest.raises(PluginContractError, match=message):
        check_meta_plugin_class(candidate)


def test_record_class_must_start_with_index() -> None:
    @attrs.define
    class Wrong:
        size: int
        index: tuple[bytes, ...]

    with pytest.raises(PluginContractError, match="'index' as its first field"):
        record_fields(Wrong)  # type: ignore[arg-type]


# --- filesystem abilities -------------------------------------------------------------


def test_probe_finds_xattrs_and_acls_on_a_real_filesystem(tmp_path: Path) -> None:
    fs = FSAbilities.probe(tmp_path)
    assert fs.xattr and fs.acl
    assert fs.is_root == (os.geteuid() == 0)
    assert fs.path == os.fsencode(tmp_path)
    assert FSAbilities.of(fs) is fs
    assert FSAbilities.of(str(tmp_path)) == fs


def test_probe_of_a_missing_path_fails(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FSAbilities.probe(tmp_path / "missing")


def test_probe_of_filesystems_without_xattrs_or_acls() -> None:
    proc = FSAbilities.probe("/proc/self/status")  # procfs refuses extended attributes
    assert not proc.xattr and not proc.acl
    assert not FSAbilities.probe("/sys/kernel").acl  # sysfs has no POSIX ACLs


def test_a_stream_of_another_plugin_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.meta"
    with MetaStreamWriter(path, StreamHeader("xattr", "1.0", "xattr", ("index", "xattrs"))):
        pass
    with pytest.raises(
        MetaStreamError,
        match=r"other\.meta holds records of the plugin xattr \(prefix 'xattr'\), "
        r"not of size \(prefix 'size'\)",
    ):
        SizePlugin(path, "r")
