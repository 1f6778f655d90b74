"""rdb_meta_xxhash: a metadata plugin with an optional dependency (``xxhash``).

It records a fast, non-cryptographic XXH3-128 fingerprint of every regular file, handy to
find duplicates or changed files in a snapshot without reading the repository's data.

The ``xxhash`` package is optional, and the plugin shows the pattern for such a
dependency:

* the module imports it lazily, so listing plugins (``pannier plugins``) works and costs
  nothing whether or not it is installed;
* without it, :meth:`XxhashPlugin.is_active` answers False: backups simply have no
  ``xxhash`` stream, and nothing fails;
* with it (``pip install xxhash``) the plugin is active everywhere.

Applying a record verifies the restored content and raises ValueError naming the file
when it differs; it writes nothing.
"""

from __future__ import annotations

import importlib.util
import os
import stat
from typing import Any

import attrs
from pannier import FSAbilities, Index, MetaPlugin, MetaRecord, index_path

_CHUNK = 1024 * 1024


def have_xxhash() -> bool:
    """True when the optional ``xxhash`` package can be imported."""
    try:
        return importlib.util.find_spec("xxhash") is not None
    except (ImportError, ValueError):
        return False


@attrs.define
class XxhashRecord(MetaRecord):
    """The XXH3-128 digest (16 bytes) of a regular file's content."""

    xxh3_128: bytes


def fingerprint(path: bytes) -> bytes:
    """The XXH3-128 digest of the file at ``path``; ImportError without ``xxhash``."""
    import xxhash  # the optional dependency, imported only when used

    hasher = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            hasher.update(chunk)
    digest: bytes = hasher.digest()
    return digest


class XxhashPlugin(MetaPlugin):
    """XXH3-128 fingerprint of regular files (needs the optional xxhash package)."""

    plugin_api_version = 1
    record_class = XxhashRecord

    @classmethod
    def get_prefix(cls) -> str:
        """The stream prefix ``xxhash``."""
        return "xxhash"

    @classmethod
    def get_version(cls) -> str:
        """This plugin's version."""
        return "1.0.0"

    @classmethod
    def is_active(cls, fs: FSAbilities | str | bytes | os.PathLike[Any]) -> bool:
        """Active when ``xxhash`` is installed, on any filesystem."""
        return have_xxhash()

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> XxhashRecord | None:
        """The fingerprint of a regular file; other files have no record."""
        if not stat.S_ISREG(st.st_mode):
            return None
        return XxhashRecord(index, fingerprint(index_path(root, index)))

    @classmethod
    def apply(
        cls, record: XxhashRecord, root: bytes, index: Index, *, dry_compare: bool = True
    ) -> bool:
        """Verify the restored content; return False (nothing is written)."""
        path = index_path(root, index)
        if fingerprint(path) != record.xxh3_128:
            raise ValueError(f"{os.fsdecode(path)!r} does not match its xxhash fingerprint")
        return False


def get_plugin_class() -> type[MetaPlugin]:
    """The discovery entry point: return the plugin class (xxhash is not imported)."""
    return XxhashPlugin
