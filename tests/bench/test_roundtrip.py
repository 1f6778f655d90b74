"""bench/roundtrip.py on a small real tree: the table, the exit status, the cleaning up.

The script is run as users run it, in a process of its own, with the real pannier and the
real stand-alone restore script; the remote targets use the local test servers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pannier import get_backend_object

from tests.servers import require_server

TOP = Path(__file__).resolve().parents[2]
SCRIPT = TOP / "bench" / "roundtrip.py"


def _tree(root: Path) -> Path:
    """A small tree: text, a binary, a symlink, an xattr, an odd mode and an exact mtime."""
    (root / "docs" / "deep").mkdir(parents=True)
    for i in range(40):
        (root / "docs" / f"page-{i:02d}.txt").write_text(f"page {i}\n" * 50)
    (root / "bin.dat").write_bytes(os.urandom(300_000))
    os.symlink("docs/page-01.txt", root / "link")
    os.setxattr(root / "docs" / "page-02.txt", "user.test", b"value")
    os.chmod(root / "docs" / "deep", 0o750)
    os.utime(root / "docs" / "page-03.txt", ns=(1, 1_600_000_000_123_456_789))
    return root


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, dict]:
    """Run the script on the small tree; return exit status, stdout and the JSON result."""
    results = tmp_path / "result.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--dataset",
            str(tmp_path / "tree"),
            "--workdir",
            str(tmp_path / "work"),
            "--results",
            str(results),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    result = json.loads(results.read_text()) if results.exists() else {}
    return proc.returncode, proc.stdout + proc.stderr, result


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return _tree(tmp_path / "tree")


def test_file_round_trip_and_stand_alone_restore_are_identical(tmp_path: Path, tree: Path) -> None:
    code, out, result = _run(tmp_path, "--targets", "file")
    assert code == 0, out
    rows = {r["target"]: r for r in result["rows"]}
    assert set(rows) == {"file", "file (stand-alone)"}
    assert all(r["identical"] and r["error"] is None for r in rows.values())
    assert rows["file"]["repo_bytes"] > 300_000  # the random binary cannot shrink
    assert rows["file"]["backup_s"] > 0 and rows["file"]["restore_s"] > 0
    assert "| file | `file://" in out and "| yes |" in out
    assert "2 of 2 round trips identical" in out
    # repositories and restored trees are gone; only the log stays
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["roundtrip.log"]
    assert "pannier-roundtrip-password" not in (tmp_path / "work" / "roundtrip.log").read_text()


def test_a_failing_repository_fails_the_run_with_its_error(tmp_path: Path, tree: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the repository's parent should be")
    code, out, result = _run(tmp_path, f"file://{blocker}/repo")
    assert code == 1, out
    [row] = result["rows"]
    assert not row["identical"]
    assert row["error"].startswith("init failed (exit ")
    assert "| FAILED |" in out and "0 of 1 round trips identical" in out
    assert blocker.read_text().startswith("a file")  # the cleanup touched nothing of it


def test_unknown_target_and_stopped_server_are_usage_errors(tmp_path: Path, tree: Path) -> None:
    code, out, _ = _run(tmp_path, "--targets", "file,ftp")
    assert code == 2 and "unknown target 'ftp'" in out
    env = {**os.environ, "PANNIER_SERVERS_DIR": str(tmp_path / "no-servers")}
    code, out, _ = _run(tmp_path, "--targets", "sftp", env=env)
    assert code == 2
    assert "the sshd test server is not running" in out and "all.sh start sshd" in out


def test_missing_dataset_is_a_usage_error(tmp_path: Path) -> None:
    code, out, _ = _run(tmp_path, "--targets", "file")
    assert code == 2 and "no dataset at" in out


def test_remote_round_trips_on_the_local_servers(tmp_path: Path, tree: Path) -> None:
    require_server("sshd")
    swift = require_server("swift")
    code, out, result = _run(tmp_path, "--targets", "sftp,s3,swift")
    assert code == 0, out
    rows = {r["target"]: r for r in result["rows"]}
    assert set(rows) == {"sftp", "s3", "swift"}
    assert all(r["identical"] and r["repo_bytes"] > 300_000 for r in rows.values())
    assert swift["PANNIER_TEST_S3_SECRET_KEY"] not in out
    assert "?" not in rows["s3"]["url"]  # the query (credentials, key paths) is not shown
    # the repositories are gone
    sshd = require_server("sshd")
    assert not Path(sshd["PANNIER_TEST_SFTP_ROOT"], f"roundtrip-{result['run']}").exists()
    s3 = get_backend_object(
        f"s3://pannier-roundtrip/roundtrip-{result['run']}"
        f"?endpoint={swift['PANNIER_TEST_S3_ENDPOINT']}"
        f"&access-key={swift['PANNIER_TEST_S3_ACCESS_KEY']}"
        f"&secret-key={swift['PANNIER_TEST_S3_SECRET_KEY']}"
    )
    try:
        assert s3.list() == []
    finally:
        s3.close()
