"""Constants of the repository format: version, object names, sizes.

Everything a reader of a repository must agree on without pannier's code lives here and in
``docs/format.md``, which specifies the format in full. A reader checks
:data:`FORMAT_VERSION` against the ``version`` of the repository's ``config`` object and
refuses a newer one with :class:`~pannier.RepositoryFormatError`.

Remote names are flat (see :func:`pannier.backend.check_name`)::

    config                  the repository's configuration
    key-<16 hex>            one key object per password
    data-<64 hex>           a pack of blobs; the hex is the plain BLAKE3 hash of the object
    index-<64 hex>          an index object; the hex is the plain BLAKE3 hash of the object
    snapshot-<64 hex>       a snapshot; the hex is the snapshot id (the blob id of its
                            plaintext)
    lock-<32 hex>           a lock
"""

from __future__ import annotations

import enum

from ..errors import ConfigError

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "ID_SIZE",
    "BlobKind",
    "ObjectType",
    "object_name",
    "pack_id_of",
    "parse_object_name",
]

#: The repository format version this pannier writes and the newest it reads.
FORMAT_VERSION = 1

#: Magic bytes that start the ``config`` object.
CONFIG_MAGIC = b"PANNIER\n"

#: Magic bytes that end every pack (after the header length).
PACK_MAGIC = b"PNRPACK1"

#: Size in bytes of a blob id, a pack id, an index id and a snapshot id.
ID_SIZE = 32

#: Name of the configuration object.
CONFIG_NAME = "config"

#: Size of an AES-GCM nonce and of its tag.
NONCE_SIZE = 12
TAG_SIZE = 16

#: Payload flag byte: how the plaintext after it is encoded.
PAYLOAD_RAW = 0
PAYLOAD_ZSTD = 1

#: Default chunker parameters (bytes): the average is ``CHUNK_AVG + CHUNK_MIN``.
CHUNK_MIN = 256 * 1024
CHUNK_AVG = 1024 * 1024
CHUNK_MAX = 4 * 1024 * 1024

#: Chunker parameters (bytes) of tree and metadata streams (blob kind ``tree``): small, so
#: that the next snapshot's streams share every piece without a changed record.
STREAM_CHUNK_MIN = 2 * 1024
STREAM_CHUNK_AVG = 4 * 1024
STREAM_CHUNK_MAX = 32 * 1024

#: A pack is closed and uploaded once it holds at least this many bytes.
PACK_TARGET_SIZE = 4 * 1024 * 1024

#: Compressed output at least this share of the input is stored raw (incompressible).
INCOMPRESSIBLE_RATIO = 0.97

#: Associated data bound to each kind of encrypted object (AES-GCM "AAD").
AAD_CONFIG = b"pannier:config"
AAD_KEY = b"pannier:key"
AAD_INDEX = b"pannier:index"
AAD_SNAPSHOT = b"pannier:snapshot"
AAD_LOCK = b"pannier:lock"
AAD_PACK_HEADER = b"pannier:pack-header"


class BlobKind(enum.IntEnum):
    """What a blob holds; recorded in pack headers and indexes."""

    DATA = 0  #: file content or a stream's bytes
    TREE = 1  #: metadata (file trees, meta plugin streams)

    @classmethod
    def parse(cls, value: str | int | BlobKind) -> BlobKind:
        """The kind named ``"data"``/``"tree"`` (any case) or numbered 0/1; ConfigError else."""
        if isinstance(value, BlobKind):
            return value
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.upper()]
        except KeyError:
            raise ConfigError(f"unknown blob kind {value!r}: use 'data' or 'tree'") from None


class ObjectType(str, enum.Enum):
    """The kinds of object a repository holds, by remote name prefix."""

    CONFIG = "config"
    KEY = "key"
    DATA = "data"
    INDEX = "index"
    SNAPSHOT = "snapshot"
    LOCK = "lock"


def object_name(kind: ObjectType, object_id: bytes | str) -> str:
    """The remote name of an object: ``<kind>-<hex id>`` (``config`` has no id)."""
    if kind is ObjectType.CONFIG:
        return CONFIG_NAME
    hex_id = object_id if isinstance(object_id, str) else object_id.hex()
    return f"{kind.value}-{hex_id}"


def pack_id_of(name: str) -> bytes | None:
    """The pack id in a remote name ``data-<64 hex>``, or None for any other name."""
    if len(name) != 5 + 2 * ID_SIZE or not name.startswith("data-"):
        return None
    try:
        return bytes.fromhex(name[5:])
    except ValueError:
        return None


def parse_object_name(name: str) -> tuple[ObjectType, str] | None:
    """``(kind, hex id)`` for a repository object name, or None for a foreign name."""
    if name == CONFIG_NAME:
        return ObjectType.CONFIG, ""
    prefix, sep, rest = name.partition("-")
    if not sep or not rest:
        return None
    try:
        kind = ObjectType(prefix)
    except ValueError:
        return None
    if kind is ObjectType.CONFIG or not all(c in "0123456789abcdef" for c in rest):
        return None
    return kind, rest
