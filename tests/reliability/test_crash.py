"""Crash consistency: ``pannier backup``, ``prune`` and ``forget --prune`` killed with
SIGKILL lose nothing.

The short CI version of ``scripts/reliability/crash_trials.py`` (which holds the trial
logic and runs 50 or more seeded trials per command): a few seeded trials per command,
each one killing the real command at a seeded moment (after a delay, or after a number
of changes to the repository) and then proving that ``check --read-data`` passes, every
snapshot restores identically, the lock left behind is stale, and the next command
completes without uploading again what had reached the repository. Plus targeted cases
for the moments random kills rarely hit: a backup killed while its lock is held and packs
are written, with nothing indexed yet.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.reliability.conftest import (
    MiB,
    backup,
    check_read_data,
    init_repo,
    lock_objects,
    make_dataset,
    mutate_dataset,
    ok_pannier,
    restore_and_compare,
    run_pannier,
    snapshots,
    start_pannier,
    tree_facts,
)

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "reliability" / "crash_trials.py"

#: Seeds of the CI trials; the long run uses 1..50 and more.
CI_SEEDS = [101, 102, 103]


def _load_trials() -> ModuleType:
    spec = importlib.util.spec_from_file_location("crash_trials", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("crash_trials", module)
    spec.loader.exec_module(module)
    return module


trials = _load_trials()


@pytest.fixture(scope="module", params=trials.COMMANDS)
def prepared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The prepared, calibrated starting state of one command's trials."""
    work = tmp_path_factory.mktemp(f"crash-{request.param}")
    prep = trials.prepare(request.param, work, data_mib=12, seed=7)
    trials.calibrate(prep, work)
    assert prep.clean_seconds > 0 and prep.clean_changes > 0
    return prep, work


@pytest.mark.parametrize("seed", CI_SEEDS)
def test_seeded_kill_loses_nothing(prepared: Any, seed: int) -> None:
    prep, work = prepared
    res = trials.run_trial(prep, seed, work)
    assert res.passed, f"{prep.command} seed {seed}: {res.error}"
    assert res.blobs_uploaded_again == 0
    assert res.snapshots_restored >= len(prep.required)


def test_kill_triggers_land_mid_run(prepared: Any) -> None:
    """The trial harness really kills commands mid-run: a kill after the first change
    to the repository finds the process still running."""
    prep, work = prepared
    copy = work / "mid-run"
    shutil.copytree(prep.repo, copy)
    argv = [copy.as_uri() if a == prep.repo.as_uri() else a for a in prep.argv]
    killed, changes = trials.kill_at(argv, 60.0, repo=copy, after_changes=1)
    assert killed and changes >= 1
    assert lock_objects(copy), "the first change of every command is its lock"


def _wait_for(pred: Any, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.002)


def test_backup_killed_after_packs_reuses_them(tmp_path: Path) -> None:
    """A backup killed once it has written data packs but no index or snapshot: check
    passes (the packs are only unindexed), the next backup writes none of those blobs
    again, and its added bytes are what the killed run had not stored."""
    data = make_dataset(tmp_path / "data", seed=3, total_bytes=4 * MiB)
    repo = init_repo(tmp_path / "repo")
    first_facts = tree_facts(data)
    first = backup(repo.url, data)["snapshot_id"]
    mutate_dataset(data, seed=4, new_bytes=40 * MiB)
    before = trials.data_packs(repo.path)
    seen: set[str] = set()

    def two_new_packs() -> bool:
        seen.update(n for n in trials.data_packs(repo.path) if n not in before)
        return len(seen) >= 2

    argv = ["backup", str(data), "-r", repo.url]
    proc = start_pannier(*argv)
    try:
        _wait_for(lambda: two_new_packs() or proc.poll() is not None)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -9, "the backup ended before it could be killed"
    assert [s["id"] for s in snapshots(repo.url)] == [first]
    left = {n: s for n, s in trials.data_packs(repo.path).items() if n not in before}
    assert len(left) >= 2
    assert lock_objects(repo.path), "the killed backup's lock is left"
    result = check_read_data(repo.url)
    assert result["ok"]
    left_blobs = trials.pack_blobs(repo.url, left)
    known = trials.data_packs(repo.path)
    summary = backup(repo.url, data)
    written = {n: s for n, s in trials.data_packs(repo.path).items() if n not in known}
    assert not left_blobs & trials.pack_blobs(repo.url, written)
    assert summary["bytes_added"] < 40 * MiB - sum(left.values()) + 2 * MiB
    restore_and_compare(repo.url, first, first_facts, tmp_path / "r1")
    restore_and_compare(repo.url, summary["snapshot_id"], data, tmp_path / "r2")


