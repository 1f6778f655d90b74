"""The repository: content-addressed, chunked, compressed, optionally encrypted storage of
snapshots on any backend. See ``docs/format.md`` for the format.

The names engine code uses: :class:`Repository`, :class:`Snapshot`, :class:`KdfParams`,
:func:`register_referenced_blobs`.
"""

from __future__ import annotations

from .crypto import KdfParams
from .format import FORMAT_VERSION, BlobKind
from .keys import KeyInfo
from .locks import LockInfo, RepositoryLock
from .repository import Repository, register_referenced_blobs
from .snapshot import Snapshot

__all__ = [
    "FORMAT_VERSION",
    "BlobKind",
    "KdfParams",
    "KeyInfo",
    "LockInfo",
    "Repository",
    "RepositoryLock",
    "Snapshot",
    "register_referenced_blobs",
]
