"""Backup: snapshot content, parent reuse, probabilistic re-read, metadata streams, hooks."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from pannier.engine.backup import BackupOptions, run_backup
from pannier.engine.snapshots import load_tree
from pannier.engine.tree import TreeEntry, TreeWriter
from pannier.errors import SourceError
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager
from pannier.repo import Repository, Snapshot
from pannier.source import Source, SourceEntry

from .conftest import assert_same_tree, make_tree


def fs_source(path: Path, **options: object):  # type: ignore[no-untyped-def]
    cls = get_plugin_manager().get(PluginKind.SOURCE, "filesystem")
    return cls(str(path), options)


def content(repo: Repository, chunks: list[bytes]) -> bytes:
    return b"".join(repo.iter_blobs(chunks))


def test_snapshot_records_every_entry_kind(tmp_path: Path, repo: Repository) -> None:
    src = tmp_path / "src"
    facts = make_tree(src)
    summary = run_backup(repo, [fs_source(src)])
    snap = repo.load_snapshot(summary.snapshot_id)
    entries = {e.index: e for e in load_tree(repo, snap)}
    assert entries[()].kind == "d"
    assert entries[(b"empty",)].kind == "f" and entries[(b"empty",)].chunks == []
    assert content(repo, entries[(b"big.bin",)].chunks) == facts["big"]
    assert len(entries[(b"big.bin",)].chunks) > 1
    assert entries[(b"dir", b"link")].data == b"../small.txt"
    # the first name of the inode in index order holds the content, later ones link
    assert content(repo, entries[(b"dir", b"hardlink")].chunks) == b"hello\n"
    assert entries[(b"small.txt",)].kind == "h"
    assert entries[(b"small.txt",)].data == (b"dir", b"hardlink")
    assert entries[(b"fifo",)].kind == "p"
    assert content(repo, entries[(b"caf\xe9-\xff.bin",)].chunks) == b"latin-1 name\n"
    sparse = entries[(b"sparse",)]
    assert sparse.flags & 1 and sparse.size == (8 << 20) + 4
    assert content(repo, sparse.chunks) == b"head" + bytes((8 << 20) - 4) + b"tail"
    assert summary.files_new == 6 and summary.files_changed == 0
    assert {"tree", "meta/attr", "meta/xattr"} <= set(snap.streams)
    assert snap.summary["files_new"] == 6
    assert snap.paths == [str(src)]


def test_unchanged_files_are_not_read_again(tmp_path: Path, repo: Repository) -> None:
    src = tmp_path / "src"
    make_tree(src)
    first = run_backup(repo, [fs_source(src)], BackupOptions(reread_probability=0))
    (src / "small.txt").write_text("changed\n")  # also the hard link's inode
    (src / "new").write_text("new\n")
    second = run_backup(repo, [fs_source(src)], BackupOptions(reread_probability=0))
    assert second.parent == first.snapshot_id
    assert second.files_new == 1
    assert second.files_changed == 1
    assert second.files_unchanged == 5
    assert second.bytes_read == len("changed\n") + len("new\n")
    third = run_backup(repo, [fs_source(src)], BackupOptions(reread_probability=0))
    assert third.bytes_read == 0 and third.files_unchanged == 7 and third.bytes_added < 4096
    # the metadata records were reused from the parent, not read again: they still restore
    from pannier.engine.restore import run_restore

    assert (
        run_restore(repo, repo.load_snapshot(third.snapshot_id), str(tmp_path / "out")).errors == []
    )
    assert_same_tree(src, tmp_path / "out")
    assert os.getxattr(tmp_path / "out" / "small.txt", "user.colour") == b"blue"


def _stale_parent(repo: Repository, src: Path) -> str:
    """A parent snapshot claiming the live file (same size, times, inode) held other
    content: what a change that slipped past the stat check looks like."""
    st = os.lstat(src / "f")
    old_id, _ = repo.add_blob(b"OLD CONTENT!")
    top = os.lstat(src)
    f = io.BytesIO()
    w = TreeWriter(f)
    w.add(TreeEntry((), "d", top.st_mode, 0, 0, 0, top.st_mtime_ns, 0, top.st_ino, None, 0))
    w.add(
        TreeEntry(
            (b"f",),
            "f",
            st.st_mode,
            st.st_uid,
            st.st_gid,
            st.st_size,
            st.st_mtime_ns,
            st.st_ctime_ns,
            st.st_ino,
            [old_id],
            0,
        )
    )
    w.close()
    ids = repo.store_bytes(f.getvalue())
    streams = {"tree": repo.store_stream_list(ids)}
    return repo.save_snapshot(Snapshot(hostname="h", paths=[str(src)], streams=streams))


def test_next_snapshot_shares_the_unchanged_parts_of_its_streams(
    tmp_path: Path, repo: Repository
) -> None:
    src = tmp_path / "src"
    for d in range(40):
        (src / f"dir{d:02}").mkdir(parents=True)
        for f in range(100):
            (src / f"dir{d:02}" / f"file{f:03}.txt").write_text(f"{d} {f}\n" * (f % 7 + 1))
    first = repo.load_snapshot(run_backup(repo, [fs_source(src)]).snapshot_id)
    for d in (3, 17, 25, 38):  # 4 of 4,000 files change, one goes, one comes
        (src / f"dir{d:02}" / "file050.txt").write_text("changed\n" * 9)
    (src / "dir09" / "file020.txt").unlink()
    (src / "dir31" / "file020a.txt").write_text("new\n")
    second = repo.load_snapshot(run_backup(repo, [fs_source(src)]).snapshot_id)

    def stream_bytes(snap: Snapshot) -> dict[bytes, int]:
        blobs = {}
        for name, listed in snap.streams.items():
            for blob in [*listed, *repo.stream_blob_ids(snap, name)]:
                loc = repo.index.lookup(blob)
                assert loc is not None
                blobs[blob] = loc.length
        return blobs

    before, after = stream_bytes(first), stream_bytes(second)
    new = sum(n for blob, n in after.items() if blob not in before)
    assert sum(before.values()) > 100_000
    # every stream changed, yet most of their bytes are shared
    assert {name: repo.stream_blob_ids(second, name) for name in second.streams} != {
        name: repo.stream_blob_ids(first, name) for name in first.streams
    }
    assert new < 0.35 * sum(after.values()), (new, sum(after.values()))


def test_reread_probability_finds_a_hidden_change(tmp_path: Path, repo: Repository) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_bytes(b"NEW CONTENT!")
    parent = _stale_parent(repo, src)
    trusting = run_backup(
        repo, [fs_source(src)], BackupOptions(parent=parent, reread_probability=0)
    )
    tree = {e.index: e for e in load_tree(repo, repo.load_snapshot(trusting.snapshot_id))}
    assert content(repo, tree[(b"f",)].chunks) == b"OLD CONTENT!"  # the stat check trusted it
    reread = run_backup(repo, [fs_source(src)], BackupOptions(parent=parent, reread_probability=1))
    assert reread.files_reread == 1 and reread.files_reread_changed == 1
    tree = {e.index: e for e in load_tree(repo, repo.load_snapshot(reread.snapshot_id))}
    assert content(repo, tree[(b"f",)].chunks) == b"NEW CONTENT!"


def test_excludes(tmp_path: Path, repo: Repository) -> None:
    src = tmp_path / "src"
    make_tree(src)
    (src / "cache").mkdir()
    (src / "cache" / "CACHEDIR.TAG").write_text("x")
    (src / "cache" / "junk").write_text("x")
    (src / "x.tmp").write_text("x")
    patterns = tmp_path / "patterns"
    patterns.write_text("# comment\n\n*/dir/deeper\n")
    summary = run_backup(
        repo,
        [
            fs_source(
                src,
                exclude=["*.tmp", "big.bin"],
                exclude_file=[str(patterns)],
                exclude_if_present=["CACHEDIR.TAG"],
            )
        ],
    )
    names = {e.path for e in load_tree(repo, repo.load_snapshot(summary.snapshot_id))}
    assert "/x.tmp" not in names and "/big.bin" not in names
    assert "/cache" not in names and "/cache/junk" not in names
    assert "/dir/deeper" not in names and "/dir/deeper/leaf" not in names
    assert "/dir/link" in names and "/small.txt" in names


def test_several_sources_are_stored_by_name(tmp_path: Path, repo: Repository) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "a").write_text("1")
    (tmp_path / "two").mkdir()
    (tmp_path / "two" / "b").write_text("2")
    summary = run_backup(repo, [fs_source(tmp_path / "two"), fs_source(tmp_path / "one")])
    names = [e.path for e in load_tree(repo, repo.load_snapshot(summary.snapshot_id))]
    assert names == ["/", "/one", "/one/a", "/two", "/two/b"]


def test_same_names_refused(tmp_path: Path, repo: Repository) -> None:
    (tmp_path / "a" / "x").mkdir(parents=True)
    (tmp_path / "b" / "x").mkdir(parents=True)
    with pytest.raises(SourceError, match="same name: x"):
        run_backup(repo, [fs_source(tmp_path / "a" / "x"), fs_source(tmp_path / "b" / "x")])
    assert repo.list_snapshots() == []


def test_missing_source_writes_no_snapshot(tmp_path: Path, repo: Repository) -> None:
    with pytest.raises(SourceError, match="cannot be read: No such file"):
        run_backup(repo, [fs_source(tmp_path / "nope")])
    assert repo.list_snapshots() == []


def test_snapshot_readable_after_reopen(
    tmp_path: Path, repo: Repository, reopen: Callable[[], Repository]
) -> None:
    src = tmp_path / "src"
    make_tree(src)
    summary = run_backup(repo, [fs_source(src)], BackupOptions(tags=["t1"], hostname="box"))
    other = reopen()
    snap = other.load_snapshot("latest")
    assert snap.id == summary.snapshot_id and snap.tags == ["t1"] and snap.hostname == "box"
    assert len(list(load_tree(other, snap))) == len(list(load_tree(repo, snap)))
    used = set(other.referenced_blobs(snap))
    tree = {e.index: e for e in load_tree(other, snap)}
    assert set(tree[(b"big.bin",)].chunks) <= used  # check and prune see file content


class GrowingSource(Source):
    """A source whose file grows between its stat and its read (a log being written)."""

    plugin_api_version = 1

    @classmethod
    def get_name(cls) -> str:
        return "growing"

    def scan(self):  # type: ignore[no-untyped-def]
        root = os.fsencode(self.spec)
        yield SourceEntry((), os.stat(root), root)
        path = os.path.join(root, b"log")
        st = os.lstat(path)
        with open(path, "ab") as f:
            f.write(b"appended after the stat\n")
        yield SourceEntry((b"log",), st, root)


def test_file_growing_while_read_records_what_was_stored(tmp_path: Path, repo: Repository) -> None:
    from pannier.engine.restore import run_restore

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "log").write_bytes(b"first line\n")
    summary = run_backup(repo, [GrowingSource(str(tmp_path / "src"))])
    out = tmp_path / "out"
    restored = run_restore(repo, repo.load_snapshot(summary.snapshot_id), str(out))
    assert restored.errors == []
    assert (out / "log").read_bytes() == b"first line\nappended after the stat\n"


def test_verify_several_sources(tmp_path: Path, repo: Repository) -> None:
    from pannier.engine.verify import verify_snapshot

    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text(name)
    sources = [fs_source(tmp_path / "one"), fs_source(tmp_path / "two")]
    snap = repo.load_snapshot(run_backup(repo, sources).snapshot_id)
    fresh = [fs_source(tmp_path / "one"), fs_source(tmp_path / "two")]
    assert list(verify_snapshot(repo, snap, fresh)) == []
    (tmp_path / "two" / "f").write_text("TWO")
    diffs = list(
        verify_snapshot(repo, snap, [fs_source(tmp_path / "one"), fs_source(tmp_path / "two")])
    )
    assert (diffs[0].kind, diffs[0].path) == ("M", "/two/f")


def test_hard_links_in_several_sources(tmp_path: Path, repo: Repository) -> None:
    from pannier.engine.restore import run_restore

    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a").write_text(name)
        os.link(tmp_path / name / "a", tmp_path / name / "b")
    summary = run_backup(repo, [fs_source(tmp_path / "one"), fs_source(tmp_path / "two")])
    snap = repo.load_snapshot(summary.snapshot_id)
    tree = {e.index: e for e in load_tree(repo, snap)}
    assert tree[(b"two", b"b")].data == (b"two", b"a")
    out = tmp_path / "out"
    assert run_restore(repo, snap, str(out)).errors == []
    assert (out / "two" / "b").read_text() == "two"
    assert os.stat(out / "two" / "a").st_ino == os.stat(out / "two" / "b").st_ino


def test_dry_run_reads_and_writes_nothing(tmp_path: Path, repo: Repository) -> None:
    src = tmp_path / "src"
    make_tree(src)
    first = run_backup(repo, [fs_source(src)], BackupOptions(reread_probability=0))
    (src / "new").write_text("new\n")
    names_before = sorted(os.listdir(tmp_path / "repo"))
    dry = run_backup(repo, [fs_source(src)], BackupOptions(dry_run=True, reread_probability=0))
    assert dry.snapshot_id is None and dry.parent == first.snapshot_id
    assert dry.files_new == 1 and dry.files_unchanged == 6 and dry.bytes_read == 4
    assert dry.bytes_added == 0
    assert sorted(os.listdir(tmp_path / "repo")) == names_before
    assert [s.id for s in repo.list_snapshots()] == [first.snapshot_id]


def test_diff_snapshots_sees_xattr_changes(tmp_path: Path, repo: Repository) -> None:
    from pannier.engine.diff import diff_snapshots

    src = tmp_path / "src"
    make_tree(src)
    first = repo.load_snapshot(run_backup(repo, [fs_source(src)]).snapshot_id)
    os.setxattr(src / "empty", "user.note", b"added")
    (src / "new").write_text("n")
    second = repo.load_snapshot(run_backup(repo, [fs_source(src)]).snapshot_id)
    changes = [(c.kind, c.path) for c in diff_snapshots(repo, first, second)]
    assert ("U", "/empty") in changes and ("+", "/new") in changes
    assert ("U", "/small.txt") not in changes  # unchanged entries are not listed
    assert list(diff_snapshots(repo, second, second)) == []
