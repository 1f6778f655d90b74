"""The host-owned wrapper stack: decorators over the Backend interface, one module each.

:func:`~pannier.get_backend` returns a backend inside these wrappers, outermost first::

    LoggingWrapper(RetryWrapper(ConnectionLimitWrapper(BandwidthWrapper(
        ValidationWrapper(backend)))))

* :mod:`~pannier.wrappers.logging` -- one log line per operation, URL redacted;
* :mod:`~pannier.wrappers.retry` -- exponential backoff with full jitter, bounded by
  attempts and elapsed time; the class of the error decides;
* :mod:`~pannier.wrappers.connection_limit` -- at most N operations at once per location;
* :mod:`~pannier.wrappers.bandwidth` -- upload and download bytes per second, optionally
  by time of day;
* :mod:`~pannier.wrappers.validation` -- checks each upload with the backend's
  ``_validate`` and turns a mismatch into a transient error the retry wrapper answers.

Every wrapper is a :class:`BackendWrapper`: a :class:`~pannier.Backend` that delegates each
underscore method to the backend it wraps, reports that backend's capabilities, and
returns it from :meth:`~BackendWrapper.unwrap`. Options come from the URL query and the
keywords of ``get_backend`` (the query wins); defaults are in ``docs/backends/index.md``.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from ..backend import Backend, BackendCapabilities, ListEntry

if TYPE_CHECKING:
    from ..url import BackendURL

__all__ = ["BackendWrapper", "wrap_backend"]


class BackendWrapper(Backend):
    """A backend that delegates every underscore method to :attr:`inner`.

    Subclasses override the methods they change and call ``self.inner`` for the rest.
    The wrapper keeps the inner backend's URL, display name and capabilities.
    """

    plugin_api_version = 1

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.url = inner.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"

    @property
    def display_name(self) -> str:
        """The inner backend's display name (its redacted URL)."""
        return self.inner.display_name

    def get_capabilities(self) -> BackendCapabilities:
        """The inner backend's capabilities, unchanged."""
        return self.inner.get_capabilities()

    def unwrap(self) -> Backend:
        """The backend under every wrapper."""
        return self.inner.unwrap()

    # --- delegation ---------------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        self.inner._put(source_path, remote_filename)

    def _get(self, remote_filename: str, local_path: str) -> None:
        self.inner._get(remote_filename, local_path)

    def _list(self) -> Iterable[ListEntry | str]:
        return self.inner._list()

    def _delete(self, filename: str) -> None:
        self.inner._delete(filename)

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        self.inner._put_stream(fileobj, remote_filename, size)

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        self.inner._get_stream(remote_filename, fileobj)

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        return self.inner._get_range(remote_filename, offset, length)

    def _query(self, filename: str) -> dict[str, int]:
        return self.inner._query(filename)

    def _query_list(self, filename_list: builtins.list[str]) -> dict[str, dict[str, int]]:
        return self.inner._query_list(filename_list)

    def _delete_list(self, filename_list: builtins.list[str]) -> None:
        self.inner._delete_list(filename_list)

    def _move(self, source_filename: str, remote_filename: str) -> None:
        self.inner._move(source_filename, remote_filename)

    def _rename(self, source_filename: str, remote_filename: str) -> None:
        self.inner._rename(source_filename, remote_filename)

    def _validate(self, remote_filename: str, size: int, **kwargs: Any) -> tuple[bool, str]:
        return self.inner._validate(remote_filename, size, **kwargs)

    def _test(self) -> None:
        self.inner._test()

    def _create_folder(self) -> None:
        self.inner._create_folder()

    def _retry_cleanup(self) -> None:
        self.inner._retry_cleanup()

    def _error_code(self, operation: str, e: Exception) -> Any:
        return self.inner._error_code(operation, e)

    def _close(self) -> None:
        self.inner._close()

    def _clean_temporaries(self, older_than: float) -> builtins.list[str]:
        return self.inner._clean_temporaries(older_than)


def wrap_backend(backend: Backend, url: BackendURL | None = None) -> Backend:
    """``backend`` inside the whole stack, configured from ``url``'s options (query, then
    explicit options, then the documented defaults)."""
    from .bandwidth import BandwidthWrapper
    from .connection_limit import ConnectionLimitWrapper
    from .logging import LoggingWrapper
    from .retry import RetryWrapper
    from .validation import ValidationWrapper

    u = url if url is not None else backend.url
    wrapped: Backend = ValidationWrapper.from_url(backend, u)
    wrapped = BandwidthWrapper.from_url(wrapped, u)
    wrapped = ConnectionLimitWrapper.from_url(wrapped, u)
    wrapped = RetryWrapper.from_url(wrapped, u)
    return LoggingWrapper.from_url(wrapped, u)
