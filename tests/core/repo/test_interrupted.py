"""An interrupted backup (a real SIGKILL) leaves only packs the next backup reuses."""

from __future__ import annotations

import signal

import blake3
from pannier.repo import Repository, Snapshot
from pannier.repo.check import check_repository
from pannier.repo.prune import prune_repository

from .conftest import PASSWORD, DirBackend
from .helpers import spawn, wait_for_line

SIZE = 48_000_000


def content() -> bytes:
    return blake3.blake3(b"interrupted backup").digest(length=SIZE)


def test_killed_backup_leaves_reusable_packs(repo: Repository, backend: DirBackend) -> None:
    repo.close()
    child = spawn(
        f"""
        import blake3
        repo = Repository.open(DirBackend(Path({str(backend.directory)!r})), {PASSWORD!r})
        data = blake3.blake3(b"interrupted backup").digest(length={SIZE})
        repo.store_bytes(data)  # no flush: the index is never written
        while repo.stats.packs_uploaded < 2:
            time.sleep(0.01)
        print("uploaded", flush=True)
        time.sleep(60)
        """
    )
    wait_for_line(child, "uploaded")
    child.send_signal(signal.SIGKILL)
    child.wait()
    names = sorted(p.name for p in backend.directory.iterdir())
    left = [n for n in names if n.startswith("data-")]
    assert len(left) >= 2
    assert not any(n.startswith(("index-", "snapshot-")) for n in names)

    # a pack cut short by the kill of a non-atomic backend: ignored, then pruned
    half = backend.directory / ("data-" + "0" * 64)
    half.write_bytes((backend.directory / left[0]).read_bytes()[:1000])

    again = Repository.open(DirBackend(backend.directory), PASSWORD)
    recovered = again.recovered_packs
    assert {p.hex() for p in recovered} == {n[5:] for n in left}
    reused = sum(len(entries) for entries in recovered.values())
    again.backend.puts.clear()  # type: ignore[attr-defined]
    ids = again.store_bytes(content())
    snap_id = again.save_snapshot(Snapshot(paths=["/data"], version=1, streams={"raw": ids}))
    uploaded = [n for n in again.backend.puts if n.startswith("data-")]  # type: ignore[attr-defined]
    assert again.stats.blobs_dup == reused
    assert not set(uploaded) & set(left)  # nothing uploaded twice
    assert len(uploaded) < len(ids)
    again.close()

    final = Repository.open(DirBackend(backend.directory), PASSWORD)
    assert final.recovered_packs == {}  # the new index names the reused packs
    assert b"".join(final.iter_blobs(final.load_snapshot(snap_id).streams["raw"])) == content()
    result = check_repository(final, read_data=True)
    assert result.ok, result.errors
    assert [w for w in result.warnings if "0" * 64 in w]
    prune_repository(final)
    assert not half.exists()
    assert check_repository(final).warnings == []
