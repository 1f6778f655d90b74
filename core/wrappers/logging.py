"""Logging: one line per backend operation on the ``pannier.backend`` logger.

Each operation logs at DEBUG its name, the object, the bytes moved where known and the
time taken; a failure logs at INFO (a missing object at DEBUG: asking for one is often
how callers test existence) and is raised unchanged. The backend is named by its
redacted URL and every message is passed through :func:`~pannier.url.redact`, so no
password reaches a log.

This wrapper has no options; configure the ``pannier.backend`` logger instead (``-v``
on the command line).
"""

from __future__ import annotations

import builtins
import logging as _logging
import os
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ..backend import Backend, ListEntry
from ..errors import FileMissingError
from ..url import redact
from . import BackendWrapper

if TYPE_CHECKING:
    from ..url import BackendURL

__all__ = ["LoggingWrapper"]

_T = TypeVar("_T")


class LoggingWrapper(BackendWrapper):
    """Logs every operation of the inner backend to ``logger``."""

    def __init__(self, inner: Backend, logger: _logging.Logger | None = None) -> None:
        super().__init__(inner)
        self.log = logger or _logging.getLogger("pannier.backend")

    @classmethod
    def from_url(cls, inner: Backend, url: BackendURL | None) -> LoggingWrapper:
        """A logging wrapper (it takes no options)."""
        return cls(inner)

    def _logged(self, operation: str, fn: Callable[[], _T], nbytes: int | None = None) -> _T:
        start = time.monotonic()
        try:
            result = fn()
        except BaseException as e:
            level = _logging.DEBUG if isinstance(e, FileMissingError) else _logging.INFO
            self.log.log(
                level,
                "%s: %s failed after %.3fs: %s",
                self.display_name,
                operation,
                time.monotonic() - start,
                redact(str(e)) or type(e).__name__,
            )
            raise
        if self.log.isEnabledFor(_logging.DEBUG):
            size = f" ({nbytes} bytes)" if nbytes is not None else ""
            self.log.debug(
                "%s: %s%s in %.3fs", self.display_name, operation, size, time.monotonic() - start
            )
        return result

    def _put(self, source_path: str, remote_filename: str) -> None:
        size = os.path.getsize(source_path) if os.path.exists(source_path) else None
        self._logged(
            f"put {remote_filename}", lambda: self.inner._put(source_path, remote_filename), size
        )

    def _get(self, remote_filename: str, local_path: str) -> None:
        self._logged(f"get {remote_filename}", lambda: self.inner._get(remote_filename, local_path))

    def _list(self) -> Iterator[ListEntry | str]:
        start = time.monotonic()
        count = 0
        try:
            for item in self.inner._list():
                count += 1
                yield item
        except Exception as e:
            self.log.info(
                "%s: list failed after %d names: %s", self.display_name, count, redact(str(e))
            )
            raise
        self.log.debug(
            "%s: list of %d names in %.3fs", self.display_name, count, time.monotonic() - start
        )

    def _delete(self, filename: str) -> None:
        self._logged(f"delete {filename}", lambda: self.inner._delete(filename))

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        self._logged(
            f"put {remote_filename}",
            lambda: self.inner._put_stream(fileobj, remote_filename, size),
            size,
        )

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        self._logged(
            f"get {remote_filename}", lambda: self.inner._get_stream(remote_filename, fileobj)
        )

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        return self._logged(
            f"get {remote_filename} [{offset}:+{length}]",
            lambda: self.inner._get_range(remote_filename, offset, length),
            length,
        )

    def _query(self, filename: str) -> dict[str, int]:
        return self._logged(f"query {filename}", lambda: self.inner._query(filename))

    def _query_list(self, filename_list: builtins.list[str]) -> dict[str, dict[str, int]]:
        return self._logged(
            f"query {len(filename_list)} names", lambda: self.inner._query_list(filename_list)
        )

    def _delete_list(self, filename_list: builtins.list[str]) -> None:
        self._logged(
            f"delete {len(filename_list)} names", lambda: self.inner._delete_list(filename_list)
        )

    def _move(self, source_filename: str, remote_filename: str) -> None:
        self._logged(
            f"move {source_filename} to {remote_filename}",
            lambda: self.inner._move(source_filename, remote_filename),
        )

    def _validate(self, remote_filename: str, size: int, **kwargs: Any) -> tuple[bool, str]:
        return self._logged(
            f"validate {remote_filename}",
            lambda: self.inner._validate(remote_filename, size, **kwargs),
        )

    def _test(self) -> None:
        self._logged("test", self.inner._test)

    def _create_folder(self) -> None:
        self._logged("create folder", self.inner._create_folder)

    def _clean_temporaries(self, older_than: float) -> builtins.list[str]:
        return self._logged("clean temporaries", lambda: self.inner._clean_temporaries(older_than))

    def _close(self) -> None:
        self._logged("close", self.inner._close)
