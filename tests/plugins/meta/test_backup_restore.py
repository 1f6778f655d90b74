"""The built-in meta plugins through a real backup and restore with the pannier command.

Ownership, permission bits (set-id included), times, symlinks, FIFOs, extended attributes
(user and trusted) and POSIX ACLs (access and default) of a source tree come back
identical, as ``stat``, ``getfattr`` and ``getfacl`` report them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="ownership and trusted.* need root")


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, f"{args}: {result.stderr}"
    return result.stdout


def describe(root: Path) -> str:
    """Everything the meta plugins restore, as the standard tools print it."""
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    return "\n".join(
        [
            run("getfacl", "-R", "-n", "-p", ".", cwd=root),
            run("getfattr", "-R", "-h", "-d", "-m", "-", ".", cwd=root),
            run("stat", "-c", "%n %F %A %u %g %Y %s %N", *names, cwd=root),
        ]
    )


def test_backup_and_restore_keep_every_kind_of_metadata(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "d" / "sub").mkdir(parents=True)
    (src / "a.txt").write_bytes(b"hello\n")
    (src / "d" / "tool").write_bytes(b"#!/bin/sh\n")
    (src / "d" / "sub" / "deep").write_bytes(b"x" * 5000)
    os.symlink("a.txt", src / "link")
    os.mkfifo(src / "pipe")
    os.setxattr(src / "a.txt", "user.note", b"hi")
    os.setxattr(src / "d" / "tool", "trusted.flag", b"\x00\x01")
    run("setfacl", "-m", "u:65534:rw,g:4:r", src / "a.txt")
    run("setfacl", "-d", "-m", "u:65534:rx", src / "d")
    os.chown(src / "d" / "tool", 1000, 1001)
    os.chmod(src / "d" / "tool", 0o4751)
    os.chmod(src / "d" / "sub", 0o700)
    for path in (src / "a.txt", src / "d" / "sub" / "deep", src / "d" / "sub", src / "d"):
        os.utime(path, ns=(0, 978_307_200_123_456_789))
    os.utime(src / "link", ns=(0, 978_307_200_000_000_000), follow_symlinks=False)

    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PANNIER_")},
        "PANNIER_REPOSITORY": (tmp_path / "repo").as_uri(),
        "PANNIER_PASSWORD": "correct horse",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    pannier = (sys.executable, "-m", "pannier")
    run(*pannier, "init", env=env)
    run(*pannier, "backup", src, env=env)
    out = tmp_path / "out"
    run(*pannier, "restore", "latest", "-t", out, env=env)

    assert describe(out) == describe(src)
    assert "user:65534:rw-" in describe(out) and "trusted.flag" in describe(out)
