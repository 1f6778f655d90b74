"""``check``: verify a repository's structure and, optionally, its data.

Structure: every index object opens; every pack an index names exists and is large enough
for its blobs; every snapshot opens and every blob it references (its streams and the
content its tree names, see :func:`~pannier.repo.register_referenced_blobs`) is indexed.
Packs no index names are reported as warnings (an interrupted backup; the next backup
reuses them and prune removes the rest).

Data (``read_data``): each selected pack is downloaded, its BLAKE3 hash compared with its
name, its header authenticated and compared with the index, and every blob opened,
decompressed and re-hashed. A subset is chosen by :func:`select_subset`: ``"n/t"`` reads
the n-th of t fixed groups of packs (run n = 1..t on successive days to scrub the whole
repository), ``"x%"`` a random x % of the packs (Deltaic's probabilistic scrubbing).
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import attrs
import blake3

from ..errors import ConfigError, FileMissingError, PannierError
from . import format as fmt
from .index import Index, decode_records, encode_records
from .pack import PackEntry, pack_name, parse_pack
from .repository import Repository

__all__ = ["CheckResult", "check_repository", "parse_subset", "select_subset"]

AffectedFiles = Callable[[Repository, set[bytes]], dict[bytes, list[str]]]
_affected_files: list[AffectedFiles] = []


def register_affected_files(fn: AffectedFiles) -> AffectedFiles:
    """Register ``fn(repo, blob_ids) -> {blob id: ["snapshot-short-id:/path", ...]}``, used
    to name the files a damaged blob belongs to. The engine registers one."""
    if fn not in _affected_files:
        _affected_files.append(fn)
    return fn


@attrs.define
class CheckResult:
    """What ``check`` found. ``ok`` is True when there is no error.

    :ivar errors: one line per problem, naming the object.
    :ivar warnings: one line per oddity that loses no data.
    :ivar damaged_packs: names of packs that failed verification or are missing.
    :ivar damaged_blobs: ids of blobs that are missing or damaged.
    :ivar affected: lines naming snapshots and files that use a damaged blob.
    """

    errors: list[str] = attrs.field(factory=list)
    warnings: list[str] = attrs.field(factory=list)
    snapshots: int = 0
    packs: int = 0
    blobs: int = 0
    packs_read: int = 0
    bytes_read: int = 0
    damaged_packs: list[str] = attrs.field(factory=list)
    damaged_blobs: set[bytes] = attrs.field(factory=set)
    affected: list[str] = attrs.field(factory=list)

    @property
    def ok(self) -> bool:
        """Whether no error was found."""
        return not self.errors

    def to_json(self) -> dict[str, object]:
        """The result as JSON-friendly data."""
        d = attrs.asdict(self)
        d["damaged_blobs"] = sorted(b.hex() for b in self.damaged_blobs)
        d["ok"] = self.ok
        return d


_SUBSET = re.compile(r"^(?:(\d+)/(\d+)|(\d+(?:\.\d+)?)%)$")


def parse_subset(text: str) -> tuple[int, int] | float:
    """``(n, t)`` for ``"n/t"`` (1 <= n <= t) or a fraction for ``"x%"`` (0 < x <= 100);
    ConfigError otherwise."""
    m = _SUBSET.match(text.strip())
    if not m:
        raise ConfigError(f"--read-data-subset {text!r}: use n/t (e.g. 1/5) or x% (e.g. 10%)")
    if m.group(3) is not None:
        share = float(m.group(3)) / 100
        if not 0 < share <= 1:
            raise ConfigError(f"--read-data-subset {text!r}: the share must be in (0, 100]%")
        return share
    n, t = int(m.group(1)), int(m.group(2))
    if not 1 <= n <= t:
        raise ConfigError(f"--read-data-subset {text!r}: need 1 <= n <= t")
    return n, t


def select_subset(
    pack_ids: Iterable[bytes], subset: tuple[int, int] | float, rng: random.Random | None = None
) -> list[bytes]:
    """The packs of ``subset``: group n of t (by pack id, stable across runs, so the t
    groups cover every pack exactly once) or a random share (at least one pack)."""
    ids = sorted(pack_ids)
    if isinstance(subset, tuple):
        n, t = subset
        return [p for p in ids if int.from_bytes(p[:8], "big") % t == n - 1]
    if not ids:
        return []
    count = max(1, math.ceil(len(ids) * subset))
    return sorted((rng or random.SystemRandom()).sample(ids, count))


def check_repository(
    repo: Repository,
    *,
    read_data: bool = False,
    subset: tuple[int, int] | float | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckResult:
    """Check ``repo`` (the caller holds a shared lock) and return what was found."""
    result = CheckResult()
    say = progress or (lambda _msg: None)
    names = repo.list_names()
    say("loading indexes")
    # Compact forms only: wire records per pack, and an Index for blob -> pack, so a
    # repository of millions of blobs is checked in tens of MB.
    indexed: dict[bytes, bytes] = {}
    where = Index()
    superseded: set[str] = set()
    loaded: dict[str, list[tuple[bytes, bytes]]] = {}
    for name in sorted(n for n in names if n.startswith("index-")):
        try:
            packs, sup = repo.read_index_records(name)
        except PannierError as err:
            result.errors.append(str(err))
            continue
        loaded[name] = packs
        superseded.update(f"index-{s}" for s in sup)
    for name, packs in loaded.items():
        if name in superseded:
            continue
        for pack_id, records in packs:
            if pack_id not in indexed:
                indexed[pack_id] = records
                where.add_records(pack_id, records)
    result.packs = len(indexed)
    result.blobs = len(where)

    for pack_id, records in sorted(indexed.items()):
        name = pack_name(pack_id)
        size = names.get(name)
        entries = decode_records(records)
        need = max((e.offset + e.length for e in entries), default=0) + 12
        if size is None:
            result.errors.append(f"pack {name} is missing (named by the index)")
            result.damaged_packs.append(name)
            result.damaged_blobs.update(e.blob_id for e in entries)
        elif 0 <= size < need:
            result.errors.append(f"pack {name} is truncated: {size} bytes, need {need}")
            result.damaged_packs.append(name)
            result.damaged_blobs.update(e.blob_id for e in entries)
    recovered = repo.recovered_packs  # unindexed packs whose headers are readable
    for name in sorted(names):
        unindexed = fmt.pack_id_of(name)
        if unindexed is None or unindexed in indexed:
            continue
        found = recovered.get(unindexed)
        if found is None:
            result.warnings.append(
                f"pack {name} is not indexed and its header cannot be read (a half-written "
                "upload; prune removes it)"
            )
            continue
        # Its blobs are safe: the next backup or prune writes it into an index.
        result.warnings.append(
            f"pack {name} is not indexed (left by an interrupted backup or a damaged index; "
            "the next backup or prune indexes it again)"
        )
        records = encode_records(found)
        indexed[unindexed] = records
        where.add_records(unindexed, records)
    result.packs = len(indexed)
    result.blobs = len(where)

    say("checking snapshots")
    if not repo.walkers_registered():
        result.warnings.append(
            "no walker of snapshot trees is registered: only stream blobs are checked"
        )
    for snap_id in repo.snapshot_ids():
        result.snapshots += 1
        try:
            snap = repo.read_snapshot(snap_id)
            for blob_id in repo.referenced_blobs(snap):
                if blob_id not in where:
                    result.errors.append(
                        f"snapshot {snap_id[:8]} references blob {blob_id.hex()[:16]}, "
                        "which no index names"
                    )
                    result.damaged_blobs.add(blob_id)
        except PannierError as err:
            result.errors.append(f"snapshot {snap_id[:8]}: {err}")

    if read_data:
        chosen = list(indexed) if subset is None else select_subset(indexed, subset)
        chosen = [p for p in chosen if pack_name(p) not in result.damaged_packs]
        say(f"reading {len(chosen)} of {len(indexed)} packs")
        with ThreadPoolExecutor(repo.workers) as pool:
            for pack_id, (problems, nbytes, bad) in zip(
                chosen,
                pool.map(lambda p: _verify_pack(repo, p, decode_records(indexed[p])), chosen),
                strict=True,
            ):
                result.packs_read += 1
                result.bytes_read += nbytes
                if problems:
                    result.errors.extend(problems)
                    result.damaged_blobs.update(bad)
                    result.damaged_packs.append(pack_name(pack_id))

    if result.damaged_blobs:
        result.affected = _affected(repo, result.damaged_blobs)
    return result


def _verify_pack(
    repo: Repository, pack_id: bytes, entries: list[PackEntry]
) -> tuple[list[str], int, set[bytes]]:
    """Download one pack and verify it; ``(problems, bytes read, damaged blob ids)``."""
    name = pack_name(pack_id)
    all_ids = {e.blob_id for e in entries}
    try:
        data = repo.call_backend(lambda b: b.get_bytes(name))
    except FileMissingError:
        return [f"pack {name} is missing"], 0, all_ids
    except PannierError as err:
        return [f"pack {name} cannot be read: {err}"], 0, all_ids
    problems: list[str] = []
    if blake3.blake3(data).digest() != pack_id:
        problems.append(f"pack {name} does not match its name (content altered)")
    try:
        header = parse_pack(data, repo.cipher, name)
    except PannierError as err:
        problems.append(str(err))
        header = []
    if header and {(e.blob_id, e.offset, e.length) for e in entries} - {
        (e.blob_id, e.offset, e.length) for e in header
    }:
        problems.append(f"pack {name} header does not match the index")
    bad: set[bytes] = set()
    view = memoryview(data)
    for e in entries:
        try:
            repo.decode_blob(e.blob_id, view[e.offset : e.offset + e.length], name)
        except PannierError as err2:
            problems.append(str(err2))
            bad.add(e.blob_id)
    if problems and not bad:
        bad = all_ids
    return problems, len(data), bad


def _affected(repo: Repository, damaged: set[bytes]) -> list[str]:
    """Lines naming each snapshot that uses a damaged blob, then (when the engine tells)
    each file and stream that uses one."""
    lines: list[str] = []
    for snap_id in repo.snapshot_ids():
        hit: list[bytes] = []
        broken = ""
        try:
            snap = repo.read_snapshot(snap_id)
            for b in repo.referenced_blobs(snap):
                if b in damaged:
                    hit.append(b)
        except PannierError as e:
            broken = f"; its tree cannot be read in full ({e})"
        if hit or broken:
            lines.append(f"snapshot {snap_id[:8]} uses {len(hit)} damaged blob(s){broken}")
    for fn in _affected_files:
        try:
            for blob_id, files in fn(repo, damaged).items():
                lines.extend(f"{f} (blob {blob_id.hex()[:16]})" for f in files)
        except PannierError as e:
            lines.append(f"cannot map damaged blobs to files: {e}")
    return lines
