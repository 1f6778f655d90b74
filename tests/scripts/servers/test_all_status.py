"""``scripts/servers/all.sh status`` tells a running server from one whose processes died."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ALL = Path(__file__).resolve().parents[3] / "scripts" / "servers" / "all.sh"


def status(servers: Path, name: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PANNIER_SERVERS_DIR": str(servers)}
    return subprocess.run(
        ["bash", str(ALL), "status", name], env=env, capture_output=True, text=True, timeout=30
    )


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_status_checks_the_recorded_pids(tmp_path: Path) -> None:
    assert status(tmp_path, "demo").stdout.strip() == "demo: stopped"
    (tmp_path / "demo.env").write_text("HOST=127.0.0.1\n")
    (tmp_path / "demo.pid").write_text(f"{os.getpid()}\n")
    alive = status(tmp_path, "demo")
    assert alive.returncode == 0 and alive.stdout.strip() == f"demo: running (pids {os.getpid()})"
    gone = dead_pid()
    (tmp_path / "demo.pid").write_text(f"{os.getpid()}\n{gone}\n")
    broken = status(tmp_path, "demo")
    assert broken.returncode == 1 and f"BROKEN (pids {gone} gone" in broken.stdout
