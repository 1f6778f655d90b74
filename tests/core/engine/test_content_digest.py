"""The ``content_digest`` contract: a plugin that names a hash gets the digest the engine
computed while it read the file, and never when the engine did not read it."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, ClassVar

import attrs
import blake3
import pytest
from pannier.engine.backup import BackupOptions, run_backup
from pannier.engine.meta import active_meta_plugins
from pannier.meta import MetaPlugin, MetaRecord
from pannier.repo import Repository

from .conftest import digest_tree, filesystem_source


@attrs.define
class SeenRecord(MetaRecord):
    size: int


class _Probe(MetaPlugin):
    """Records sizes and remembers the digest each from_path call was given."""

    plugin_api_version = 1
    record_class = SeenRecord
    seen: ClassVar[dict[tuple[bytes, ...], list[bytes | None]]]
    lock = threading.Lock()

    @classmethod
    def from_path(
        cls, root: bytes, index: Any, st: os.stat_result, *, digest: bytes | None = None
    ) -> SeenRecord:
        with cls.lock:
            cls.seen.setdefault(index, []).append(digest)
        return SeenRecord(index, st.st_size)

    @classmethod
    def apply(cls, record: Any, root: bytes, index: Any, *, dry_compare: bool = True) -> bool:
        return False


class Blake3Probe(_Probe):
    content_digest = "blake3"
    seen = {}

    @classmethod
    def get_prefix(cls) -> str:
        return "probe-blake3"


class UnknownHashProbe(_Probe):
    content_digest = "sha-0"
    seen = {}

    @classmethod
    def get_prefix(cls) -> str:
        return "probe-sha0"


def test_plugins_get_the_blake3_digest_of_what_was_read(tmp_path: Path, repo: Repository) -> None:
    Blake3Probe.seen, UnknownHashProbe.seen = {}, {}
    files = digest_tree(tmp_path / "src")
    plugins = [*active_meta_plugins(), Blake3Probe, UnknownHashProbe]
    summary = run_backup(repo, [filesystem_source(tmp_path / "src")], meta_plugins=plugins)
    assert summary.warnings == []
    for index, data in files.items():
        assert Blake3Probe.seen[index] == [blake3.blake3(data).digest()], index
        assert UnknownHashProbe.seen[index] == [None], index
    # entries whose content is not read get no digest
    for index in [(), (b"d",), (b"link",)]:
        assert Blake3Probe.seen[index] == [None]


def test_checksum_plugin_does_not_read_files_again(
    tmp_path: Path, repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pannier.plugins.meta import checksum

    def refuse(path: bytes) -> bytes:
        raise AssertionError(f"{path!r} read again")

    monkeypatch.setattr(checksum, "file_digest", refuse)
    files = digest_tree(tmp_path / "src")
    summary = run_backup(
        repo, [filesystem_source(tmp_path / "src")], meta_plugins=active_meta_plugins()
    )
    assert summary.warnings == []
    snap = repo.load_snapshot(summary.snapshot_id)
    from pannier.engine.meta import MetaApplier

    applier = MetaApplier(repo, snap, plugins=[checksum.ChecksumPlugin])
    try:
        (reader,) = [p for _, p in applier._readers]
        recorded = {r.index: r.digest for r in reader.get_objects()}
    finally:
        applier.close()
    assert recorded == {i: blake3.blake3(d).digest() for i, d in files.items()}


def test_unchanged_files_reuse_their_records(tmp_path: Path, repo: Repository) -> None:
    Blake3Probe.seen = {}
    files = digest_tree(tmp_path / "src")
    plugins = [*active_meta_plugins(), Blake3Probe]
    opts = BackupOptions(reread_probability=0)
    run_backup(repo, [filesystem_source(tmp_path / "src")], opts, meta_plugins=plugins)
    Blake3Probe.seen = {}
    summary = run_backup(repo, [filesystem_source(tmp_path / "src")], opts, meta_plugins=plugins)
    assert summary.files_unchanged == len(files)
    assert Blake3Probe.seen == {}
