"""Validation after put: ask the backend whether what it stored is what was sent.

After each successful put the wrapper calls the backend's ``_validate(name, size)``
(duplicity's contract; the default compares the size the server reports). A mismatch
raises :class:`~pannier.TransientBackendError` naming the object and the reason, which the
retry wrapper above answers by putting the object again.

Option: ``validate`` (bool, default true). A backend without a cheap ``_query`` should
implement ``_validate`` itself, or users turn validation off for it.
"""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING

from ..backend import Backend
from ..errors import TransientBackendError
from . import BackendWrapper

if TYPE_CHECKING:
    from ..url import BackendURL

__all__ = ["ValidationWrapper"]


class _CountingReader:
    """Passes reads through and counts the bytes."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self.fileobj = fileobj
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.fileobj.read(size)
        self.count += len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _remaining(fileobj: IO[bytes]) -> int | None:
    """The bytes between a seekable stream's position and its end (the stream is left
    where it was), or None for a stream that cannot seek."""
    try:
        if not fileobj.seekable():
            return None
        start = fileobj.tell()
        end = fileobj.seek(0, os.SEEK_END)
        fileobj.seek(start)
    except (OSError, ValueError):
        return None
    return end - start


class ValidationWrapper(BackendWrapper):
    """Validates every put of the inner backend when ``enabled``."""

    def __init__(self, inner: Backend, enabled: bool = True) -> None:
        super().__init__(inner)
        self.enabled = enabled

    @classmethod
    def from_url(cls, inner: Backend, url: BackendURL | None) -> ValidationWrapper:
        """A wrapper switched by the URL's ``validate`` option."""
        return cls(inner, url.bool_option("validate", True) if url is not None else True)

    def _check(self, remote_filename: str, size: int) -> None:
        ok, reason = self.inner._validate(remote_filename, size)
        if not ok:
            raise TransientBackendError(
                f"validation of {remote_filename} after put failed: {reason}",
                backend=self.display_name,
            )

    def _put(self, source_path: str, remote_filename: str) -> None:
        size = os.path.getsize(source_path)
        self.inner._put(source_path, remote_filename)
        if self.enabled:
            self._check(remote_filename, size)

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        if not self.enabled:
            self.inner._put_stream(fileobj, remote_filename, size)
            return
        expected = _remaining(fileobj)
        if expected is not None:  # a file or buffer: its size is known before the put
            self.inner._put_stream(fileobj, remote_filename, size)
            self._check(remote_filename, expected)
            return
        counter = _CountingReader(fileobj)
        self.inner._put_stream(counter, remote_filename, size)  # type: ignore[arg-type]
        self._check(remote_filename, counter.count)
