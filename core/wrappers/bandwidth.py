"""Bandwidth limit: upload and download bytes per second, optionally by time of day.

Options (a rate is a size per second, see :func:`~pannier.url.parse_size`; ``off`` or
``0`` means unlimited):

* ``bwlimit``: both directions (default off);
* ``bwlimit-up``, ``bwlimit-down``: one direction, overriding ``bwlimit``.

A value may be a *schedule*: comma-separated ``HH:MM-HH:MM=RATE`` entries and one
optional default entry without a time range, e.g. ``08:00-18:00=1M,off`` (1 MiB/s during
office hours, unlimited otherwise) or ``22:00-06:00=off,256k`` (a range may wrap past
midnight). The rate in force is looked up for every chunk, so a transfer slows down or
speeds up when the schedule changes.

All wrapped backends of one location in a process share each direction's limit. With no
limit in force the wrapper passes file puts and gets straight through (no copy).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

import attrs

from ..backend import Backend
from ..errors import ConfigError
from ..url import parse_size
from . import BackendWrapper
from .connection_limit import location_key

if TYPE_CHECKING:
    from ..url import BackendURL

__all__ = ["BandwidthWrapper", "RateSchedule", "TokenBucket"]

_CHUNK = 64 * 1024
_RANGE_RE = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_OFF = ("off", "0", "none", "unlimited", "")


def _rate(text: str) -> int | None:
    t = text.strip().lower()
    if t in _OFF:
        return None
    return parse_size(t) or None


def _minutes(hours: str, minutes: str, spec: str) -> int:
    h, m = int(hours), int(minutes)
    if h > 24 or m > 59 or (h == 24 and m):
        raise ConfigError(f"bandwidth schedule {spec!r}: {hours}:{minutes} is not a time of day")
    return h * 60 + m


@attrs.frozen
class RateSchedule:
    """A rate in bytes per second that may depend on the time of day.

    :ivar ranges: ``(start_minute, end_minute, rate)`` entries; a range with start > end
        wraps past midnight; rate None means unlimited.
    :ivar default: the rate outside every range (None: unlimited).
    """

    ranges: tuple[tuple[int, int, int | None], ...] = ()
    default: int | None = None

    @classmethod
    def parse(cls, spec: str) -> RateSchedule:
        """Parse ``"1M"``, ``"off"`` or ``"08:00-18:00=1M,off"``; ConfigError naming the
        schedule and the bad part otherwise."""
        ranges: list[tuple[int, int, int | None]] = []
        default: int | None = None
        for part in spec.split(","):
            when, eq, rate_text = part.strip().rpartition("=")
            try:
                rate = _rate(rate_text)
            except ConfigError:
                raise ConfigError(
                    f"bandwidth schedule {spec!r}: {rate_text!r} is not a rate"
                ) from None
            if not eq:
                default = rate
                continue
            m = _RANGE_RE.match(when.strip())
            if not m:
                raise ConfigError(
                    f"bandwidth schedule {spec!r}: {when!r} is not a time range like 08:00-18:00"
                )
            start = _minutes(m.group(1), m.group(2), spec)
            end = _minutes(m.group(3), m.group(4), spec)
            ranges.append((start, end, rate))
        return cls(tuple(ranges), default)

    @property
    def unlimited(self) -> bool:
        """Whether no entry ever limits."""
        return self.default is None and all(r is None for _, _, r in self.ranges)

    def rate_at(self, when: datetime.time) -> int | None:
        """The rate in force at time of day ``when``."""
        minute = when.hour * 60 + when.minute
        for start, end, rate in self.ranges:
            inside = start <= minute < end if start <= end else (minute >= start or minute < end)
            if inside:
                return rate
        return self.default


class TokenBucket:
    """Paces bytes to a schedule's rate, allowing a burst of ``burst`` seconds.

    :param now: returns the local time of day (tests pass a fixed one).
    """

    def __init__(
        self,
        schedule: RateSchedule,
        *,
        burst: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime.time] = lambda: datetime.datetime.now().time(),
    ) -> None:
        self.schedule = schedule
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._now = now
        self._lock = threading.Lock()
        self._next = clock()

    def consume(self, nbytes: int) -> None:
        """Wait until ``nbytes`` more bytes may pass."""
        rate = self.schedule.rate_at(self._now())
        if rate is None or nbytes <= 0:
            return
        with self._lock:
            now = self._clock()
            self._next = max(self._next, now - self.burst) + nbytes / rate
            wait = self._next - now
        if wait > 0:
            self._sleep(wait)


class _ThrottledReader:
    def __init__(self, fileobj: IO[bytes], bucket: TokenBucket) -> None:
        self.fileobj = fileobj
        self.bucket = bucket

    def read(self, size: int = -1) -> bytes:
        data = self.fileobj.read(_CHUNK if size is None or size < 0 else min(size, _CHUNK))
        self.bucket.consume(len(data))
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


class _ThrottledWriter:
    def __init__(self, fileobj: IO[bytes], bucket: TokenBucket) -> None:
        self.fileobj = fileobj
        self.bucket = bucket

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        for i in range(0, len(view), _CHUNK):
            piece = view[i : i + _CHUNK]
            self.bucket.consume(len(piece))
            self.fileobj.write(piece)
        return len(view)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self.fileobj.flush()


_buckets_lock = threading.Lock()
_buckets: dict[tuple[str, str, str], TokenBucket] = {}


def shared_bucket(key: str, direction: str, spec: str) -> TokenBucket:
    """The process-wide bucket for one location, direction and schedule."""
    with _buckets_lock:
        bucket = _buckets.get((key, direction, spec))
        if bucket is None:
            bucket = _buckets[(key, direction, spec)] = TokenBucket(RateSchedule.parse(spec))
        return bucket


class BandwidthWrapper(BackendWrapper):
    """Paces the inner backend's uploads through ``up`` and downloads through ``down``
    (None: unlimited in that direction)."""

    def __init__(
        self, inner: Backend, up: TokenBucket | None = None, down: TokenBucket | None = None
    ) -> None:
        super().__init__(inner)
        self.up = up if up is not None and not up.schedule.unlimited else None
        self.down = down if down is not None and not down.schedule.unlimited else None

    @classmethod
    def from_url(cls, inner: Backend, url: BackendURL | None) -> BandwidthWrapper:
        """A wrapper limited by the URL's ``bwlimit``, ``bwlimit-up``, ``bwlimit-down``."""
        if url is None:
            return cls(inner)
        both = url.option("bwlimit", "off") or "off"
        up_spec = url.option("bwlimit-up", both) or both
        down_spec = url.option("bwlimit-down", both) or both
        key = location_key(url, inner)
        try:
            up = shared_bucket(key, "up", up_spec)
            down = shared_bucket(key, "down", down_spec)
        except ConfigError as e:
            raise ConfigError(f"{url.redacted}: {e}") from None
        return cls(inner, up, down)

    def _put(self, source_path: str, remote_filename: str) -> None:
        if self.up is None:
            self.inner._put(source_path, remote_filename)
            return
        with open(source_path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            self.inner._put_stream(_ThrottledReader(f, self.up), remote_filename, size)  # type: ignore[arg-type]

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        if self.up is not None:
            fileobj = _ThrottledReader(fileobj, self.up)  # type: ignore[assignment]
        self.inner._put_stream(fileobj, remote_filename, size)

    def _get(self, remote_filename: str, local_path: str) -> None:
        if self.down is None:
            self.inner._get(remote_filename, local_path)
            return
        # Through a temporary file, so a failed get leaves local_path as it was.
        fd, tmp = tempfile.mkstemp(prefix=".pannier-get-", dir=os.path.dirname(local_path) or ".")
        try:
            with open(fd, "wb") as f:
                self.inner._get_stream(remote_filename, _ThrottledWriter(f, self.down))  # type: ignore[arg-type]
            os.replace(tmp, local_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        if self.down is not None:
            fileobj = _ThrottledWriter(fileobj, self.down)  # type: ignore[assignment]
        self.inner._get_stream(remote_filename, fileobj)

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        data = self.inner._get_range(remote_filename, offset, length)
        if self.down is not None:
            self.down.consume(len(data))
        return data
