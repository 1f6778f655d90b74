#!/usr/bin/env python3
"""Crash-consistency trials: kill ``pannier backup``, ``prune`` or ``forget --prune`` with
SIGKILL at a seeded random moment and prove that nothing is lost.

Each trial copies a prepared repository, starts the command on it as a real subprocess,
sleeps a delay drawn from the trial's seed (four times in five between the time a command
takes to start and open the repository and a little after the time an uninterrupted run
takes, once in five during start-up), sends SIGKILL, and then checks:

1. ``pannier check --read-data`` passes;
2. every snapshot that must exist is there and restores identically to the files it was
   made from (and a snapshot the killed command may or may not have written restores
   identically when it exists);
3. the lock the killed process left is recognised as stale: on odd seeds ``pannier
   unlock`` removes exactly the locks left, on even seeds they are left in place and the
   next commands (including one taking the exclusive lock) proceed anyway;
4. the next command completes. After a killed backup, a new backup completes and uploads
   none of the blobs that had already reached the repository (the blob ids in the pack
   headers of the packs the killed run left are compared with those of the packs the new
   backup writes); after a killed prune or forget --prune, a new prune (forget --prune)
   finishes the job and the repository checks clean.

Usage::

    python scripts/reliability/crash_trials.py --trials 50 --command backup --json out.json
    python scripts/reliability/crash_trials.py --trials 50 --command all --json out.json

It prints one line per trial and the figures per command, and writes them as JSON to the
path given with ``--json``. The exit code is 0 when every trial passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability.conftest import (  # noqa: E402
    PASSWORD,
    MiB,
    backup,
    check_read_data,
    init_repo,
    lock_objects,
    make_dataset,
    mutate_dataset,
    ok_pannier,
    pannier_argv,
    pannier_env,
    repo_objects,
    restore_and_compare,
    snapshots,
    tree_facts,
)

COMMANDS = ("backup", "prune", "forget-prune")

Facts = dict[str, tuple[Any, ...]]


@dataclass
class Prepared:
    """The state every trial of one command starts from."""

    command: str
    repo: Path
    data: Path
    argv: list[str]
    #: snapshot id -> facts of the files it was made from, for every snapshot present.
    facts: dict[str, Facts]
    #: snapshots that every trial must still have after the kill.
    required: list[str]
    #: facts of the dataset as it is now (what the backup under test reads).
    current: Facts
    #: seconds an uninterrupted run of the command takes (measured on a copy).
    clean_seconds: float = 0.0
    #: seconds a command takes to start and open the repository (``pannier snapshots``).
    open_seconds: float = 0.0
    #: how many times the repository's listing changes during an uninterrupted run.
    clean_changes: int = 0
    #: bytes of the data packs an uninterrupted run writes.
    clean_bytes_added: int = 0


@dataclass
class TrialResult:
    """What one trial did and found."""

    command: str
    seed: int
    delay: float
    #: with event-triggered kills, the number of repository changes to wait for.
    after_changes: int = 0
    killed: bool = False
    passed: bool = False
    error: str = ""
    locks_left: int = 0
    locks_unlocked: int = 0
    temp_files_left: int = 0
    packs_left_by_killed_run: int = 0
    bytes_left_by_killed_run: int = 0
    blobs_left_by_killed_run: int = 0
    blobs_uploaded_again: int = 0
    next_bytes_added: int = 0
    snapshots_restored: int = 0
    seconds: float = 0.0


@dataclass
class Figures:
    """The figures of all trials of one command."""

    command: str
    trials: int = 0
    passed: int = 0
    killed_mid_run: int = 0
    finished_before_kill: int = 0
    stale_locks_left: int = 0
    stale_locks_removed_by_unlock: int = 0
    snapshots_restored_identically: int = 0
    packs_left_by_killed_runs: int = 0
    bytes_left_by_killed_runs: int = 0
    bytes_added_by_next_backups: int = 0
    #: bytes of new packs an uninterrupted run writes (once, for comparison).
    clean_run_bytes: int = 0
    blobs_left_by_killed_runs: int = 0
    blobs_uploaded_again: int = 0
    temp_files_left: int = 0
    data_lost: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------- preparation


def _snapshot_ids(url: str) -> list[str]:
    return [s["id"] for s in snapshots(url)]


def prepare(command: str, work: Path, *, data_mib: int, seed: int) -> Prepared:
    """Build the repository and dataset the trials of ``command`` start from."""
    base = work / f"base-{command}"
    data = base / "data"
    make_dataset(data, seed=seed, total_bytes=data_mib * MiB, files=40)
    repo = init_repo(base / "repo")
    facts: dict[str, Facts] = {}
    f1 = tree_facts(data)
    s1 = backup(repo.url, data)["snapshot_id"]
    facts[s1] = f1
    if command == "backup":
        # The backup under test adds a lot of new data to the first snapshot's.
        mutate_dataset(data, seed=seed + 1, new_bytes=data_mib * MiB)
        mutate_dataset(data, seed=seed + 2, new_bytes=data_mib * MiB // 2)
        argv = ["backup", str(data), "-r", repo.url, "--json"]
        return Prepared(command, repo.path, data, argv, facts, [s1], tree_facts(data))
    # prune and forget --prune: three snapshots, each after changes (a file deleted, one
    # appended to, a new one), so that forgetting leaves packs partly used (repacked).
    mutate_dataset(data, seed=seed + 1, new_bytes=data_mib * MiB // 3)
    f2 = tree_facts(data)
    s2 = backup(repo.url, data)["snapshot_id"]
    facts[s2] = f2
    mutate_dataset(data, seed=seed + 2, new_bytes=data_mib * MiB // 3)
    f3 = tree_facts(data)
    s3 = backup(repo.url, data)["snapshot_id"]
    facts[s3] = f3
    if command == "prune":
        ok_pannier("forget", s1, "-r", repo.url)
        del facts[s1]
        argv = ["prune", "-r", repo.url, "--max-unused", "0%"]
        return Prepared(command, repo.path, data, argv, facts, [s2, s3], f3)
    argv = ["forget", "--keep-last", "1", "--prune", "--max-unused", "0%", "-r", repo.url]
    return Prepared(command, repo.path, data, argv, facts, [s3], f3)


def calibrate(prep: Prepared, work: Path) -> None:
    """Time an uninterrupted run of the command on a copy of the prepared repository."""
    started = time.monotonic()
    ok_pannier("snapshots", "-r", prep.repo.as_uri())
    prep.open_seconds = time.monotonic() - started
    copy = work / f"calibrate-{prep.command}"
    shutil.copytree(prep.repo, copy, symlinks=True)
    argv = _retarget(prep.argv, prep.repo, copy)
    started = time.monotonic()
    _, prep.clean_changes = kill_at(argv, 3600.0, repo=copy, after_changes=10**9)
    prep.clean_seconds = time.monotonic() - started
    before = data_packs(prep.repo)
    prep.clean_bytes_added = sum(s for n, s in data_packs(copy).items() if n not in before)
    shutil.rmtree(copy)


def _retarget(argv: list[str], old: Path, new: Path) -> list[str]:
    return [new.as_uri() if a == old.as_uri() else a for a in argv]


# --------------------------------------------------------------------------- pack contents


@contextmanager
def _opened(url: str) -> Iterator[Any]:
    from pannier.backend_registry import get_backend
    from pannier.repo.repository import Repository

    backend = get_backend(url)
    repo = Repository.open(backend, PASSWORD)
    try:
        yield repo
    finally:
        repo.close()
        backend.close()


def pack_blobs(url: str, packs: dict[str, int]) -> set[bytes]:
    """The blob ids listed in the headers of ``packs`` (name -> size) of the repository."""
    from pannier.repo.pack import read_pack_header

    out: set[bytes] = set()
    if not packs:
        return out
    with _opened(url) as repo:
        for name, size in packs.items():
            for entry in read_pack_header(repo.backend, name, size, repo.cipher):
                out.add(entry.blob_id)
    return out


def data_packs(path: Path) -> dict[str, int]:
    """The complete data packs of a ``file://`` repository (temporary files excluded)."""
    return {
        Path(n).name: s for n, s in repo_objects(path).items() if Path(n).name.startswith("data-")
    }


