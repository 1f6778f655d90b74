"""``pannier backend ...`` run as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def pannier(
    *args: str, cwd: Path | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PANNIER_LOAD_PLUGINS": ""}
    return subprocess.run(
        [sys.executable, "-m", "pannier", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    path.mkdir()
    return path


def test_put_ls_get_rm_round_trip(tmp_path: Path, store: Path) -> None:
    url = f"file://{store}"
    (tmp_path / "hello.txt").write_bytes(b"hello\n")
    assert pannier("backend", "put", url, "hello.txt", cwd=tmp_path).returncode == 0
    listing = pannier("backend", "ls", url)
    assert listing.stdout.decode().split() == ["6", "hello.txt"]
    as_json = pannier("--json", "backend", "ls", url)
    assert json.loads(as_json.stdout) == [{"name": "hello.txt", "size": 6}]
    out = tmp_path / "out"
    out.mkdir()
    assert pannier("backend", "get", url, "hello.txt", cwd=out).returncode == 0
    assert (out / "hello.txt").read_bytes() == b"hello\n"
    assert pannier("backend", "get", url, "hello.txt", "-").stdout == b"hello\n"
    assert pannier("backend", "rm", url, "hello.txt", "never-there").returncode == 0
    assert pannier("backend", "ls", url).stdout == b""


def test_put_from_stdin_and_get_to_a_named_file(tmp_path: Path, store: Path) -> None:
    url = f"file://{store}"
    assert pannier("backend", "put", url, "blob", "-", stdin=b"\x00" * 70000).returncode == 0
    assert (store / "blob").read_bytes() == b"\x00" * 70000
    assert pannier("backend", "get", url, "blob", str(tmp_path / "copy")).returncode == 0
    assert (tmp_path / "copy").read_bytes() == b"\x00" * 70000


def test_get_refuses_to_replace_a_local_file_without_force(tmp_path: Path, store: Path) -> None:
    (store / "obj").write_bytes(b"new")
    target = tmp_path / "obj"
    target.write_bytes(b"precious")
    result = pannier("backend", "get", f"file://{store}", "obj", str(target))
    assert result.returncode == 2
    assert b"exists; use --force" in result.stderr
    assert target.read_bytes() == b"precious"
    assert (
        pannier("backend", "get", f"file://{store}", "obj", str(target), "--force").returncode == 0
    )
    assert target.read_bytes() == b"new"


def test_get_of_a_missing_name_leaves_no_local_file(tmp_path: Path, store: Path) -> None:
    result = pannier("backend", "get", f"file://{store}", "absent", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.decode().strip().endswith("absent does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_mkdir_then_test_passes(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/new/place"
    assert pannier("backend", "mkdir", url).returncode == 0
    result = pannier("backend", "test", url)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    text = result.stdout.decode()
    assert "PASSED  failed-put" in text and "capabilities:" in text and "atomic_put: True" in text


def test_test_of_a_missing_folder_says_how_to_create_it(tmp_path: Path) -> None:
    result = pannier("backend", "test", f"file://{tmp_path}/absent")
    assert result.returncode == 1
    assert b"pannier backend mkdir" in result.stderr


def test_test_refuses_a_non_empty_location_unless_clean(store: Path) -> None:
    (store / "keep").write_bytes(b"1")
    refused = pannier("backend", "test", f"file://{store}")
    assert refused.returncode == 1 and b"--clean" in refused.stderr
    assert (store / "keep").exists()
    cleaned = pannier(
        "--json", "backend", "test", f"file://{store}", "--clean", "--check", "folder"
    )
    assert cleaned.returncode == 0
    [result] = json.loads(cleaned.stdout)["results"]
    assert (result["name"], result["status"], result["detail"]) == ("folder", "passed", "")
    assert result["seconds"] >= 0


def test_test_fails_with_exit_1_when_a_check_fails(store: Path) -> None:
    # Every get returns one flipped byte: the sizes check must fail.
    url = f"faulty+file://{store}?flip-read=" + ",".join(str(i) for i in range(1, 200))
    result = pannier("backend", "test", url, "--check", "sizes")
    assert result.returncode == 1
    assert b"FAILED  sizes" in result.stdout


def test_unknown_scheme_and_secrets_in_errors(store: Path) -> None:
    result = pannier("backend", "ls", "nosuch://user:hunter2@host/x")
    assert result.returncode == 2
    err = result.stderr.decode()
    assert "no backend serves nosuch:// URLs" in err and "file://" in err
    assert "hunter2" not in err
    assert err.count("\n") == 1


def test_malformed_url_is_a_usage_error() -> None:
    result = pannier("backend", "ls", "just-a-path")
    assert result.returncode == 2
    assert b"malformed URL" in result.stderr


def test_schemes_lists_the_builtins() -> None:
    result = pannier("--json", "backend", "schemes")
    schemes = json.loads(result.stdout)["schemes"]
    assert {"file", "faulty+", "multi+"} <= set(schemes)


def test_option_flag_reaches_the_wrappers_and_the_query_wins(store: Path) -> None:
    bad = pannier("backend", "ls", f"file://{store}", "-o", "retries=many")
    assert bad.returncode == 2 and b"option retries: 'many' is not valid" in bad.stderr
    overridden = pannier("backend", "ls", f"file://{store}?retries=2", "-o", "retries=many")
    assert overridden.returncode == 0, overridden.stderr
    malformed = pannier("backend", "ls", f"file://{store}", "-o", "retries")
    assert malformed.returncode == 2 and b"is not NAME=VALUE" in malformed.stderr


def test_verbose_shows_retries_and_operations(store: Path) -> None:
    url = f"faulty+file://{store}?fail-list=1&retry-delay=0"
    quiet = pannier("backend", "ls", url)
    assert quiet.returncode == 0 and quiet.stderr == b""
    loud = pannier("backend", "-v", "ls", url)
    assert loud.returncode == 0
    assert b"injected failure of list" in loud.stderr and b"attempt 2 of 5" in loud.stderr
    debug = pannier("backend", "-vv", "ls", url)
    assert b"list of 0 names" in debug.stderr


def test_json_answers_of_rm_and_mkdir(tmp_path: Path) -> None:
    url = f"file://user:hunter2@{tmp_path}/made"
    made = pannier("--json", "backend", "mkdir", url)
    assert made.returncode == 0
    assert json.loads(made.stdout) == {"created": f"file://user:***@{tmp_path}/made"}
    removed = pannier("--json", "backend", "rm", url, "a", "b")
    assert json.loads(removed.stdout) == {"deleted": ["a", "b"]}


def test_get_into_a_missing_directory_is_a_one_line_error(tmp_path: Path, store: Path) -> None:
    (store / "obj").write_bytes(b"1")
    result = pannier("backend", "get", f"file://{store}", "obj", str(tmp_path / "no" / "such"))
    assert result.returncode == 1
    assert result.stderr.decode() == (
        f"pannier: error: cannot write {tmp_path}/no/such: No such file or directory\n"
    )
