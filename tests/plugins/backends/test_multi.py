"""multi+ -- writes go everywhere, reads come from the first that has the object."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pannier.backend import Backend
from pannier.backend_registry import get_backend_object
from pannier.errors import ConfigError, FileMissingError, PluginNotFoundError
from pannier.testing.backend_suite import BackendConformance


class TestMultiConforms(BackendConformance):
    @pytest.fixture
    def make_backend(self, tmp_path: Path) -> str:
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        return f"multi+file://{tmp_path}/a?mirror=file://{tmp_path}/b"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path, Path]:
    a, b, c = (tmp_path / n for n in "abc")
    for d in (a, b, c):
        d.mkdir()
    return a, b, c


def multi(a: Path, *mirrors: Path, comma: bool = False) -> Backend:
    if comma:
        query = "mirror=" + ",".join(f"file://{m}" for m in mirrors)
    else:
        query = "&".join(f"mirror=file://{m}" for m in mirrors)
    return get_backend_object(f"multi+file://{a}?{query}")


@pytest.mark.parametrize("comma", [False, True])
def test_writes_go_to_every_member(dirs: tuple[Path, Path, Path], comma: bool) -> None:
    a, b, c = dirs
    m = multi(a, b, c, comma=comma)
    m.put_bytes("x", b"1")
    m.put_stream(io.BytesIO(b"22"), "y")
    for d in dirs:
        assert (d / "x").read_bytes() == b"1" and (d / "y").read_bytes() == b"22"
    m.move("x", "z")
    m.delete("y")
    for d in dirs:
        assert sorted(p.name for p in d.iterdir()) == ["z"]


def test_reads_come_from_the_first_that_has_the_object(dirs: tuple[Path, Path, Path]) -> None:
    a, b, c = dirs
    (c / "only-in-c").write_bytes(b"from c")
    (b / "both").write_bytes(b"from b")
    (c / "both").write_bytes(b"from c")
    m = multi(a, b, c)
    assert m.get_bytes("only-in-c") == b"from c"
    assert m.get_bytes("both") == b"from b"
    assert m.get_range("both", 5, 1) == b"b"
    assert m.query("only-in-c") == 6
    assert m.query_list(["both", "only-in-c", "none"]) == {"both": 6, "only-in-c": 6, "none": -1}
    m.get("only-in-c", str(a.parent / "out"))
    assert (a.parent / "out").read_bytes() == b"from c"


def test_missing_everywhere_is_file_missing(dirs: tuple[Path, Path, Path]) -> None:
    m = multi(*dirs)
    with pytest.raises(FileMissingError, match="does not exist on any of 3 backends"):
        m.get_bytes("none")
    with pytest.raises(FileMissingError):
        m.get_stream("none", io.BytesIO())


def test_list_is_the_union_each_name_once(dirs: tuple[Path, Path, Path]) -> None:
    a, b, c = dirs
    (a / "n1").write_bytes(b"1")
    (b / "n1").write_bytes(b"11")
    (c / "n2").write_bytes(b"2")
    assert sorted((e.name, e.size) for e in multi(a, b, c).list()) == [("n1", 1), ("n2", 1)]


def test_capabilities_are_what_every_member_has(dirs: tuple[Path, Path, Path]) -> None:
    a, b, _ = dirs
    caps = multi(a, b).get_capabilities()
    assert caps == get_backend_object(f"file://{a}").get_capabilities()


def test_create_folder_and_test_act_on_every_member(tmp_path: Path) -> None:
    m = multi(tmp_path / "p", tmp_path / "q")
    m.create_folder()
    assert (tmp_path / "p").is_dir() and (tmp_path / "q").is_dir()
    m.test()


def test_needs_a_mirror(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs at least one mirror"):
        get_backend_object(f"multi+file://{tmp_path}")


def test_bad_mirror_scheme_is_reported(tmp_path: Path) -> None:
    with pytest.raises(PluginNotFoundError, match="nosuch://"):
        get_backend_object(f"multi+file://{tmp_path}?mirror=nosuch://x")
