"""Run repository code in a real child process (for kill and lock tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

PRELUDE = """
import sys, os, time
from pathlib import Path
from tests.core.repo.conftest import DirBackend, PASSWORD
from pannier.repo import Repository
"""


def spawn(code: str, *, cwd: Path | None = None) -> subprocess.Popen[str]:
    """Start a Python child running ``PRELUDE + code`` with stdout piped (line-buffered)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(cwd or ROOT),
    )


def wait_for_line(proc: subprocess.Popen[str], expected: str) -> None:
    """Read the child's stdout until a line equal to ``expected``; fail with its stderr."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == expected:
            return
    proc.wait()
    raise AssertionError(
        f"child exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}"
    )