def test_stale_lock_of_killed_backup_lets_prune_proceed(tmp_path: Path) -> None:
    """The shared lock of a killed backup does not stop prune (exclusive): its owner is
    gone from this host, and ``unlock`` removes it. While the backup runs, its lock is
    live: ``unlock`` keeps it and prune refuses (exit code 11) naming its PID."""
    data = make_dataset(tmp_path / "data", seed=5, total_bytes=2 * MiB)
    repo = init_repo(tmp_path / "repo")
    backup(repo.url, data)
    # A backup whose source is a slow command holds its lock while it waits.
    slow = ["sh -c 'sleep 30; echo done'"]
    # SIGKILL leaves the command source's spool directory behind: keep it under tmp_path.
    spool = tmp_path / "spool"
    spool.mkdir()
    proc = start_pannier(
        "backup", "--source", "command", "-r", repo.url, *slow, env={"TMPDIR": str(spool)}
    )
    try:
        _wait_for(lambda: bool(lock_objects(repo.path)) or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        held = lock_objects(repo.path)
        # Live: unlock leaves it, prune refuses naming the holder.
        out = json.loads(ok_pannier("unlock", "-r", repo.url, "--json").stdout)
        assert out["removed"] == []
        refused = run_pannier("prune", "-r", repo.url)
        assert refused.returncode == 11, refused.stderr
        assert f"PID {proc.pid}" in refused.stderr
        assert lock_objects(repo.path) == held
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    # Dead: ignored by prune, removed by unlock.
    assert lock_objects(repo.path) == held
    ok_pannier("prune", "-r", repo.url)
    assert lock_objects(repo.path) == held
    out = json.loads(ok_pannier("unlock", "-r", repo.url, "--json").stdout)
    assert sorted(lk["name"] for lk in out["removed"]) == held
    assert lock_objects(repo.path) == []
    check_read_data(repo.url)


def test_sigterm_ends_a_backup_cleanly(tmp_path: Path) -> None:
    """SIGTERM (a service manager stopping pannier) is handled like Ctrl-C: exit code 143,
    "terminated" on stderr, the lock released, the command source's spool removed and no
    snapshot written; the next backup runs without ``unlock``."""
    data = make_dataset(tmp_path / "data", seed=6, total_bytes=2 * MiB)
    repo = init_repo(tmp_path / "repo")
    spool = tmp_path / "spool"
    spool.mkdir()
    gate, running = tmp_path / "gate", tmp_path / "running"
    os.mkfifo(gate)
    proc = start_pannier(
        "backup",
        "--source",
        "command",
        "-r",
        repo.url,
        f"sh -c 'echo > {running}; exec cat {gate}'",
        env={"TMPDIR": str(spool)},
    )
    try:
        # the command runs (its output is being spooled) under the backup's lock
        _wait_for(lambda: running.exists() or proc.poll() is not None)
        assert proc.poll() is None, proc.communicate()
        assert lock_objects(repo.path) and list(spool.iterdir())
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert b"pannier: error: terminated" in err
    assert lock_objects(repo.path) == []
    assert list(spool.iterdir()) == []
    assert not list(repo.path.glob("snapshot-*"))
    backup(repo.url, data)  # no stale lock in the way
