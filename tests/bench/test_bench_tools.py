"""The benchmark's own tools: the restore check, the dataset copy, the mutation, the measuring.

The benchmark's figures are only worth something if ``compare_trees`` finds every kind of
difference, the mutation is the same on every run, and the measures are real; these tests use
small real trees and real subprocesses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.servers import unavailable

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(autouse=True, scope="module")
def _bench_on_path() -> Iterator[None]:
    sys.path.insert(0, str(BENCH))
    yield
    sys.path.remove(str(BENCH))


def _tree(root: Path) -> Path:
    """A small tree with text files, a binary directory, a symlink, an xattr and odd modes."""
    (root / "docs" / "deep").mkdir(parents=True)
    (root / "bin").mkdir()
    for i in range(120):
        text = "".join(f"line {n} of page {i}: some words\n" for n in range(8))
        (root / "docs" / f"page-{i:03d}.txt").write_text(text)
    (root / "docs" / "deep" / "setuid").write_bytes(b"#!/bin/sh\n")
    os.chmod(root / "docs" / "deep" / "setuid", 0o4755)
    (root / "bin" / "big-a").write_bytes(bytes(range(256)) * 4096)
    (root / "bin" / "big-b").write_bytes(b"\x7fELF" + bytes(200_000))
    os.symlink("../docs/page-001.txt", root / "bin" / "link")
    os.setxattr(root / "docs" / "page-002.txt", "user.test", b"value")
    os.utime(root / "docs" / "page-003.txt", ns=(1, 1_600_000_000_123_456_789))
    return root


def test_compare_identical_copy(tmp_path: Path) -> None:
    from compare import compare_trees

    a = _tree(tmp_path / "a")
    subprocess.run(["cp", "-a", str(a), str(tmp_path / "b")], check=True)
    c = compare_trees(a, tmp_path / "b")
    assert c.identical, c.summary()
    assert c.entries == len(list(a.rglob("*"))) + 1


@pytest.mark.parametrize(
    "category",
    ["missing", "extra", "kind", "content", "mode", "mtime", "symlink", "xattr", "owner"],
)
def test_compare_finds_each_difference(tmp_path: Path, category: str) -> None:
    from compare import compare_trees

    a = _tree(tmp_path / "a")
    b = tmp_path / "b"
    subprocess.run(["cp", "-a", str(a), str(b)], check=True)
    page = b / "docs" / "page-010.txt"
    st = page.stat()
    if category == "missing":
        page.unlink()
    elif category == "extra":
        (b / "docs" / "stray").write_text("x")
    elif category == "kind":
        page.unlink()
        page.mkdir()
    elif category == "content":
        # Same size, same mtime: only the bytes tell.
        page.write_text(page.read_text().replace("some", "SOME"))
        os.utime(page, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif category == "mode":
        os.chmod(b / "docs" / "deep" / "setuid", 0o755)
    elif category == "mtime":
        os.utime(page, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    elif category == "symlink":
        (b / "bin" / "link").unlink()
        os.symlink("../docs/page-002.txt", b / "bin" / "link")
    elif category == "xattr":
        os.setxattr(b / "docs" / "page-002.txt", "user.test", b"other")
    elif category == "owner":
        if os.geteuid() != 0:
            unavailable("changing a file's owner needs root")
        os.chown(page, 1, 1)
    c = compare_trees(a, b)
    assert not c.identical
    found = {k for k in c.CATEGORIES if getattr(c, k)}
    # Adding or removing an entry also changes its directory's mtime.
    assert category in found
    assert found - {category} <= {"mtime"}, c.summary()


def test_copy_tree_keeps_metadata(tmp_path: Path) -> None:
    from compare import compare_trees
    from dataset import _copy_tree

    a = _tree(tmp_path / "a")
    _copy_tree(a, tmp_path / "copy")
    c = compare_trees(a, tmp_path / "copy")
    assert c.identical, c.summary()


def _dataset(path: Path) -> Path:
    from dataset import Manifest, fingerprint

    _tree(path)
    m: Manifest = fingerprint(path)
    m.save(path)
    return path


def test_mutation_is_deterministic(tmp_path: Path) -> None:
    from dataset import fingerprint
    from mutate import mutate_dataset

    one = _dataset(tmp_path / "one")
    two = tmp_path / "two"
    subprocess.run(["cp", "-a", str(one), str(two)], check=True)
    shutil.copy(tmp_path / "one.manifest.json", tmp_path / "two.manifest.json")
    three = tmp_path / "three"
    subprocess.run(["cp", "-a", str(one), str(three)], check=True)
    shutil.copy(tmp_path / "one.manifest.json", tmp_path / "three.manifest.json")
    before = fingerprint(one).fingerprint

    m1 = mutate_dataset(one, seed=7)
    m2 = mutate_dataset(two, seed=7)
    mutate_dataset(three, seed=8)
    assert m1 == m2
    assert m1.deleted and m1.renamed and m1.new_files and m1.edited_same_size
    assert m1.appended_bytes > 0
    assert fingerprint(one).fingerprint == fingerprint(two).fingerprint != before
    assert fingerprint(three).fingerprint != fingerprint(one).fingerprint


def test_mutation_refuses_a_mutated_dataset(tmp_path: Path) -> None:
    from mutate import mutate_dataset

    d = _dataset(tmp_path / "d")
    mutate_dataset(d, seed=1)
    with pytest.raises(SystemExit, match="already mutated"):
        mutate_dataset(d, seed=1)


def test_run_measured_reports_cpu_rss_and_exit(tmp_path: Path) -> None:
    from measure import run_measured

    code = (
        "b = bytearray(150 * 2**20)\nfor i in range(0, len(b), 4096): b[i] = 1\nraise SystemExit(3)"
    )
    m = run_measured(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=dict(os.environ),
        log=tmp_path / "log",
        timeout=120,
    )
    assert m.returncode == 3
    assert m.peak_rss >= 150 * 2**20
    assert m.cpu > 0 and m.wall > 0
    assert not m.timed_out


def test_run_measured_kills_after_timeout(tmp_path: Path) -> None:
    from measure import run_measured

    m = run_measured(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        cwd=tmp_path,
        env=dict(os.environ),
        log=tmp_path / "log",
        timeout=0.5,
    )
    assert m.timed_out
    assert m.wall < 30
    assert m.returncode != 0


def test_restored_root_finds_the_copy_at_any_depth(tmp_path: Path) -> None:
    from compare import restored_root

    original = tmp_path / "dataset"
    for name in ("bin", "doc", "dataset"):
        (original / name).mkdir(parents=True)
    # restic: the absolute source path under the target; a decoy with one of the names first.
    nested = tmp_path / "t1" / "abs" / "path" / "dataset"
    (tmp_path / "t1" / "bin").mkdir(parents=True)
    for name in ("bin", "doc", "dataset"):
        (nested / name).mkdir(parents=True)
    assert restored_root(tmp_path / "t1", original) == nested
    # pannier: the contents in the target itself.
    for name in ("bin", "doc", "dataset"):
        (tmp_path / "t2" / name).mkdir(parents=True)
    assert restored_root(tmp_path / "t2", original) == tmp_path / "t2"
    # Nothing restored: the expected place, which the check reports as missing.
    (tmp_path / "t3").mkdir()
    assert restored_root(tmp_path / "t3", original) == tmp_path / "t3" / "dataset"


def test_peer_remote_quoting_and_redaction() -> None:
    from peers import redact, s3_remote, swift_remote

    r = s3_remote("http://127.0.0.1:9000", "test:tester", "se,cr'et", "bucket", "p")
    assert r.startswith(":s3,provider='Other',endpoint='http://127.0.0.1:9000',")
    assert "secret_access_key='se,cr''et'" in r
    assert r.endswith(":bucket/p")
    shown = redact(r)
    assert "se,cr" not in shown and "tester" not in shown
    assert "endpoint='http://127.0.0.1:9000'" in shown
    assert "testing" not in redact(swift_remote("http://h/auth", "u", "testing", "c"))


def test_cp_and_rclone_local_peers(tmp_path: Path) -> None:
    from peers import (
        cp_get,
        cp_put,
        local_remote,
        ls_list,
        make_objects,
        rclone_get,
        rclone_lsl,
        rclone_put,
    )

    src = tmp_path / "src"
    assert make_objects(src, 5, 300_000) == 1_500_000
    put = cp_put(src, tmp_path / "store")
    assert put.ok and put.objects == 5 and put.bytes == 1_500_000 and put.mb_per_s > 0
    assert ls_list(tmp_path / "store").objects == 5
    got = cp_get(tmp_path / "store", tmp_path / "back")
    assert got.ok and got.bytes == 1_500_000
    assert (tmp_path / "back" / "obj-000004").read_bytes() == (src / "obj-000004").read_bytes()
    if shutil.which("rclone") is None:
        unavailable("rclone is not installed (scripts/install-system-deps.sh)")
    remote = local_remote(tmp_path / "rclone-store")
    up = rclone_put(src, remote)
    assert up.ok, up.error
    down = rclone_get(remote, tmp_path / "rclone-back", names=["obj-000001", "obj-000003"])
    assert down.ok and down.objects == 2 and down.bytes == 600_000
    listed = rclone_lsl(remote)
    assert listed.ok and listed.objects == 5 and listed.operation == "lsl"


def test_ratios_use_the_better_peer_of_each_figure() -> None:
    from bench_backup import Record, markdown, ratios
    from measure import Measure

    def rec(tool: str, step: str, wall: float, rss: int, repo: int) -> Record:
        m = Measure(
            wall=wall, cpu=wall, user=wall, system=0, peak_rss=rss, returncode=0, loadavg=1.0
        )
        return Record(tool, step, "cold", m, repo)

    records = [
        rec("pannier", "initial", 6.0, 100, 0),
        rec("restic", "initial", 10.0, 300, 0),
        rec("borg", "initial", 20.0, 80, 0),
        rec("pannier", "mutation", 1.0, 100, 90),
        rec("restic", "mutation", 4.0, 300, 120),
        rec("borg", "mutation", 2.0, 80, 100),
    ]
    by = {(q["figure"], q["mode"]): q for q in ratios(records, ["cold"])}
    initial = by[("initial", "cold")]
    assert (initial["peer"], initial["ratio"], initial["met"]) == ("restic", 0.6, True)
    assert initial["cpu_ratio"] == 0.6
    mutation = by[("mutation", "cold")]
    assert (mutation["peer"], mutation["ratio"], mutation["met"]) == ("borg", 0.5, False)
    size = by[("repo size", "cold")]
    assert (size["peer"], size["ratio"], size["met"]) == ("borg", 0.9, True)
    rss = by[("peak RSS", "cold")]
    assert (rss["peer"], rss["ratio"], rss["met"]) == ("borg", 1.25, False)
    # No pannier figure for a step: no ratio, and the table says n/a rather than a number.
    restore = by[("restore", "cold")]
    assert restore["ratio"] is None and restore["met"] is None
    result = {"records": [asdict(r) for r in records], "ratios": ratios(records, ["cold"])}
    table = markdown(result)
    assert "| initial | cold | 6.0 | restic 10.0 | 0.60 | <= 0.6 | yes | 0.60 |" in table
    assert "| restore | cold | n/a |" in table
