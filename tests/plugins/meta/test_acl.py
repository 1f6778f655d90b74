"""The acl plugin: the conformance suite, plus round trips against setfacl and getfacl."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pannier.plugins.meta.acl import AclPlugin, AclRecord, decode_acl, encode_acl
from pannier.testing.meta_suite import MetaPluginSuite


def setfacl(*args: str | Path) -> None:
    subprocess.run(["setfacl", *map(str, args)], check=True)


def getfacl(path: Path) -> list[str]:
    out = subprocess.run(
        ["getfacl", "--omit-header", "--numeric", "--absolute-names", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line for line in out.splitlines() if line and not line.startswith("#")]


class TestAclSuite(MetaPluginSuite):
    plugin_class = AclPlugin

    def prepare_tree(self, root: Path) -> None:
        setfacl("-m", "u:nobody:rw,g:adm:r", root / "a.txt")
        setfacl("-m", "u:12345:r-x", root / "d" / "b.bin")
        setfacl("-d", "-m", "u:nobody:rx,g:12346:rwx", root / "d")
        setfacl("-m", "g:12347:---", root / "d" / "sub")


def record_of(root: Path, name: str) -> AclRecord | None:
    return AclPlugin.from_path(os.fsencode(root), (os.fsencode(name),), os.lstat(root / name))


def test_decodes_what_setfacl_wrote(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    os.chmod(tmp_path / "f", 0o640)
    setfacl("-m", "u:65534:rw,g:4:r", tmp_path / "f")
    record = record_of(tmp_path, "f")
    assert record is not None and record.default is None
    assert record.access == (
        ("user_obj", None, None, "rw-"),
        ("user", 65534, "nobody", "rw-"),
        ("group_obj", None, None, "r--"),
        ("group", 4, "adm", "r--"),
        ("mask", None, None, "rw-"),
        ("other", None, None, "---"),
    )


def test_plain_permissions_have_no_record(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    os.symlink("f", tmp_path / "l")
    assert record_of(tmp_path, "f") is None
    assert record_of(tmp_path, "l") is None


def test_default_acl_round_trip_matches_getfacl(tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    source.mkdir()
    target.mkdir()
    setfacl("-m", "u:1001:rwx", source)
    setfacl("-d", "-m", "u:1002:r-x,g:1003:rw", source)
    record = AclPlugin.from_path(os.fsencode(source), (), os.lstat(source))
    assert record is not None and record.default is not None
    assert AclPlugin.apply(record, os.fsencode(target), ())
    assert getfacl(target) == getfacl(source)
    assert not AclPlugin.apply(record, os.fsencode(target), ())


def test_apply_removes_acls_the_record_lacks(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    setfacl("-m", "u:1001:rwx", tmp_path / "f")
    record = AclRecord((b"f",), None, None)
    assert AclPlugin.apply(record, os.fsencode(tmp_path), (b"f",))
    assert record_of(tmp_path, "f") is None
    assert not any(line.startswith("user:1001") for line in getfacl(tmp_path / "f"))


def test_encode_is_the_inverse_of_decode() -> None:
    entries = (
        ("user_obj", None, None, "rwx"),
        ("user", 7, None, "r--"),
        ("group_obj", None, None, "r-x"),
        ("mask", None, None, "r-x"),
        ("other", None, None, "--x"),
    )
    assert decode_acl(encode_acl(entries))[1][:2] == ("user", 7)
    assert [(t, i, p) for t, i, _, p in decode_acl(encode_acl(entries))] == [
        (t, i, p) for t, i, _, p in entries
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x02\x00", "malformed POSIX ACL of 2 bytes"),
        (b"\x03\x00\x00\x00", "POSIX ACL version 3 is not 2"),
        (b"\x02\x00\x00\x00\x40\x00\x07\x00\xff\xff\xff\xff", "unknown POSIX ACL tag 0x40"),
    ],
)
def test_malformed_acl_is_a_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_acl(data)


def test_record_layout_is_stable() -> None:
    """Streams live in repositories for years: the stored fields never change silently."""
    assert AclPlugin.stream_header().fields == ("index", "access", "default")
    assert (AclPlugin.get_prefix(), AclPlugin.get_version()) == ("acl", "1.0")
