"""bench/bench_backends.py runs end to end on a tiny load (figures are not checked here:
speed is what the benchmark prints, never a test's assertion)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]


def test_file_targets_produce_rows_with_ratios(tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    result = subprocess.run(
        [sys.executable, str(TOP / "bench" / "bench_backends.py"), "--targets", "file,file-rclone",
         "--small", "2", "--large", "1", "--names", "50", "--repeat", "1", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(out.read_text())
    kinds = sorted((r["target"], r["kind"], r.get("size", 0)) for r in rows)
    assert kinds == [
        ("file", "listing", 0), ("file", "listing", 0), ("file", "transfer", 1 << 20),
        ("file", "transfer", 16 << 20), ("file-rclone", "listing", 0),
        ("file-rclone", "transfer", 1 << 20), ("file-rclone", "transfer", 16 << 20),
    ]  # fmt: skip
    assert all(r["baseline"] in ("cp", "rclone copy", "rclone lsl", "find -printf") for r in rows)
    assert all(r.get("put_ratio", 1) > 0 and r.get("ratio", 1) > 0 for r in rows)
    # file://'s listing is compared with its peer (rclone lsl); find is a reference only,
    # outside the worst ratio.
    listings = {r["baseline"]: r for r in rows if (r["target"], r["kind"]) == ("file", "listing")}
    assert listings["rclone lsl"]["ratio"] > 0 and "reference_ratio" not in listings["rclone lsl"]
    find = listings["find -printf"]
    assert find["reference_ratio"] > 0 and "ratio" not in find
    assert "reference, not the peer" in result.stdout
    assert "worst ratio" in result.stdout


def test_unknown_target_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, str(TOP / "bench" / "bench_backends.py"), "--targets", "nosuch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "unknown target 'nosuch'" in result.stderr


def test_a_target_whose_server_is_not_running_is_skipped(tmp_path: Path) -> None:
    """A target module raises the script's own Unavailable (the script registers itself
    as ``bench_backends`` for them): the run says "skipped" and goes on."""
    no_servers = tmp_path / "servers"
    no_servers.mkdir()
    result = subprocess.run(
        [sys.executable, str(TOP / "bench" / "bench_backends.py"), "--targets", "s3,swift,sftp",
         "--small", "1", "--large", "1", "--names", "10", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PANNIER_SERVERS_DIR": str(no_servers)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    skipped = [line.split()[0] for line in result.stdout.splitlines() if " skipped: " in line]
    assert skipped == ["s3", "swift", "sftp"], result.stdout
    assert "test server is not running" in result.stdout
