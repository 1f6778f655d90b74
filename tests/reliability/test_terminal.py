"""Hostile names against the terminal: a snapshot whose names hold escape sequences,
control characters, invalid UTF-8 and bidirectional overrides is listed, compared,
restored and verified by the real CLI, and no byte that can drive a terminal reaches
stdout or stderr; every name is printed by the documented escaping rule
(:mod:`pannier.terminal`).
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pannier.backend_registry import get_backend
from pannier.repo import Repository

from tests.reliability.conftest import PASSWORD, RepoHandle, init_repo, pannier_argv, pannier_env
from tests.reliability.test_hostile import LINK, Crafter, rec

#: (name as stored, name as printed by ls): each would do something to a terminal.
HOSTILE = [
    (b"title\x1b]0;pwned\x07", "title\\x1b]0;pwned\\x07"),  # sets the window title
    (b"clear\x1b[2J\x1b[H", "clear\\x1b[2J\\x1b[H"),  # clears the screen
    (b"cr\rfake-name", "cr\\x0dfake-name"),  # overwrites the line
    (b"nl\nfake line", "nl\\x0afake line"),  # fakes a second entry
    (b"bs\x08\x08\x08xyz", "bs\\x08\\x08\\x08xyz"),
    (b"del\x7f", "del\\x7f"),
    (b"bad-utf8-\xff\xfe", "bad-utf8-\\xff\\xfe"),
    ("c1-csi-\u009b2J".encode(), "c1-csi-\\u009b2J"),  # an 8-bit CSI
    ("bidi-\u202etxt.exe".encode(), "bidi-\\u202etxt.exe"),  # shows as exe.txt
    ("zero\u200bwidth".encode(), "zero\\u200bwidth"),
    (b"back\\x1bslash", "back\\\\x1bslash"),  # a literal backslash is doubled
    ("caf\u00e9-\u65e5\u672c-ok".encode(), "caf\u00e9-\u65e5\u672c-ok"),  # printable: as is
]
#: A symlink whose target holds an escape sequence, and a file beneath it (refused by
#: restore with a warning that names it).
LINK_NAME = b"link\x1b[31m"
LINK_TARGET = b"/tmp/\x1b[5mtarget"

#: Bytes no output line may hold: C0 controls but the newline, DEL, UTF-8 of C1 controls
#: and of bidirectional overrides.
FORBIDDEN = re.compile(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RepoHandle, str, str]]:
    """A repository with an honest snapshot and a hostile one: ``(repo, honest, hostile)``."""
    handle = init_repo(tmp_path_factory.mktemp("terminal") / "repo")
    repo = Repository.open(get_backend(handle.url), PASSWORD)
    try:
        with repo.lock():
            c = Crafter(repo)
            honest = c.snapshot([c.file([b"plain.txt"], b"hello\n")])
            records = [c.file([name], b"x") for name, _ in HOSTILE]
            records.append(rec([LINK_NAME], "l", mode=LINK, data=LINK_TARGET))
            records.append(c.file([LINK_NAME, b"beneath\x1b[0m"], b"y"))
            hostile_id = c.snapshot(records)
    finally:
        repo.close()
    yield handle, honest, hostile_id


def run_raw(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Run ``pannier ARGS...``; stdout and stderr as bytes."""
    return subprocess.run(
        pannier_argv(*args), capture_output=True, env=pannier_env(), timeout=120, check=False
    )


def assert_terminal_safe(done: subprocess.CompletedProcess[bytes]) -> str:
    """stdout and stderr are valid UTF-8 without a byte that drives a terminal; return
    them decoded."""
    for stream in (done.stdout, done.stderr):
        bad = FORBIDDEN.search(stream)
        assert bad is None, f"terminal control {bad.group()!r} printed: {stream!r}"
        stream.decode("utf-8")  # raises on invalid UTF-8
    assert b"Traceback" not in done.stderr, done.stderr
    return (done.stdout + done.stderr).decode("utf-8")


def test_ls_escapes_every_name(hostile: tuple[RepoHandle, str, str]) -> None:
    repo, _, snap = hostile
    done = run_raw("ls", snap, "-r", repo.url)
    assert done.returncode == 0, done.stderr
    lines = assert_terminal_safe(done).splitlines()
    for _, shown in HOSTILE:
        assert "/" + shown in lines, (shown, lines)
    assert "/link\\x1b[31m/beneath\\x1b[0m" in lines
    # one line per entry: no name split the listing
    assert len(lines) == 1 + len(HOSTILE) + 2


def test_ls_long_escapes_link_targets(hostile: tuple[RepoHandle, str, str]) -> None:
    repo, _, snap = hostile
    done = run_raw("ls", "-l", snap, "-r", repo.url)
    assert done.returncode == 0, done.stderr
    text = assert_terminal_safe(done)
    assert "/link\\x1b[31m -> /tmp/\\x1b[5mtarget" in text


def test_ls_json_keeps_the_exact_names(hostile: tuple[RepoHandle, str, str]) -> None:
    repo, _, snap = hostile
    done = run_raw("--json", "ls", snap, "-r", repo.url)
    assert done.returncode == 0, done.stderr
    assert_terminal_safe(done)
    paths = {json.loads(line)["path"] for line in done.stdout.splitlines()}
    for name, _ in HOSTILE:
        assert "/" + name.decode("utf-8", "surrogateescape") in paths


def test_diff_escapes_every_name(hostile: tuple[RepoHandle, str, str]) -> None:
    repo, honest, snap = hostile
    done = run_raw("diff", honest, snap, "-r", repo.url)
    assert done.returncode == 0, done.stderr
    lines = assert_terminal_safe(done).splitlines()
    for _, shown in HOSTILE:
        assert f"+    /{shown}" in lines, (shown, lines)
    assert "-    /plain.txt" in lines


def test_restore_and_verify_messages_escape_names(
    hostile: tuple[RepoHandle, str, str], tmp_path: Path
) -> None:
    repo, _, snap = hostile
    target = tmp_path / "target"
    done = run_raw("restore", snap, "-r", repo.url, "--target", str(target))
    text = assert_terminal_safe(done)
    # the file beneath the symlink is refused, and the refusal names it escaped
    assert done.returncode == 1, text
    assert "link\\x1b[31m" in text, text
    assert (target / "clear\x1b[2J\x1b[H").read_bytes() == b"x"  # restored under its name
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_raw("verify", snap, str(empty), "-r", repo.url)
    text = assert_terminal_safe(done)
    assert done.returncode != 0
    assert "clear\\x1b[2J\\x1b[H" in text, text


def test_snapshots_escapes_paths(tmp_path: Path) -> None:
    handle = init_repo(tmp_path / "repo")
    repo = Repository.open(get_backend(handle.url), PASSWORD)
    try:
        with repo.lock():
            from pannier.repo.snapshot import Snapshot

            c = Crafter(repo)
            ids = c.snapshot([])
            tree = repo.read_snapshot(ids).streams["tree"]
            repo.save_snapshot(
                Snapshot(
                    hostname="host\x1b[2J",
                    paths=["/src\x1b]0;pwned\x07"],
                    tags=["tag\r"],
                    version=1,
                    streams={"tree": tree},
                )
            )
    finally:
        repo.close()
    done = run_raw("snapshots", "-r", handle.url)
    assert done.returncode == 0, done.stderr
    text = assert_terminal_safe(done)
    assert "/src\\x1b]0;pwned\\x07" in text
