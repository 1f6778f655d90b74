"""Concurrency: several ``pannier`` processes on one repository at once lose nothing.

* Two backups into one repository at the same moment, from two processes (different
  data, the same data, and data that partly overlaps so both store the same chunks at
  once): both succeed, both snapshots restore identically, ``check --read-data`` passes,
  and a later prune (which meets the duplicate copies) keeps everything readable.
* A backup racing a prune or a ``forget --prune`` at seeded offsets: each command either
  completes or refuses with exit code 11 and a one-line message naming the lock it met
  (both may back off at once, as the lock protocol says). Whatever the interleaving,
  every snapshot restores identically afterwards and the repository checks clean.
* A prune started while a backup holds its shared lock refuses at once; a backup started
  while a prune holds the exclusive lock refuses at once; the lock holder goes on.

``PANNIER_RELIABILITY_ROUNDS`` (default 3) sets the number of seeded rounds of the racing
tests; the documented long run uses 20.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.conftest import (
    MiB,
    RepoHandle,
    backup,
    check_read_data,
    init_repo,
    json_lines,
    lock_objects,
    make_dataset,
    mutate_dataset,
    ok_pannier,
    pannier_argv,
    pannier_env,
    restore_and_compare,
    snapshots,
    start_pannier,
    tree_facts,
)

ROUNDS = int(os.environ.get("PANNIER_RELIABILITY_ROUNDS", "3"))
#: New data per round of the racing tests: enough for a backup to hold its lock a while.
NEW_PER_ROUND = 12 * MiB

Facts = dict[str, tuple[Any, ...]]


def _finish(proc: subprocess.Popen[bytes], timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def _summary(stdout: str) -> dict[str, Any]:
    found = [o for o in json_lines(stdout) if o.get("message_type") == "summary"]
    assert len(found) == 1, stdout
    return found[0]


def _verify_all(repo: RepoHandle, facts: dict[str, Facts], work: Path) -> None:
    """check --read-data passes and every snapshot of ``facts`` (exactly those) restores
    identically."""
    check_read_data(repo.url)
    assert sorted(s["id"] for s in snapshots(repo.url)) == sorted(facts)
    for sid, want in facts.items():
        target = work / f"restore-{sid[:8]}-{time.monotonic_ns()}"
        restore_and_compare(repo.url, sid, want, target)
        shutil.rmtree(target)
    assert lock_objects(repo.path) == [], "a finished command left its lock"


def _two_backups(repo: RepoHandle, a: Path, b: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    fa, fb = tree_facts(a), tree_facts(b)
    pa = start_pannier("backup", str(a), "-r", repo.url, "--json")
    pb = start_pannier("backup", str(b), "-r", repo.url, "--json")
    (ra, oa, ea), (rb, ob, eb) = _finish(pa), _finish(pb)
    assert ra == 0, ea
    assert rb == 0, eb
    sa, sb = _summary(oa), _summary(ob)
    assert tree_facts(a) == fa and tree_facts(b) == fb, "the test changed its data"
    return sa, sb


@pytest.mark.parametrize("overlap", ["different", "same", "partial"])
def test_two_backups_at_once(tmp_path: Path, overlap: str) -> None:
    repo = init_repo(tmp_path / "repo")
    a = make_dataset(tmp_path / "a", seed=11, total_bytes=6 * MiB)
    if overlap == "same":
        b = tmp_path / "b"
        shutil.copytree(a, b, symlinks=True)
    else:
        b = make_dataset(tmp_path / "b", seed=12, total_bytes=6 * MiB)
        if overlap == "partial":
            # Both back up these chunks at the same moment.
            for f in sorted(a.rglob("*.bin"))[:10]:
                shutil.copy2(f, b / "media" / f"shared-{f.name}")
    facts: dict[str, Facts] = {}
    for rnd in range(2):  # the second round has parents and new data on both sides
        if rnd:
            mutate_dataset(a, seed=21, new_bytes=2 * MiB)
            mutate_dataset(b, seed=22, new_bytes=2 * MiB)
        fa, fb = tree_facts(a), tree_facts(b)
        sa, sb = _two_backups(repo, a, b)
        assert sa["snapshot_id"] != sb["snapshot_id"]
        facts[sa["snapshot_id"]] = fa
        facts[sb["snapshot_id"]] = fb
        _verify_all(repo, facts, tmp_path)
    # Prune meets the chunks both stored at once, and keeps one readable copy.
    ok_pannier("prune", "-r", repo.url, "--max-unused", "0%")
    _verify_all(repo, facts, tmp_path)


def _race(
    repo: RepoHandle, data: Path, other: list[str], offset: float, backup_first: bool
) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """Start a backup of ``data`` and ``pannier OTHER...`` ``offset`` seconds apart (the
    backup first or second) and return both results (code, stdout, stderr)."""
    args_b = ["backup", str(data), "-r", repo.url, "--json"]
    if backup_first:
        pb = start_pannier(*args_b)
        time.sleep(offset)
        po = start_pannier(*other)
    else:
        po = start_pannier(*other)
        time.sleep(offset)
        pb = start_pannier(*args_b)
    return _finish(pb), _finish(po)


def _assert_ok_or_locked(result: tuple[int, str, str], what: str) -> bool:
    """True when the command completed; False when it refused on the lock (exit 11,
    naming the lock); any other outcome fails."""
    code, _out, err = result
    assert code in (0, 11), f"{what} exited {code}: {err}"
    if code == 11:
        assert "lock" in err and err.count("\n") == 1, f"{what}: {err!r}"
    return code == 0


@pytest.mark.parametrize("other", ["prune", "forget-prune"])
def test_backup_racing_prune(tmp_path: Path, other: str) -> None:
    repo = init_repo(tmp_path / "repo")
    data = make_dataset(tmp_path / "data", seed=31, total_bytes=8 * MiB)
    facts: dict[str, Facts] = {}
    s0 = backup(repo.url, data)["snapshot_id"]
    facts[s0] = tree_facts(data)
    # How long a command takes to start and open the repository, and how long a backup
    # of one round's new data then holds its lock: the race offsets fall in that window,
    # so that the second command's lock attempt meets the first one's lock.
    started = time.monotonic()
    snapshots(repo.url)
    opening = time.monotonic() - started
    started = time.monotonic()
    mutate_dataset(data, seed=32, new_bytes=NEW_PER_ROUND)
    s1 = backup(repo.url, data)["snapshot_id"]
    holding = max(time.monotonic() - started - opening, 0.05)
    facts[s1] = tree_facts(data)
    outcomes: dict[str, int] = {}
    for rnd in range(ROUNDS):
        rng = random.Random(f"{other}-{rnd}")
        mutate_dataset(data, seed=40 + rnd, new_bytes=NEW_PER_ROUND)
        current = tree_facts(data)
        if len(facts) < 2:  # the backups of earlier rounds were refused
            facts[backup(repo.url, data)["snapshot_id"]] = current
        # Forget the oldest snapshot so that the prune has packs to delete and repack.
        oldest = min(facts, key=lambda s: [x["time"] for x in snapshots(repo.url) if x["id"] == s])
        if other == "prune":
            ok_pannier("forget", oldest, "-r", repo.url)
            command = ["prune", "-r", repo.url, "--max-unused", "0%"]
        else:
            command = [
                "forget",
                oldest,
                "--prune",
                "--max-unused",
                "0%",
                "-r",
                repo.url,
            ]
        backup_first = rng.random() < 0.7
        offset = rng.uniform(0, holding if backup_first else 0.2)
        rb, ro = _race(repo, data, command, offset, backup_first)
        backed_up = _assert_ok_or_locked(rb, "backup")
        pruned = _assert_ok_or_locked(ro, other)
        key = f"backup {'ok' if backed_up else 'refused'}, {other} {'ok' if pruned else 'refused'}"
        outcomes[key] = outcomes.get(key, 0) + 1
        if other == "prune" or pruned:
            del facts[oldest]
        if backed_up:
            facts[_summary(rb[1])["snapshot_id"]] = current
        _verify_all(repo, facts, tmp_path)
    print(f"{other} races over {ROUNDS} rounds: {outcomes}")


def test_prune_refuses_while_backup_holds_lock(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    data = make_dataset(tmp_path / "data", seed=51, total_bytes=2 * MiB)
    s0 = backup(repo.url, data)["snapshot_id"]
    facts = {s0: tree_facts(data)}
    # The backup's source is a command that waits: the backup holds its lock meanwhile.
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    proc = start_pannier(
        "backup",
        "--source",
        "command",
        "--filename",
        "dump.bin",
        "-r",
        repo.url,
        "--json",
        f"sh -c 'cat {gate} >/dev/null; head -c 3000000 /dev/urandom'",
    )
    try:
        deadline = time.monotonic() + 60
        while not lock_objects(repo.path):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        for command in (["prune", "-r", repo.url], ["forget", s0, "--prune", "-r", repo.url]):
            refused = subprocess.run(
                pannier_argv(*command),
                capture_output=True,
                text=True,
                env=pannier_env(),
                timeout=120,
            )
            assert refused.returncode == 11, refused.stderr
            assert f"PID {proc.pid}" in refused.stderr, refused.stderr
        with open(gate, "w") as g:
            g.write("go\n")
        code, out, err = _finish(proc)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert code == 0, err
    sid = _summary(out)["snapshot_id"]
    assert sorted(s["id"] for s in snapshots(repo.url)) == sorted([s0, sid])
    check_read_data(repo.url)
    restore_and_compare(repo.url, s0, facts[s0], tmp_path / "r0")
    ok_pannier("dump", sid, "dump.bin", "-r", repo.url, "-o", str(tmp_path / "dump.bin"))
    assert (tmp_path / "dump.bin").stat().st_size == 3000000


def test_backup_refuses_while_prune_holds_lock(tmp_path: Path) -> None:
    """An exclusive lock held by a live process (here: a prune stopped with SIGSTOP
    while it holds it) makes a backup refuse with exit code 11; once the prune goes on
    and finishes, the backup runs."""
    repo = init_repo(tmp_path / "repo")
    data = make_dataset(tmp_path / "data", seed=61, total_bytes=4 * MiB)
    s0 = backup(repo.url, data)["snapshot_id"]
    facts = {s0: tree_facts(data)}
    proc = start_pannier("prune", "-r", repo.url)
    stopped = False
    try:
        deadline = time.monotonic() + 60
        while not lock_objects(repo.path) and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.0005)
        os.killpg(proc.pid, signal.SIGSTOP)
        stopped = True
        if proc.poll() is None and lock_objects(repo.path):
            refused = subprocess.run(
                pannier_argv("backup", str(data), "-r", repo.url),
                capture_output=True,
                text=True,
                env=pannier_env(),
                timeout=120,
            )
            assert refused.returncode == 11, refused.stderr
            assert "exclusive lock" in refused.stderr and f"PID {proc.pid}" in refused.stderr
        else:
            pytest.fail("the prune finished before its lock could be seen; rerun")
        os.killpg(proc.pid, signal.SIGCONT)
        stopped = False
        code, _out, err = _finish(proc)
        assert code == 0, err
    finally:
        if stopped:
            os.killpg(proc.pid, signal.SIGCONT)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    mutate_dataset(data, seed=62)
    facts[backup(repo.url, data)["snapshot_id"]] = tree_facts(data)
    _verify_all(repo, facts, tmp_path)


def test_lock_sees_what_finished_before_it(tmp_path: Path) -> None:
    """A command's index reflects the repository as it is once its lock is held, not as
    it was when the repository was opened: a backup that completes between a prune's
    open and its lock (the password's key derivation lies in between) is seen whole.

    Before the fix, the index was loaded from the listing taken on open, so a
    ``forget --prune`` racing a backup stopped with "snapshot ... cannot be read (blob
    ... is not in the index)"."""
    from pannier.backend_registry import get_backend
    from pannier.repo.prune import prune_repository
    from pannier.repo.repository import Repository

    from tests.reliability.conftest import PASSWORD

    repo = init_repo(tmp_path / "repo")
    data = make_dataset(tmp_path / "data", seed=71, total_bytes=2 * MiB)
    s0 = backup(repo.url, data)["snapshot_id"]
    backend = get_backend(repo.url)
    opened = Repository.open(backend, PASSWORD)
    try:
        # Another process backs up new data after this one opened the repository.
        mutate_dataset(data, seed=72, new_bytes=1 * MiB)
        facts = {s0: None, backup(repo.url, data)["snapshot_id"]: tree_facts(data)}
        with opened.lock(exclusive=True):
            result = prune_repository(opened)
        assert result.snapshots == 2
    finally:
        opened.close()
        backend.close()
    check_read_data(repo.url)
    sid = next(s for s in facts if s != s0)
    restore_and_compare(repo.url, sid, facts[sid] or {}, tmp_path / "restored")
