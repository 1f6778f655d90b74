"""Shared fixtures and helpers of the reliability suites.

Every reliability test drives the real command line: ``pannier`` runs as a subprocess
(``[sys.executable, "-m", "pannier", ...]``) with the password in ``PANNIER_PASSWORD``, on
real files and real ``file://`` repositories. The helpers here are imported by several
suites (crash, concurrency, faults, corruption, hostile input, secrets): their names and
signatures are stable.

Helpers (plain functions, importable with ``from tests.reliability.conftest import ...``):

* :func:`pannier_env`, :func:`pannier_argv`, :func:`run_pannier`, :func:`ok_pannier`,
  :func:`start_pannier`, :func:`json_lines`: run the CLI;
* :func:`make_dataset`, :func:`mutate_dataset`: a small real dataset, deterministic from a
  seed (nested directories, empty, small, chunk-sized and multi-chunk files of random
  bytes, a compressible file, a symlink, a hard link);
* :func:`tree_facts`, :func:`assert_same_tree`, :func:`restore_and_compare`: restore a
  snapshot and compare it with what was backed up;
* :func:`init_repo`, :func:`backup`, :func:`snapshots`, :func:`check_read_data`,
  :func:`repo_objects`, :func:`lock_objects`: a repository and what it holds.

Fixtures: ``dataset`` (a fresh dataset directory), ``repo`` (an initialised encrypted
``file://`` repository), ``plain_repo`` (the same without encryption).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

#: The password of every repository the reliability suites create.
PASSWORD = "reliability test password"

#: Seconds any single CLI call may take before the test fails.
CLI_TIMEOUT = 600.0

KiB = 1024
MiB = 1024 * 1024


# --------------------------------------------------------------------------- running the CLI


def pannier_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a CLI subprocess: this one's, ``PANNIER_PASSWORD`` set, no
    ambient repository or password sources, then ``extra`` on top."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "PANNIER_REPOSITORY",
            "PANNIER_PASSWORD_FILE",
            "PANNIER_PASSWORD_COMMAND",
            "PANNIER_NEW_PASSWORD",
        }
    }
    env["PANNIER_PASSWORD"] = PASSWORD
    env.update(extra or {})
    return env


def pannier_argv(*args: str) -> list[str]:
    """The argument vector that runs ``pannier ARGS...`` with this interpreter."""
    return [sys.executable, "-m", "pannier", *args]


def run_pannier(
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = CLI_TIMEOUT,
    input: str | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``pannier ARGS...`` to completion and return it (stdout and stderr captured as
    text, undecodable bytes kept as surrogate escapes). ``env`` is added to
    :func:`pannier_env`."""
    return subprocess.run(
        pannier_argv(*args),
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=pannier_env(env),
        timeout=timeout,
        input=input,
        cwd=cwd,
        check=False,
    )


