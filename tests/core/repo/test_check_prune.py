"""check finds and names damage; prune deletes unused data in a crash-safe order."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from pannier.errors import PannierError, RepositoryError
from pannier.repo import Repository, Snapshot
from pannier.repo.check import check_repository, parse_subset, select_subset
from pannier.repo.prune import prune_repository

from .conftest import PASSWORD, DirBackend


def packs_of(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name.startswith("data-")}


def snapshot_of(repo: Repository, data: bytes, name: str) -> tuple[str, list[bytes]]:
    ids = repo.store_bytes(data)
    return repo.save_snapshot(Snapshot(paths=[name], version=1, streams={"raw": ids})), ids


def test_healthy_repository_checks_clean(repo: Repository) -> None:
    snapshot_of(repo, os.urandom(3_000_000), "/a")
    result = check_repository(repo, read_data=True)
    assert result.ok and result.warnings == []
    assert result.snapshots == 1 and result.packs_read == result.packs >= 1


def test_flipped_byte_in_pack_names_pack_and_snapshot(
    repo: Repository, backend: DirBackend
) -> None:
    snap_id, _ = snapshot_of(repo, os.urandom(500_000), "/a")
    (pack,) = packs_of(backend.directory)
    path = backend.directory / pack
    raw = bytearray(path.read_bytes())
    raw[1000] ^= 0x40
    path.write_bytes(bytes(raw))
    structure = check_repository(repo)
    assert structure.ok  # the structure is intact; only reading the data finds it
    result = check_repository(repo, read_data=True)
    assert not result.ok
    assert result.damaged_packs == [pack]
    assert any(pack in e and "does not match its name" in e for e in result.errors)
    assert any(f"snapshot {snap_id[:8]}" in line for line in result.affected)


def test_missing_pack_is_a_structural_error(repo: Repository, backend: DirBackend) -> None:
    snapshot_of(repo, os.urandom(1000), "/a")
    (pack,) = packs_of(backend.directory)
    (backend.directory / pack).unlink()
    result = check_repository(Repository.open(backend, PASSWORD))
    assert not result.ok
    assert any(f"pack {pack} is missing" in e for e in result.errors)


def test_snapshot_referencing_unknown_blob(repo: Repository) -> None:
    sid = repo.save_snapshot(Snapshot(version=1, streams={"raw": [b"\x01" * 32]}))
    result = check_repository(repo)
    assert any(f"snapshot {sid[:8]} references blob 0101" in e for e in result.errors)


def test_corrupt_snapshot_and_index_are_reported(repo: Repository, backend: DirBackend) -> None:
    sid, _ = snapshot_of(repo, b"x" * 10, "/a")
    (backend.directory / f"snapshot-{sid}").write_bytes(b"junk" * 10)
    index = next(p for p in backend.directory.iterdir() if p.name.startswith("index-"))
    index.write_bytes(b"junk" * 10)
    result = check_repository(Repository.open(backend, PASSWORD))
    assert any(index.name in e for e in result.errors)
    assert any(f"snapshot {sid[:8]}" in e for e in result.errors)


def test_subset_groups_cover_every_pack_once() -> None:
    packs = [os.urandom(32) for _ in range(50)]
    groups = [select_subset(packs, (n, 4)) for n in range(1, 5)]
    assert sorted(p for g in groups for p in g) == sorted(packs)
    assert select_subset(packs, (2, 4)) == groups[1]  # stable across runs
    share = select_subset(packs, 0.1, random.Random(1))
    assert len(share) == 5 and set(share) <= set(packs)
    assert len(select_subset(packs[:3], 0.01)) == 1


@pytest.mark.parametrize(
    ("text", "value"), [("1/5", (1, 5)), ("5/5", (5, 5)), ("10%", 0.1), ("2.5%", 0.025)]
)
def test_parse_subset(text: str, value: object) -> None:
    assert parse_subset(text) == value


@pytest.mark.parametrize("text", ["0/5", "6/5", "abc", "0%", "101%", "1/0"])
def test_parse_subset_rejects(text: str) -> None:
    with pytest.raises(PannierError, match="read-data-subset"):
        parse_subset(text)


def test_prune_deletes_unused_and_keeps_used(repo: Repository, backend: DirBackend) -> None:
    keep_data = os.urandom(2_000_000)
    drop_data = os.urandom(2_000_000)
    _, kept_ids = snapshot_of(repo, keep_data, "/keep")
    drop_id, _ = snapshot_of(repo, drop_data, "/drop")
    before = packs_of(backend.directory)
    repo.remove_snapshots([drop_id])
    dry = prune_repository(repo, dry_run=True)
    assert dry.packs_deleted == 1 and packs_of(backend.directory) == before
    result = prune_repository(repo)
    assert result.packs_deleted == 1 and result.bytes_freed > 1_900_000
    after = packs_of(backend.directory)
    assert len(after) == len(before) - 1
    reopened = Repository.open(backend, PASSWORD)
    assert b"".join(reopened.iter_blobs(kept_ids)) == keep_data
    assert check_repository(reopened, read_data=True).ok
    assert len([p for p in backend.directory.iterdir() if p.name.startswith("index-")]) == 1


def test_prune_repacks_partly_used_packs(repo: Repository, backend: DirBackend) -> None:
    a = [os.urandom(300_000) for _ in range(4)]
    ids = [repo.add_blob(x)[0] for x in a]  # all four in one pack
    repo.flush()
    keep = repo.save_snapshot(Snapshot(version=1, streams={"raw": ids[:1]}))
    (old_pack,) = packs_of(backend.directory)
    result = prune_repository(repo, max_unused=0.05)
    assert result.packs_repacked == 1 and result.packs_written == 1
    (new_pack,) = packs_of(backend.directory)
    assert new_pack != old_pack
    reopened = Repository.open(backend, PASSWORD)
    assert reopened.read_blob(ids[0]) == a[0]
    assert not reopened.has_blob(ids[1])
    assert check_repository(reopened, read_data=True).ok
    assert reopened.load_snapshot(keep).id == keep
    # with a tolerant threshold nothing moves
    again = prune_repository(reopened, max_unused=0.99)
    assert again.packs_repacked == 0 and packs_of(backend.directory) == {new_pack}


class CrashingBackend(DirBackend):
    """Dies when prune starts deleting, as a kill between its steps would."""

    def _delete_list(self, filename_list: list[str]) -> None:
        raise RepositoryError("simulated crash")


def test_prune_interrupted_before_deleting_loses_nothing(
    repo: Repository, backend: DirBackend
) -> None:
    data = [os.urandom(300_000) for _ in range(4)]
    ids = [repo.add_blob(x)[0] for x in data]
    repo.flush()
    repo.save_snapshot(Snapshot(version=1, streams={"raw": ids[:2]}))
    crashing = Repository.open(CrashingBackend(backend.directory), PASSWORD)
    with pytest.raises(RepositoryError, match="simulated crash"):
        prune_repository(crashing)
    # new pack and superseding index written, old ones still there: all readable
    reopened = Repository.open(backend, PASSWORD)
    assert [reopened.read_blob(i) for i in ids[:2]] == data[:2]
    result = check_repository(reopened, read_data=True)
    assert result.ok
    prune_repository(reopened)  # a later prune finishes the job
    assert len(packs_of(backend.directory)) == 1
    assert check_repository(Repository.open(backend, PASSWORD), read_data=True).ok


def test_prune_refuses_when_a_used_pack_is_missing(repo: Repository, backend: DirBackend) -> None:
    snapshot_of(repo, os.urandom(1000), "/a")
    (pack,) = packs_of(backend.directory)
    (backend.directory / pack).unlink()
    before = sorted(p.name for p in backend.directory.iterdir())
    with pytest.raises(RepositoryError, match="nothing deleted"):
        prune_repository(Repository.open(backend, PASSWORD))
    assert sorted(p.name for p in backend.directory.iterdir()) == before


def test_prune_refuses_when_a_used_blob_is_nowhere(repo: Repository, backend: DirBackend) -> None:
    repo.save_snapshot(Snapshot(version=1, streams={"raw": [b"\x02" * 32]}))
    snapshot_of(repo, os.urandom(1000), "/a")
    before = sorted(p.name for p in backend.directory.iterdir())
    with pytest.raises(RepositoryError, match="in no readable pack"):
        prune_repository(Repository.open(backend, PASSWORD))
    assert sorted(p.name for p in backend.directory.iterdir()) == before


def test_prune_replaces_a_damaged_index(repo: Repository, backend: DirBackend) -> None:
    _, ids = snapshot_of(repo, os.urandom(3000), "/a")
    index = next(p for p in backend.directory.iterdir() if p.name.startswith("index-"))
    index.write_bytes(b"damaged")
    again = Repository.open(backend, PASSWORD)
    prune_repository(again)
    assert not index.exists()
    final = Repository.open(backend, PASSWORD)
    assert final.index_errors == [] and final.recovered_packs == {}
    assert b"".join(final.iter_blobs(ids))
    assert check_repository(final, read_data=True).ok


def test_prune_refuses_without_a_tree_walker(
    repo: Repository, backend: DirBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from pannier.repo import repository

    snapshot_of(repo, os.urandom(1000), "/a")
    monkeypatch.setattr(repository, "_walkers", [])
    real_import = importlib.import_module

    def no_engine(name: str, package: str | None = None) -> object:
        if name == "pannier.engine":
            raise ImportError("engine broken")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_engine)
    before = sorted(p.name for p in backend.directory.iterdir())
    with pytest.raises(RepositoryError, match="no walker"):
        prune_repository(repo)
    assert sorted(p.name for p in backend.directory.iterdir()) == before
    assert any("no walker" in w for w in check_repository(repo).warnings)


def test_check_with_a_damaged_index_finds_the_data_in_the_packs(
    repo: Repository, backend: DirBackend
) -> None:
    snapshot_of(repo, os.urandom(5000), "/a")
    index = next(p for p in backend.directory.iterdir() if p.name.startswith("index-"))
    index.write_bytes(b"damaged")
    result = check_repository(Repository.open(backend, PASSWORD), read_data=True)
    assert len(result.errors) == 1 and index.name in result.errors[0]
    assert any("not indexed" in w for w in result.warnings)
    assert result.packs_read >= 1 and result.damaged_packs == []
