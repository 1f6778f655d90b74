"""Restore with several processes: the same tree as one process makes, errors reported
once, a failing or stopped helper named and cleaned up after."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from pannier.engine import restore, restore_team
from pannier.engine.backup import run_backup
from pannier.engine.restore import RestoreOptions, run_restore
from pannier.engine.snapshots import load_tree
from pannier.engine.target import TMP_PREFIX
from pannier.errors import RepositoryError
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager
from pannier.repo import Repository, Snapshot

from .conftest import assert_same_tree, make_tree


def backup(repo: Repository, src: Path) -> Snapshot:
    cls = get_plugin_manager().get(PluginKind.SOURCE, "filesystem")
    return repo.load_snapshot(run_backup(repo, [cls(str(src), {})]).snapshot_id)


@pytest.fixture
def short_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand entries out to the processes two at a time, so small trees are shared."""
    monkeypatch.setattr(restore_team, "RUN", 2)


@pytest.fixture
def many(tmp_path: Path, repo: Repository) -> Snapshot:
    src = tmp_path / "src"
    make_tree(src)
    for d in range(6):
        sub = src / f"d{d}"
        sub.mkdir()
        for f in range(15):
            (sub / f"f{f:02}").write_bytes(os.urandom(100 + 37 * f))
        os.link(sub / "f00", sub / "hard")  # a hard link, maybe in another process's share
        os.symlink("f01", sub / "sym")
        os.utime(sub, ns=(1_600_000_000_000_000_000 + d, 1_600_000_000_000_000_000 + d))
    return backup(repo, src)


def no_children_left() -> bool:
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


@pytest.mark.usefixtures("short_runs")
@pytest.mark.parametrize("processes", [2, 3])
def test_team_restores_the_same_tree_as_one_process(
    tmp_path: Path, repo: Repository, many: Snapshot, processes: int
) -> None:
    alone = run_restore(repo, many, str(tmp_path / "alone"), RestoreOptions(processes=1))
    team = run_restore(repo, many, str(tmp_path / "team"), RestoreOptions(processes=processes))
    assert team.errors == alone.errors == []
    assert_same_tree(tmp_path / "src", tmp_path / "team")
    for counter in ("files_restored", "dirs", "links", "others", "bytes_written"):
        assert getattr(team, counter) == getattr(alone, counter), counter
    assert team.files_restored > 90 and team.links == 7
    hard = os.stat(tmp_path / "team" / "d3" / "hard")
    assert hard.st_ino == os.stat(tmp_path / "team" / "d3" / "f00").st_ino
    assert not list((tmp_path / "team").rglob(f"{TMP_PREFIX}*"))
    assert no_children_left()


def test_local_restore_uses_one_process_per_cpu(
    tmp_path: Path, repo: Repository, many: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    forked: list[int] = []
    real = restore_team.RestoreTeam.fork

    def spy(size: int) -> restore_team.RestoreTeam:
        forked.append(size)
        return real(size)

    monkeypatch.setattr(restore_team.RestoreTeam, "fork", staticmethod(spy))
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    run_restore(repo, many, str(tmp_path / "out"))
    assert forked == [3]
    # into an existing tree (--overwrite) one process compares and replaces
    run_restore(repo, many, str(tmp_path / "out"), RestoreOptions(overwrite=True, processes=3))
    assert forked == [3]
    assert_same_tree(tmp_path / "src", tmp_path / "out")


@pytest.mark.usefixtures("short_runs")
def test_damaged_file_in_a_helpers_share_is_reported_once(
    tmp_path: Path, repo: Repository, many: Snapshot
) -> None:
    files = [e for e in load_tree(repo, many) if e.kind == "f" and len(e.chunks) == 1]
    victim = next(e for e in files if e.path == "/d3/f05")  # not hard-linked
    loc = repo.index.lookup(victim.chunks[0])
    assert loc is not None
    pack = tmp_path / "repo" / f"data-{loc.pack_id.hex()}"
    raw = bytearray(pack.read_bytes())
    raw[loc.offset + loc.length // 2] ^= 0xFF
    pack.write_bytes(bytes(raw))
    for processes in (1, 3):
        out = tmp_path / f"out{processes}"
        summary = run_restore(repo, many, str(out), RestoreOptions(processes=processes))
        assert [e.split(": ")[0] for e in summary.errors] == [victim.path], summary.errors
        assert not (out / victim.path.lstrip("/")).exists()
        assert (out / files[0].path.lstrip("/")).exists()
        assert not list(out.rglob(f"{TMP_PREFIX}*"))


@pytest.mark.usefixtures("short_runs")
def test_a_failing_helper_is_named(
    tmp_path: Path, repo: Repository, many: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = restore._Restorer.run

    def run(self: Any, snapshot: Any) -> Any:
        if not self.lead:
            raise RuntimeError("the disk caught fire")
        return real(self, snapshot)

    monkeypatch.setattr(restore._Restorer, "run", run)
    with pytest.raises(RepositoryError, match=r"restore process 2 of 2 failed: .*caught fire"):
        run_restore(repo, many, str(tmp_path / "out"), RestoreOptions(processes=2))
    assert no_children_left()


@pytest.mark.usefixtures("short_runs")
def test_interrupting_the_first_process_stops_the_helpers(
    tmp_path: Path, repo: Repository, many: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the first process while helpers write: the helpers are stopped, remove
    their temporary files, and are reaped; the interruption propagates."""
    real = restore._Restorer.batch_task
    batches = []

    def batch_task(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.lead:
            batches.append(1)
            if len(batches) == 3:
                raise KeyboardInterrupt
        else:
            time.sleep(0.5)  # the helpers are busy when the first process stops
        return real(self, *args, **kwargs)

    monkeypatch.setattr(restore._Restorer, "batch_task", batch_task)
    out = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_restore(repo, many, str(out), RestoreOptions(processes=3))
    assert time.monotonic() - started < 5  # the helpers did not run to their end
    assert no_children_left()
    assert not list(out.rglob(f"{TMP_PREFIX}*"))


def test_fork_failing_midway_stops_the_helpers_started(
    tmp_path: Path, repo: Repository, many: Snapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.fork
    calls = []

    def fork() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return real()

    monkeypatch.setattr(os, "fork", fork)
    with pytest.raises(BlockingIOError):
        run_restore(repo, many, str(tmp_path / "out"), RestoreOptions(processes=3))
    assert len(calls) == 2 and no_children_left()
