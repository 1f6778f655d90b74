"""The ``linecount`` metadata plugin: the number of lines of each small text file."""

from __future__ import annotations

import os
import stat
from typing import Any

import attrs
from pannier import FSAbilities, Index, MetaPlugin, MetaRecord, index_path

#: Files larger than this are not counted (and have no record).
MAX_BYTES = 1024 * 1024


@attrs.define
class LineCountRecord(MetaRecord):
    """How many newline characters a text file holds."""

    lines: int


class LineCountPlugin(MetaPlugin):
    """Line count of text files up to 1 MiB."""

    plugin_api_version = 1
    record_class = LineCountRecord

    @classmethod
    def get_prefix(cls) -> str:
        """The stream prefix ``linecount``."""
        return "linecount"

    @classmethod
    def get_version(cls) -> str:
        """This plugin's version."""
        return "1.0.0"

    @classmethod
    def is_active(cls, fs: FSAbilities | str | bytes | os.PathLike[Any]) -> bool:
        """Always active."""
        return True

    @classmethod
    def from_path(cls, root: bytes, index: Index, st: os.stat_result) -> LineCountRecord | None:
        """Count the lines of a small regular file without NUL bytes; else no record."""
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
            return None
        with open(index_path(root, index), "rb") as f:
            data = f.read(MAX_BYTES + 1)
        if b"\x00" in data:
            return None
        return LineCountRecord(index, data.count(b"\n"))

    @classmethod
    def apply(cls, record: Any, root: bytes, index: Index, *, dry_compare: bool = True) -> bool:
        """Nothing to restore: the count follows from the content. Returns False."""
        return False


def get_plugin_class() -> type[MetaPlugin]:
    """The discovery entry point: return the plugin class."""
    return LineCountPlugin
