"""file:// -- a local directory (or a mounted file system) as a backend.

This is pannier's *reference backend*: every built-in backend is written in the same
section order, and a new backend's author should copy it. The sections, in order:

1. this docstring: the URL form, the options, the environment, the guarantees;
2. imports (only the public ``pannier`` API and the backend's SDK);
3. the class attributes: ``plugin_api_version``, ``schemes``, ``description``,
   ``capabilities``;
4. ``__init__(url)``: read every option from the URL, open nothing slow yet;
5. the required primitives: ``_put``, ``_get``, ``_list``, ``_delete``;
6. the optional primitives: ``_put_stream``, ``_get_stream``, ``_get_range``, ``_query``,
   ``_query_list``, ``_move``;
7. the folder: ``_test``, ``_create_folder``;
8. errors and clean-up: ``_error_code`` (or a helper that classifies errors), ``_close``;
9. ``get_plugin_class()`` at the end of the module.

URL: ``file:///absolute/path`` (or ``file://localhost/absolute/path``) or
``file://relative/path`` (relative to the working directory). Options (URL query,
command line, environment):

* ``fsync`` (bool, default false, env ``PANNIER_FILE_FSYNC``): flush each object and its
  directory to disk before a put returns.

Guarantees: a put writes a temporary file ``.pannier-tmp-*`` in the same directory and
renames it over the name, so a failed or interrupted put leaves no visible object and an
existing object stays whole until replaced. Temporary files and sub-directories are not
listed. A put killed midway (``kill -9``, a power cut) leaves its temporary file behind;
``clean_temporaries(older_than)`` removes those not written to for ``older_than`` seconds
(``pannier prune`` calls it). A missing directory raises FolderMissingError;
``create_folder`` makes it (and its parents) with mode 0700.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import IO
from urllib.parse import unquote

from pannier import (
    PLUGIN_API_VERSION,
    Backend,
    BackendCapabilities,
    BackendError,
    BackendURL,
    FileMissingError,
    FolderMissingError,
    ListEntry,
    PermanentBackendError,
    TransientBackendError,
)

_TMP_PREFIX = ".pannier-tmp-"
_BUFFER = 1 << 20
_PERMANENT_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG,
     errno.ENOTDIR, errno.EISDIR}
)  # fmt: skip


class FileBackend(Backend):
    """Objects as files in one local directory; atomic put by temp file and rename."""

    plugin_api_version = PLUGIN_API_VERSION
    schemes = ("file",)
    description = "a local directory"
    capabilities = BackendCapabilities(
        atomic_put=True,
        ranged_get=True,
        rename=True,
        max_name_length=255,
        page_size=None,
        connections=8,
        streaming=True,
        local=True,
    )

    def __init__(self, url: BackendURL) -> None:
        self.url = url
        # file:///abs and file://localhost/abs are absolute; file://rel/dir is relative.
        host = unquote(url.netloc) if url.netloc != "localhost" else ""
        self.directory = host + url.path
        if not self.directory:
            raise PermanentBackendError("the URL names no directory", backend=url.redacted)
        self.fsync = url.bool_option("fsync", False, env="PANNIER_FILE_FSYNC")

    # --- required primitives ------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        try:
            source = open(source_path, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise PermanentBackendError(
                f"put {remote_filename}: cannot read {source_path}: {e.strerror or e}",
                backend=self.display_name,
            ) from e
        with source:
            self._write_atomically(remote_filename, lambda out: _copy(source, out))

    def _get(self, remote_filename: str, local_path: str) -> None:
        try:
            shutil.copyfile(self._path(remote_filename), local_path)
        except FileNotFoundError as e:
            if not os.path.exists(self._path(remote_filename)):
                raise self._error("get", remote_filename, e) from None
            raise PermanentBackendError(
                f"get {remote_filename}: cannot write {local_path}: {e.strerror}",
                backend=self.display_name,
            ) from e
        except OSError as e:
            raise self._error("get", remote_filename, e) from e

    def _list(self) -> Iterator[ListEntry]:
        try:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as e:
            raise self._error("list", None, e) from e
        try:
            with os.scandir(fd) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith("."):  # temporary files, never objects
                        continue
                    try:
                        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    except FileNotFoundError:  # deleted while listing
                        continue
                    if stat.S_ISREG(info.st_mode):
                        yield ListEntry(name, info.st_size)
        finally:
            os.close(fd)

    def _delete(self, filename: str) -> None:
        try:
            os.unlink(self._path(filename))
        except FileNotFoundError:
            pass
        except OSError as e:
            raise self._error("delete", filename, e) from e

    # --- optional primitives ------------------------------------------------------------

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        self._write_atomically(
            remote_filename, lambda out: shutil.copyfileobj(fileobj, out, _BUFFER)
        )

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        try:
            source = open(self._path(remote_filename), "rb")  # noqa: SIM115
        except OSError as e:
            raise self._error("get", remote_filename, e) from e
        with source:
            shutil.copyfileobj(source, fileobj, _BUFFER)

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        try:
            with open(self._path(remote_filename), "rb") as source:
                source.seek(offset)
                return source.read(length)
        except OSError as e:
            raise self._error("get", remote_filename, e) from e

    def _query(self, filename: str) -> dict[str, int]:
        try:
            info = os.stat(self._path(filename), follow_symlinks=False)
        except FileNotFoundError:
            return {"size": -1}
        except OSError as e:
            raise self._error("query", filename, e) from e
        # Only regular files are objects, as in the listing.
        return {"size": info.st_size if stat.S_ISREG(info.st_mode) else -1}

    def _query_list(self, filename_list: builtins.list[str]) -> dict[str, dict[str, int]]:
        return {name: self._query(name) for name in filename_list}

    def _move(self, source_filename: str, remote_filename: str) -> None:
        try:
            os.replace(self._path(source_filename), self._path(remote_filename))
        except OSError as e:
            raise self._error("move", source_filename, e) from e
        if self.fsync:
            self._fsync_directory()

    # --- the folder ---------------------------------------------------------------------

    def _test(self) -> None:
        if os.path.exists(self.directory) and not os.path.isdir(self.directory):
            raise PermanentBackendError(
                f"{self.directory} is not a directory", backend=self.display_name
            )
        if not os.path.isdir(self.directory):
            raise FolderMissingError(
                f"directory {self.directory} does not exist", backend=self.display_name
            )
        if not os.access(self.directory, os.W_OK | os.X_OK):
            raise PermanentBackendError(
                f"directory {self.directory} is not writable", backend=self.display_name
            )

    def _create_folder(self) -> None:
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        except OSError as e:
            raise self._error("create folder", None, e) from e

    # --- errors and clean-up ------------------------------------------------------------

    def _clean_temporaries(self, older_than: float) -> builtins.list[str]:
        """Remove the ``.pannier-tmp-*`` files whose last write is more than ``older_than``
        seconds ago; return their names. A missing directory has none."""
        limit = time.time() - older_than
        removed: builtins.list[str] = []
        try:
            with os.scandir(self.directory) as entries:
                found = [e for e in entries if e.name.startswith(_TMP_PREFIX)]
        except FileNotFoundError:
            return removed
        except OSError as e:
            raise self._error("clean temporaries", None, e) from e
        for entry in found:
            try:
                info = entry.stat(follow_symlinks=False)
                if not stat.S_ISREG(info.st_mode) or info.st_mtime >= limit:
                    continue
                os.unlink(entry.path)
            except FileNotFoundError:  # its put finished, or it was removed, meanwhile
                continue
            except OSError as e:
                raise self._error("clean temporaries", entry.name, e) from e
            removed.append(entry.name)
        return removed

    def _write_atomically(self, remote_filename: str, write: Callable[[IO[bytes]], object]) -> None:
        """Let ``write`` fill a new temporary file (mode 0600) in the directory, then
        rename it over the name; on any failure remove it, so nothing partial is ever
        visible and an existing object stays whole."""
        try:
            fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.directory)
        except OSError as e:
            raise self._error("put", remote_filename, e) from e
        try:
            with open(fd, "wb") as out:
                write(out)
                if self.fsync:
                    out.flush()
                    os.fsync(fd)
            os.replace(tmp, self._path(remote_filename))
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(e, OSError):
                raise self._error("put", remote_filename, e) from e
            raise
        if self.fsync:
            self._fsync_directory()

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _missing(self, name: str) -> FileMissingError:
        return FileMissingError(f"{name} does not exist", backend=self.display_name)

    def _error(self, operation: str, name: str | None, e: OSError) -> BackendError:
        """Classify an OSError: a missing name or directory, permanent, or transient."""
        if e.errno == errno.ENOENT:
            if not os.path.isdir(self.directory):
                return FolderMissingError(
                    f"directory {self.directory} does not exist", backend=self.display_name
                )
            if name is not None:
                return self._missing(name)
        if e.errno == errno.ENOTDIR and not os.path.isdir(self.directory):
            return PermanentBackendError(
                f"{self.directory} is not a directory", backend=self.display_name
            )
        what = f"{operation} {name}" if name else operation
        message = f"{what}: {e.strerror or e}"
        if e.errno in _PERMANENT_ERRNOS:
            return PermanentBackendError(message, backend=self.display_name)
        return TransientBackendError(message, backend=self.display_name)

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _copy(source: IO[bytes], out: IO[bytes]) -> None:
    """Copy an open file into another, in the kernel (sendfile) where it can."""
    offset = 0
    try:
        while sent := os.sendfile(out.fileno(), source.fileno(), offset, _BUFFER * 8):
            offset += sent
    except OSError:
        if offset:  # failed midway: a real error
            raise
        shutil.copyfileobj(source, out, _BUFFER)  # no sendfile between these files


def get_plugin_class() -> type[FileBackend]:
    """The backend class of this plugin module."""
    return FileBackend
