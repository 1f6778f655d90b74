"""The meta manager: plugin order, the combined writer, the join, kept streams."""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import pytest
from pannier import MetaStreamError, PluginContractError
from pannier.meta import FSAbilities, Index, MetaPlugin, MetaRecord
from pannier.meta_manager import MetaManager, get_meta_manager, stream_file_name
from pannier.meta_stream import MetaStreamReader


@attrs.define
class KindRecord(MetaRecord):
    kind: str


@attrs.define
class SizeRecord(MetaRecord):
    size: int


class Main(MetaPlugin):
    """Main test plugin: the kind of every file."""

    plugin_api_version = 1
    record_class = KindRecord

    @classmethod
    def get_prefix(cls) -> str:
        return "main"

    @classmethod
    def is_main_meta(cls) -> bool:
        return True

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> KindRecord:
        return KindRecord(index, "dir" if os.path.isdir(os.path.join(root, *index)) else "file")

    @classmethod
    def apply(cls, record: Any, root: bytes, index: Index, *, dry_compare: bool = True) -> bool:
        return False


class Size(MetaPlugin):
    """Sizes of files, none for directories."""

    plugin_api_version = 1
    record_class = SizeRecord

    @classmethod
    def get_prefix(cls) -> str:
        return "size"

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> SizeRecord | None:
        return None if os.path.isdir(os.path.join(root, *index)) else SizeRecord(index, st.st_size)

    @classmethod
    def apply(cls, record: Any, root: bytes, index: Index, *, dry_compare: bool = True) -> bool:
        return False


class XattrLike(Size):
    """Active only where extended attributes are."""

    @classmethod
    def get_prefix(cls) -> str:
        return "alpha"

    @classmethod
    def is_active(cls, fs: Any) -> bool:
        return FSAbilities.of(fs).xattr


class Failing(Size):
    """Raises on one file."""

    @classmethod
    def get_prefix(cls) -> str:
        return "failing"

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> SizeRecord | None:
        if index == (b"bad",):
            raise PermissionError(13, "Permission denied", "bad")
        return super().from_path(root, index, st)


def other_main(prefix: str) -> type[MetaPlugin]:
    return type(f"Main_{prefix}", (Main,), {"get_prefix": classmethod(lambda cls: prefix)})


@pytest.fixture
def tree(tmp_path: Path) -> bytes:
    root = tmp_path / "src"
    root.mkdir()
    (root / "d").mkdir()
    (root / "d" / "f").write_bytes(b"12345")
    (root / "g").write_bytes(b"1")
    return os.fsencode(root)


INDEXES: list[Index] = [(), (b"d",), (b"d", b"f"), (b"g",)]


def write_tree(manager: MetaManager, tree: bytes, out: Path, fs: Any = None) -> dict[str, int]:
    with manager.get_writer(out, fs=fs) as writer:
        for index in INDEXES:
            writer.write(tree, index)
    return writer.counts


# --- order and validation -------------------------------------------------------------


def test_meta_list_is_main_first_then_by_name() -> None:
    manager = MetaManager([Size, XattrLike, Main])
    assert manager.get_meta_list() == [Main, XattrLike, Size]
    assert manager.get_meta_dict() == {"size": Size, "alpha": XattrLike, "main": Main}


def test_active_plugins_depend_on_the_filesystem(tmp_path: Path) -> None:
    manager = MetaManager([Main, Size, XattrLike])
    assert manager.get_meta_list(FSAbilities(xattr=False, acl=False)) == [Main, Size]
    assert manager.get_meta_list(tmp_path) == [Main, XattrLike, Size]
    assert set(manager.get_meta_dict(FSAbilities(xattr=False))) == {"main", "size"}


def test_no_main_plugin_is_a_clear_error() -> None:
    with pytest.raises(PluginContractError, match="no main meta plugin is loaded"):
        MetaManager([Size]).get_meta_list()


def test_two_main_plugins_are_named() -> None:
    with pytest.raises(PluginContractError, match="more than one main meta plugin: main, zmain"):
        MetaManager([Main, other_main("zmain"), Size]).get_meta_list()


def test_duplicate_prefix_is_refused() -> None:
    with pytest.raises(PluginContractError, match="both use the stream prefix 'size'"):
        MetaManager([Main, Size, type("Size2", (Size,), {})])


