"""Stale temporaries: an upload killed midway leaves a hidden ``.pannier-tmp-*`` object,
which ``pannier prune`` removes once nothing has written to it for the lock's stale age,
and never while it may belong to a live upload.

A real ``pannier backup`` is killed with SIGKILL while a pack is being written (the upload
is throttled with ``bwlimit-up`` so the kill always lands inside a put), over ``file://``
and over ``sftp://`` against the test sshd. Ageing the temporary is done by setting its
modification time back, which is exactly what the clean-up reads.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from pathlib import Path

from pannier.repo.locks import STALE_AFTER

from tests.reliability.conftest import (
    MiB,
    backup,
    check_read_data,
    init_repo,
    make_dataset,
    ok_pannier,
    snapshots,
    start_pannier,
)
from tests.servers import require_server

TMP_PREFIX = ".pannier-tmp-"


def _temporaries(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.name.startswith(TMP_PREFIX))


def _kill_backup_mid_upload(url: str, data: Path, directory: Path) -> list[Path]:
    """Start a throttled backup to ``url``, SIGKILL it as soon as a temporary in
    ``directory`` has bytes, and return the temporaries it left."""
    throttled = f"{url}{'&' if '?' in url else '?'}bwlimit-up=2M"
    proc = start_pannier("backup", str(data), "-r", throttled)
    try:
        end = time.monotonic() + 120
        while not any(p.stat().st_size for p in _temporaries(directory) if p.exists()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < end, "no upload started"
            time.sleep(0.01)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -9, "the backup ended before it could be killed"
    left = _temporaries(directory)
    assert left, "the killed upload left no temporary"
    return left


def _age(paths: list[Path], seconds: float) -> None:
    for path in paths:
        when = path.stat().st_mtime - seconds
        os.utime(path, (when, when))


def _prune(url: str) -> dict[str, object]:
    out = json.loads(ok_pannier("prune", "-r", url, "--json").stdout)
    assert isinstance(out, dict)
    return out


def _trial(url: str, directory: Path, data: Path) -> None:
    first = backup(url, data)["snapshot_id"]
    make_dataset(data / "more", seed=11, total_bytes=12 * MiB)
    left = _kill_backup_mid_upload(url, data, directory)
    # Fresh: it might be a live upload's, so prune keeps it.
    assert _prune(url)["temporaries_removed"] == 0
    assert _temporaries(directory) == left
    # Untouched for just under the stale age: still kept.
    _age(left, STALE_AFTER - 120)
    assert _prune(url)["temporaries_removed"] == 0
    assert _temporaries(directory) == left
    # Past the stale age: removed, and nothing else is touched.
    _age(left, 240)
    objects = sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
    assert _prune(url)["temporaries_removed"] == len(left)
    assert _temporaries(directory) == []
    assert sorted(p.name for p in directory.iterdir() if not p.name.startswith(".")) == objects
    assert [s["id"] for s in snapshots(url)] == [first]
    assert check_read_data(url)["ok"]
    second = backup(url, data)["snapshot_id"]
    assert [s["id"] for s in snapshots(url)] == [first, second]


def test_killed_file_upload_temporary_is_removed_by_prune_once_stale(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", seed=9, total_bytes=2 * MiB)
    repo = init_repo(tmp_path / "repo")
    _trial(repo.url, repo.path, data)


def test_killed_sftp_upload_temporary_is_removed_by_prune_once_stale(tmp_path: Path) -> None:
    facts = require_server("sshd")
    folder = f"temporaries-{uuid.uuid4().hex[:8]}"
    directory = Path(facts["PANNIER_TEST_SFTP_ROOT"]) / folder
    url = (
        f"sftp://{facts['PANNIER_TEST_SFTP_USER']}@{facts['PANNIER_TEST_SFTP_HOST']}:"
        f"{facts['PANNIER_TEST_SFTP_PORT']}/{directory}"
        f"?key-file={facts['PANNIER_TEST_SFTP_KEY_FILE']}"
        f"&known-hosts={facts['PANNIER_TEST_SFTP_KNOWN_HOSTS']}"
    )
    ok_pannier("init", "-r", url, "--encryption", "repokey")
    data = make_dataset(tmp_path / "data", seed=9, total_bytes=2 * MiB)
    try:
        _trial(url, directory, data)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_a_dry_run_removes_no_temporary(tmp_path: Path) -> None:
    data = make_dataset(tmp_path / "data", seed=9, total_bytes=1 * MiB)
    repo = init_repo(tmp_path / "repo")
    backup(repo.url, data)
    stale = repo.path / f"{TMP_PREFIX}left"
    stale.write_bytes(b"half")
    _age([stale], STALE_AFTER + 60)
    out = json.loads(ok_pannier("prune", "-r", repo.url, "--json", "--dry-run").stdout)
    assert out["temporaries_removed"] == 0 and stale.exists()
    assert _prune(repo.url)["temporaries_removed"] == 1 and not stale.exists()


def test_a_failed_clean_up_warns_and_leaves_the_prune_done(tmp_path: Path) -> None:
    """The clean-up is prune's last step: when the backend fails it (a permanent error, or
    a transient one still failing after its retries), prune still exits 0 with its work
    done and names the failure in a warning and in ``--json``; a prune whose clean-up
    fails once, transiently, retries it and removes the temporary."""
    data = make_dataset(tmp_path / "data", seed=9, total_bytes=1 * MiB)
    repo = init_repo(tmp_path / "repo")
    backup(repo.url, data)
    stale = repo.path / f"{TMP_PREFIX}left"
    stale.write_bytes(b"half")
    _age([stale], STALE_AFTER + 60)
    faulty = f"faulty+{repo.url}?fail-clean=1&fail-mode=permanent"
    done = ok_pannier("prune", "-r", faulty)
    assert "pannier: warning: temporaries of interrupted uploads not removed:" in done.stderr
    assert "injected" in done.stderr and stale.exists()
    out = json.loads(ok_pannier("prune", "-r", faulty, "--json").stdout)
    assert out["temporaries_removed"] == 0 and "injected" in out["temporaries_error"]
    # A transient failure is retried: the same prune removes the temporary.
    once = f"faulty+{repo.url}?fail-clean=1&retry-delay=0.01"
    out = json.loads(ok_pannier("prune", "-r", once, "--json").stdout)
    assert out["temporaries_removed"] == 1 and out["temporaries_error"] == ""
    assert not stale.exists()
    assert check_read_data(repo.url)["ok"]
