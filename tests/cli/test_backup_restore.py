"""The engine's commands as users run them: real ``pannier`` subprocesses on a real
``file://`` repository (init, backup, snapshots, ls, diff, restore, dump, verify,
forget), their exit codes and their ``--json`` output."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.core.engine.conftest import assert_same_tree, make_tree

PASSWORD = "cli test password"


#: Run as a user whose permissions are checked: the same user without the capabilities
#: that let root read any file (root's own files stay readable, e.g. the environment).
NO_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def run(
    *args: str, env: dict[str, str] | None = None, checked: bool = False, **kw: Any
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PANNIER_PASSWORD": PASSWORD, **(env or {})}
    cmd = [sys.executable, "-m", "pannier", *args]
    if checked and os.geteuid() == 0:
        cmd = [*NO_DAC, *cmd]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        errors="surrogateescape",
        env=full_env,
        timeout=300,
        **kw,
    )


def ok(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    done = run(*args, **kw)
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A repository with two snapshots of a source tree (the second after changes)."""
    base = tmp_path_factory.mktemp("cli")
    src = base / "src"
    make_tree(src)
    url = (base / "repo").as_uri()
    ok("init", "-r", url)
    first = json.loads(
        ok("backup", str(src), "-r", url, "--json", "--tag", "one").stdout.splitlines()[-1]
    )
    (src / "new.txt").write_text("new\n")
    (src / "big.bin").unlink()
    with open(src / "dir" / "deeper" / "leaf", "a") as f:
        f.write("more\n")
    second = json.loads(ok("backup", str(src), "-r", url, "--json").stdout.splitlines()[-1])
    return {"base": base, "src": src, "url": url, "first": first, "second": second}


def test_backup_summaries(world: dict[str, Any]) -> None:
    first, second = world["first"], world["second"]
    assert first["message_type"] == "summary" and first["files_new"] == 6
    assert second["parent"] == first["snapshot_id"]
    assert second["files_new"] == 1 and second["files_changed"] == 1
    assert second["files_unchanged"] == 4 and second["bytes_read"] == len("new\n") + len(
        "leaf\nmore\n"
    )


def test_snapshots_table_and_json(world: dict[str, Any]) -> None:
    table = ok("snapshots", "-r", world["url"]).stdout
    assert world["first"]["snapshot_id"][:8] in table and "2 snapshots" in table
    snaps = json.loads(ok("snapshots", "-r", world["url"], "--json").stdout)
    assert [s["id"] for s in snaps] == [
        world["first"]["snapshot_id"],
        world["second"]["snapshot_id"],
    ]
    assert snaps[0]["tags"] == ["one"] and snaps[0]["paths"] == [str(world["src"])]
    tagged = json.loads(ok("snapshots", "-r", world["url"], "--json", "--tag", "one").stdout)
    assert len(tagged) == 1


def test_restore_latest_is_identical(world: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "restored"
    done = ok("restore", "latest", "--target", str(target), "-r", world["url"])
    assert "restored snapshot" in done.stdout
    assert_same_tree(world["src"], target)


def test_restore_refuses_non_empty_target(world: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "precious").write_text("keep me")
    done = run("restore", "latest", "--target", str(tmp_path), "-r", world["url"])
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"pannier: error: restore target {str(tmp_path)!r} is not empty; use --overwrite to "
        "restore into it (only files that differ are rewritten)"
    ]
    assert (tmp_path / "precious").read_text() == "keep me"


def test_restore_include_and_json(world: dict[str, Any], tmp_path: Path) -> None:
    target = tmp_path / "t"
    done = ok(
        "restore",
        world["first"]["snapshot_id"][:10],
        "--target",
        str(target),
        "--include",
        "/big.bin",
        "-r",
        world["url"],
        "--json",
    )
    summary = json.loads(done.stdout.splitlines()[-1])
    assert summary["files_restored"] == 1 and summary["errors"] == []
    assert sorted(os.listdir(target)) == ["big.bin"]


