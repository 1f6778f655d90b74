"""ScanAhead: the walk in a background thread gives what the walk itself gives, in order,
with the source's warnings and errors, and stops when asked."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pannier.engine.backup import BackupOptions, run_backup
from pannier.engine.entries import ScanAhead, merged_entries
from pannier.engine.snapshots import load_tree
from pannier.errors import SourceError
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager
from pannier.repo import Repository
from pannier.source import Source, SourceEntry

from .conftest import make_tree


def fs_source(path: Path) -> Source:
    cls = get_plugin_manager().get(PluginKind.SOURCE, "filesystem")
    return cls(str(path), {})  # type: ignore[no-any-return]


class ManySource(Source):
    """``count`` empty files below the spec directory's stat; warns on file 7 (and
    ``warn_at``) and, with ``fail``, raises at the end (a source that breaks mid-walk)."""

    plugin_api_version = 1
    counting_scan = True
    scanned = 0

    @classmethod
    def get_name(cls) -> str:
        return "many"

    def scan(self) -> Iterator[SourceEntry]:
        root = os.fsencode(self.spec)
        st = os.stat(root)
        yield SourceEntry((), st, root)
        for i in range(int(self.options.get("count", 1000))):
            if i in (7, int(self.options.get("warn_at", 7))):
                self.warn(f"/f{i:06d}", "cannot stat: Permission denied")
            type(self).scanned = i + 1
            yield SourceEntry((b"f%06d" % i,), st, None)
        if self.options.get("fail"):
            raise SourceError("the walk broke")


def test_same_entries_as_the_walk(tmp_path: Path) -> None:
    make_tree(tmp_path / "a")
    make_tree(tmp_path / "b")
    sources = [fs_source(tmp_path / "a"), fs_source(tmp_path / "b")]
    expected = [(s.name, i, e.stat.st_ino) for s, i, e in merged_entries(sources)]
    again = [fs_source(tmp_path / "a"), fs_source(tmp_path / "b")]
    ahead = ScanAhead(again)
    try:
        got = [(s.name, i, e.stat.st_ino) for s, i, e in ahead.entries()]
    finally:
        ahead.close()
    assert got == expected and len(got) > 20


def test_warnings_arrive_in_walk_order_and_errors_are_raised(tmp_path: Path) -> None:
    src = ManySource(str(tmp_path), {"count": 600, "fail": True})
    ahead = ScanAhead([src])
    seen: list[str] = []

    def on_warning(path: str, message: str) -> None:
        seen.append(f"warning {path}")

    with pytest.raises(SourceError, match="the walk broke"):
        for _, index, _ in ahead.entries(on_warning):
            seen.append(index[0].decode() if index else "/")
    ahead.close()
    assert seen[:10] == ["/", *(f"f{i:06d}" for i in range(7)), "warning /f000007", "f000007"]
    assert len(seen) == 1 + 600 + 1


def test_close_stops_a_walk_nobody_reads(tmp_path: Path) -> None:
    ManySource.scanned = 0
    ahead = ScanAhead([ManySource(str(tmp_path), {"count": 10**6})], limit=512)
    time.sleep(0.3)
    started = time.monotonic()
    ahead.close()
    assert time.monotonic() - started < 5
    assert ManySource.scanned < 10**6  # held back by the limit, then stopped


def test_backup_with_scan_ahead_stores_the_same_tree(tmp_path: Path, repo: Repository) -> None:
    make_tree(tmp_path / "src")
    opts = BackupOptions(reread_probability=0)
    plain = run_backup(repo, [fs_source(tmp_path / "src")], opts)
    sources = [fs_source(tmp_path / "src")]
    ahead = run_backup(repo, sources, opts, scan_ahead=ScanAhead(sources))
    assert ahead.files_unchanged == plain.files_new > 0
    trees = [list(load_tree(repo, repo.load_snapshot(s.snapshot_id))) for s in (plain, ahead)]
    assert trees[0] == trees[1]


def test_wanted_only_for_side_effect_free_walks(tmp_path: Path) -> None:
    assert ScanAhead.wanted([fs_source(tmp_path)])
    command = get_plugin_manager().get(PluginKind.SOURCE, "command")("true", {})
    assert not ScanAhead.wanted([fs_source(tmp_path), command])
    assert not ScanAhead.wanted([])


def test_a_long_walk_is_handed_over_to_the_consumer(tmp_path: Path) -> None:
    count = 20_000  # far beyond the limit: most of it is walked by the consumer itself
    src = ManySource(str(tmp_path), {"count": count, "warn_at": 15_000, "fail": True})
    ahead = ScanAhead([src], limit=1024)
    time.sleep(0.2)  # the walk ahead fills its buffer and waits
    seen: list[str] = []
    with pytest.raises(SourceError, match="the walk broke"):
        for _, index, _ in ahead.entries(lambda path, message: seen.append(f"warning {path}")):
            seen.append(index[0].decode() if index else "/")
    ahead.close()
    files = [f"f{i:06d}" for i in range(count)]
    expected = ["/", *files[:7], "warning /f000007", *files[7:15_000], "warning /f015000"]
    assert seen == [*expected, *files[15_000:]]
