"""The repository commands, run as real ``pannier`` processes on file:// repositories."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pannier.repo import Repository

from .conftest import FAST_KDF, PASSWORD, DirBackend
from .helpers import ROOT, spawn, wait_for_line


def pannier(
    *args: str, password: str | None = PASSWORD, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PANNIER_")}
    if password is not None:
        full["PANNIER_PASSWORD"] = password
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pannier", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=str(ROOT),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.fixture
def url(repo_dir: Path) -> str:
    return f"file://{repo_dir}"


@pytest.fixture
def filled(repo_dir: Path, url: str, tmp_path: Path) -> str:
    """A repository (made with cheap key derivation) holding one snapshot of a small
    tree, made by ``pannier backup``."""
    Repository.init(DirBackend(repo_dir), PASSWORD, kdf=FAST_KDF).close()
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "big").write_bytes(os.urandom(300_000))
    (src / "sub" / "small").write_text("hello")
    done = pannier("backup", "-r", url, str(src))
    assert done.returncode == 0, done.stderr
    return url


def test_init_creates_then_refuses_again(url: str, repo_dir: Path) -> None:
    done = pannier("--json", "init", "-r", url, "--compression", "5")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["encryption"] == "repokey" and len(info["id"]) == 64
    assert (repo_dir / "config").exists()
    again = pannier("init", "-r", url)
    assert again.returncode == 1
    assert "already holds a repository" in again.stderr


def test_init_without_password_is_a_usage_error(url: str, repo_dir: Path) -> None:
    done = pannier("init", "-r", url, password=None)
    assert done.returncode == 2
    assert "no password given" in done.stderr
    assert not (repo_dir / "config").exists()


def test_init_from_environment_and_password_file(tmp_path: Path, url: str) -> None:
    pw = tmp_path / "pw"
    pw.write_text("from a file\n")
    done = pannier(
        "init", password=None, env={"PANNIER_REPOSITORY": url, "PANNIER_PASSWORD_FILE": str(pw)}
    )
    assert done.returncode == 0, done.stderr
    ok = pannier("check", "-r", url, "--password-file", str(pw), password=None)
    assert ok.returncode == 0, ok.stderr
    bad = pannier("check", "-r", url, password="from a file, not")
    assert bad.returncode == 12 and "wrong password" in bad.stderr


def test_unencrypted_init_needs_no_password(url: str) -> None:
    done = pannier("init", "-r", url, "--encryption", "NONE", password=None)
    assert done.returncode == 0, done.stderr
    assert pannier("check", "-r", url, password=None).returncode == 0


def test_missing_repository_exit_code(tmp_path: Path) -> None:
    done = pannier("check", "-r", f"file://{tmp_path}/none")
    assert done.returncode == 10
    assert "no repository" in done.stderr
    assert pannier("check").returncode == 2  # no -r and no PANNIER_REPOSITORY


def test_check_read_data_names_damaged_pack(filled: str, repo_dir: Path) -> None:
    assert pannier("check", "-r", filled, "--read-data").returncode == 0
    # the largest pack holds the content of "big"
    pack = max(
        (p for p in repo_dir.iterdir() if p.name.startswith("data-")),
        key=lambda p: p.stat().st_size,
    )
    raw = bytearray(pack.read_bytes())
    raw[50] ^= 1
    pack.write_bytes(bytes(raw))
    done = pannier("check", "-r", filled, "--read-data-subset", "100%")
    assert done.returncode == 1
    assert pack.name in done.stdout and pack.name in done.stderr
    affected = [line for line in done.stdout.splitlines() if line.startswith("affected: ")]
    # one line for the snapshot, then one for each file: only "big" is damaged
    [snapshot_line, *file_lines] = affected
    assert snapshot_line.startswith("affected: snapshot ") and "1 damaged blob" in snapshot_line
    assert file_lines and all(line.split(":")[2].startswith("/big ") for line in file_lines), (
        done.stdout
    )
    bad = pannier("check", "-r", filled, "--read-data-subset", "7/5")
    assert bad.returncode == 2 and "read-data-subset" in bad.stderr


def test_key_add_list_remove(filled: str) -> None:
    added = pannier("--json", "key", "add", "-r", filled, env={"PANNIER_NEW_PASSWORD": "other"})
    assert added.returncode == 0, added.stderr
    key_id = json.loads(added.stdout)["added"]
    listed = pannier("--json", "key", "list", "-r", filled, password="other")
    keys = json.loads(listed.stdout)
    assert {k["id"] for k in keys if k["current"]} == {key_id}
    assert len(keys) == 2
    table = pannier("key", "list", "-r", filled, password="other").stdout.splitlines()
    assert [line.split()[:3] for line in table if line.startswith("*")] == [["*", key_id, "v2"]]
    refused = pannier("key", "remove", "-r", filled, key_id, password="other")
    assert refused.returncode == 2 and "in use" in refused.stderr
    assert pannier("key", "remove", "-r", filled, key_id).returncode == 0
    assert pannier("check", "-r", filled, password="other").returncode == 12


def test_unlock_removes_lock_of_killed_process(filled: str, repo_dir: Path) -> None:
    child = spawn(
        f"""
        repo = Repository.open(DirBackend(Path({str(repo_dir)!r})), {PASSWORD!r})
        repo.lock(exclusive=True).acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    try:
        wait_for_line(child, "locked")
        blocked = pannier("prune", "-r", filled)
        assert blocked.returncode == 11
        assert f"PID {child.pid}" in blocked.stderr
        kept = pannier("unlock", "-r", filled)
        assert "0 lock(s) removed" in kept.stdout
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    done = pannier("unlock", "-r", filled)
    assert done.returncode == 0 and "1 lock(s) removed" in done.stdout
    assert not [p for p in repo_dir.iterdir() if p.name.startswith("lock-")]


def test_prune_dry_run_and_json(filled: str, repo_dir: Path) -> None:
    snap = next(p for p in repo_dir.iterdir() if p.name.startswith("snapshot-"))
    snap.unlink()
    packs = [p for p in repo_dir.iterdir() if p.name.startswith("data-")]
    dry = pannier("--json", "prune", "-r", filled, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["packs_deleted"] == len(packs)
    assert any(p.name.startswith("data-") for p in repo_dir.iterdir())
    done = pannier("prune", "-r", filled, "--max-unused", "10%")
    assert done.returncode == 0, done.stderr
    assert not any(p.name.startswith("data-") for p in repo_dir.iterdir())
    bad = pannier("prune", "-r", filled, "--max-unused", "lots")
    assert bad.returncode == 2 and "--max-unused" in bad.stderr


def test_check_json_and_subsets(filled: str) -> None:
    done = pannier("--json", "check", "-r", filled, "--read-data-subset", "1/1")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True and result["errors"] == []
    assert result["snapshots"] == 1 and result["packs_read"] == result["packs"] >= 1
    both = pannier("check", "-r", filled, "--read-data", "--read-data-subset", "1/2")
    assert both.returncode == 2  # mutually exclusive options


def test_key_add_needs_a_new_password(filled: str, tmp_path: Path) -> None:
    current = tmp_path / "current"
    current.write_text(PASSWORD)
    # the current password's sources must not be taken for the new one
    done = pannier("key", "add", "-r", filled, env={"PANNIER_PASSWORD_FILE": str(current)})
    assert done.returncode == 2 and "no new password given" in done.stderr
    new = tmp_path / "new"
    new.write_text("brand new\n")
    added = pannier("key", "add", "-r", filled, "--new-password-file", str(new))
    assert added.returncode == 0, added.stderr
    assert pannier("check", "-r", filled, password="brand new").returncode == 0