def ok_pannier(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = CLI_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    """:func:`run_pannier` that fails the test (showing both streams) unless the exit
    code is 0."""
    done = run_pannier(*args, env=env, timeout=timeout)
    assert done.returncode == 0, (
        f"pannier {' '.join(args)} exited {done.returncode}\n"
        f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    return done


def start_pannier(
    *args: str, env: Mapping[str, str] | None = None, cwd: str | Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``pannier ARGS...`` in the background (stdout and stderr piped, stdin closed)
    in its own session, so that killing it never reaches the test process."""
    return subprocess.Popen(
        pannier_argv(*args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=pannier_env(env),
        cwd=cwd,
        start_new_session=True,
    )


def json_lines(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects of a ``--json`` output, one per non-empty line."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------- datasets


def _random_bytes(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


def make_dataset(
    root: Path,
    *,
    seed: int = 0,
    files: int = 24,
    total_bytes: int = 6 * MiB,
    links: bool = True,
) -> Path:
    """Create (or fill) the directory ``root`` with a dataset determined by ``seed`` and
    return ``root``.

    About ``total_bytes`` of incompressible random content spread over ``files`` regular
    files in nested directories (sizes from 0 to several chunks, so that packs, chunk
    boundaries and deduplication are all exercised), plus one compressible text file, one
    empty directory, and with ``links`` a symlink and a hard link."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    dirs = [root, root / "docs", root / "docs" / "deep" / "er", root / "media", root / "src"]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    (root / "empty-dir").mkdir(exist_ok=True)
    # Sizes: a few tiny ones, the rest weighted random, scaled to total_bytes.
    weights = [rng.random() ** 2 for _ in range(files)]
    scale = total_bytes / max(sum(weights), 1e-9)
    for i in range(files):
        size = 0 if i == 0 else int(weights[i] * scale)
        if i in (1, 2):
            size = rng.randint(1, 4 * KiB)
        path = dirs[i % len(dirs)] / f"file-{seed}-{i:03d}.bin"
        path.write_bytes(_random_bytes(rng, size))
    words = [f"word{rng.randint(0, 500)}" for _ in range(2000)]
    (root / "src" / "notes.txt").write_text(" ".join(words) * 20 + "\n")
    # A file whose content repeats another's: stored once.
    first = sorted(p for p in root.rglob("*.bin") if p.stat().st_size > 0)[0]
    (root / "docs" / "copy-of-first.bin").write_bytes(first.read_bytes())
    if links:
        link = root / "link-to-notes"
        if not link.is_symlink():
            link.symlink_to("src/notes.txt")
        hard = root / "media" / "hardlink.txt"
        if not hard.exists():
            os.link(root / "src" / "notes.txt", hard)
    (root / "src" / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "src" / "script.sh").chmod(0o755)
    return root


def mutate_dataset(root: Path, *, seed: int, new_bytes: int = 1 * MiB) -> None:
    """Change the dataset at ``root`` deterministically from ``seed``: add a new file of
    ``new_bytes`` random bytes, append to one file, delete one other file."""
    rng = random.Random(seed ^ 0x5EED)
    (root / "src" / f"new-{seed}.bin").write_bytes(_random_bytes(rng, new_bytes))
    bins = sorted(p for p in root.rglob("file-*.bin") if p.is_file())
    if bins:
        with open(bins[rng.randrange(len(bins))], "ab") as f:
            f.write(_random_bytes(rng, 1000))
    if len(bins) > 2:
        victim = bins[rng.randrange(len(bins))]
        if victim.exists():
            victim.unlink()


# --------------------------------------------------------------------------- comparing trees


def tree_facts(root: Path) -> dict[str, tuple[Any, ...]]:
    """What a restore must reproduce, per relative path (``""`` for ``root`` itself):
    type, permission bits, and for a regular file its size, SHA-256 and modification time
    (ns), for a symlink its target. Hard-linked files are grouped by a tag naming the
    first path of the group."""
    facts: dict[str, tuple[Any, ...]] = {}
    inodes: dict[tuple[int, int], str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in [*dirnames, *sorted(filenames)]:
            full = Path(dirpath) / name
            rel = str(full.relative_to(root))
            st = full.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                facts[rel] = ("symlink", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                facts[rel] = ("dir", mode)
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(full.read_bytes()).hexdigest()
                group = ""
                if st.st_nlink > 1:
                    group = inodes.setdefault((st.st_dev, st.st_ino), rel)
                facts[rel] = ("file", mode, st.st_size, digest, st.st_mtime_ns, group)
            else:
                facts[rel] = ("other", stat.S_IFMT(st.st_mode), mode)
    return facts


def assert_same_tree(expected: Path | Mapping[str, tuple[Any, ...]], actual: Path) -> None:
    """Fail, naming the first differing path, unless the tree ``actual`` has exactly the
    facts (:func:`tree_facts`) of ``expected`` (a directory or facts recorded earlier).
    Hard-link groups compare by membership only."""
    want = dict(tree_facts(expected) if isinstance(expected, Path) else expected)
    got = tree_facts(actual)

    def norm(facts: dict[str, tuple[Any, ...]]) -> dict[str, tuple[Any, ...]]:
        return {k: ((*v[:-1], bool(v[-1])) if v[0] == "file" else v) for k, v in facts.items()}

    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing, f"missing after restore: {missing[:5]}"
    assert not extra, f"unexpected after restore: {extra[:5]}"
    nw, ng = norm(want), norm(got)
    for rel in sorted(nw):
        assert nw[rel] == ng[rel], f"{rel}: expected {nw[rel]}, restored {ng[rel]}"


def restore_and_compare(
    url: str,
    snapshot: str,
    expected: Path | Mapping[str, tuple[Any, ...]],
    target: Path,
    *,
    env: Mapping[str, str] | None = None,
) -> None:
    """Restore ``snapshot`` of the repository ``url`` into the new directory ``target``
    and assert it equals ``expected`` (a directory, or :func:`tree_facts` taken when the
    snapshot was made)."""
    assert not target.exists() or not any(target.iterdir()), f"{target} is not empty"
    ok_pannier("restore", snapshot, "-r", url, "--target", str(target), env=env)
    assert_same_tree(expected, target)


# --------------------------------------------------------------------------- repositories


@dataclass(frozen=True)
class RepoHandle:
    """A ``file://`` repository of a test: its directory and its URL."""

    path: Path
    url: str


def init_repo(
    path: Path, *, encryption: str = "repokey", compression: int | None = None
) -> RepoHandle:
    """Create a repository in the directory ``path`` with ``pannier init``."""
    url = path.as_uri()
    args = ["init", "-r", url, "--encryption", encryption]
    if compression is not None:
        args += ["--compression", str(compression)]
    ok_pannier(*args)
    return RepoHandle(path, url)


def backup(
    url: str, source: Path, *extra: str, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run ``pannier backup SOURCE --json`` (exit code 0 required) and return its summary
    object (``snapshot_id``, ``bytes_added``, ``files_new``, ...)."""
    done = ok_pannier("backup", str(source), "-r", url, "--json", *extra, env=env)
    summaries = [o for o in json_lines(done.stdout) if o.get("message_type") == "summary"]
    assert len(summaries) == 1, done.stdout
    return summaries[0]


def snapshots(url: str, *, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """The snapshots of the repository, as ``pannier snapshots --json`` lists them."""
    out = json.loads(ok_pannier("snapshots", "-r", url, "--json", env=env).stdout)
    assert isinstance(out, list)
    return out


def check_read_data(url: str, *, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Run ``pannier check --read-data --json``; fail unless it passes; return its result."""
    done = ok_pannier("check", "-r", url, "--read-data", "--json", env=env)
    objs = json_lines(done.stdout)
    assert objs, done.stdout
    return objs[-1]


def repo_objects(path: Path, prefix: str = "") -> dict[str, int]:
    """The objects of a ``file://`` repository at ``path`` whose names start with
    ``prefix`` (``"data-"``, ``"index-"``, ``"snapshot-"``, ``"lock-"``...): name -> size.
    Temporary files of an upload in progress are included: they are what a crash leaves."""
    out: dict[str, int] = {}
    for dirpath, _dirs, names in os.walk(path):
        for name in names:
            if name.startswith(prefix):
                full = Path(dirpath) / name
                try:
                    out[str(full.relative_to(path))] = full.stat().st_size
                except FileNotFoundError:
                    continue
    return out


def lock_objects(path: Path) -> list[str]:
    """The names of the lock objects in the ``file://`` repository at ``path``."""
    return sorted(Path(n).name for n in repo_objects(path) if Path(n).name.startswith("lock-"))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A fresh dataset (:func:`make_dataset`, seed 0) in ``tmp_path / "data"``."""
    return make_dataset(tmp_path / "data")


@pytest.fixture
def repo(tmp_path: Path) -> RepoHandle:
    """An initialised encrypted ``file://`` repository in ``tmp_path / "repo"``."""
    return init_repo(tmp_path / "repo")


@pytest.fixture
def plain_repo(tmp_path: Path) -> RepoHandle:
    """An initialised unencrypted ``file://`` repository in ``tmp_path / "plain-repo"``."""
    return init_repo(tmp_path / "plain-repo", encryption="none")
