"""The ``checksum`` metadata plugin: a BLAKE3 hash of every regular file's content.

A record holds the algorithm name (``"blake3"``) and the 32-byte digest of the file's
content at backup time. Only regular files have a record.

Applying a record writes nothing: it verifies the restored content. A file whose content
does not hash to the recorded digest raises :class:`pannier.CorruptObjectError` naming the
file, so a restore never ends quietly with wrong data.
"""

from __future__ import annotations

import os
import stat
from typing import Any

import attrs
from pannier import (
    CorruptObjectError,
    FSAbilities,
    Index,
    MetaPlugin,
    MetaRecord,
    index_path,
)

ALGORITHM = "blake3"
_CHUNK = 1024 * 1024


@attrs.define
class ChecksumRecord(MetaRecord):
    """The content hash of one regular file."""

    algorithm: str
    digest: bytes


def file_digest(path: bytes) -> bytes:
    """The BLAKE3 digest of the file at ``path``, read in 1 MiB pieces.

    A symlink at ``path`` is not followed (OSError ELOOP).
    """
    import blake3  # a core dependency; imported here so listing plugins stays cheap

    hasher = blake3.blake3()
    # a symlink planted where a regular file was recorded is not followed, a FIFO not waited on
    with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK), "rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    digest: bytes = hasher.digest()
    return digest


class ChecksumPlugin(MetaPlugin):
    """Content hash (BLAKE3) of regular files, verified on restore."""

    plugin_api_version = 1
    record_class = ChecksumRecord
    #: The engine hashes a file's content while it reads it and passes ``digest=``.
    content_digest = ALGORITHM

    @classmethod
    def get_prefix(cls) -> str:
        """The stream prefix ``checksum``."""
        return "checksum"

    @classmethod
    def get_version(cls) -> str:
        """The record layout version of this plugin."""
        return "1.0"

    @classmethod
    def is_active(cls, fs: FSAbilities | str | bytes | os.PathLike[Any]) -> bool:
        """Always active: every filesystem has file contents."""
        return True

    @classmethod
    def from_path(
        cls, root: bytes, index: Index, st: os.stat_result, *, digest: bytes | None = None
    ) -> ChecksumRecord | None:
        """Hash a regular file; other file types have no record.

        ``digest``, when given, is the BLAKE3 digest of the content the engine just read
        and stored: it is recorded as is and the file is not read again.
        """
        if not stat.S_ISREG(st.st_mode):
            return None
        if digest is None:
            digest = file_digest(index_path(root, index))
        return ChecksumRecord(index, ALGORITHM, digest)

    @classmethod
    def apply(
        cls,
        record: ChecksumRecord,
        root: bytes,
        index: Index,
        *,
        dry_compare: bool = True,
        digest: bytes | None = None,
    ) -> bool:
        """Verify the file's content; return False (nothing is ever written).

        ``digest``, when given, is the BLAKE3 digest of the bytes the engine just wrote
        to the file: it is compared and the file is not read again; without it the file
        is read and hashed. Raises CorruptObjectError when the content differs from the
        recorded digest, and ValueError for an algorithm this plugin does not know.
        """
        if record.algorithm != ALGORITHM:
            raise ValueError(f"unknown checksum algorithm {record.algorithm!r}")
        path = index_path(root, index)
        if digest is None:
            digest = file_digest(path)
        if digest != record.digest:
            raise CorruptObjectError(
                f"restored file {os.fsdecode(path)!r} does not match its recorded "
                f"{ALGORITHM} checksum",
                object_name=os.fsdecode(path),
            )
        return False


def get_plugin_class() -> type[MetaPlugin]:
    """Return the ``checksum`` plugin class (the discovery entry point)."""
    return ChecksumPlugin
