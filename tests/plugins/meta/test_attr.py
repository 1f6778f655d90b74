"""The attr plugin: the conformance suite, plus round trips on real files."""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import pytest
from pannier.plugins.meta.attr import AttrPlugin, AttrRecord
from pannier.testing.meta_suite import MetaPluginSuite


class TestAttrSuite(MetaPluginSuite):
    plugin_class = AttrPlugin


def record_of(root: Path, *index: bytes) -> AttrRecord:
    broot = os.fsencode(root)
    path = os.path.join(broot, *index) if index else broot
    return AttrPlugin.from_path(broot, index, os.lstat(path))


def test_record_fields_of_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"12345")
    os.chown(path, 4321, 8765)  # before chmod: chown clears set-id bits
    os.chmod(path, 0o2754)
    os.utime(path, ns=(5, 1_234_567_890_123_456_789))
    record = record_of(tmp_path, b"f")
    st = os.lstat(path)
    assert (record.type, record.mode, record.size) == ("reg", 0o2754, 5)
    assert (record.uid, record.gid) == (4321, 8765)
    assert record.mtime_ns == 1_234_567_890_123_456_789
    assert (record.ino, record.nlink, record.ctime_ns) == (st.st_ino, 1, st.st_ctime_ns)
    assert record.uname is None and record.target is None and record.rdev_major is None


def test_names_of_known_ids(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    os.chown(tmp_path / "f", 0, 0)
    record = record_of(tmp_path, b"f")
    assert (record.uname, record.gname) == ("root", "root")


def test_hard_links_share_inode(tmp_path: Path) -> None:
    (tmp_path / "one").write_bytes(b"x")
    os.link(tmp_path / "one", tmp_path / "two")
    one, two = record_of(tmp_path, b"one"), record_of(tmp_path, b"two")
    assert one.ino == two.ino and one.nlink == two.nlink == 2


def test_symlink_target_bytes(tmp_path: Path) -> None:
    os.symlink(b"\xff-not-utf8/../target", os.path.join(os.fsencode(tmp_path), b"l"))
    record = record_of(tmp_path, b"l")
    assert record.type == "sym" and record.target == b"\xff-not-utf8/../target"


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_device_node_round_trip(tmp_path: Path) -> None:
    os.mknod(tmp_path / "null", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(tmp_path / "null", 0o620)
    record = record_of(tmp_path, b"null")
    assert (record.type, record.rdev_major, record.rdev_minor) == ("chr", 1, 3)
    target = tmp_path / "restore"
    target.mkdir()
    assert AttrPlugin.apply(record, os.fsencode(target), (b"null",))
    again = record_of(target, b"null")
    assert (again.type, again.rdev_major, again.rdev_minor, again.mode) == ("chr", 1, 3, 0o620)


def test_apply_creates_missing_nodes(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    (source / "dir").mkdir(mode=0o711)
    os.symlink("elsewhere", source / "link")
    os.mkfifo(source / "fifo", 0o640)
    for name in ("link", "fifo", "dir"):
        os.utime(source / name, ns=(1, 10**18), follow_symlinks=False)
    target = tmp_path / "target"
    target.mkdir()
    for name in (b"dir", b"fifo", b"link"):
        record = record_of(source, name)
        assert AttrPlugin.apply(record, os.fsencode(target), (name,))
        restored = record_of(target, name)
        for field in ("type", "mode", "uid", "gid", "mtime_ns", "target"):
            assert getattr(restored, field) == getattr(record, field), (name, field)


def test_apply_replaces_a_changed_symlink_target(tmp_path: Path) -> None:
    os.symlink("old", tmp_path / "l")
    record = record_of(tmp_path, b"l")
    os.unlink(tmp_path / "l")
    os.symlink("new", tmp_path / "l")
    assert AttrPlugin.apply(record, os.fsencode(tmp_path), (b"l",))
    assert os.readlink(tmp_path / "l") == "old"
    assert not os.path.exists(tmp_path / "l.pannier-tmp")


def test_apply_refuses_missing_regular_file_and_type_change(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    record = record_of(tmp_path, b"f")
    os.unlink(tmp_path / "f")
    with pytest.raises(FileNotFoundError, match="content is restored first"):
        AttrPlugin.apply(record, os.fsencode(tmp_path), (b"f",))
    (tmp_path / "f").mkdir()
    with pytest.raises(FileExistsError, match="is a dir, the backup recorded a reg"):
        AttrPlugin.apply(record, os.fsencode(tmp_path), (b"f",))
    assert (tmp_path / "f").is_dir()


def test_apply_compares_first_unless_told(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    record = record_of(tmp_path, b"f")
    before = os.lstat(tmp_path / "f").st_ctime_ns
    assert not AttrPlugin.apply(record, os.fsencode(tmp_path), (b"f",))
    assert os.lstat(tmp_path / "f").st_ctime_ns == before, "nothing written"
    assert AttrPlugin.apply(record, os.fsencode(tmp_path), (b"f",), dry_compare=False)


def test_apply_only_what_differs(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    os.chmod(tmp_path / "f", 0o600)
    record = record_of(tmp_path, b"f")
    os.chmod(tmp_path / "f", 0o666)
    assert AttrPlugin.apply(record, os.fsencode(tmp_path), (b"f",))
    assert stat.S_IMODE(os.lstat(tmp_path / "f").st_mode) == 0o600
    assert os.lstat(tmp_path / "f").st_mtime_ns == record.mtime_ns


@pytest.mark.skipif(os.geteuid() != 0, reason="file capabilities need root")
def test_changing_the_owner_keeps_file_capabilities(tmp_path: Path) -> None:
    # struct vfs_cap_data, version 2, effective, permitted = CAP_NET_RAW (13)
    capability = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)
    (tmp_path / "ping").write_bytes(b"binary")
    os.chown(tmp_path / "ping", 1000, 1000)
    record = record_of(tmp_path, b"ping")
    os.chown(tmp_path / "ping", 0, 0)
    os.setxattr(tmp_path / "ping", "security.capability", capability)
    assert AttrPlugin.apply(record, os.fsencode(tmp_path), (b"ping",))
    assert os.lstat(tmp_path / "ping").st_uid == 1000
    assert os.getxattr(tmp_path / "ping", "security.capability") == capability


def test_record_layout_is_stable() -> None:
    """Streams live in repositories for years: the stored fields never change silently."""
    assert AttrPlugin.stream_header().fields == (
        "index", "type", "mode", "uid", "gid", "uname", "gname", "size", "mtime_ns",
        "ctime_ns", "ino", "nlink", "rdev_major", "rdev_minor", "target",
    )  # fmt: skip
    assert (AttrPlugin.get_prefix(), AttrPlugin.get_version()) == ("attr", "1.0")
