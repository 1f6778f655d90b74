"""Restore: identical trees, no unnecessary writes, --include, safety, damaged data."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
from pannier.engine.backup import run_backup
from pannier.engine.restore import RestoreOptions, run_restore
from pannier.engine.target import TMP_PREFIX
from pannier.engine.tree import TreeEntry, TreeWriter
from pannier.errors import ConfigError
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager
from pannier.repo import Repository, Snapshot

from tests.servers import unavailable

from .conftest import assert_same_tree, make_tree


def backup(repo: Repository, src: Path) -> Snapshot:
    cls = get_plugin_manager().get(PluginKind.SOURCE, "filesystem")
    summary = run_backup(repo, [cls(str(src), {})])
    return repo.load_snapshot(summary.snapshot_id)


@pytest.fixture
def snap(tmp_path: Path, repo: Repository) -> Snapshot:
    make_tree(tmp_path / "src")
    return backup(repo, tmp_path / "src")


def test_round_trip_is_identical(tmp_path: Path, repo: Repository, snap: Snapshot) -> None:
    out = tmp_path / "out"
    summary = run_restore(repo, snap, str(out))
    assert summary.errors == []
    assert_same_tree(tmp_path / "src", out)
    small, hard = os.stat(out / "small.txt"), os.stat(out / "dir" / "hardlink")
    assert small.st_ino == hard.st_ino and small.st_nlink == 2  # restored as a link
    sparse = os.stat(out / "sparse")
    assert sparse.st_blocks * 512 < sparse.st_size  # holes written as holes
    assert os.stat(out / "dir" / "deeper").st_mtime_ns == 1_600_000_000_123_456_789
    assert not [p for p in out.rglob(f"{TMP_PREFIX}*")]


def test_second_restore_writes_only_what_differs(
    tmp_path: Path, repo: Repository, snap: Snapshot
) -> None:
    out = tmp_path / "out"
    run_restore(repo, snap, str(out))
    (out / "big.bin").write_bytes(b"damaged")
    os.chmod(out / "dir" / "deeper" / "leaf", 0o777)
    inode_small = os.stat(out / "small.txt").st_ino
    with pytest.raises(ConfigError, match="not empty; use --overwrite"):
        run_restore(repo, snap, str(out))
    summary = run_restore(repo, snap, str(out), RestoreOptions(overwrite=True))
    assert summary.files_restored == 1 and summary.files_unchanged == 5
    assert os.stat(out / "small.txt").st_ino == inode_small  # not rewritten
    assert_same_tree(tmp_path / "src", out)
    again = run_restore(repo, snap, str(out), RestoreOptions(overwrite=True))
    assert again.files_restored == 0 and again.metadata_changed == 0


def test_include_restores_a_subtree(tmp_path: Path, repo: Repository, snap: Snapshot) -> None:
    out = tmp_path / "out"
    summary = run_restore(repo, snap, str(out), RestoreOptions(include=["/dir/deeper"]))
    assert summary.errors == []
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert files == ["dir", "dir/deeper", "dir/deeper/leaf"]
    with pytest.raises(ConfigError, match="no file in the snapshot matches"):
        run_restore(repo, snap, str(tmp_path / "o2"), RestoreOptions(include=["/nope"]))


def test_include_of_a_later_hard_link_gets_the_content(
    tmp_path: Path, repo: Repository, snap: Snapshot
) -> None:
    out = tmp_path / "out"
    summary = run_restore(repo, snap, str(out), RestoreOptions(include=["/small.txt"]))
    assert summary.errors == []
    assert (out / "small.txt").read_text() == "hello\n"


def evil_snapshot(repo: Repository, entries: list[TreeEntry]) -> Snapshot:
    """A snapshot written by someone else, with names no backup would produce."""
    f = io.BytesIO()
    w = TreeWriter(f)
    for e in entries:
        w.add(e)
    w.close()
    ids = repo.store_bytes(f.getvalue())
    return repo.load_snapshot(
        repo.save_snapshot(Snapshot(hostname="evil", version=1, streams={"tree": ids}))
    )


def file_entry(repo: Repository, *index: bytes, data: bytes = b"pwned\n") -> TreeEntry:
    blob, _ = repo.add_blob(data)
    return TreeEntry(tuple(index), "f", 0o100644, 0, 0, len(data), 0, 0, 0, [blob], 0)


def dir_entry(*index: bytes) -> TreeEntry:
    return TreeEntry(tuple(index), "d", 0o40755, 0, 0, 0, 0, 0, 0, None, 0)


def test_names_climbing_out_are_refused(tmp_path: Path, repo: Repository) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    snap = evil_snapshot(
        repo,
        [
            dir_entry(),
            dir_entry(b".."),
            file_entry(repo, b"..", b"outside", b"x"),
            file_entry(repo, b"a/../../outside/y"),
            file_entry(repo, b"good"),
        ],
    )
    out = tmp_path / "out"
    out.mkdir()
    before = os.stat(tmp_path)
    summary = run_restore(repo, snap, str(out))
    assert list(outside.iterdir()) == []
    after = os.stat(tmp_path)  # the '..' directory entry's metadata was not applied
    assert (before.st_mode, before.st_mtime_ns) == (after.st_mode, after.st_mtime_ns)
    assert (out / "good").read_text() == "pwned\n"
    assert len(summary.errors) == 3 and all("unsafe name" in e for e in summary.errors)


def test_symlink_in_the_snapshot_is_not_followed(tmp_path: Path, repo: Repository) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = TreeEntry((b"a",), "l", 0o120777, 0, 0, 0, 0, 0, 0, os.fsencode(outside), 0)
    snap = evil_snapshot(repo, [dir_entry(), link, file_entry(repo, b"a", b"x")])
    summary = run_restore(repo, snap, str(tmp_path / "out"))
    assert list(outside.iterdir()) == []
    assert os.readlink(tmp_path / "out" / "a") == str(outside)
    assert any("refusing to follow" in e for e in summary.errors)


def test_symlink_planted_in_the_target_is_replaced_not_followed(
    tmp_path: Path, repo: Repository
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(outside, out / "d")
    snap = evil_snapshot(repo, [dir_entry(), dir_entry(b"d"), file_entry(repo, b"d", b"f")])
    summary = run_restore(repo, snap, str(out), RestoreOptions(overwrite=True))
    assert summary.errors == []
    assert list(outside.iterdir()) == []
    assert not os.path.islink(out / "d") and (out / "d" / "f").read_text() == "pwned\n"


def test_corrupt_pack_spares_other_files(tmp_path: Path, repo: Repository) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(5000))
    snap1 = backup(repo, src)
    packs_before = set(os.listdir(tmp_path / "repo"))
    (src / "b").write_bytes(os.urandom(5000))
    snap2 = backup(repo, src)
    new = [n for n in set(os.listdir(tmp_path / "repo")) - packs_before if n.startswith("data-")]
    assert snap1.id != snap2.id and new
    # damage the packs written by the second backup only (b's content, and the trees)
    for name in new:
        path = tmp_path / "repo" / name
        raw = bytearray(path.read_bytes())
        raw[40] ^= 0xFF
        path.write_bytes(bytes(raw))
    out = tmp_path / "out"
    summary = run_restore(repo, snap1, str(out))
    assert summary.errors == [] and (out / "a").read_bytes() == (src / "a").read_bytes()


def test_corrupt_content_is_reported_and_not_written(tmp_path: Path, repo: Repository) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"A" * 3000)
    (src / "b").write_bytes(os.urandom(300_000))
    snap = backup(repo, src)
    # break b's content only: find the pack holding it and flip a byte inside the blob
    tree_b = next(
        e
        for e in __import__("pannier.engine.snapshots", fromlist=["x"]).load_tree(repo, snap)
        if e.index == (b"b",)
    )
    loc = repo.index.lookup(tree_b.chunks[0])
    path = tmp_path / "repo" / f"data-{loc.pack_id.hex()}"
    raw = bytearray(path.read_bytes())
    raw[loc.offset + 20] ^= 0xFF
    path.write_bytes(bytes(raw))
    out = tmp_path / "out"
    summary = run_restore(repo, snap, str(out))
    assert (out / "a").read_bytes() == b"A" * 3000
    assert not (out / "b").exists()
    assert len(summary.errors) == 1 and summary.errors[0].startswith("/b: ")
    assert not [p for p in out.iterdir() if p.name.startswith(".pannier-tmp-")]


def test_full_disk_leaves_no_half_written_file(tmp_path: Path, repo: Repository) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "small").write_bytes(b"s" * 1000)
    (src / "zbig").write_bytes(os.urandom(3 << 20))
    snap = backup(repo, src)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        summary = run_restore(repo, snap, str(mnt))
        assert (mnt / "small").read_bytes() == b"s" * 1000
        assert not (mnt / "zbig").exists()
        assert [e for e in summary.errors if e.startswith("/zbig: ")]
        assert not [p for p in mnt.iterdir() if p.name.startswith(".pannier-tmp-")]
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_devices_round_trip(tmp_path: Path, repo: Repository) -> None:
    if os.geteuid() != 0:
        unavailable("creating device nodes needs root")
    src = tmp_path / "src"
    src.mkdir()
    os.mknod(src / "null", 0o620 | 0o020000, os.makedev(1, 3))
    os.mkfifo(src / "pipe", 0o640)
    snap = backup(repo, src)
    out = tmp_path / "out"
    assert run_restore(repo, snap, str(out)).errors == []
    for name in ("null", "pipe"):
        got, want = os.lstat(out / name), os.lstat(src / name)
        assert (got.st_mode, got.st_rdev, got.st_mtime_ns) == (
            want.st_mode,
            want.st_rdev,
            want.st_mtime_ns,
        )
    assert os.lstat(out / "null").st_rdev == os.makedev(1, 3)


def test_overwrite_replaces_entries_of_another_type(
    tmp_path: Path, repo: Repository, snap: Snapshot
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("must stay")
    out = tmp_path / "out"
    out.mkdir()
    (out / "small.txt").mkdir()  # a directory where the snapshot has a file
    (out / "small.txt" / "junk").write_text("x")
    (out / "dir").write_text("a file where the snapshot has a directory")
    os.symlink(outside / "victim", out / "empty")  # a symlink where it has a file
    summary = run_restore(repo, snap, str(out), RestoreOptions(overwrite=True))
    assert summary.errors == []
    assert (outside / "victim").read_text() == "must stay"
    assert_same_tree(tmp_path / "src", out)


def test_target_given_as_a_symlink_to_a_directory(
    tmp_path: Path, repo: Repository, snap: Snapshot
) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    assert run_restore(repo, snap, str(tmp_path / "alias")).errors == []
    assert_same_tree(tmp_path / "src", tmp_path / "real")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        run_restore(repo, snap, str(tmp_path / "file"))


@pytest.mark.parametrize("damaged", ["stream blob", "blob list"])
def test_damaged_metadata_stream_spares_the_content(
    tmp_path: Path, repo: Repository, snap: Snapshot, damaged: str
) -> None:
    if damaged == "blob list":
        blob = snap.streams["meta/xattr"][0]
    else:
        blob = repo.stream_blob_ids(snap, "meta/xattr")[0]
    loc = repo.index.lookup(blob)
    path = tmp_path / "repo" / f"data-{loc.pack_id.hex()}"
    raw = bytearray(path.read_bytes())
    raw[loc.offset + loc.length // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    out = tmp_path / "out"
    summary = run_restore(repo, snap, str(out))
    assert len(summary.errors) == 1
    assert summary.errors[0].startswith("/: metadata stream meta/xattr is damaged: ")
    assert (out / "big.bin").read_bytes() == (tmp_path / "src" / "big.bin").read_bytes()
    assert os.stat(out / "dir" / "deeper").st_mtime_ns == 1_600_000_000_123_456_789  # attr
    assert os.listxattr(out / "small.txt") == []  # the damaged stream's records are not applied


def test_exclude_patterns(tmp_path: Path, repo: Repository, snap: Snapshot) -> None:
    out = tmp_path / "out"
    opts = RestoreOptions(exclude=["*.bin", "/dir/deeper", "fifo"])
    summary = run_restore(repo, snap, str(out), opts)
    assert summary.errors == []
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert names == ["dangling", "dir", "dir/hardlink", "dir/link", "empty", "small.txt", "sparse"]
    # a hard link whose first name is excluded gets the content itself
    only = run_restore(repo, snap, str(tmp_path / "o2"), RestoreOptions(exclude=["/dir"]))
    assert only.errors == [] and (tmp_path / "o2" / "small.txt").read_text() == "hello\n"


@pytest.mark.parametrize("create", ["open", "mkfifo", "link"])
def test_interrupt_right_after_a_temporary_is_created_leaves_none(
    tmp_path: Path, repo: Repository, snap: Snapshot, monkeypatch: pytest.MonkeyPatch, create: str
) -> None:
    """Ctrl-C or SIGTERM arriving just after a temporary name was created (a file, a FIFO
    or a hard link), before the code that would rename it runs: the interruption
    propagates and no temporary is left in the target."""
    real = getattr(os, create)
    hits = []

    def create_then_interrupt(*args: object, **kwargs: object) -> object:
        result = real(*args, **kwargs)
        if any(isinstance(a, bytes) and a.startswith(TMP_PREFIX.encode()) for a in args):
            hits.append(args)
            if isinstance(result, int):
                os.close(result)
            raise KeyboardInterrupt
        return result

    monkeypatch.setattr(os, create, create_then_interrupt)
    out = tmp_path / "out"
    # an existing target: FIFOs and hard links are then made under a temporary name too
    out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        run_restore(repo, snap, str(out), RestoreOptions(overwrite=True, workers=0))
    monkeypatch.undo()
    assert hits, f"os.{create} never made a temporary"
    assert not [p for p in out.rglob(f"{TMP_PREFIX}*")]
