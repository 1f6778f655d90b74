"""Restore from a remote backend reads spans of a pack: few requests for many files.

The repository lives on disk; a counting subclass of the ``file`` backend declares itself
remote (``local=False``) or local, so the same restore can be compared request by request.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import attrs
import pytest
from pannier.backend import Backend
from pannier.backend_registry import get_backend
from pannier.engine.backup import run_backup
from pannier.engine.restore import RestoreOptions, run_restore
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager
from pannier.repo import Repository
from pannier.repo.pack import pack_name

from .conftest import FAST_KDF, PASSWORD, assert_same_tree

DIRS = 30
FILES = 25
#: Ranged reads made by every counting backend so far, and the bytes they returned (a
#: restore counts the difference).
READS = [0]
READ_BYTES = [0]
_LOCK = threading.Lock()


def counting_backend(url: str, *, local: bool) -> Backend:
    """The ``file`` backend at ``url``, counting its ranged reads in :data:`READS` and
    :data:`READ_BYTES`."""
    backend = get_backend(url)
    inner = backend.unwrap()  # under the wrappers every backend gets
    base = type(inner)

    class Counting(base):  # type: ignore[valid-type,misc]
        capabilities = attrs.evolve(base.capabilities, local=local)

        def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
            data: bytes = super()._get_range(remote_filename, offset, length)
            with _LOCK:
                READS[0] += 1
                READ_BYTES[0] += len(data)
            return data

    inner.__class__ = Counting
    return backend


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for d in range(DIRS):
        sub = root / f"d{d:02}"
        sub.mkdir(parents=True)
        for f in range(FILES):
            (sub / f"f{f:02}").write_bytes(os.urandom(1000 + 97 * f))
    (root / "big.bin").write_bytes(os.urandom(6 << 20))
    return root


@pytest.fixture
def url(tmp_path: Path, src: Path) -> str:
    url = (tmp_path / "repo").as_uri()
    repo = Repository.init(get_backend(url), PASSWORD, kdf=FAST_KDF)
    try:
        cls = get_plugin_manager().get(PluginKind.SOURCE, "filesystem")
        run_backup(repo, [cls(str(src), {})])
    finally:
        repo.close()
    return url


def restore(
    url: str, out: Path, *, local: bool, workers: int | None = None
) -> tuple[int, list[str]]:
    """Restore the latest snapshot into ``out``; (ranged reads made, errors)."""
    reads, _, errors = restore_counted(url, out, local=local, workers=workers)
    return reads, errors


def restore_counted(
    url: str, out: Path, *, local: bool, workers: int | None = None
) -> tuple[int, int, list[str]]:
    """Restore the latest snapshot into ``out``; (ranged reads made, bytes they
    returned, errors)."""
    backend = counting_backend(url, local=local)
    repo = Repository.open(backend, PASSWORD)
    try:
        snap = repo.list_snapshots()[-1]
        before, before_bytes = READS[0], READ_BYTES[0]
        summary = run_restore(repo, snap, str(out), RestoreOptions(workers=workers))
        return READS[0] - before, READ_BYTES[0] - before_bytes, summary.errors
    finally:
        repo.close()


@pytest.mark.parametrize("workers", [0, 4])
def test_remote_restore_reads_spans_in_few_requests(
    tmp_path: Path, src: Path, url: str, workers: int
) -> None:
    local_reads, errors = restore(url, tmp_path / "local", local=True, workers=workers)
    assert errors == []
    remote_reads, errors = restore(url, tmp_path / "remote", local=False, workers=workers)
    assert errors == []
    assert_same_tree(src, tmp_path / "remote")
    # a local restore reads at least one range per directory of small files
    assert local_reads >= DIRS
    assert remote_reads * 4 <= local_reads, (local_reads, remote_reads)


@pytest.mark.parametrize("workers", [0, 4])
def test_remote_restore_downloads_each_pack_about_once(
    tmp_path: Path, src: Path, url: str, workers: int
) -> None:
    """Restore threads ask for the blobs of one pack out of order; the spans they get
    are the same fixed runs, so the bytes downloaded stay about the packs' size (before
    the runs, 1.04 to 1.8 times it here; CI once saw 1.008 with 4 threads, not
    reproduced since)."""
    _, downloaded, errors = restore_counted(url, tmp_path / "out", local=False, workers=workers)
    assert errors == []
    assert_same_tree(src, tmp_path / "out")
    packs = sum(p.stat().st_size for p in (tmp_path / "repo").glob("data-*"))
    assert downloaded <= packs * 1.03, (downloaded, packs)


def damage_blob(url: str, repo_dir: Path, content: bytes) -> str:
    """Flip a byte in the middle of the blob holding ``content``; the pack's name."""
    repo = Repository.open(get_backend(url), PASSWORD)
    try:
        loc = repo.index.lookup(repo.blob_id(content))
    finally:
        repo.close()
    assert loc is not None
    name = pack_name(loc.pack_id)
    raw = bytearray((repo_dir / name).read_bytes())
    raw[loc.offset + loc.length // 2] ^= 0xFF
    (repo_dir / name).write_bytes(bytes(raw))
    return name


def test_remote_restore_of_a_corrupt_blob_names_the_file_and_pack(
    tmp_path: Path, src: Path, url: str
) -> None:
    victim = src / "d05" / "f07"
    pack = damage_blob(url, tmp_path / "repo", victim.read_bytes())
    reads, errors = restore(url, tmp_path / "out", local=False, workers=4)
    assert len(errors) == 1 and reads > 0
    assert errors[0].startswith("/d05/f07: ") and pack in errors[0], errors
    assert not (tmp_path / "out" / "d05" / "f07").exists()
    st = victim.parent.stat()
    victim.unlink()  # everything else is restored, byte for byte
    os.utime(victim.parent, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert_same_tree(src, tmp_path / "out")


def test_remote_restore_of_a_missing_pack_names_it(tmp_path: Path, src: Path, url: str) -> None:
    victim = src / "d03" / "f01"
    pack = damage_blob(url, tmp_path / "repo", victim.read_bytes())
    (tmp_path / "repo" / pack).unlink()
    _, errors = restore(url, tmp_path / "out", local=False, workers=4)
    assert errors and all(pack in e and "missing" in e for e in errors), errors
    assert any(e.startswith("/d03/f01: ") for e in errors)
    assert not (tmp_path / "out" / "d03" / "f01").exists()
