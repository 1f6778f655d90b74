"""The xattr plugin: the conformance suite, plus round trips with real attributes."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pannier.plugins.meta.xattr import XattrPlugin, XattrRecord, namespaces
from pannier.testing.meta_suite import MetaPluginSuite, meta_plugin_suite

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="trusted.* needs root")


class TestXattrSuite(MetaPluginSuite):
    plugin_class = XattrPlugin

    def prepare_tree(self, root: Path) -> None:
        os.setxattr(root / "a.txt", "user.comment", b"hello")
        os.setxattr(root / "a.txt", "user.binary", bytes(range(256)))
        os.setxattr(root / "d", "user.dir", b"")
        os.setxattr(root / "d" / "sub" / "c", b"user.caf\xc3\xa9", b"\x00\xff")
        if os.geteuid() == 0:
            os.setxattr(root / "d" / "b.bin", "trusted.pannier", b"root only")


def record_of(root: Path, name: str) -> XattrRecord | None:
    broot = os.fsencode(root)
    return XattrPlugin.from_path(broot, (os.fsencode(name),), os.lstat(root / name))


def test_no_attributes_no_record(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    assert record_of(tmp_path, "f") is None


def test_attributes_set_by_setfattr_are_read_sorted(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    subprocess.run(["setfattr", "-n", "user.zz", "-v", "last", str(tmp_path / "f")], check=True)
    subprocess.run(["setfattr", "-n", "user.aa", "-v", "first", str(tmp_path / "f")], check=True)
    record = record_of(tmp_path, "f")
    assert record is not None
    assert record.xattrs == ((b"user.aa", b"first"), (b"user.zz", b"last"))


@as_root
def test_root_records_trusted_and_not_acls(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    os.setxattr(tmp_path / "f", "trusted.t", b"1")
    subprocess.run(["setfacl", "-m", "u:nobody:r", str(tmp_path / "f")], check=True)
    record = record_of(tmp_path, "f")
    assert record is not None
    assert record.xattrs == ((b"trusted.t", b"1"),)
    assert namespaces() == (b"user.", b"trusted.", b"security.")


@as_root
def test_symlink_attributes_where_the_kernel_allows(tmp_path: Path) -> None:
    os.symlink("nowhere", tmp_path / "l")
    assert record_of(tmp_path, "l") is None
    with pytest.raises(PermissionError):  # user.* on a symlink: refused by the kernel
        os.setxattr(tmp_path / "l", "user.x", b"1", follow_symlinks=False)
    os.setxattr(tmp_path / "l", "trusted.x", b"1", follow_symlinks=False)
    record = record_of(tmp_path, "l")
    assert record is not None and record.xattrs == ((b"trusted.x", b"1"),)
    os.removexattr(tmp_path / "l", "trusted.x", follow_symlinks=False)
    assert XattrPlugin.apply(record, os.fsencode(tmp_path), (b"l",))
    assert os.getxattr(tmp_path / "l", "trusted.x", follow_symlinks=False) == b"1"


def test_apply_sets_changes_and_removes(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    os.setxattr(tmp_path / "f", "user.keep", b"v")
    os.setxattr(tmp_path / "f", "user.change", b"old")
    record = XattrRecord((b"f",), ((b"user.change", b"new"), (b"user.keep", b"v")))
    os.setxattr(tmp_path / "f", "user.stale", b"x")
    root = os.fsencode(tmp_path)
    assert XattrPlugin.apply(record, root, (b"f",))
    assert record_of(tmp_path, "f") == record
    out = subprocess.run(
        ["getfattr", "-d", "--absolute-names", str(tmp_path / "f")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert 'user.change="new"' in out and "user.stale" not in out
    assert not XattrPlugin.apply(record, root, (b"f",))
    assert XattrPlugin.apply(record, root, (b"f",), dry_compare=False)
    assert record_of(tmp_path, "f") == record


def test_the_functional_form_of_the_suite(tmp_path: Path) -> None:
    seen: list[Path] = []
    suite = meta_plugin_suite(XattrPlugin, prepare_tree=seen.append)
    assert suite.__name__ == "TestXattrPlugin" and issubclass(suite, MetaPluginSuite)
    assert suite.plugin_class is XattrPlugin
    suite().prepare_tree(tmp_path)
    assert seen == [tmp_path]


def test_record_layout_is_stable() -> None:
    """Streams live in repositories for years: the stored fields never change silently."""
    assert XattrPlugin.stream_header().fields == ("index", "xattrs")
    assert (XattrPlugin.get_prefix(), XattrPlugin.get_version()) == ("xattr", "1.0")