def test_ls(world: dict[str, Any]) -> None:
    plain = ok("ls", "latest", "-r", world["url"]).stdout.splitlines()
    assert plain[0] == "/" and "/dir/deeper/leaf" in plain and "/new.txt" in plain
    assert "/caf\\xe9-\\xff.bin" in plain  # bytes that are not UTF-8, escaped
    sub = ok("ls", "latest", "/dir", "-r", world["url"]).stdout.splitlines()
    assert sub == ["/dir", "/dir/deeper", "/dir/deeper/leaf", "/dir/hardlink", "/dir/link"]
    long = ok("ls", "latest", "/dir/link", "-l", "-r", world["url"]).stdout
    assert long.startswith("lrwxrwxrwx") and long.rstrip().endswith("/dir/link -> ../small.txt")
    nodes = [
        json.loads(line)
        for line in ok("ls", "latest", "/dir", "--json", "-r", world["url"]).stdout.splitlines()
    ]
    assert {n["path"]: n["type"] for n in nodes}["/dir/deeper"] == "dir"
    missing = run("ls", "latest", "/nope", "-r", world["url"])
    assert missing.returncode == 2 and "no '/nope' in snapshot" in missing.stderr


def test_dump(world: dict[str, Any], tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "pannier",
        "dump",
        world["first"]["snapshot_id"],
        "big.bin",
        "-r",
        world["url"],
    ]
    done = subprocess.run(
        cmd, capture_output=True, env={**os.environ, "PANNIER_PASSWORD": PASSWORD}, timeout=120
    )
    assert done.returncode == 0
    ok(
        "restore",
        world["first"]["snapshot_id"],
        "--include",
        "/big.bin",
        "--target",
        str(tmp_path / "r"),
        "-r",
        world["url"],
    )
    assert done.stdout == (tmp_path / "r" / "big.bin").read_bytes()
    ok("dump", "latest", "/small.txt", "-o", str(tmp_path / "small"), "-r", world["url"])
    assert (tmp_path / "small").read_text() == "hello\n"  # a hard link dumps its content
    not_file = run("dump", "latest", "/dir", "-r", world["url"])
    assert not_file.returncode == 2 and "is not a file" in not_file.stderr


def test_diff(world: dict[str, Any]) -> None:
    first, second = world["first"]["snapshot_id"], world["second"]["snapshot_id"]
    lines = ok("diff", first, second, "-r", world["url"]).stdout.splitlines()
    assert "+    /new.txt" in lines and "-    /big.bin" in lines
    assert "M    /dir/deeper/leaf" in lines
    objs = [
        json.loads(line)
        for line in ok("diff", first, second, "--json", "-r", world["url"]).stdout.splitlines()
    ]
    assert (
        objs[-1]["message_type"] == "summary"
        and objs[-1]["added"] == 1
        and objs[-1]["removed"] == 1
    )


def test_verify(world: dict[str, Any]) -> None:
    same = ok("verify", "latest", str(world["src"]), "-r", world["url"])
    assert "matches the source" in same.stdout
    old = run("verify", world["first"]["snapshot_id"], str(world["src"]), "-r", world["url"])
    assert old.returncode == 1
    assert "-    /big.bin: not in the source" in old.stdout
    assert "+    /new.txt: not in the snapshot" in old.stdout
    assert "M    /dir/deeper/leaf: size was 5, is 10" in old.stdout


def test_wrong_password_and_missing_repository(world: dict[str, Any], tmp_path: Path) -> None:
    wrong = run("snapshots", "-r", world["url"], env={"PANNIER_PASSWORD": "nope"})
    assert wrong.returncode == 12 and len(wrong.stderr.strip().splitlines()) == 1
    missing = run("backup", str(world["src"]), "-r", (tmp_path / "none").as_uri())
    assert missing.returncode == 10 and len(missing.stderr.strip().splitlines()) == 1


