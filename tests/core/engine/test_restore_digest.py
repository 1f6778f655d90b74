"""Restore's side of the ``content_digest`` contract, and what the fast restore path keeps:
a plugin naming ``blake3`` gets the digest of the bytes the engine wrote (None where it
wrote nothing), the checksum plugin does not read restored files again, files get their
mtime and mode before the metadata step, and every thread layout restores the same tree."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any, ClassVar

import attrs
import blake3
import pytest
from pannier.engine.backup import run_backup
from pannier.engine.meta import active_meta_plugins
from pannier.engine.restore import RestoreOptions, run_restore
from pannier.meta import MetaPlugin, MetaRecord
from pannier.repo import Repository

from .conftest import digest_tree, filesystem_source


@attrs.define
class SizeRecord(MetaRecord):
    size: int


class DigestProbe(MetaPlugin):
    """Records sizes; remembers the digest each apply call was given."""

    plugin_api_version = 1
    record_class = SizeRecord
    content_digest = "blake3"
    applied: ClassVar[dict[tuple[bytes, ...], list[bytes | None]]] = {}
    lock = threading.Lock()

    @classmethod
    def get_prefix(cls) -> str:
        return "probe-restore"

    @classmethod
    def from_path(
        cls, root: bytes, index: Any, st: os.stat_result, *, digest: bytes | None = None
    ) -> SizeRecord | None:
        return SizeRecord(index, st.st_size) if stat.S_ISREG(st.st_mode) else None

    @classmethod
    def apply(
        cls,
        record: Any,
        root: bytes,
        index: Any,
        *,
        dry_compare: bool = True,
        digest: bytes | None = None,
    ) -> bool:
        with cls.lock:
            cls.applied.setdefault(index, []).append(digest)
        return False


def _backup(tmp_path: Path, repo: Repository) -> tuple[dict[tuple[bytes, ...], bytes], Any]:
    files = digest_tree(tmp_path / "src")
    plugins = [*active_meta_plugins(), DigestProbe]
    summary = run_backup(repo, [filesystem_source(tmp_path / "src")], meta_plugins=plugins)
    assert summary.warnings == []
    return files, repo.load_snapshot(summary.snapshot_id)


def _restored(root: Path) -> dict[tuple[bytes, ...], bytes]:
    out = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            p = Path(dirpath, name)
            if not p.is_symlink():
                index = tuple(os.fsencode(c) for c in p.relative_to(root).parts)
                out[index] = p.read_bytes()
    return out


@pytest.mark.parametrize("workers", [None, 0, 1, 4])
def test_plugins_get_the_digest_of_the_bytes_written(
    tmp_path: Path, repo: Repository, workers: int | None
) -> None:
    files, snap = _backup(tmp_path, repo)
    DigestProbe.applied = {}
    plugins = [*active_meta_plugins(), DigestProbe]
    target = tmp_path / "target"
    summary = run_restore(
        repo, snap, str(target), RestoreOptions(workers=workers), meta_plugins=plugins
    )
    assert summary.errors == []
    assert _restored(target) == files
    for index, data in files.items():
        assert DigestProbe.applied[index] == [blake3.blake3(data).digest()], index


def test_a_file_left_as_it_was_gets_no_digest(tmp_path: Path, repo: Repository) -> None:
    files, snap = _backup(tmp_path, repo)
    plugins = [*active_meta_plugins(), DigestProbe]
    target = tmp_path / "target"
    run_restore(repo, snap, str(target), meta_plugins=plugins)
    (target / "small").write_bytes(b"changed since\n")
    DigestProbe.applied = {}
    summary = run_restore(
        repo, snap, str(target), RestoreOptions(overwrite=True), meta_plugins=plugins
    )
    assert summary.errors == []
    assert summary.files_restored == 1  # only the changed file is written again
    assert DigestProbe.applied[(b"small",)] == [blake3.blake3(files[(b"small",)]).digest()]
    # the others were compared, not written: the plugin reads them itself if it needs to
    assert DigestProbe.applied[(b"big",)] == [None]
    assert DigestProbe.applied[(b"d", b"inner")] == [None]


def test_checksum_plugin_does_not_read_restored_files(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pannier.plugins.meta import checksum

    files, snap = _backup(tmp_path, repo)

    def refuse(path: bytes) -> bytes:
        raise AssertionError(f"{path!r} read again")

    monkeypatch.setattr(checksum, "file_digest", refuse)
    summary = run_restore(repo, snap, str(tmp_path / "target"))
    assert summary.errors == []
    assert _restored(tmp_path / "target") == files


def test_checksum_apply_compares_the_digest_given() -> None:
    from pannier import CorruptObjectError
    from pannier.plugins.meta.checksum import ChecksumPlugin, ChecksumRecord

    good = blake3.blake3(b"content").digest()
    record = ChecksumRecord((b"nowhere",), "blake3", good)
    # the file does not exist: with a digest it is not opened at all
    assert ChecksumPlugin.apply(record, b"/nonexistent-root", (b"nowhere",), digest=good) is False
    with pytest.raises(CorruptObjectError, match="does not match"):
        ChecksumPlugin.apply(
            record, b"/nonexistent-root", (b"nowhere",), digest=blake3.blake3(b"other").digest()
        )


def test_mode_and_mtime_are_right_whatever_the_umask(tmp_path: Path, repo: Repository) -> None:
    _files, snap = _backup(tmp_path, repo)
    old = os.umask(0o077)
    try:
        summary = run_restore(repo, snap, str(tmp_path / "target"))
    finally:
        os.umask(old)
    assert summary.errors == []
    st = os.lstat(tmp_path / "target" / "small")
    assert stat.S_IMODE(st.st_mode) == 0o664
    assert st.st_mtime_ns == 1_500_000_000_987_654_321
    assert os.readlink(tmp_path / "target" / "link") == "small"


def test_iter_blobs_in_the_calling_thread_gives_the_same(repo: Repository) -> None:
    pieces = [os.urandom(1000 + i) for i in range(30)] + [b"", b"x" * 70000]
    ids = [repo.add_blob(p)[0] for p in pieces]
    repo.flush()
    ids = ids + ids[:3]  # repeats too
    expected = pieces + pieces[:3]
    assert list(repo.iter_blobs(ids, ahead=False)) == expected
    assert list(repo.iter_blobs(ids)) == expected
