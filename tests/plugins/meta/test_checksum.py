"""The checksum plugin: the conformance suite, plus hashing and verification of real files."""

from __future__ import annotations

import os
from pathlib import Path

import blake3
import pytest
from pannier import CorruptObjectError
from pannier.plugins.meta.checksum import ChecksumPlugin, ChecksumRecord
from pannier.testing.meta_suite import MetaPluginSuite


class TestChecksumSuite(MetaPluginSuite):
    plugin_class = ChecksumPlugin


def test_digest_is_blake3_of_the_content(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "big").write_bytes(data)
    root = os.fsencode(tmp_path)
    record = ChecksumPlugin.from_path(root, (b"big",), os.lstat(tmp_path / "big"))
    assert record == ChecksumRecord((b"big",), "blake3", blake3.blake3(data).digest())


def test_only_regular_files_have_a_record(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.symlink("d", tmp_path / "l")
    root = os.fsencode(tmp_path)
    for name in (b"d", b"l"):
        assert (
            ChecksumPlugin.from_path(root, (name,), os.lstat(tmp_path / os.fsdecode(name))) is None
        )


def test_apply_verifies_and_names_a_changed_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"original")
    root = os.fsencode(tmp_path)
    record = ChecksumPlugin.from_path(root, (b"f",), os.lstat(tmp_path / "f"))
    assert record is not None
    assert ChecksumPlugin.apply(record, root, (b"f",)) is False
    (tmp_path / "f").write_bytes(b"tampered")
    with pytest.raises(CorruptObjectError, match=r"'.*/f' does not match its recorded blake3"):
        ChecksumPlugin.apply(record, root, (b"f",))
    with pytest.raises(ValueError, match="unknown checksum algorithm 'md5'"):
        ChecksumPlugin.apply(ChecksumRecord((b"f",), "md5", b""), root, (b"f",))


def test_a_symlink_in_place_of_the_file_is_not_followed(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"original")
    root = os.fsencode(tmp_path)
    record = ChecksumPlugin.from_path(root, (b"f",), os.lstat(tmp_path / "f"))
    assert record is not None
    os.rename(tmp_path / "f", tmp_path / "elsewhere")
    os.symlink("elsewhere", tmp_path / "f")
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        ChecksumPlugin.apply(record, root, (b"f",))


def test_record_layout_is_stable() -> None:
    """Streams live in repositories for years: the stored fields never change silently."""
    assert ChecksumPlugin.stream_header().fields == ("index", "algorithm", "digest")
    assert (ChecksumPlugin.get_prefix(), ChecksumPlugin.get_version()) == ("checksum", "1.0")