def test_missing_source_is_one_line_and_no_snapshot(world: dict[str, Any], tmp_path: Path) -> None:
    before = json.loads(ok("snapshots", "--json", "-r", world["url"]).stdout)
    done = run("backup", str(tmp_path / "nope"), "-r", world["url"])
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"pannier: error: source {str(tmp_path / 'nope')!r} cannot be read: "
        "No such file or directory"
    ]
    assert json.loads(ok("snapshots", "--json", "-r", world["url"]).stdout) == before


def test_unreadable_files_warn_and_exit_3(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "closed").mkdir(parents=True)
    (src / "open.txt").write_text("fine\n")
    (src / "secret.txt").write_text("secret\n")
    (src / "closed" / "inside").write_text("x")
    os.chmod(src / "secret.txt", 0o000)
    os.link(src / "secret.txt", src / "zlink")  # a later name of the unreadable inode
    os.chmod(src / "closed", 0o000)
    url = (tmp_path / "repo").as_uri()
    ok("init", "-r", url)
    done = run("backup", str(src), "-r", url, checked=True)
    assert done.returncode == 3, done.stderr
    assert f"{src}/secret.txt: Permission denied" in done.stderr
    assert f"{src}/closed: cannot list directory: Permission denied" in done.stderr
    listing = ok("ls", "latest", "-r", url).stdout.splitlines()
    assert "/open.txt" in listing and "/secret.txt" not in listing and "/closed" in listing
    assert f"{src}/zlink: hard link to a file that could not be read" in done.stderr
    assert "/zlink" not in listing


