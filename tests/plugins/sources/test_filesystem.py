"""The filesystem source: index order, entry kinds, sparse reads, excludes, mounts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pannier.errors import SourceError
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager
from pannier.source import Source, SourceEntry

from tests.servers import unavailable


def source(path: Path | str, **options: object) -> Source:
    cls = get_plugin_manager().get(PluginKind.SOURCE, "filesystem")
    return cls(str(path), options)  # type: ignore[no-any-return]


def scan(path: Path | str, **options: object) -> dict[tuple[bytes, ...], SourceEntry]:
    return {e.index: e for e in source(path, **options).scan()}


def test_is_a_registered_source_plugin() -> None:
    cls = get_plugin_manager().get(PluginKind.SOURCE, "filesystem")
    assert issubclass(cls, Source) and cls.get_name() == "filesystem"
    assert cls.plugin_api_version == 1 and cls.description()


def test_entries_come_in_index_order(tmp_path: Path) -> None:
    names = [b"a", b"a0", b"a-b", b"B", b"\xff\xfe", b"z"]
    for n in names:
        os.mkdir(os.path.join(os.fsencode(tmp_path), n))
        with open(os.path.join(os.fsencode(tmp_path), n, b"x\x80"), "wb") as f:
            f.write(n)
    indexes = [e.index for e in source(tmp_path).scan()]
    assert indexes[0] == ()
    assert indexes == sorted(indexes)
    assert (b"a", b"x\x80") in indexes and indexes.index((b"a", b"x\x80")) < indexes.index(
        (b"a-b",)
    )


def test_entry_kinds_and_links(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    os.link(tmp_path / "f", tmp_path / "g")
    os.symlink("f", tmp_path / "s")
    os.mkfifo(tmp_path / "p")
    import socket

    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "sock"))
    try:
        entries = scan(tmp_path)
    finally:
        sock.close()
    assert entries[(b"f",)].is_file and entries[(b"f",)].hardlink_to is None
    assert entries[(b"g",)].hardlink_to == (b"f",)
    assert entries[(b"s",)].link_target == b"f"
    assert (b"p",) in entries and (b"sock",) not in entries  # sockets are skipped
    assert entries[(b"f",)].path == os.fsencode(tmp_path / "f")
    with entries[(b"f",)].open() as fh:
        assert fh.read() == b"x"


def test_sparse_file_reads_identically(tmp_path: Path) -> None:
    path = tmp_path / "sparse"
    with open(path, "wb") as f:
        for i in range(5):
            f.seek(i * (3 << 20) + 12345)
            f.write(os.urandom(70000))
        f.truncate(20 << 20)
    entry = scan(tmp_path)[(b"sparse",)]
    assert entry.sparse
    with entry.open() as fh:
        got = b"".join(iter(lambda: fh.read(1 << 18), b""))
    assert got == path.read_bytes()


def test_single_file_source(tmp_path: Path) -> None:
    (tmp_path / "one").write_text("1")
    entries = scan(tmp_path / "one")
    assert list(entries) == [(), (b"one",)]
    assert entries[()].root is None and entries[(b"one",)].root == os.fsencode(tmp_path)


def test_exclude_patterns(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "a.log").write_text("x")
    (tmp_path / "keep" / "b.txt").write_text("x")
    (tmp_path / "skip").mkdir()
    (tmp_path / "skip" / "c.txt").write_text("x")
    entries = scan(tmp_path, exclude=["*.log", str(tmp_path / "skip")])
    assert set(entries) == {(), (b"keep",), (b"keep", b"b.txt")}


def test_exclude_file_errors_are_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot read exclude file"):
        source(tmp_path, exclude_file=[str(tmp_path / "missing")])


def test_one_file_system(tmp_path: Path) -> None:
    (tmp_path / "mnt").mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "tmpfs", str(tmp_path / "mnt")], capture_output=True
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        (tmp_path / "mnt" / "inside").write_text("x")
        assert (b"mnt", b"inside") in scan(tmp_path)
        entries = scan(tmp_path, one_file_system=True)
        assert (b"mnt",) in entries and (b"mnt", b"inside") not in entries
    finally:
        subprocess.run(["umount", str(tmp_path / "mnt")], check=True)


def test_directory_vanishing_during_the_walk_is_a_warning(tmp_path: Path) -> None:
    # the directory is gone between the listing of its parent and its own listing
    (tmp_path / "d").mkdir()
    src = source(tmp_path)
    it = src.scan()
    assert next(it).index == ()
    first = next(it)
    assert first.index == (b"d",)
    os.rmdir(tmp_path / "d")
    rest = list(it)
    assert rest == []
    assert len(src.warnings) == 1 and "cannot list directory" in src.warnings[0]


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="cannot be read: No such file"):
        list(source(tmp_path / "missing").scan())