@pytest.fixture
def fresh_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A plugin registry built from this environment, with a private discovery cache."""
    from pannier.registry import reset_plugin_manager

    for name in ("PANNIER_LOAD_PLUGINS", "PANNIER_DISABLE_PLUGINS", "PANNIER_STRICT_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    reset_plugin_manager()
    yield
    reset_plugin_manager()


def test_default_manager_has_the_builtins_main_first(fresh_registry: None) -> None:
    manager = get_meta_manager(refresh=True)
    prefixes = [cls.get_prefix() for cls in manager.get_meta_list()]
    assert prefixes[0] == "attr"
    assert {"xattr", "acl", "checksum"} <= set(prefixes)
    assert get_meta_manager() is manager
    assert get_meta_manager(plugins=[Main]) is not manager


# --- writing --------------------------------------------------------------------------


def test_writer_writes_one_stream_per_plugin(tree: bytes, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    counts = write_tree(MetaManager([Main, Size]), tree, out)
    assert counts == {"main": 4, "size": 2}
    assert sorted(os.listdir(out)) == ["main.meta", "size.meta"]
    with Size(out / "size.meta", "r") as stream:
        assert [r.index for r in stream.get_objects()] == [(b"d", b"f"), (b"g",)]


def test_writer_with_a_stream_factory(tree: bytes) -> None:
    files: dict[str, IO[bytes]] = {}

    def factory(prefix: str) -> IO[bytes]:
        files[prefix] = io.BytesIO()
        return files[prefix]

    write_tree(MetaManager([Main, Size]), tree, factory)  # type: ignore[arg-type]
    assert set(files) == {"main", "size"}
    files["size"].seek(0)
    with MetaStreamReader(files["size"], name="size") as reader:
        assert reader.header.prefix == "size"
        assert len(list(reader.iter_rows())) == 2


def test_streams_appear_only_when_the_writer_closes(tree: bytes, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    writer = MetaManager([Main, Size]).get_writer(out)
    writer.write(tree, ())
    assert not any(n.endswith(".meta") and not n.startswith(".") for n in os.listdir(out))
    writer.close()
    assert sorted(os.listdir(out)) == ["main.meta", "size.meta"]


def test_failed_writer_leaves_nothing(tree: bytes, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    with pytest.raises(RuntimeError), MetaManager([Main, Size]).get_writer(out) as writer:
        writer.write(tree, ())
        raise RuntimeError("backup interrupted")
    assert os.listdir(out) == []


def test_a_failing_plugin_leaves_the_file_out_of_every_stream(tree: bytes, tmp_path: Path) -> None:
    (Path(os.fsdecode(tree)) / "bad").write_bytes(b"")
    out = tmp_path / "meta"
    out.mkdir()
    with MetaManager([Main, Failing]).get_writer(out) as writer:
        writer.write(tree, ())
        with pytest.raises(PermissionError):
            writer.write(tree, (b"bad",))
        writer.write(tree, (b"d",))
    assert writer.counts == {"main": 2, "failing": 0}


def test_main_record_is_required(tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    with MetaManager([Main, Size]).get_writer(out) as writer:
        with pytest.raises(PluginContractError, match="no record of the main meta plugin main"):
            writer.write_records({"size": SizeRecord((b"x",), 1)})
        writer.write_records({"main": KindRecord((b"x",), "file"), "size": None})
    assert writer.counts == {"main": 1, "size": 0}


def test_writer_refuses_files_out_of_order(tree: bytes, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    with (
        pytest.raises(MetaStreamError, match="out of order"),
        MetaManager([Main]).get_writer(out) as writer,
    ):
        writer.write(tree, (b"g",))
        writer.write(tree, (b"d",))
    assert os.listdir(out) == []


# --- joining --------------------------------------------------------------------------


def test_iter_joined_gives_every_file_with_blanks(tree: bytes, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    manager = MetaManager([Main, Size])
    write_tree(manager, tree, out)
    joined = list(manager.iter_joined(out))
    assert [index for index, _ in joined] == INDEXES
    assert [records["main"].kind for _, records in joined] == ["dir", "dir", "file", "file"]
    assert [records["size"] for _, records in joined] == [
        None,
        None,
        SizeRecord((b"d", b"f"), 5),
        SizeRecord((b"g",), 1),
    ]


def test_iter_joined_restrict_index(tree: bytes, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    manager = MetaManager([Main, Size])
    write_tree(manager, tree, out)
    assert [i for i, _ in manager.iter_joined(out, restrict_index=(b"d",))] == INDEXES[1:3]


def test_orphans_are_dropped_counted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    main_stream, size_stream = io.BytesIO(), io.BytesIO()
    with Main(main_stream, "w") as main:
        main.write_object(KindRecord((b"a",), "file"))
        main.write_object(KindRecord((b"c",), "file"))
    with Size(size_stream, "w") as size:
        for name in (b"a", b"b", b"c", b"d"):
            size.write_object(SizeRecord((name,), 1))
    main_stream.seek(0)
    size_stream.seek(0)
    join = MetaManager([Main, Size]).iter_joined({"main": main_stream, "size": size_stream})
    with caplog.at_level(logging.WARNING, logger="pannier.meta"):
        joined = list(join)
    assert [(i, r["size"].index) for i, r in joined] == [((b"a",), (b"a",)), ((b"c",), (b"c",))]
    assert join.orphans == {"size": 2}
    assert "meta stream size: dropped 2 record(s) of files absent from the main stream" in (
        caplog.text
    )


def test_missing_main_stream_is_a_clear_error(tree: bytes, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    write_tree(MetaManager([Main, Size]), tree, out)
    os.unlink(out / "main.meta")
    with pytest.raises(
        MetaStreamError, match=r"no stream of the main plugin main \(streams: size\)"
    ):
        MetaManager([Main, Size]).iter_joined(out)


def test_corrupt_stream_during_the_join_names_the_file(tree: bytes, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    write_tree(MetaManager([Main, Size]), tree, out)
    data = bytearray((out / "size.meta").read_bytes())
    data[-30] ^= 0xFF
    (out / "size.meta").write_bytes(bytes(data))
    with pytest.raises(MetaStreamError, match=r"size\.meta is corrupt at record"):
        list(MetaManager([Main, Size]).iter_joined(out))


def test_streams_of_absent_plugins_are_listed_and_kept(tree: bytes, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    write_tree(MetaManager([Main, Size, XattrLike]), tree, out)
    without = MetaManager([Main])
    join = without.iter_joined(out)
    assert [set(records) for _, records in join] == [{"main"}] * 4
    assert join.unknown_prefixes == ["alpha", "size"]
    rewritten = tmp_path / "rewritten"
    rewritten.mkdir()
    assert without.pass_through(out, rewritten) == {"alpha": 2, "size": 2}
    for prefix in ("alpha", "size"):
        name = stream_file_name(prefix)
        assert (rewritten / name).read_bytes() == (out / name).read_bytes()
    assert not (rewritten / "main.meta").exists()


def test_pass_through_of_a_corrupt_stream_leaves_nothing(tree: bytes, tmp_path: Path) -> None:
    out = tmp_path / "meta"
    out.mkdir()
    write_tree(MetaManager([Main, Size]), tree, out)
    (out / "size.meta").write_bytes((out / "size.meta").read_bytes()[:-5])
    rewritten = tmp_path / "rewritten"
    rewritten.mkdir()
    with pytest.raises(MetaStreamError, match="truncated"):
        MetaManager([Main]).pass_through(out, rewritten)
    assert os.listdir(rewritten) == []


def test_shared_manager_follows_a_rebuilt_registry(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pannier.registry import reset_plugin_manager

    first = get_meta_manager()
    assert "checksum" in first.get_meta_dict()
    monkeypatch.setenv("PANNIER_DISABLE_PLUGINS", "checksum")
    reset_plugin_manager()
    second = get_meta_manager()
    assert second is not first
    assert "checksum" not in second.get_meta_dict()
    assert "attr" in second.get_meta_dict()


CLASHING_PLUGIN = '''
import attrs
from pannier import MetaPlugin, MetaRecord


@attrs.define
class R(MetaRecord):
    value: int


class Clashing(MetaPlugin):
    """A third-party plugin that clashes with a built-in one."""

    plugin_api_version = 1
    record_class = R

    @classmethod
    def get_name(cls):
        return {name!r}

    @classmethod
    def get_prefix(cls):
        return {prefix!r}

    @classmethod
    def is_main_meta(cls):
        return {main!r}

    @classmethod
    def from_path(cls, root, index, st):
        return R(index, 1)

    @classmethod
    def apply(cls, record, root, index, *, dry_compare=True):
        return False


def get_plugin_class():
    return Clashing
'''


@pytest.fixture
def clashing_plugins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None
) -> Iterator[None]:
    """Two rdb_meta modules on sys.path: a second main plugin, and one reusing 'xattr'."""
    from pannier.registry import reset_plugin_manager

    site = tmp_path / "site"
    site.mkdir()
    for module, name, prefix, main in (
        ("rdb_meta_usurper", "usurper", "usurper", True),
        ("rdb_meta_squatter", "squatter", "xattr", False),
    ):
        code = CLASHING_PLUGIN.format(name=name, prefix=prefix, main=main)
        (site / f"{module}.py").write_text(code)
    monkeypatch.syspath_prepend(str(site))
    reset_plugin_manager()
    yield
    for module in ("rdb_meta_usurper", "rdb_meta_squatter"):
        sys.modules.pop(module, None)


def test_clashing_third_party_plugins_are_left_out(
    clashing_plugins: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="pannier.meta"):
        manager = get_meta_manager(refresh=True)
    prefixes = [cls.get_prefix() for cls in manager.get_meta_list()]
    assert prefixes[0] == "attr" and "usurper" not in prefixes
    assert manager.get_meta_dict()["xattr"].__name__ == "XattrPlugin"
    assert "meta plugin usurper is not used: it claims to be the main meta plugin" in caplog.text
    assert "meta plugin squatter is not used: its stream prefix 'xattr'" in caplog.text


def test_clashing_plugins_are_an_error_in_strict_mode(
    clashing_plugins: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pannier.registry import reset_plugin_manager

    monkeypatch.setenv("PANNIER_STRICT_PLUGINS", "1")
    reset_plugin_manager()
    with pytest.raises(PluginContractError, match=r"squatter|usurper"):
        get_meta_manager(refresh=True).get_meta_list()
