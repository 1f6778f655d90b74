"""Retry: try a failed operation again, as long as the class of its error allows.

The rules, each checked by ``tests/core/wrappers/test_retry.py``:

* The error's class decides, never its SDK type: :class:`~pannier.FileMissingError`,
  :class:`~pannier.PermanentBackendError` and any other non-backend
  :class:`~pannier.PannierError` are raised at once; a
  :class:`~pannier.TransientBackendError` (or plain BackendError) is retried. A foreign
  exception is first offered to the backend's ``_error_code``; unmapped, it counts as
  transient. Programming errors (TypeError, AttributeError, NotImplementedError...) are
  never retried.
* Delays grow exponentially with *full jitter*: before attempt ``n + 1`` the wrapper sleeps
  a random time in ``[0, min(retry-max-delay, retry-delay * 2**(n-1))]``. A
  :class:`~pannier.RateLimitedError` sleeps at least its ``retry_after``.
* Retrying stops after ``retries`` attempts in all, or when the next sleep would pass
  ``retry-max-time`` seconds since the first attempt; the error raised then says how many
  attempts were made.
* ``_retry_cleanup`` of the backend runs between attempts (to reset a broken connection).
* A stream is never read twice: a put from a seekable stream rewinds it before the next
  attempt; a non-seekable stream is retried only when nothing was read from it yet (the
  same holds for the stream a get writes to).
* A listing that fails part-way is restarted from scratch, and names already delivered
  are skipped, so the caller never sees a name twice.

Options: ``retries`` (default 5), ``retry-delay`` (seconds, default 1),
``retry-max-delay`` (default 30), ``retry-max-time`` (default 300).
"""

from __future__ import annotations

import builtins
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, TypeVar

import attrs

from ..backend import Backend, ListEntry
from ..errors import (
    BackendError,
    ConfigError,
    PannierError,
    RateLimitedError,
    TransientBackendError,
)
from ..url import redact
from . import BackendWrapper

if TYPE_CHECKING:
    from ..url import BackendURL

__all__ = ["RetryPolicy", "RetryWrapper"]

_T = TypeVar("_T")
log = logging.getLogger("pannier.backend.retry")

#: Exceptions that mean a bug, not a bad moment: never retried.
_PROGRAMMING_ERRORS = (
    TypeError,
    AttributeError,
    NameError,
    NotImplementedError,
    AssertionError,
    ImportError,
    RecursionError,
)


@attrs.frozen
class RetryPolicy:
    """How hard the retry wrapper tries.

    :ivar attempts: attempts in all, the first included (1 = never retry).
    :ivar base_delay: the first delay bound, in seconds.
    :ivar max_delay: the largest delay bound, in seconds.
    :ivar max_elapsed: no retry starts later than this many seconds after the first
        attempt.
    """

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_elapsed: float = 300.0

    def delay_bound(self, attempt: int) -> float:
        """The largest delay before attempt ``attempt + 1`` (``attempt`` >= 1)."""
        return float(min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))


