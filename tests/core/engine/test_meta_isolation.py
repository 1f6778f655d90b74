"""A metadata plugin that fails costs its own records, never the backup or the restore."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
from pannier.engine.backup import run_backup
from pannier.engine.meta import active_meta_plugins
from pannier.engine.restore import run_restore
from pannier.meta import MetaPlugin, MetaRecord
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager
from pannier.repo import Repository


@attrs.define
class FlakyRecord(MetaRecord):
    size: int


class FlakyPlugin(MetaPlugin):
    """Records sizes, but fails on files named 'bad' (a third-party plugin's bug)."""

    plugin_api_version = 1
    record_class = FlakyRecord

    @classmethod
    def get_prefix(cls) -> str:
        return "flaky"

    @classmethod
    def from_path(cls, root: bytes, index: Any, st: os.stat_result) -> FlakyRecord:
        if index and index[-1] == b"bad":
            raise KeyError("no such thing")
        return FlakyRecord(index, st.st_size)

    @classmethod
    def apply(cls, record: Any, root: bytes, index: Any, *, dry_compare: bool = True) -> bool:
        if index and index[-1] == b"worse":
            raise RuntimeError("apply exploded")
        return False


def test_failing_plugin_is_isolated(tmp_path: Path, repo: Repository) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("bad", "good", "worse"):
        (src / name).write_text(name)
    os.utime(src / "worse", ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    plugins = [*active_meta_plugins(), FlakyPlugin]
    fs = get_plugin_manager().get(PluginKind.SOURCE, "filesystem")
    summary = run_backup(repo, [fs(str(src), {})], meta_plugins=plugins)
    assert summary.snapshot_id is not None
    assert summary.warnings == ["/bad: metadata plugin flaky: KeyError: 'no such thing'"]
    snap = repo.load_snapshot(summary.snapshot_id)
    assert "meta/flaky" in snap.streams
    out = tmp_path / "out"
    restored = run_restore(repo, snap, str(out), meta_plugins=plugins)
    assert restored.errors == ["/worse: metadata plugin flaky: RuntimeError: apply exploded"]
    assert sorted(os.listdir(out)) == ["bad", "good", "worse"]
    assert (out / "worse").read_text() == "worse"
    # the other plugins (attr: times) were still applied to the file whose plugin failed
    assert os.stat(out / "worse").st_mtime_ns == 1_500_000_000_000_000_000
    # without the plugin installed, its stream is kept and reported, not applied
    again = run_restore(repo, snap, str(tmp_path / "o2"), meta_plugins=active_meta_plugins())
    assert again.errors == [] and again.missing_meta_streams == ["meta/flaky"]


class PickyPlugin(FlakyPlugin):
    """Active only on filesystems other than a 'plain' one (as xattr/acl plugins are
    inactive where the filesystem lacks them); applying anywhere else would fail."""

    @classmethod
    def get_prefix(cls) -> str:
        return "picky"

    @classmethod
    def is_active(cls, fs: Any) -> bool:
        return not os.fsdecode(fs if isinstance(fs, (str, bytes)) else b"").endswith("plain")

    @classmethod
    def apply(cls, record: Any, root: bytes, index: Any, *, dry_compare: bool = True) -> bool:
        raise OSError(95, "Operation not supported")


def test_plugins_inactive_on_the_target_are_not_applied(tmp_path: Path, repo: Repository) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "good").write_text("x")
    plugins = [*active_meta_plugins(), PickyPlugin]
    fs = get_plugin_manager().get(PluginKind.SOURCE, "filesystem")
    snap = repo.load_snapshot(
        run_backup(repo, [fs(str(src), {})], meta_plugins=plugins).snapshot_id
    )
    assert "meta/picky" in snap.streams
    plain = run_restore(repo, snap, str(tmp_path / "plain"), meta_plugins=plugins)
    assert plain.errors == [] and plain.unsupported_meta_streams == ["meta/picky"]
    other = run_restore(repo, snap, str(tmp_path / "other"), meta_plugins=plugins)
    assert other.errors and other.errors[0].startswith("/good: cannot set metadata")
