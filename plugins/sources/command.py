"""The ``command`` source: the standard output of a command, stored as one file.

``pannier backup --source command --filename db.sql "pg_dump mydb"`` runs the command
(split like a shell would, but without a shell), writes its standard output to a
temporary file, and stores it as one file named ``--filename`` (default ``stdout``).
Its standard error passes through to pannier's.

Deltaic's rule "commit only clean data": a command that cannot be started, or that
exits with a non-zero status, raises :class:`pannier.SourceError` and no snapshot is
written, so a half-finished dump is never mistaken for a good one.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from typing import Any

from pannier import Source, SourceEntry, SourceError


class CommandSource(Source):
    """The standard output of a command (a database dump...), stored as one file."""

    plugin_api_version = 1

    def __init__(self, spec: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(spec, options)
        self._tmp: str | None = None
        try:
            self.argv = shlex.split(spec)
        except ValueError as e:
            raise SourceError(f"cannot parse the command {spec!r}: {e}") from e
        if not self.argv:
            raise SourceError("the command source needs a command to run")

    @classmethod
    def get_name(cls) -> str:
        """``command``."""
        return "command"

    @classmethod
    def description(cls) -> str:
        return "the standard output of a command, stored as one file"

    @property
    def name(self) -> bytes:
        """The stored file's name: ``--filename`` or ``stdout``."""
        return os.fsencode(self.options.get("filename") or "stdout")

    def scan(self) -> Iterator[SourceEntry]:
        """Run the command into a temporary file; yield the top and that one file.

        Raises SourceError when the command cannot start or exits with non-zero status.
        """
        name = self.name
        if b"/" in name or name in (b".", b".."):
            raise SourceError(f"--filename {os.fsdecode(name)!r} must be a plain file name")
        self._tmp = tempfile.mkdtemp(prefix="pannier-command-")
        out_path = os.path.join(os.fsencode(self._tmp), name)
        started = time.time_ns()
        # 0600 from the start (the directory is 0700 too): the dump may be sensitive.
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with open(fd, "wb") as out:
            try:
                proc = subprocess.run(self.argv, stdout=out, stdin=subprocess.DEVNULL, check=False)
            except OSError as e:
                raise SourceError(f"cannot run {self.argv[0]!r}: {e.strerror or e}") from e
        if proc.returncode != 0:
            raise SourceError(
                f"command {self.spec!r} exited with status {proc.returncode}; "
                "no snapshot was written"
            )
        top = os.stat(self._tmp)
        top_st = os.stat_result(
            (
                stat.S_IFDIR | 0o755,
                0,
                0,
                2,
                top.st_uid,
                top.st_gid,
                0,
                started // 10**9,
                started // 10**9,
                started // 10**9,
            ),
            # The tree format stores times as integer nanoseconds (never None).
            {"st_atime_ns": started, "st_mtime_ns": started, "st_ctime_ns": started},
        )
        yield SourceEntry((), top_st, None)
        yield SourceEntry((name,), os.lstat(out_path), os.fsencode(self._tmp))

    def close(self) -> None:
        """Remove the temporary file."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def get_plugin_class() -> type[Source]:
    """Return the command source class (the plugin entry)."""
    return CommandSource
