"""The engine calls the documented hooks, with the documented arguments, on success and
on failure, through a real hook plugin registered with the plugin manager."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pannier.engine.backup import run_backup
from pannier.engine.restore import run_restore
from pannier.errors import SourceError
from pannier.hooks import hookimpl
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager, reset_plugin_manager
from pannier.repo import Repository


class Recorder:
    """A hook plugin that records every engine hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    @hookimpl
    def pannier_backup_start(self, info: dict[str, Any]) -> None:
        self.calls.append(("backup_start", info))

    @hookimpl
    def pannier_backup_end(self, summary: dict[str, Any]) -> None:
        self.calls.append(("backup_end", summary))

    @hookimpl
    def pannier_snapshot_saved(self, snapshot_id: str, summary: dict[str, Any]) -> None:
        self.calls.append(("snapshot_saved", {"snapshot_id": snapshot_id, **summary}))

    @hookimpl
    def pannier_restore_start(self, info: dict[str, Any]) -> None:
        self.calls.append(("restore_start", info))

    @hookimpl
    def pannier_restore_end(self, summary: dict[str, Any]) -> None:
        self.calls.append(("restore_end", summary))

    @hookimpl
    def pannier_file_error(self, path: str, error: str) -> None:
        self.calls.append(("file_error", {"path": path, "error": error}))


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    reset_plugin_manager()
    rec = Recorder()
    get_plugin_manager().register(PluginKind.HOOK, "test-recorder", rec)  # type: ignore[arg-type]
    yield rec
    reset_plugin_manager()


def source(path: Path):  # type: ignore[no-untyped-def]
    return get_plugin_manager().get(PluginKind.SOURCE, "filesystem")(str(path), {})


def test_backup_and_restore_hooks(tmp_path: Path, repo: Repository, recorder: Recorder) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("x")
    summary = run_backup(repo, [source(tmp_path / "src")])
    names = [c[0] for c in recorder.calls]
    assert names == ["backup_start", "snapshot_saved", "backup_end"]
    assert recorder.calls[0][1]["paths"] == [str(tmp_path / "src")]
    assert recorder.calls[1][1]["snapshot_id"] == summary.snapshot_id
    assert recorder.calls[2][1]["files_new"] == 1
    recorder.calls.clear()
    run_restore(repo, repo.load_snapshot("latest"), str(tmp_path / "out"))
    assert [c[0] for c in recorder.calls] == ["restore_start", "restore_end"]
    assert recorder.calls[1][1]["files_restored"] == 1


def test_failed_backup_still_ends(tmp_path: Path, repo: Repository, recorder: Recorder) -> None:
    with pytest.raises(SourceError):
        run_backup(repo, [source(tmp_path / "missing")])
    assert [c[0] for c in recorder.calls] == ["backup_start", "backup_end"]
    assert recorder.calls[-1][1]["snapshot_id"] is None


def test_file_error_hook(tmp_path: Path, repo: Repository, recorder: Recorder) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "gone").mkdir()
    entries = source(src)
    original_scan = entries.scan

    def scan_and_remove():  # type: ignore[no-untyped-def]
        for e in original_scan():
            yield e
            if e.index == (b"gone",):
                (src / "gone").rmdir()  # vanishes before it is listed

    entries.scan = scan_and_remove
    summary = run_backup(repo, [entries])
    errors = [c[1] for c in recorder.calls if c[0] == "file_error"]
    assert len(errors) == 1 and errors[0]["path"] == str(src / "gone")
    assert summary.warnings == [f"{src / 'gone'}: cannot list directory: No such file or directory"]
