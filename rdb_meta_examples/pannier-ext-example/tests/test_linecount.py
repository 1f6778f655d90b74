"""The extension's own test: pannier's metadata-plugin conformance suite, imported."""

from __future__ import annotations

import os
from pathlib import Path

from pannier.testing.meta_suite import MetaPluginSuite
from pannier_ext_example.linecount import LineCountPlugin


class TestLineCount(MetaPluginSuite):
    plugin_class = LineCountPlugin


def test_counts_lines(tmp_path: Path) -> None:
    (tmp_path / "t").write_bytes(b"one\ntwo\nthree\n")
    (tmp_path / "bin").write_bytes(b"\x00\x01\n")
    root = os.fsencode(tmp_path)
    record = LineCountPlugin.from_path(root, (b"t",), os.lstat(tmp_path / "t"))
    assert record is not None and record.lines == 3
    assert LineCountPlugin.from_path(root, (b"bin",), os.lstat(tmp_path / "bin")) is None