class _Counted:
    """Counts the bytes that pass through a non-seekable stream, so a retry knows whether
    the stream was touched."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self.fileobj = fileobj
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.fileobj.read(size)
        self.count += len(data)
        return data

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return self.fileobj.write(data)

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        flush = getattr(self.fileobj, "flush", None)
        if flush is not None:
            flush()


def _seekable(fileobj: IO[bytes]) -> bool:
    try:
        return bool(fileobj.seekable())
    except Exception:
        return False


class RetryWrapper(BackendWrapper):
    """Retries the operations of the inner backend by the rules in the module docstring.

    :param sleep: the function that sleeps (tests pass a recorder).
    :param clock: a monotonic clock in seconds.
    :param rng: the random source of the jitter.
    """

    def __init__(
        self,
        inner: Backend,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(inner)
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    @classmethod
    def from_url(cls, inner: Backend, url: BackendURL | None) -> RetryWrapper:
        """A retry wrapper configured by the URL's ``retries`` and ``retry-*`` options."""
        if url is None:
            return cls(inner)
        seconds = {
            name: url.float_option(name, default)
            for name, default in (
                ("retry-delay", 1.0),
                ("retry-max-delay", 30.0),
                ("retry-max-time", 300.0),
            )
        }
        for name, value in seconds.items():
            if not value >= 0:  # also refuses nan
                raise ConfigError(f"{url.redacted}: option {name}: {value} is not a duration")
        policy = RetryPolicy(
            attempts=max(1, url.int_option("retries", 5)),
            base_delay=seconds["retry-delay"],
            max_delay=seconds["retry-max-delay"],
            max_elapsed=seconds["retry-max-time"],
        )
        return cls(inner, policy)

    # --- the decision -------------------------------------------------------------------

    def _classify(self, operation: str, e: Exception) -> tuple[BaseException, bool]:
        """The error to raise for ``e`` and whether it may be retried."""
        if isinstance(e, BackendError):
            return e, e.retryable
        if isinstance(e, (PannierError, *_PROGRAMMING_ERRORS)):
            return e, False
        try:
            mapped = self.inner._error_code(operation, e)
        except Exception:
            mapped = None
        if isinstance(mapped, BackendError):
            mapped.__cause__ = e
            return mapped, mapped.retryable
        text = redact(str(e)) or type(e).__name__
        error = TransientBackendError(f"{operation}: {text}", backend=self.display_name)
        error.__cause__ = e
        return error, True

    def _pause(self, operation: str, error: BaseException, attempt: int, start: float) -> bool:
        """Sleep before the next attempt and clean up; False when retrying must stop."""
        if attempt >= self.policy.attempts:
            return False
        delay = self._rng.uniform(0.0, self.policy.delay_bound(attempt))
        if isinstance(error, RateLimitedError) and error.retry_after is not None:
            delay = max(delay, float(error.retry_after))
        if self._clock() - start + delay > self.policy.max_elapsed:
            return False
        log.info(
            "%s: %s failed (%s); attempt %d of %d in %.2fs",
            self.display_name,
            operation,
            redact(str(error)),
            attempt + 1,
            self.policy.attempts,
            delay,
        )
        self._sleep(delay)
        try:
            self.inner._retry_cleanup()
        except Exception as e:
            log.warning("%s: retry clean-up failed: %s", self.display_name, redact(str(e)))
        return True

    def _give_up(self, error: BaseException, attempt: int, start: float) -> BaseException:
        if attempt <= 1:
            return error
        elapsed = self._clock() - start
        final = TransientBackendError(
            f"{error} (gave up after {attempt} attempts in {elapsed:.1f}s)"
        )
        final.__cause__ = error
        return final

    def _call(
        self, operation: str, fn: Callable[[], _T], rewind: Callable[[], bool] | None = None
    ) -> _T:
        start = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as e:
                error, retryable = self._classify(operation, e)
                if not retryable:
                    if error is e:
                        raise
                    raise error from e
                if (rewind is not None and not rewind()) or not self._pause(
                    operation, error, attempt, start
                ):
                    raise self._give_up(error, attempt, start) from e

    # --- operations ---------------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        self._call(f"put {remote_filename}", lambda: self.inner._put(source_path, remote_filename))

    def _get(self, remote_filename: str, local_path: str) -> None:
        self._call(f"get {remote_filename}", lambda: self.inner._get(remote_filename, local_path))

    def _stream_rewinder(
        self, fileobj: IO[bytes], truncate: bool
    ) -> tuple[Any, Callable[[], bool]]:
        if _seekable(fileobj):
            position = fileobj.tell()

            def rewind() -> bool:
                fileobj.seek(position)
                if truncate:
                    fileobj.truncate()
                return True

            return fileobj, rewind
        counted = _Counted(fileobj)
        return counted, lambda: counted.count == 0

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        stream, rewind = self._stream_rewinder(fileobj, truncate=False)
        self._call(
            f"put {remote_filename}",
            lambda: self.inner._put_stream(stream, remote_filename, size),
            rewind,
        )

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        stream, rewind = self._stream_rewinder(fileobj, truncate=True)
        self._call(
            f"get {remote_filename}",
            lambda: self.inner._get_stream(remote_filename, stream),
            rewind,
        )

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        return self._call(
            f"get {remote_filename}", lambda: self.inner._get_range(remote_filename, offset, length)
        )

    def _list(self) -> Iterator[ListEntry | str]:
        seen: set[str] = set()
        start = self._clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                for item in self.inner._list():
                    name = item.name if isinstance(item, ListEntry) else item
                    if name not in seen:
                        seen.add(name)
                        yield item
                return
            except Exception as e:
                error, retryable = self._classify("list", e)
                if not retryable:
                    if error is e:
                        raise
                    raise error from e
                if not self._pause("list", error, attempt, start):
                    raise self._give_up(error, attempt, start) from e

    def _delete(self, filename: str) -> None:
        self._call(f"delete {filename}", lambda: self.inner._delete(filename))

    def _delete_list(self, filename_list: builtins.list[str]) -> None:
        self._call("delete list", lambda: self.inner._delete_list(filename_list))

    def _query(self, filename: str) -> dict[str, int]:
        return self._call(f"query {filename}", lambda: self.inner._query(filename))

    def _query_list(self, filename_list: builtins.list[str]) -> dict[str, dict[str, int]]:
        return self._call("query list", lambda: self.inner._query_list(filename_list))

    def _move(self, source_filename: str, remote_filename: str) -> None:
        self._call(
            f"move {source_filename}", lambda: self.inner._move(source_filename, remote_filename)
        )

    def _validate(self, remote_filename: str, size: int, **kwargs: Any) -> tuple[bool, str]:
        return self._call(
            f"validate {remote_filename}",
            lambda: self.inner._validate(remote_filename, size, **kwargs),
        )

    def _test(self) -> None:
        self._call("test", self.inner._test)

    def _create_folder(self) -> None:
        self._call("create folder", self.inner._create_folder)

    def _clean_temporaries(self, older_than: float) -> builtins.list[str]:
        # A clean-up that failed midway is run again from its listing: what the failed
        # attempt removed is gone and not named again (nothing listed is ever removed).
        return self._call("clean temporaries", lambda: self.inner._clean_temporaries(older_than))
