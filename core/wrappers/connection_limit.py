"""Connection limit: at most N backend operations at once against one location.

All the wrapped backends of one location (same scheme, host, port and path) in a process
share one semaphore, so N parallel instances never open more than ``connections``
connections together. A listing is read whole while the slot is held, so a caller that
iterates slowly, or calls the backend while iterating, cannot dead-lock the limit.

Option: ``connections`` (default: the backend's ``capabilities.connections``; ``0`` means
no limit).
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ..backend import Backend, ListEntry
from . import BackendWrapper

if TYPE_CHECKING:
    from ..url import BackendURL

__all__ = ["ConnectionLimitWrapper", "location_key"]

_T = TypeVar("_T")
_registry_lock = threading.Lock()
_semaphores: dict[tuple[str, int], threading.BoundedSemaphore] = {}


def location_key(url: BackendURL | None, backend: Backend) -> str:
    """What identifies a location: scheme, host, port and path, never credentials."""
    if url is None:
        return f"{type(backend).__qualname__}@{id(backend)}"
    return f"{url.full_scheme}://{url.netloc}{url.path}"


def shared_semaphore(key: str, limit: int) -> threading.BoundedSemaphore:
    """The process-wide semaphore of ``limit`` slots for location ``key``."""
    with _registry_lock:
        sem = _semaphores.get((key, limit))
        if sem is None:
            sem = _semaphores[(key, limit)] = threading.BoundedSemaphore(limit)
        return sem


class ConnectionLimitWrapper(BackendWrapper):
    """Runs each operation of the inner backend while holding a slot of ``semaphore``
    (None: no limit)."""

    def __init__(self, inner: Backend, semaphore: threading.BoundedSemaphore | None) -> None:
        super().__init__(inner)
        self.semaphore = semaphore

    @classmethod
    def from_url(cls, inner: Backend, url: BackendURL | None) -> ConnectionLimitWrapper:
        """A wrapper limited by the URL's ``connections`` option."""
        default = inner.get_capabilities().connections
        limit = url.int_option("connections", default) if url is not None else default
        if limit <= 0:
            return cls(inner, None)
        return cls(inner, shared_semaphore(location_key(url, inner), limit))

    def _held(self, fn: Callable[[], _T]) -> _T:
        if self.semaphore is None:
            return fn()
        with self.semaphore:
            return fn()

    def _put(self, source_path: str, remote_filename: str) -> None:
        self._held(lambda: self.inner._put(source_path, remote_filename))

    def _get(self, remote_filename: str, local_path: str) -> None:
        self._held(lambda: self.inner._get(remote_filename, local_path))

    def _list(self) -> Iterator[ListEntry | str]:
        entries = self._held(lambda: builtins.list(self.inner._list()))
        yield from entries

    def _delete(self, filename: str) -> None:
        self._held(lambda: self.inner._delete(filename))

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        self._held(lambda: self.inner._put_stream(fileobj, remote_filename, size))

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        self._held(lambda: self.inner._get_stream(remote_filename, fileobj))

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        return self._held(lambda: self.inner._get_range(remote_filename, offset, length))

    def _query(self, filename: str) -> dict[str, int]:
        return self._held(lambda: self.inner._query(filename))

    def _query_list(self, filename_list: builtins.list[str]) -> dict[str, dict[str, int]]:
        return self._held(lambda: self.inner._query_list(filename_list))

    def _delete_list(self, filename_list: builtins.list[str]) -> None:
        self._held(lambda: self.inner._delete_list(filename_list))

    def _move(self, source_filename: str, remote_filename: str) -> None:
        self._held(lambda: self.inner._move(source_filename, remote_filename))

    def _validate(self, remote_filename: str, size: int, **kwargs: Any) -> tuple[bool, str]:
        return self._held(lambda: self.inner._validate(remote_filename, size, **kwargs))

    def _test(self) -> None:
        self._held(self.inner._test)

    def _create_folder(self) -> None:
        self._held(self.inner._create_folder)
