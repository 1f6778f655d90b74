"""Snapshots: the last object a backup writes, naming everything it stored.

A snapshot object (``snapshot-<id>``) is sealed like any object (associated data
``pannier:snapshot``) and holds the msgpack map of :meth:`Snapshot.to_dict`. Its id is the
hex blob id of that plaintext, so a snapshot cannot be altered without changing its name.

``streams`` maps a stream name (``"tree"`` for the engine's file tree, ``"meta/<prefix>"``
for each metadata plugin's stream; see the engine section of ``docs/format.md``) to blob
ids. In a version 1 snapshot they are the stream's blobs, whose plaintexts concatenated are
the stream. In a version 2 snapshot (what pannier writes) they are the blobs of the stream's
*blob list*: their plaintexts concatenated are the 32-byte ids of the stream's blobs, in
order. A stream is cut into small pieces so that snapshots share its unchanged parts; the
list keeps the snapshot object small all the same (a few ids per stream), and is itself
shared between snapshots where it did not change.
:meth:`pannier.Repository.stream_blob_ids` reads either version.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import attrs
import msgpack

from ..errors import CorruptObjectError, RepositoryFormatError

__all__ = ["SNAPSHOT_VERSION", "Snapshot", "now_iso"]

#: The snapshot format version pannier writes and the newest it reads.
SNAPSHOT_VERSION = 2
#: The first version whose ``streams`` name blob lists rather than the streams' blobs.
STREAM_LISTS_VERSION = 2


def now_iso() -> str:
    """The current UTC time as ISO 8601 with nanoseconds, e.g.
    ``2026-01-02T03:04:05.123456789Z``."""
    import time

    ns = time.time_ns()
    base = datetime.fromtimestamp(ns // 1_000_000_000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{ns % 1_000_000_000:09d}Z"


def _to_ids(value: Any) -> list[bytes]:
    return [bytes.fromhex(v) if isinstance(v, str) else bytes(v) for v in value]


def parse_time(value: str | datetime) -> datetime:
    """A snapshot time as an aware datetime (nanoseconds are truncated to microseconds)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    text = value.replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:
        digits = "".join(c for c in rest if c.isdigit())
        tz = rest[len(digits) :]
        text = f"{head}.{digits[:6]}{tz}"
    return datetime.fromisoformat(text)


def _check_types(snap: Snapshot) -> None:
    """Raise TypeError or ValueError when a decoded snapshot's fields are not what the
    format says (listing, sorting and printing snapshots then cannot fail)."""
    strings = (snap.time, snap.hostname, snap.username, snap.program_version)
    lists = (snap.paths, snap.tags, snap.source_kinds)
    if (
        not all(isinstance(v, str) for v in strings)
        or not all(isinstance(v, list) and all(isinstance(x, str) for x in v) for v in lists)
        or not (snap.parent is None or isinstance(snap.parent, str))
        or not isinstance(snap.summary, dict)
        or not all(isinstance(k, str) for k in snap.streams)
    ):
        raise TypeError("snapshot field of the wrong type")
    parse_time(snap.time)


@attrs.define
class Snapshot:
    """One backup: when, of what, from where, and the streams that hold it.

    :ivar id: hex id, set when the snapshot is saved or loaded.
    :ivar time: ISO 8601 UTC with nanoseconds (a datetime is converted on save).
    :ivar streams: stream name -> ordered blob ids (bytes; hex strings are accepted): the
        ids of the stream's blob list (version 2) or of its blobs (version 1).
    :ivar version: the format version (:data:`SNAPSHOT_VERSION` for a new snapshot).
    :ivar summary: counters of the backup (files and bytes new, changed, unchanged, ...).
    :ivar extra: fields this pannier does not know, kept as read.
    """

    time: str = attrs.field(factory=now_iso)
    hostname: str = ""
    username: str = ""
    paths: list[str] = attrs.field(factory=list)
    tags: list[str] = attrs.field(factory=list)
    parent: str | None = None
    streams: dict[str, list[bytes]] = attrs.field(factory=dict)
    summary: dict[str, Any] = attrs.field(factory=dict)
    program_version: str = ""
    source_kinds: list[str] = attrs.field(factory=list)
    version: int = SNAPSHOT_VERSION
    extra: dict[str, Any] = attrs.field(factory=dict)
    id: str | None = None

    @property
    def lists_streams(self) -> bool:
        """Whether :attr:`streams` names each stream's blob list (version 2 and later)."""
        return self.version >= STREAM_LISTS_VERSION

    @property
    def short_id(self) -> str:
        """The first 8 hex digits of the id."""
        return (self.id or "")[:8]

    @property
    def datetime(self) -> datetime:
        """The snapshot time as an aware datetime."""
        return parse_time(self.time)

    def to_dict(self) -> dict[str, Any]:
        """The map stored in the snapshot object (without the id)."""
        t = self.time
        if isinstance(t, datetime):
            t = t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
        d: dict[str, Any] = dict(self.extra)
        d.update(
            {
                "version": self.version,
                "time": t,
                "hostname": self.hostname,
                "username": self.username,
                "paths": list(self.paths),
                "tags": list(self.tags),
                "parent": self.parent,
                "streams": {k: _to_ids(v) for k, v in self.streams.items()},
                "summary": self.summary,
                "program_version": self.program_version,
                "source_kinds": list(self.source_kinds),
            }
        )
        return d

    def encode(self) -> bytes:
        """The msgpack plaintext of the snapshot object."""
        return bytes(msgpack.packb(self.to_dict(), use_bin_type=True))

    @classmethod
    def decode(cls, plain: bytes, snapshot_id: str) -> Snapshot:
        """The snapshot in a plaintext; CorruptObjectError or RepositoryFormatError naming
        it."""
        name = f"snapshot {snapshot_id[:8]}"
        try:
            d = msgpack.unpackb(plain, raw=False)
            version = d.pop("version")
        except Exception:
            raise CorruptObjectError(f"{name} is corrupt", object_name=name) from None
        if not isinstance(version, int) or version < 1:
            raise CorruptObjectError(f"{name} is corrupt (version {version!r})", object_name=name)
        if version > SNAPSHOT_VERSION:
            raise RepositoryFormatError(
                f"{name} has format version {version}; this pannier reads up to "
                f"{SNAPSHOT_VERSION}: upgrade pannier"
            )
        known = {f.name for f in attrs.fields(cls)} - {"extra", "id", "version"}
        kwargs = {k: d.pop(k) for k in list(d) if k in known}
        try:
            kwargs["streams"] = {k: _to_ids(v) for k, v in kwargs.get("streams", {}).items()}
            snap = cls(**kwargs, version=version, extra=d, id=snapshot_id)
            _check_types(snap)
            return snap
        except (TypeError, ValueError, AttributeError, OverflowError):
            raise CorruptObjectError(f"{name} is corrupt", object_name=name) from None

    def to_json(self) -> dict[str, Any]:
        """The snapshot as JSON-friendly data (ids as hex)."""
        d = self.to_dict()
        d.pop("version")
        d["streams"] = {k: [b.hex() for b in v] for k, v in d["streams"].items()}
        d["id"] = self.id
        d["short_id"] = self.short_id
        return d
