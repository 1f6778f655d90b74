"""rdb_meta_mime: a third-party metadata plugin recording each regular file's MIME type.

Written as a plugin author would, against the public pannier API only. Drop this file in
any directory on ``PYTHONPATH`` (a top-level module named ``rdb_meta_<name>`` with a
``get_plugin_class()`` function) and ``pannier plugins`` lists it as the meta plugin
``mime``; every backup then stores a ``mime`` stream.

The type comes from the file name (the standard ``mimetypes`` table) and, for names the
table does not know, from the first bytes of the content (a few common signatures, else
``text/plain`` for UTF-8 text and ``application/octet-stream`` for the rest). It is
information for people and tools browsing a snapshot: applying a record writes nothing.
"""

from __future__ import annotations

import mimetypes
import os
import stat
from typing import Any

import attrs
from pannier import FSAbilities, Index, MetaPlugin, MetaRecord, index_path

#: Content signatures checked when the name says nothing: (leading bytes, MIME type).
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"\x1f\x8b", "application/gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"\x28\xb5\x2f\xfd", "application/zstd"),
    (b"\x7fELF", "application/x-executable"),
    (b"#!", "text/x-script"),
)
_SNIFF_BYTES = 4096


@attrs.define
class MimeRecord(MetaRecord):
    """A regular file's MIME type, and how it was found (``"name"`` or ``"content"``)."""

    mime_type: str
    source: str


def sniff(head: bytes) -> str:
    """The MIME type of content starting with ``head``."""
    for signature, mime_type in SIGNATURES:
        if head.startswith(signature):
            return mime_type
    if b"\x00" in head:
        return "application/octet-stream"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the end of the sample is still text
        if exc.start < len(head) - 3:
            return "application/octet-stream"
    return "text/plain"


class MimePlugin(MetaPlugin):
    """MIME type of regular files, from the name or the first bytes."""

    plugin_api_version = 1
    record_class = MimeRecord

    @classmethod
    def get_prefix(cls) -> str:
        """The stream prefix ``mime``."""
        return "mime"

    @classmethod
    def get_version(cls) -> str:
        """This plugin's version."""
        return "1.0.0"

    @classmethod
    def is_active(cls, fs: FSAbilities | str | bytes | os.PathLike[Any]) -> bool:
        """Always active."""
        return True

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> MimeRecord | None:
        """The type of a regular file; other files have no record."""
        if not stat.S_ISREG(st.st_mode):
            return None
        name = os.fsdecode(index[-1]) if index else ""
        guessed, _ = mimetypes.guess_type(name, strict=False)
        if guessed is not None:
            return MimeRecord(index, guessed, "name")
        with open(index_path(root, index), "rb") as f:
            head = f.read(_SNIFF_BYTES)
        return MimeRecord(index, sniff(head), "content")

    @classmethod
    def apply(cls, record: Any, root: bytes, index: Index, *, dry_compare: bool = True) -> bool:
        """Nothing to restore: a MIME type follows from the content. Returns False."""
        return False


def get_plugin_class() -> type[MetaPlugin]:
    """The discovery entry point: return the plugin class."""
    return MimePlugin