def test_progress_nothing_on_a_pipe_json_lines_with_json(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    url = (tmp_path / "repo").as_uri()
    ok("init", "-r", url)
    piped = ok("backup", str(src), "-r", url)
    assert piped.stderr == ""
    assert "snapshot" in piped.stdout and "saved" in piped.stdout
    js = ok("backup", str(src), "-r", url, "--json")
    lines = [json.loads(line) for line in js.stdout.splitlines()]
    assert lines[-1]["message_type"] == "summary"
    statuses = [x for x in lines if x["message_type"] == "status"]
    assert statuses and statuses[-1]["files_done"] == statuses[-1]["total_files"]


def test_progress_line_on_a_terminal(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    url = (tmp_path / "repo").as_uri()
    ok("init", "-r", url)
    ok("backup", str(src), "-r", url)
    pid, fd = pty.fork()
    if pid == 0:  # child: stderr is the terminal
        os.environ["PANNIER_PASSWORD"] = PASSWORD
        os.execv(sys.executable, [sys.executable, "-m", "pannier", "backup", str(src), "-r", url])
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    text = out.decode(errors="replace")
    assert "\r\x1b[K[" in text and " files, " in text and "ETA" in text


def test_forget(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    url = (tmp_path / "repo").as_uri()
    ok("init", "-r", url)
    for i in range(3):
        (src / "f").write_text(f"version {i}\n" * 1000)
        ok("backup", str(src), "-r", url, "--tag", "keepme" if i == 0 else "x")
    dry = json.loads(ok("forget", "--keep-last", "1", "--dry-run", "--json", "-r", url).stdout)
    assert dry["dry_run"] and len(dry["removed"]) == 2
    assert len(json.loads(ok("snapshots", "--json", "-r", url).stdout)) == 3
    done = ok("forget", "--keep-last", "1", "--keep-tag", "keepme", "--prune", "-r", url)
    assert "removed 1 snapshots" in done.stdout
    snaps = json.loads(ok("snapshots", "--json", "-r", url).stdout)
    assert [s["tags"] for s in snaps] == [["keepme"], ["x"]]
    ok("check", "--read-data", "-r", url)
    ok("restore", snaps[0]["id"], "--target", str(tmp_path / "out"), "-r", url)
    assert (tmp_path / "out" / "f").read_text() == "version 0\n" * 1000
    refused = run("forget", "-r", url)
    assert refused.returncode == 2 and "no retention rule given" in refused.stderr


def test_sqlite_and_command_sources(tmp_path: Path) -> None:
    import sqlite3

    url = (tmp_path / "repo").as_uri()
    ok("init", "-r", url)
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("create table t (n)")
    con.execute("insert into t values (42)")
    con.commit()
    con.close()
    ok("backup", "--source", "sqlite", str(db), "-r", url)
    ok("dump", "latest", "app.db", "-o", str(tmp_path / "copy.db"), "-r", url)
    assert sqlite3.connect(tmp_path / "copy.db").execute("select n from t").fetchone() == (42,)
    ok("backup", "--source", "command", "--filename", "dump.sql", "printf 'dump data'", "-r", url)
    assert ok("dump", "latest", "dump.sql", "-r", url).stdout == "dump data"
    before = ok("snapshots", "--json", "-r", url).stdout
    failed = run("backup", "--source", "command", "sh -c 'echo half; exit 3'", "-r", url)
    assert (
        failed.returncode == 1 and "exited with status 3; no snapshot was written" in failed.stderr
    )
    assert ok("snapshots", "--json", "-r", url).stdout == before


def _remote_url(kind: str, tmp_path: Path) -> str:
    import uuid

    from tests.servers import require_server

    if kind == "sftp":
        f = require_server("sshd")
        query = (
            f"key-file={f['PANNIER_TEST_SFTP_KEY_FILE']}"
            f"&known-hosts={f['PANNIER_TEST_SFTP_KNOWN_HOSTS']}"
        )
        folder = f"{f['PANNIER_TEST_SFTP_ROOT']}/engine-{uuid.uuid4().hex[:12]}"
        return (
            f"sftp://{f['PANNIER_TEST_SFTP_USER']}@{f['PANNIER_TEST_SFTP_HOST']}:"
            f"{f['PANNIER_TEST_SFTP_PORT']}/{folder}?{query}"
        )
    f = require_server("swift")  # Swift's s3api serves S3
    return (
        f"s3://engine-{uuid.uuid4().hex[:12]}/repo?endpoint={f['PANNIER_TEST_S3_ENDPOINT']}"
        f"&access-key={f['PANNIER_TEST_S3_ACCESS_KEY']}&secret-key={f['PANNIER_TEST_S3_SECRET_KEY']}"
    )


@pytest.mark.parametrize("kind", ["sftp", "s3"])
def test_round_trip_on_remote_backends(kind: str, tmp_path: Path) -> None:
    url = _remote_url(kind, tmp_path)
    src = tmp_path / "src"
    make_tree(src)
    ok("init", "-r", url)
    ok("backup", str(src), "-r", url)
    (src / "added").write_text("second\n")
    second = json.loads(ok("backup", str(src), "-r", url, "--json").stdout.splitlines()[-1])
    assert second["files_new"] == 1 and second["bytes_read"] == len("second\n")
    ok("restore", "latest", "--target", str(tmp_path / "out"), "-r", url)
    assert_same_tree(src, tmp_path / "out")
    ok("check", "--read-data", "-r", url)


def test_killed_backup_leaves_data_the_next_backup_reuses(tmp_path: Path) -> None:
    import signal
    import time

    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"f{i:02d}").write_bytes(os.urandom(4 << 20))
    repo = tmp_path / "repo"
    url = repo.as_uri()
    ok("init", "-r", url)
    env = {**os.environ, "PANNIER_PASSWORD": PASSWORD}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pannier", "backup", str(src), "-r", url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len([n for n in os.listdir(repo) if n.startswith("data-")]) >= 2:
            break
        time.sleep(0.02)
    if proc.poll() is not None:
        pytest.skip("the backup finished before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = sum(os.path.getsize(repo / n) for n in os.listdir(repo) if n.startswith("data-"))
    assert kept > 0
    assert json.loads(ok("snapshots", "--json", "-r", url).stdout) == []  # no half snapshot
    summary = json.loads(ok("backup", str(src), "-r", url, "--json").stdout.splitlines()[-1])
    assert summary["bytes_read"] == 12 * (4 << 20)
    assert summary["bytes_added"] < 12 * (4 << 20) + (1 << 20) - kept * 0.9  # packs reused
    ok("restore", "latest", "--target", str(tmp_path / "out"), "-r", url)
    for i in range(12):
        assert (tmp_path / "out" / f"f{i:02d}").read_bytes() == (src / f"f{i:02d}").read_bytes()


def test_check_names_the_files_of_a_damaged_pack(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "victim").write_bytes(os.urandom(300_000))
    (src / "ok").write_text("fine\n")
    repo = tmp_path / "repo"
    url = repo.as_uri()
    ok("init", "-r", url)
    snap = json.loads(ok("backup", str(src), "-r", url, "--json").stdout.splitlines()[-1])
    biggest = max(
        (p for p in repo.iterdir() if p.name.startswith("data-")), key=lambda p: p.stat().st_size
    )
    raw = bytearray(biggest.read_bytes())
    raw[100] ^= 0xFF
    biggest.write_bytes(bytes(raw))
    done = run("check", "--read-data", "-r", url)
    assert done.returncode == 1
    assert f"affected: {snap['snapshot_id'][:8]}:/victim (blob " in done.stdout
    assert "/ok" not in done.stdout
    restored = run("restore", "latest", "--target", str(tmp_path / "out"), "-r", url)
    assert restored.returncode == 1 and "/victim: " in restored.stderr
    assert (tmp_path / "out" / "ok").read_text() == "fine\n"
    assert not (tmp_path / "out" / "victim").exists()


def test_names_not_utf8_are_printed_escaped(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "plain").write_text("x")
    url = (tmp_path / "repo").as_uri()
    ok("init", "-r", url)
    first = json.loads(ok("backup", str(src), "-r", url, "--json").stdout.splitlines()[-1])
    with open(os.fsencode(src) + b"/\xff\xfename", "wb") as f:
        f.write(b"y")
    ok("backup", str(src), "-r", url)
    strict = {"PYTHONIOENCODING": "utf-8:strict"}  # a strict UTF-8 terminal
    env = {**os.environ, "PANNIER_PASSWORD": PASSWORD, **strict}

    def raw(*args: str) -> subprocess.CompletedProcess[bytes]:
        cmd = [sys.executable, "-m", "pannier", *args, "-r", url]
        return subprocess.run(cmd, env=env, capture_output=True, timeout=120)

    listed = raw("ls", "latest")
    assert listed.returncode == 0 and b"/\\xff\\xfename\n" in listed.stdout
    diffed = raw("diff", first["snapshot_id"], "latest")
    assert diffed.returncode == 0 and b"+    /\\xff\\xfename\n" in diffed.stdout
    verified = raw("verify", first["snapshot_id"], str(src))
    assert (
        verified.returncode == 1 and b"+    /\\xff\\xfename: not in the snapshot" in verified.stdout
    )


def test_a_damaged_snapshot_does_not_stop_new_backups(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")
    repo = tmp_path / "repo"
    url = repo.as_uri()
    ok("init", "-r", url)
    first = json.loads(ok("backup", str(src), "-r", url, "--json").stdout.splitlines()[-1])
    damaged = repo / f"snapshot-{first['snapshot_id']}"
    damaged.write_bytes(damaged.read_bytes()[:-5])
    second = json.loads(ok("backup", str(src), "-r", url, "--json").stdout.splitlines()[-1])
    assert second["parent"] is None and second["files_new"] == 1
    listing = ok("snapshots", "-r", url)
    assert f"snapshot {first['snapshot_id'][:8]} skipped: " in listing.stderr
    assert second["snapshot_id"][:8] in listing.stdout and "1 snapshots" in listing.stdout
    ok("restore", "latest", "--target", str(tmp_path / "out"), "-r", url)
    assert (tmp_path / "out" / "f").read_text() == "x"
