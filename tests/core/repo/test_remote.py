"""The repository on real servers (sftp, s3), through the backend contract only: init,
store across several packs, reopen with parallel backend instances, read back, check,
prune, an interrupted upload recovered."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from pannier.backend import Backend
from pannier.backend_registry import get_backend
from pannier.repo import Repository, Snapshot
from pannier.repo.check import check_repository
from pannier.repo.prune import prune_repository

from tests.servers import require_server

from .conftest import FAST_KDF, PASSWORD


def sftp_url() -> str:
    facts = require_server("sshd")
    query = (
        f"key-file={facts['PANNIER_TEST_SFTP_KEY_FILE']}"
        f"&known-hosts={facts['PANNIER_TEST_SFTP_KNOWN_HOSTS']}"
    )
    return (
        f"sftp://{facts['PANNIER_TEST_SFTP_USER']}@{facts['PANNIER_TEST_SFTP_HOST']}:"
        f"{facts['PANNIER_TEST_SFTP_PORT']}/{facts['PANNIER_TEST_SFTP_ROOT']}/"
        f"repo-{uuid.uuid4().hex[:8]}?{query}"
    )


def s3_url() -> str:
    facts = require_server("swift")
    query = (
        f"endpoint={facts['PANNIER_TEST_S3_ENDPOINT']}"
        f"&access-key={facts['PANNIER_TEST_S3_ACCESS_KEY']}"
        f"&secret-key={facts['PANNIER_TEST_S3_SECRET_KEY']}&create=true"
    )
    return f"s3://pannier-repo-{uuid.uuid4().hex[:8]}?{query}"


@pytest.fixture(params=[sftp_url, s3_url], ids=["sftp", "s3"])
def url(request: pytest.FixtureRequest) -> str:
    make: Callable[[], str] = request.param
    return make()


@pytest.fixture
def backends(url: str) -> Iterator[Callable[[], Backend]]:
    made: list[Backend] = []

    def factory() -> Backend:
        b = get_backend(url)
        made.append(b)
        return b

    yield factory
    cleaner = factory()  # leave the server's folder empty
    try:
        cleaner.delete_list([e.name for e in cleaner.list()])
    finally:
        for b in made:
            b.close()


def test_round_trip_on_a_server(backends: Callable[[], Backend]) -> None:
    repo = Repository.init(backends(), PASSWORD, kdf=FAST_KDF)
    data = os.urandom(20_000_000)  # three packs
    small = [os.urandom(3000) for _ in range(30)]
    ids = repo.store_bytes(data)
    small_ids = [repo.add_blob(s)[0] for s in small]
    snap = repo.save_snapshot(Snapshot(paths=["/x"], version=1, streams={"raw": ids + small_ids}))
    repo.close()

    again = Repository.open(backends(), PASSWORD, backend_factory=backends)
    assert b"".join(again.iter_blobs(ids)) == data
    assert list(again.iter_blobs(small_ids)) == small
    assert again.load_snapshot(snap[:8]).paths == ["/x"]
    result = check_repository(again, read_data=True)
    assert result.ok, result.errors
    assert result.packs_read >= 3
    again.remove_snapshots([snap])
    pruned = prune_repository(again)
    assert pruned.packs_deleted >= 3
    again.close()
    final = Repository.open(backends(), PASSWORD)
    assert [n for n in final.list_names() if n.startswith("data-")] == []


def test_unindexed_packs_on_a_server_are_reused(backends: Callable[[], Backend]) -> None:
    repo = Repository.init(backends(), PASSWORD, kdf=FAST_KDF)
    data = os.urandom(18_000_000)
    repo.store_bytes(data)
    repo.flush()
    for name in repo.list_names("index-"):  # as if the backup died before its index
        repo.backend.delete(name)
    repo.close()
    again = Repository.open(backends(), PASSWORD)
    assert len(again.recovered_packs) >= 2
    again.store_bytes(data)
    again.flush()
    assert again.stats.packs_uploaded == 0
    assert again.stats.blobs_new == 0
    assert len(again.list_names("index-")) == 1  # the reused packs are indexed again
    again.close()
    assert Repository.open(again.backend, PASSWORD).recovered_packs == {}
