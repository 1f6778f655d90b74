"""`-r URL` and `--password-file` work before the command as well as after it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def pannier(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pannier", *args], capture_output=True, text=True, env=env
    )


def test_repository_before_and_after_the_command(tmp_path: Path) -> None:
    password = tmp_path / "password"
    password.write_text("correct horse\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANNIER_")}
    url = f"file://{tmp_path / 'repo'}"
    done = pannier(
        "-r", url, "--password-file", str(password), "init", "--encryption", "repokey", env=env
    )
    assert done.returncode == 0, done.stderr
    before = pannier("-r", url, "--password-file", str(password), "snapshots", "--json", env=env)
    after = pannier("snapshots", "-r", url, "--password-file", str(password), "--json", env=env)
    assert before.returncode == 0, before.stderr
    assert after.returncode == 0, after.stderr
    assert before.stdout == after.stdout


def test_option_after_the_command_wins(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANNIER_")}
    env["PANNIER_PASSWORD"] = "pw"
    missing = f"file://{tmp_path / 'missing'}"
    done = pannier("-r", "file:///nonexistent-before", "snapshots", "-r", missing, env=env)
    assert done.returncode == 10
    assert str(tmp_path / "missing") in done.stderr
    assert "nonexistent-before" not in done.stderr
