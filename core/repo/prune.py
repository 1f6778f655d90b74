"""``prune``: delete data no snapshot uses, repacking packs that are partly used.

The caller holds the exclusive lock. The steps, in a crash-safe order:

1. Find every blob the snapshots reference (streams and the content their trees name).
   A snapshot that cannot be read stops prune: nothing is deleted on uncertain grounds.
2. Sort packs: fully used ones are kept; unused ones are deleted; a pack whose unused
   share is above ``max_unused`` (default 5 %) is *repacked*: its used blobs are verified
   and copied, still sealed, into new packs. Packs no index names are treated the same
   (their headers say what they hold); ones whose header does not open are deleted.
3. Upload the new packs, then write one index naming every kept and new pack, which
   *supersedes* every old index.
4. Delete the old index objects, then the packs no longer needed.
5. Remove the temporaries of interrupted uploads (``Backend.clean_temporaries``) that have
   not been written to for ``temporaries_older_than`` seconds (default: the lock's stale
   age, :data:`~pannier.repo.locks.STALE_AFTER`, 30 minutes).

A crash after step 3 leaves both the new index and old ones, readers ignore the old ones;
a crash during step 4 leaves packs no index names, which the next prune deletes.

Why step 5 never removes the temporary of a live upload: prune holds the exclusive lock,
so no other pannier process holds a live lock on the repository; a writer whose lock went
unrefreshed for the stale age stops its work (``RepositoryLock.check``) before others may
take its lock as stale. A temporary is aged by its last write, and an upload in progress
writes to it continually, so one untouched for the stale age belongs to a writer that is
dead, or that lost its lock and must not finish anyway. Even then removing it loses
nothing: a temporary is never an object until its put renames it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import attrs

from ..backend import Backend
from ..errors import BackendError, CorruptObjectError, PannierError, RepositoryError
from . import format as fmt
from .index import BlobSet, decode_records, encode_records
from .locks import STALE_AFTER
from .pack import PackEntry, PackWriter, pack_name
from .repository import Repository

__all__ = ["PruneResult", "prune_repository"]


@attrs.define
class PruneResult:
    """What prune did (or, with ``dry_run``, would do)."""

    snapshots: int = 0
    packs_before: int = 0
    packs_kept: int = 0
    packs_deleted: int = 0
    packs_repacked: int = 0
    packs_written: int = 0
    blobs_used: int = 0
    blobs_removed: int = 0
    bytes_before: int = 0
    bytes_freed: int = 0
    indexes_replaced: int = 0
    temporaries_removed: int = 0
    #: Why removing the temporaries failed (prune's own work was done), or "".
    temporaries_error: str = ""
    dry_run: bool = False

    def to_json(self) -> dict[str, object]:
        """The result as JSON-friendly data."""
        return attrs.asdict(self)


def used_blobs(repo: Repository) -> tuple[BlobSet, int]:
    """Every blob some snapshot references, and the number of snapshots."""
    if not repo.walkers_registered():
        raise RepositoryError(
            "prune stopped, nothing deleted: no walker of snapshot trees is registered "
            "(pannier.engine could not be imported), so the data files use is unknown"
        )
    used = BlobSet()
    ids = repo.snapshot_ids()
    for snap_id in ids:
        try:
            snap = repo.read_snapshot(snap_id)
            used.update(repo.referenced_blobs(snap))
        except PannierError as e:
            raise RepositoryError(
                f"prune stopped, nothing deleted: snapshot {snap_id[:8]} cannot be read ({e}); "
                "run 'pannier check'"
            ) from e
    return used, len(ids)


def prune_repository(
    repo: Repository,
    *,
    max_unused: float = 0.05,
    dry_run: bool = False,
    progress: Callable[[str], None] | None = None,
    temporaries_older_than: float = STALE_AFTER,
) -> PruneResult:
    """Prune ``repo`` (the caller holds the exclusive lock); see the module docstring.

    ``temporaries_older_than`` is the age in seconds, since their last write, above which
    the temporaries of interrupted uploads are removed (step 5); a dry run removes none."""
    say = progress or (lambda _msg: None)
    result = PruneResult(dry_run=dry_run)
    repo.flush()
    say("finding the blobs snapshots use")
    used, result.snapshots = used_blobs(repo)
    names = repo.list_names()
    index_names = sorted(n for n in names if n.startswith("index-"))
    # Packs as their compact wire records; entries are decoded one pack at a time.
    packs: dict[bytes, bytes] = {}
    for name in index_names:
        try:
            found, _ = repo.read_index_records(name)
        except CorruptObjectError:
            continue  # skipped on open too: its packs were recovered from their headers
        for pack_id, records in found:
            packs.setdefault(pack_id, records)
    for pack_id, entries in repo.recovered_packs.items():
        packs.setdefault(pack_id, encode_records(entries))
    present = {pid: size for n, size in names.items() if (pid := fmt.pack_id_of(n)) is not None}
    missing = [p for p in packs if p not in present]
    lost = sum(1 for p in missing for e in decode_records(packs[p]) if e.blob_id in used)
    if lost:
        raise RepositoryError(
            f"prune stopped, nothing deleted: {len(missing)} pack(s) named by the index are "
            f"missing (e.g. {pack_name(missing[0])}) and hold {lost} used blob(s); "
            "run 'pannier check'"
        )
    for p in missing:
        del packs[p]
    result.packs_before = len(present)
    result.bytes_before = sum(max(0, s) for s in present.values())
    result.blobs_used = len(used)

    claimed = BlobSet()
    keep: list[bytes] = []
    repack: dict[bytes, list[PackEntry]] = {}
    delete: list[bytes] = [p for p in present if p not in packs]  # unreadable strays
    # Fullest packs first, so a blob stored twice is kept in the pack that is kept.
    live_bytes = {
        p: sum(e.length for e in decode_records(r) if e.blob_id in used) for p, r in packs.items()
    }
    for pack_id in sorted(packs, key=lambda p: -live_bytes[p]):
        entries = decode_records(packs[pack_id])
        live = [e for e in entries if e.blob_id in used and e.blob_id not in claimed]
        total = sum(e.length for e in entries) or 1
        unused = 1 - sum(e.length for e in live) / total
        if not live:
            delete.append(pack_id)
        elif unused > max_unused:
            repack[pack_id] = live
        else:
            keep.append(pack_id)
        claimed.update(e.blob_id for e in live)
        result.blobs_removed += len(entries) - len(live)
    if len(claimed) < len(used):
        example = next(b for b in used if b not in claimed)
        raise RepositoryError(
            f"prune stopped, nothing deleted: {len(used) - len(claimed)} blob(s) the snapshots "
            f"use are in no readable pack (e.g. {example.hex()[:16]}); run 'pannier check'"
        )
    result.packs_kept = len(keep)
    result.packs_deleted = len(delete)
    result.packs_repacked = len(repack)
    gone = set(delete) | set(repack)
    result.bytes_freed = sum(max(0, present.get(p, 0)) for p in gone)
    if dry_run:
        return result
    if not gone and len(index_names) <= 1 and not repo.recovered_packs:
        _clean_temporaries(repo, result, temporaries_older_than, say)
        return result

    say(f"repacking {len(repack)} pack(s)")
    new_packs = _repack(repo, repack, result)
    index_packs: dict[bytes, list[PackEntry] | bytes] = {p: packs[p] for p in keep}
    index_packs.update(new_packs)
    say("writing the new index")
    repo.write_index(index_packs, supersedes=[n[len("index-") :] for n in index_names])
    say("deleting old indexes and packs")
    repo.call_backend(lambda b: b.delete_list(index_names))
    repo.call_backend(lambda b: b.delete_list([pack_name(p) for p in sorted(gone)]))
    result.indexes_replaced = len(index_names)
    repo.reset_index()
    _clean_temporaries(repo, result, temporaries_older_than, say)
    return result


def _clean_temporaries(
    repo: Repository, result: PruneResult, older_than: float, say: Callable[[str], None]
) -> None:
    """Step 5: remove the temporaries of interrupted uploads older than ``older_than``.
    A backend error here is recorded in ``result.temporaries_error``, not raised: the
    repository is already pruned, and the next prune tries again."""
    say("removing the temporaries of interrupted uploads")
    try:
        removed = repo.call_backend(lambda b: b.clean_temporaries(older_than))
    except BackendError as e:
        result.temporaries_error = str(e)
        return
    result.temporaries_removed = len(removed)


def _repack(
    repo: Repository, repack: dict[bytes, list[PackEntry]], result: PruneResult
) -> dict[bytes, list[PackEntry]]:
    """Copy the live blobs of ``repack`` into new packs (verified first, still sealed);
    upload them; return their entries."""
    written: dict[bytes, list[PackEntry]] = {}
    writers: dict[int, PackWriter] = {}

    def ship(writer: PackWriter) -> None:
        pack_id, data = writer.finish(repo.cipher)
        repo.call_backend(lambda b: b.put_bytes(pack_name(pack_id), data))
        written[pack_id] = writer.entries
        result.packs_written += 1
        result.bytes_freed -= len(data)

    for pack_id, live in sorted(repack.items()):
        name = pack_name(pack_id)
        start = min(e.offset for e in live)
        stop = max(e.offset + e.length for e in live)
        raw = repo.call_backend(partial(_get_range, name=name, offset=start, length=stop - start))
        view = memoryview(raw)
        for e in live:
            sealed = bytes(view[e.offset - start : e.offset - start + e.length])
            try:
                repo.decode_blob(e.blob_id, sealed, name)
            except CorruptObjectError as err:
                raise RepositoryError(
                    f"prune stopped before deleting anything: {err}; run 'pannier check'"
                ) from err
            writer = writers.setdefault(e.kind, PackWriter())
            writer.add(e.kind, e.blob_id, sealed, e.raw_length)
            if writer.size >= repo.pack_size:
                ship(writers.pop(e.kind))
    for writer in writers.values():
        if len(writer):
            ship(writer)
    return written


def _get_range(backend: Backend, name: str, offset: int, length: int) -> bytes:
    return backend.get_range(name, offset, length)