def temp_files(path: Path) -> int:
    """How many temporary files of interrupted uploads the repository holds."""
    return sum(1 for n in repo_objects(path) if Path(n).name.startswith(".pannier-tmp-"))


# --------------------------------------------------------------------------- one trial


def _names(path: Path) -> set[str]:
    try:
        return {n for n in os.listdir(path) if not n.startswith(".pannier-tmp-")}
    except FileNotFoundError:
        return set()


def kill_at(
    argv: list[str], delay: float, *, repo: Path | None = None, after_changes: int = 0
) -> tuple[bool, int]:
    """Start ``pannier ARGV`` and SIGKILL it (its whole session) after ``delay`` seconds
    or, with ``after_changes``, as soon as the listing of the repository directory
    ``repo`` has changed that many times (an object appeared or vanished; polled every
    millisecond). Return whether it was still running when killed and the number of
    changes seen. A command that ends by itself must have succeeded."""
    with tempfile.TemporaryFile() as errors:
        started = time.monotonic()
        proc = subprocess.Popen(
            pannier_argv(*argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=pannier_env(),
            start_new_session=True,
        )
        changes = 0
        if after_changes and repo is not None:
            seen = _names(repo)
            while proc.poll() is None:
                now = _names(repo)
                changes += len(now ^ seen)
                seen = now
                if changes >= after_changes or time.monotonic() - started > delay:
                    break
                time.sleep(0.001)
            running = proc.poll() is None
        else:
            try:
                proc.wait(timeout=delay)
                running = False
            except subprocess.TimeoutExpired:
                running = True
        if running:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        errors.seek(0)
        err = errors.read().decode(errors="replace")
    if not running and proc.returncode != 0:
        raise AssertionError(f"pannier {argv[0]} failed before the kill: {err[-500:]}")
    return running, changes


def run_trial(prep: Prepared, seed: int, work: Path) -> TrialResult:
    """Run one seeded trial of ``prep.command`` in ``work`` and return its result; the
    result's ``error`` names the first check that failed."""
    rng = random.Random(f"{prep.command}-{seed}")
    # Half the kills come after a random number of changes to the repository's listing
    # (between 1 and all those of an uninterrupted run); the others after a random
    # delay, four in five between the repository being open and a little after the end
    # of an uninterrupted run, one in five during start-up.
    after_changes = 0
    end = max(prep.clean_seconds * 1.1, prep.open_seconds + 0.1)
    if rng.random() < 0.5 and prep.clean_changes > 0:
        after_changes = rng.randint(1, prep.clean_changes)
        delay = prep.clean_seconds * 10 + 30
    elif rng.random() < 0.2:
        delay = rng.uniform(0.02, prep.open_seconds)
    else:
        delay = rng.uniform(prep.open_seconds * 0.9, end)
    res = TrialResult(prep.command, seed, round(delay, 3), after_changes)
    started = time.monotonic()
    trial = work / f"trial-{prep.command}-{seed}"
    repo = trial / "repo"
    shutil.copytree(prep.repo, repo, symlinks=True)
    url = repo.as_uri()
    try:
        before_packs = data_packs(repo)
        res.killed, _ = kill_at(
            _retarget(prep.argv, prep.repo, repo),
            delay,
            repo=repo,
            after_changes=res.after_changes,
        )
        left_locks = lock_objects(repo)
        res.locks_left = len(left_locks)
        res.temp_files_left = temp_files(repo)
        after_kill = data_packs(repo)
        new_packs = {n: s for n, s in after_kill.items() if n not in before_packs}
        res.packs_left_by_killed_run = len(new_packs)
        res.bytes_left_by_killed_run = sum(new_packs.values())
        # 3. the stale lock: removed by unlock (odd seeds) or left for the next commands.
        if left_locks and seed % 2 == 1:
            out = json.loads(ok_pannier("unlock", "-r", url, "--json").stdout)
            removed = sorted(lk["name"] for lk in out["removed"])
            assert removed == left_locks, f"unlock removed {removed}, left were {left_locks}"
            res.locks_unlocked = len(removed)
        # 1. check --read-data passes.
        check_read_data(url)
        # 2. the snapshots restore identically.
        present = _snapshot_ids(url)
        for sid in prep.required:
            assert sid in present, f"snapshot {sid[:8]} lost"
        extra = [s for s in present if s not in prep.facts]
        if prep.command == "forget-prune":
            assert not extra, f"unexpected snapshots {extra}"
        else:
            assert len(extra) <= (1 if prep.command == "backup" else 0), f"snapshots {extra}"
        for sid in present:
            want = prep.facts.get(sid, prep.current)
            restore_and_compare(url, sid, want, trial / f"restore-{sid[:8]}")
            res.snapshots_restored += 1
        # 4. the next command completes.
        if prep.command == "backup":
            _after_backup_kill(prep, res, trial, url, repo, new_packs)
        else:
            _after_prune_kill(prep, res, trial, url, repo)
        res.passed = True
    except Exception as exc:  # a failed check: recorded with its trial
        res.error = f"{type(exc).__name__}: {exc}"
        if os.environ.get("PANNIER_CRASH_TRACE"):
            traceback.print_exc()
    res.seconds = round(time.monotonic() - started, 2)
    if res.passed:
        shutil.rmtree(trial, ignore_errors=True)
    return res


def _stale_locks_only(url: str, repo: Path, res: TrialResult) -> None:
    """After the next commands, the only locks left are the killed process's (when not
    unlocked already), and ``pannier unlock`` removes them as stale."""
    remaining = lock_objects(repo)
    assert len(remaining) == res.locks_left - res.locks_unlocked, f"locks {remaining}"
    if remaining:
        out = json.loads(ok_pannier("unlock", "-r", url, "--json").stdout)
        removed = sorted(lk["name"] for lk in out["removed"])
        assert removed == remaining, f"unlock removed {removed}, left were {remaining}"
        res.locks_unlocked += len(removed)
    assert not lock_objects(repo), f"locks remain: {lock_objects(repo)}"


def _after_backup_kill(
    prep: Prepared, res: TrialResult, trial: Path, url: str, repo: Path, left: dict[str, int]
) -> None:
    known = data_packs(repo)
    left_blobs = pack_blobs(url, left)
    res.blobs_left_by_killed_run = len(left_blobs)
    summary = backup(url, prep.data)
    res.next_bytes_added = int(summary["bytes_added"])
    written = {n: s for n, s in data_packs(repo).items() if n not in known}
    again = left_blobs & pack_blobs(url, written)
    res.blobs_uploaded_again = len(again)
    assert not again, f"{len(again)} blobs the killed backup had stored were uploaded again"
    restore_and_compare(url, summary["snapshot_id"], prep.current, trial / "restore-next")
    res.snapshots_restored += 1
    # An exclusive command proceeds past the stale shared lock, if one was left.
    ok_pannier("prune", "-r", url)
    ok_pannier("check", "-r", url)
    _stale_locks_only(url, repo, res)


def _after_prune_kill(prep: Prepared, res: TrialResult, trial: Path, url: str, repo: Path) -> None:
    rerun = _retarget(prep.argv, prep.repo, repo)
    if prep.command == "prune":
        # A backup (shared lock) proceeds past a stale exclusive lock, if one was left.
        res.next_bytes_added = int(backup(url, prep.data)["bytes_added"])
        ok_pannier(*rerun)
    else:
        # forget --prune again (exclusive lock), then a backup.
        ok_pannier(*rerun)
    present = _snapshot_ids(url)
    for sid in prep.required:
        assert sid in present, f"snapshot {sid[:8]} lost by the next {prep.command}"
    if prep.command == "forget-prune":
        assert present == prep.required, f"forget kept {present}, expected {prep.required}"
        summary = backup(url, prep.data)
        res.next_bytes_added = int(summary["bytes_added"])
        restore_and_compare(url, summary["snapshot_id"], prep.current, trial / "restore-next")
        res.snapshots_restored += 1
    check_read_data(url)
    _stale_locks_only(url, repo, res)


# --------------------------------------------------------------------------- main


def run_command(
    command: str, trials: int, first_seed: int, work: Path, *, data_mib: int, out: Any = sys.stdout
) -> Figures:
    """Prepare, calibrate and run ``trials`` seeded trials of ``command``."""
    prep = prepare(command, work, data_mib=data_mib, seed=first_seed)
    calibrate(prep, work)
    print(
        f"{command}: uninterrupted run {prep.clean_seconds:.2f}s, "
        f"start-up and open {prep.open_seconds:.2f}s, {prep.clean_changes} changes "
        f"to the repository, {prep.clean_bytes_added} bytes of new packs",
        file=out,
        flush=True,
    )
    fig = Figures(command, clean_run_bytes=prep.clean_bytes_added)
    for seed in range(first_seed, first_seed + trials):
        res = run_trial(prep, seed, work)
        fig.trials += 1
        fig.passed += res.passed
        fig.killed_mid_run += res.killed
        fig.finished_before_kill += not res.killed
        fig.stale_locks_left += res.locks_left
        fig.stale_locks_removed_by_unlock += res.locks_unlocked
        fig.snapshots_restored_identically += res.snapshots_restored
        fig.packs_left_by_killed_runs += res.packs_left_by_killed_run
        fig.bytes_left_by_killed_runs += res.bytes_left_by_killed_run
        fig.bytes_added_by_next_backups += res.next_bytes_added
        fig.blobs_left_by_killed_runs += res.blobs_left_by_killed_run
        fig.blobs_uploaded_again += res.blobs_uploaded_again
        fig.temp_files_left += res.temp_files_left
        if not res.passed:
            fig.failures.append(asdict(res))
            if "lost" in res.error or "restore" in res.error.lower():
                fig.data_lost += 1
        print(
            f"  {command} seed {seed}: "
            + (
                f"after {res.after_changes} changes "
                if res.after_changes
                else f"after {res.delay:.3f}s "
            )
            + f"{'killed' if res.killed else 'finished first'}, locks left {res.locks_left}, "
            f"packs left {res.packs_left_by_killed_run}, "
            f"next run added {res.next_bytes_added} B, "
            f"blobs uploaded again {res.blobs_uploaded_again}: "
            + ("ok" if res.passed else f"FAILED {res.error}"),
            file=out,
            flush=True,
        )
    shutil.rmtree(work / f"base-{command}", ignore_errors=True)
    return fig


def main(argv: list[str] | None = None) -> int:
    """Run the trials and print and write the figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=50, help="trials per command (default 50)")
    p.add_argument("--command", choices=[*COMMANDS, "all"], default="all")
    p.add_argument("--seed", type=int, default=1, help="seed of the first trial")
    p.add_argument("--data-mib", type=int, default=24, help="size of the dataset in MiB")
    p.add_argument("--json", metavar="PATH", help="write the figures as JSON to PATH")
    p.add_argument("--workdir", metavar="DIR", help="where to work (default: a temp dir)")
    args = p.parse_args(argv)
    commands = COMMANDS if args.command == "all" else (args.command,)
    work = Path(tempfile.mkdtemp(prefix="pannier-crash-", dir=args.workdir))
    started = time.monotonic()
    results = []
    for command in commands:
        results.append(run_command(command, args.trials, args.seed, work, data_mib=args.data_mib))
    elapsed = time.monotonic() - started
    print(f"\ncrash trials ({elapsed:.0f}s, dataset {args.data_mib} MiB):")
    for fig in results:
        print(
            f"  {fig.command}: {fig.passed}/{fig.trials} passed "
            f"({fig.killed_mid_run} killed mid-run, {fig.finished_before_kill} finished "
            f"before the kill); stale locks left {fig.stale_locks_left} "
            f"(each ignored by the next commands or removed by unlock: "
            f"{fig.stale_locks_removed_by_unlock} removed); "
            f"snapshots restored identically {fig.snapshots_restored_identically}; "
            f"packs left by killed runs {fig.packs_left_by_killed_runs} "
            f"({fig.blobs_left_by_killed_runs} blobs), uploaded again "
            f"{fig.blobs_uploaded_again}; bytes of packs left by killed runs "
            f"{fig.bytes_left_by_killed_runs}, added by the next backups "
            f"{fig.bytes_added_by_next_backups} (an uninterrupted run writes "
            f"{fig.clean_run_bytes} per trial); temp files left {fig.temp_files_left}; "
            f"data lost {fig.data_lost}"
        )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "seconds": round(elapsed, 1),
                    "data_mib": args.data_mib,
                    "first_seed": args.seed,
                    "commands": [asdict(f) for f in results],
                },
                indent=2,
            )
            + "\n"
        )
    ok = all(f.passed == f.trials for f in results)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"failed trials kept in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
