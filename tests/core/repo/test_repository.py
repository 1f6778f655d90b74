"""Repository round trips: init, open, store, read, snapshots, keys."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from pannier.backend import BackendCapabilities
from pannier.errors import (
    ConfigError,
    CorruptObjectError,
    RepositoryError,
    RepositoryFormatError,
    RepositoryNotFoundError,
    WrongPasswordError,
)
from pannier.repo import Repository, Snapshot

from .conftest import FAST_KDF, PASSWORD, DirBackend


def test_store_and_read_back_after_reopen(repo: Repository, backend: DirBackend) -> None:
    data = os.urandom(5_000_000) + b"\0" * 3_000_000
    ids = repo.store_stream(io.BytesIO(data))
    assert len(ids) > 2
    small = repo.store_bytes(b"tiny")
    repo.flush()
    repo.close()
    again = Repository.open(DirBackend(backend.directory), PASSWORD)
    assert b"".join(again.iter_blobs(ids)) == data
    assert again.read_blob(small[0]) == b"tiny"
    assert again.id == repo.id and again.encrypted


def test_duplicate_blobs_are_stored_once(repo: Repository) -> None:
    first = repo.add_blob(b"x" * 1000)
    second = repo.add_blob(b"x" * 1000)
    assert first[0] == second[0]
    assert first[1] > 0 and second[1] == 0
    assert repo.has_blob(first[0])


def test_pending_blob_is_readable_before_flush(repo: Repository) -> None:
    bid, _ = repo.add_blob(b"not yet uploaded")
    assert repo.read_blob(bid) == b"not yet uploaded"


def test_empty_stream_has_no_chunks(repo: Repository) -> None:
    assert repo.store_stream(io.BytesIO(b"")) == []


def test_submit_stream_runs_in_background(repo: Repository, tmp_path: Path) -> None:
    paths = []
    for i in range(20):
        p = tmp_path / f"f{i}"
        p.write_bytes(os.urandom(1000 + i))
        paths.append(p)
    futures = [repo.submit_stream(str(p)) for p in paths]
    for p, fut in zip(paths, futures, strict=True):
        assert b"".join(repo.iter_blobs(fut.result())) == p.read_bytes()


def test_incompressible_data_is_stored_raw(plain_repo: Repository) -> None:
    noise = os.urandom(100_000)
    _, stored = plain_repo.add_blob(noise)
    assert stored == len(noise) + 1  # flag byte only
    _, stored = plain_repo.add_blob(b"a" * 100_000)
    assert stored < 1000


def test_unencrypted_repository_opens_without_password(
    plain_repo: Repository, backend: DirBackend
) -> None:
    ids = plain_repo.store_bytes(b"plain data")
    plain_repo.close()
    again = Repository.open(backend, None)
    assert not again.encrypted
    assert again.read_blob(ids[0]) == b"plain data"


def test_wrong_password_is_refused(repo: Repository, backend: DirBackend) -> None:
    with pytest.raises(WrongPasswordError, match="wrong password"):
        Repository.open(backend, "not the password")


def test_encrypted_repository_without_password(repo: Repository, backend: DirBackend) -> None:
    with pytest.raises(ConfigError, match="password"):
        Repository.open(backend, None)


def test_missing_repository(tmp_path: Path) -> None:
    with pytest.raises(RepositoryNotFoundError, match="no repository"):
        Repository.open(DirBackend(tmp_path / "nothing"), PASSWORD)


def test_init_twice_is_refused(repo: Repository, backend: DirBackend) -> None:
    with pytest.raises(RepositoryError, match="already holds a repository"):
        Repository.init(backend, PASSWORD, kdf=FAST_KDF)


def test_repokey_without_password_is_refused(backend: DirBackend) -> None:
    with pytest.raises(ConfigError, match="needs a password"):
        Repository.init(backend, "", kdf=FAST_KDF)
    assert not backend.directory.exists() or not any(backend.directory.iterdir())


def test_newer_format_is_refused(repo: Repository, backend: DirBackend) -> None:
    import msgpack
    from pannier.repo.format import CONFIG_MAGIC

    raw = (backend.directory / "config").read_bytes()
    body = msgpack.unpackb(raw[len(CONFIG_MAGIC) :])
    body["version"] = 99
    (backend.directory / "config").write_bytes(CONFIG_MAGIC + msgpack.packb(body))
    with pytest.raises(RepositoryFormatError, match="format version 99"):
        Repository.open(backend, PASSWORD)


def test_corrupt_config_is_named(repo: Repository, backend: DirBackend) -> None:
    (backend.directory / "config").write_bytes(b"garbage")
    with pytest.raises(CorruptObjectError, match="config"):
        Repository.open(backend, PASSWORD)


def test_tampered_settings_fail_authentication(repo: Repository, backend: DirBackend) -> None:
    raw = bytearray((backend.directory / "config").read_bytes())
    raw[-3] ^= 0xFF
    (backend.directory / "config").write_bytes(bytes(raw))
    with pytest.raises(CorruptObjectError, match="config"):
        Repository.open(backend, PASSWORD)


def test_corrupt_pack_is_detected_and_named(repo: Repository, backend: DirBackend) -> None:
    ids = repo.store_bytes(os.urandom(2000))
    repo.flush()
    pack = next(p for p in backend.directory.iterdir() if p.name.startswith("data-"))
    raw = bytearray(pack.read_bytes())
    raw[100] ^= 0x01
    pack.write_bytes(bytes(raw))
    again = Repository.open(backend, PASSWORD)
    with pytest.raises(CorruptObjectError, match=pack.name):
        again.read_blob(ids[0])


def test_missing_pack_is_named(repo: Repository, backend: DirBackend) -> None:
    ids = repo.store_bytes(b"some data")
    repo.flush()
    pack = next(p for p in backend.directory.iterdir() if p.name.startswith("data-"))
    pack.unlink()
    again = Repository.open(backend, PASSWORD)
    with pytest.raises(CorruptObjectError, match=f"{pack.name} is missing"):
        again.read_blob(ids[0])


def test_corrupt_index_is_named_and_its_packs_recovered(
    repo: Repository, backend: DirBackend
) -> None:
    ids = repo.store_bytes(b"some data")
    repo.flush()
    index = next(p for p in backend.directory.iterdir() if p.name.startswith("index-"))
    index.write_bytes(index.read_bytes()[:-5])
    again = Repository.open(backend, PASSWORD)
    assert again.read_blob(ids[0]) == b"some data"  # found again from the pack header
    assert len(again.index_errors) == 1 and index.name in again.index_errors[0]
    assert len(again.recovered_packs) == 1


def test_snapshots_round_trip_and_prefixes(repo: Repository, backend: DirBackend) -> None:
    ids = repo.store_bytes(b"tree stream")
    s1 = Snapshot(hostname="a", paths=["/x"], tags=["t"], version=1, streams={"tree": ids})
    id1 = repo.save_snapshot(s1)
    s2 = Snapshot(hostname="b", paths=["/y"], version=1, streams={"tree": [i.hex() for i in ids]})  # type: ignore[misc]
    id2 = repo.save_snapshot(s2)
    again = Repository.open(backend, PASSWORD)
    loaded = again.load_snapshot(id1[:6])
    assert loaded.id == id1 and loaded.streams == {"tree": ids}
    assert loaded.paths == ["/x"] and loaded.tags == ["t"]
    assert again.load_snapshot("latest").id == id2
    assert again.load_snapshot("latest", hostname="a").id == id1
    assert again.load_snapshot("latest", tags=["t"]).id == id1
    assert [s.id for s in again.list_snapshots()] == [id1, id2]
    with pytest.raises(ConfigError, match="no snapshot"):
        again.load_snapshot("ffffffffffff" if not id1.startswith("f") else "000000000000")
    with pytest.raises(ConfigError, match="not a snapshot id"):
        again.load_snapshot("xyz")
    again.remove_snapshots([id1])
    assert [s.id for s in again.list_snapshots()] == [id2]


def test_ambiguous_prefix_names_candidates(repo: Repository) -> None:
    made = [repo.save_snapshot(Snapshot(hostname=f"h{i}")) for i in range(40)]
    first = {m[0] for m in made}
    # with 40 snapshots some leading hex digit is shared by two of them
    shared = next(c for c in first if sum(m.startswith(c) for m in made) > 1)
    with pytest.raises(ConfigError, match="ambiguous"):
        repo.load_snapshot(shared)


def test_streams_are_cut_small_and_file_content_large(repo: Repository) -> None:
    stream = b"".join(i.to_bytes(4, "big") * 8 for i in range(7_000))  # 224,000 bytes
    tree_ids = repo.store_bytes(stream, kind="tree")
    assert len(tree_ids) >= 7  # pieces of at most 32 KiB
    assert repo.store_bytes(stream) == [repo.blob_id(stream)]  # one chunk: under 256 KiB
    assert b"".join(repo.iter_blobs(tree_ids)) == stream


def test_snapshot_names_a_blob_list_and_reads_either_version(
    repo: Repository, backend: DirBackend
) -> None:
    stream = os.urandom(300_000)
    ids = repo.store_bytes(stream, kind="tree")
    v2 = repo.save_snapshot(Snapshot(streams={"tree": repo.store_stream_list(ids)}))
    v1 = repo.save_snapshot(Snapshot(version=1, streams={"tree": ids}))
    again = Repository.open(backend, PASSWORD)
    for sid, version in ((v2, 2), (v1, 1)):
        snap = again.load_snapshot(sid)
        assert snap.version == version
        assert again.stream_blob_ids(snap, "tree") == ids
        assert set(ids) <= set(again.referenced_blobs(snap))
        assert again.stream_blob_ids(snap, "meta/absent") == []
    listed = again.load_snapshot(v2).streams["tree"]
    assert len(listed) < len(ids) and set(listed) <= set(
        again.referenced_blobs(again.load_snapshot(v2))
    )
    # the snapshot object stays small: it holds the list's ids, not the stream's
    assert (backend.directory / f"snapshot-{v2}").stat().st_size < 1000


def test_damaged_blob_list_is_named(repo: Repository) -> None:
    odd = repo.store_bytes(b"x" * 33, kind="tree")  # not a whole number of 32-byte ids
    snap = repo.load_snapshot(repo.save_snapshot(Snapshot(streams={"tree": odd})))
    with pytest.raises(CorruptObjectError, match="blob list of stream tree is damaged"):
        repo.stream_blob_ids(snap, "tree")


@pytest.mark.parametrize("version", [0, 3])
def test_snapshot_of_unknown_version_is_refused(repo: Repository, version: int) -> None:
    sid = repo.save_snapshot(Snapshot(version=version))
    error = RepositoryFormatError if version > 2 else CorruptObjectError
    with pytest.raises(error, match=f"snapshot {sid[:8]}"):
        repo.load_snapshot(sid)


def test_tampered_snapshot_is_detected(repo: Repository, backend: DirBackend) -> None:
    sid = repo.save_snapshot(Snapshot(hostname="h"))
    path = backend.directory / f"snapshot-{sid}"
    raw = bytearray(path.read_bytes())
    raw[20] ^= 1
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptObjectError, match=f"snapshot {sid[:8]}"):
        repo.load_snapshot(sid)


def test_several_passwords(repo: Repository, backend: DirBackend) -> None:
    ids = repo.store_bytes(b"shared secret data")
    repo.flush()
    key_id = repo.add_key("second password", kdf=FAST_KDF)
    other = Repository.open(backend, "second password")
    assert other.read_blob(ids[0]) == b"shared secret data"
    assert {k.id for k in other.list_keys()} >= {key_id}
    assert [k.current for k in other.list_keys() if k.id == key_id] == [True]
    with pytest.raises(ConfigError, match="in use"):
        other.remove_key(key_id)
    original = Repository.open(backend, PASSWORD)
    original.remove_key(key_id)
    with pytest.raises(WrongPasswordError):
        Repository.open(backend, "second password")
    only = original.list_keys()
    with pytest.raises(ConfigError, match=r"in use|last key"):
        original.remove_key(only[0].id)


def test_write_order_packs_then_index_then_snapshot(repo: Repository, backend: DirBackend) -> None:
    backend.puts.clear()
    ids = repo.store_stream(io.BytesIO(os.urandom(3_000_000)))
    repo.save_snapshot(Snapshot(version=1, streams={"tree": ids}))
    kinds = [name.split("-")[0] for name in backend.puts]
    assert kinds[-1] == "snapshot"
    assert kinds.index("index") > max(i for i, k in enumerate(kinds) if k == "data")


def test_backend_factory_gives_parallel_instances(backend: DirBackend) -> None:
    made: list[DirBackend] = []
    closed: list[DirBackend] = []

    class Tracked(DirBackend):
        def _close(self) -> None:
            closed.append(self)

    def factory() -> DirBackend:
        b = Tracked(backend.directory)
        made.append(b)
        return b

    repo = Repository.init(backend, PASSWORD, kdf=FAST_KDF, backend_factory=factory)
    datas = [os.urandom(9_000_000) for _ in range(3)]  # several packs
    ids = [repo.store_bytes(d) for d in datas]
    repo.flush()
    assert b"".join(repo.iter_blobs([i for group in ids for i in group])) == b"".join(datas)
    assert 1 <= len(made) <= backend.capabilities.connections - 1
    repo.close()
    assert closed == made


def test_key_left_by_an_interrupted_init_is_skipped(backend: DirBackend) -> None:
    from pannier.repo.crypto import MasterKey, make_key_object

    backend.directory.mkdir()
    # an earlier init died after writing its key: same password, another master key
    backend.put_bytes(
        "key-0000000000000000", make_key_object(MasterKey.generate(), PASSWORD, kdf=FAST_KDF)
    )
    repo = Repository.init(backend, PASSWORD, kdf=FAST_KDF)
    ids = repo.store_bytes(b"data")
    repo.close()
    again = Repository.open(backend, PASSWORD)
    assert again.read_blob(ids[0]) == b"data"
    assert again.key_name != "key-0000000000000000"


def test_long_backup_writes_indexes_as_it_goes(
    repo: Repository, backend: DirBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pannier.repo import uploader

    monkeypatch.setattr(uploader, "INDEX_EVERY_PACKS", 1)
    repo.store_bytes(os.urandom(20_000_000))  # at least two full packs, no flush
    deadline = time.time() + 30
    while repo.stats.packs_uploaded < 2 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    indexes = [p for p in backend.directory.iterdir() if p.name.startswith("index-")]
    assert len(indexes) >= 1
    other = Repository.open(DirBackend(backend.directory), PASSWORD)
    assert other.recovered_packs == {}  # every uploaded pack is already indexed


def test_loading_many_indexes_with_parallel_backends_does_not_hang(backend: DirBackend) -> None:
    import threading

    def factory() -> DirBackend:
        return DirBackend(backend.directory)

    repo = Repository.init(backend, PASSWORD, kdf=FAST_KDF)
    ids = []
    for _ in range(4):  # four index objects
        ids += repo.store_bytes(os.urandom(1000))
        repo.flush()
    repo.close()
    again = Repository.open(DirBackend(backend.directory), PASSWORD, backend_factory=factory)
    answer: list[bool] = []
    t = threading.Thread(target=lambda: answer.append(again.has_blob(ids[-1])), daemon=True)
    t.start()
    t.join(30)
    assert answer == [True]
    again.close()


class WholeObjectsOnly(DirBackend):
    """A backend that cannot read ranges (a third party's, say)."""

    capabilities = BackendCapabilities(atomic_put=True, ranged_get=False)
    gets = 0

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        raise AssertionError("no ranged reads on this backend")

    def _get_stream(self, remote_filename, fileobj):  # type: ignore[no-untyped-def]
        type(self).gets += 1
        super()._get_stream(remote_filename, fileobj)


def test_backend_without_ranged_reads_downloads_each_pack_once(backend: DirBackend) -> None:
    repo = Repository.init(backend, PASSWORD, kdf=FAST_KDF)
    blobs = [os.urandom(1000) for _ in range(50)]
    ids = [repo.add_blob(b)[0] for b in blobs]
    repo.close()
    whole = WholeObjectsOnly(backend.directory)
    again = Repository.open(whole, PASSWORD)
    _ = again.index
    before = WholeObjectsOnly.gets
    assert [again.read_blob(i) for i in ids] == blobs
    assert WholeObjectsOnly.gets - before == 1  # one pack, fetched once


def test_backend_without_ranged_reads_recovers_unindexed_packs(backend: DirBackend) -> None:
    repo = Repository.init(backend, PASSWORD, kdf=FAST_KDF)
    ids = repo.store_bytes(b"left by an interrupted backup")
    repo.close()
    for p in backend.directory.iterdir():
        if p.name.startswith("index-"):
            p.unlink()
    again = Repository.open(WholeObjectsOnly(backend.directory), PASSWORD)
    assert len(again.recovered_packs) == 1
    assert again.read_blob(ids[0]) == b"left by an interrupted backup"


class RefusesPacks(DirBackend):
    """A backend whose disk is full for packs."""

    def _write(self, name: str, data: bytes) -> None:
        if name.startswith("data-"):
            from pannier.errors import PermanentBackendError

            raise PermanentBackendError("no space left on device")
        super()._write(name, data)


def test_failed_upload_is_raised_and_leaves_no_index(backend: DirBackend) -> None:
    from pannier.errors import PermanentBackendError

    Repository.init(backend, PASSWORD, kdf=FAST_KDF).close()
    repo = Repository.open(RefusesPacks(backend.directory), PASSWORD)
    repo.store_bytes(os.urandom(20_000))
    with pytest.raises(PermanentBackendError, match="no space left"):
        repo.flush()
    with pytest.raises(PermanentBackendError):
        repo.add_blob(b"more")
    assert not [p for p in backend.directory.iterdir() if p.name.startswith(("index-", "data-"))]
    with pytest.raises(PermanentBackendError):
        repo.close()
    again = Repository.open(backend, PASSWORD)
    assert len(again.index) == 0


def test_damaged_or_newer_key_objects_do_not_block_other_keys(
    repo: Repository, backend: DirBackend
) -> None:
    import msgpack

    backend.put_bytes("key-0000000000000001", b"\xc1 damaged")
    backend.put_bytes("key-0000000000000002", msgpack.packb({"version": 9}))
    again = Repository.open(backend, PASSWORD)
    assert again.key_name == repo.key_name
    kdfs = {k.id: k.kdf for k in again.list_keys()}
    assert kdfs["0000000000000001"].startswith("unusable: key object")
    assert "version 9" in kdfs["0000000000000002"]
    with pytest.raises(WrongPasswordError, match="key-0000000000000001 is corrupt"):
        Repository.open(backend, "not it")


def test_foreign_objects_in_the_folder_are_ignored(repo: Repository, backend: DirBackend) -> None:
    ids = repo.store_bytes(b"mine")
    repo.close()
    for name in ("data-notahexname", "data-abc", "README", "index-zz"):
        (backend.directory / name).write_bytes(b"someone else's")
    again = Repository.open(backend, PASSWORD)
    assert again.read_blob(ids[0]) == b"mine"
    assert again.recovered_packs == {}
