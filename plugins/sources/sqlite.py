"""The ``sqlite`` source: a consistent copy of a SQLite database, stored as a database file.

``pannier backup --source sqlite /var/lib/app/app.db`` copies the database with SQLite's
online backup API (``sqlite3.Connection.backup``), which reads a consistent state even
while other processes write to it, into a temporary directory, and stores that copy as
one file named like the database (or ``--filename NAME``). The snapshot holds a plain
database file: restore it and open it with any SQLite.

A path that does not exist or is not a SQLite database raises :class:`pannier.SourceError`
and no snapshot is written.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from pannier import Source, SourceEntry, SourceError


class SqliteSource(Source):
    """A SQLite database, copied consistently with the online backup API."""

    plugin_api_version = 1

    def __init__(self, spec: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(spec, options)
        self._tmp: str | None = None

    @classmethod
    def get_name(cls) -> str:
        """``sqlite``."""
        return "sqlite"

    @classmethod
    def description(cls) -> str:
        return "a SQLite database, copied consistently with SQLite's online backup API"

    @property
    def display(self) -> str:
        """The database's absolute path."""
        return os.path.abspath(self.spec)

    @property
    def name(self) -> bytes:
        """The stored file's name: ``--filename`` or the database's own name."""
        return os.fsencode(self.options.get("filename") or os.path.basename(self.spec))

    def _copy(self, target: str) -> None:
        path = os.path.abspath(self.spec)
        if not os.path.isfile(path):
            raise SourceError(f"SQLite database {self.spec!r} does not exist or is not a file")
        uri = "file:" + urllib.parse.quote(path) + "?mode=ro"
        try:
            src = sqlite3.connect(uri, uri=True)
        except sqlite3.Error as e:
            raise SourceError(f"cannot open SQLite database {self.spec!r}: {e}") from e
        try:
            dst = sqlite3.connect(target)
            try:
                src.backup(dst)
            finally:
                dst.close()
        except sqlite3.Error as e:
            raise SourceError(f"cannot copy SQLite database {self.spec!r}: {e}") from e
        finally:
            src.close()

    def scan(self) -> Iterator[SourceEntry]:
        """Copy the database consistently into a temporary directory; yield the top
        (the database's directory) and the copy, with the original's mode and owner."""
        self._tmp = tempfile.mkdtemp(prefix="pannier-sqlite-")
        name = self.name
        copy = os.path.join(os.fsencode(self._tmp), name)
        self._copy(os.fsdecode(copy))
        original = os.stat(self.spec)
        os.chmod(copy, original.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(copy, original.st_uid, original.st_gid)
        parent = os.stat(os.path.dirname(os.path.abspath(self.spec)))
        yield SourceEntry((), parent, None)
        yield SourceEntry((name,), os.lstat(copy), os.fsencode(self._tmp))

    def close(self) -> None:
        """Remove the temporary copy."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def get_plugin_class() -> type[Source]:
    """Return the sqlite source class (the plugin entry)."""
    return SqliteSource
