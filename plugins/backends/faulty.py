"""faulty+ -- deterministic, seeded fault injection in front of any backend.

For tests of pannier and of plugin authors: ``faulty+file:///x?seed=1&fail-put=3`` behaves
like ``file:///x`` except that the third put fails with a transient error. Every fault is
decided by call counters and a random generator seeded by ``seed``, so a run is
reproducible. Counters belong to one instance (no shared state).

Options (URL query; ``N`` is a comma-separated list of call numbers, counted from 1 per
operation -- or per instance for ``rate-limit``, ``short-upload`` and ``flip-read``):

* ``seed`` (int, default 0): seeds the random faults.
* ``fail-OP=N`` for OP in put, get, list, delete, query, move, test, clean: the N-th call
  of that operation raises TransientBackendError before reaching the inner backend (puts
  and gets count both the file and the stream forms; ``query`` counts single and list
  queries; ``clean`` is ``clean_temporaries``).
* ``fail-rate`` (0..1, default 0): every call fails with this probability.
* ``fail-mode`` (``transient`` or ``permanent``, default transient): the class of the
  errors ``fail-OP`` and ``fail-rate`` raise (PermanentBackendError is never retried).
* ``rate-limit=N``: the N-th call of any operation raises RateLimitedError with
  ``retry-after`` seconds (default 0.01).
* ``short-upload=N``: the N-th put hands the inner backend only the first half of the
  data and then fails (transient). On an inner backend with ``atomic_put`` nothing is
  left behind; on one without it a *truncated object stays visible* -- which is what
  this fault exists to show.
* ``list-cut=N``: the N-th listing fails (transient) after yielding half of its names.
* ``delay`` (seconds, default 0): sleep before every call.
* ``flip-read=N``: the N-th get (file, stream or range) returns data with one byte flipped
  (chosen by the seeded generator); nothing reports it, as with a bad disk.

The capabilities are the inner backend's.
"""

from __future__ import annotations

import builtins
import io
import os
import random
import time
from collections.abc import Iterator
from typing import IO, cast

from pannier import (
    PLUGIN_API_VERSION,
    Backend,
    BackendCapabilities,
    BackendError,
    BackendURL,
    ConfigError,
    ListEntry,
    PermanentBackendError,
    RateLimitedError,
    TransientBackendError,
    get_backend_object,
)

_OPERATIONS = ("put", "get", "list", "delete", "query", "move", "test", "clean")


def _numbers(url: BackendURL, name: str) -> frozenset[int]:
    value = url.option(name)
    if not value:
        return frozenset()
    try:
        return frozenset(int(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"{url.redacted}: option {name}: {value!r} is not a list of call numbers"
        ) from None


class _HalfReader:
    """Yields the first ``limit`` bytes of a stream, then raises."""

    def __init__(self, fileobj: IO[bytes], limit: int, message: str) -> None:
        self.fileobj = fileobj
        self.left = limit
        self.message = message

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            raise TransientBackendError(self.message)
        want = self.left if size is None or size < 0 else min(size, self.left)
        data = self.fileobj.read(want)
        self.left -= len(data)
        return data

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


class FaultyBackend(Backend):
    """Passes every call to the inner backend, failing the calls the URL names."""

    plugin_api_version = PLUGIN_API_VERSION
    schemes = ("faulty",)
    is_prefix = True
    description = "fault injection for tests (prefix)"

    def __init__(self, url: BackendURL) -> None:
        if url.inner is None:
            raise ConfigError(f"{url.redacted}: faulty+ needs an inner URL, e.g. faulty+file:///x")
        self.url = url
        self.inner: Backend = get_backend_object(url.inner)
        self.random = random.Random(url.int_option("seed", 0))
        self.fail = {op: _numbers(url, f"fail-{op}") for op in _OPERATIONS}
        self.fail_rate = url.float_option("fail-rate", 0.0)
        self.rate_limit = _numbers(url, "rate-limit")
        self.retry_after = url.float_option("retry-after", 0.01)
        self.short_upload = _numbers(url, "short-upload")
        self.list_cut = _numbers(url, "list-cut")
        self.delay = url.float_option("delay", 0.0)
        self.flip_read = _numbers(url, "flip-read")
        mode = url.enum_option("fail-mode", ["transient", "permanent"], "transient")
        self.failure = PermanentBackendError if mode == "permanent" else TransientBackendError
        self.counts = dict.fromkeys(_OPERATIONS, 0)
        self.calls = 0
        self.puts = 0
        self.gets = 0

    def get_capabilities(self) -> BackendCapabilities:
        """The inner backend's capabilities."""
        return self.inner.get_capabilities()

    # --- fault decisions ----------------------------------------------------------------

    def _enter(self, operation: str, name: str = "") -> None:
        """Count a call of ``operation`` and raise the fault it is due, if any."""
        if self.delay > 0:
            time.sleep(self.delay)
        self.calls += 1
        self.counts[operation] += 1
        what = f"{operation} {name}".strip()
        if self.calls in self.rate_limit:
            raise RateLimitedError(
                f"injected rate limit on {what} (call {self.calls})",
                backend=self.display_name,
                retry_after=self.retry_after,
            )
        if self.counts[operation] in self.fail[operation]:
            raise self.failure(
                f"injected failure of {what} (call {self.counts[operation]} of {operation})",
                backend=self.display_name,
            )
        if self.fail_rate > 0 and self.random.random() < self.fail_rate:
            raise self.failure(f"injected random failure of {what}", backend=self.display_name)

    def _next_put_is_short(self) -> bool:
        self.puts += 1
        return self.puts in self.short_upload

    def _next_get_flips(self) -> bool:
        self.gets += 1
        return self.gets in self.flip_read

    def _flip(self, data: bytes) -> bytes:
        if not data:
            return data
        i = self.random.randrange(len(data))
        return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]

    # --- required primitives ------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        self._enter("put", remote_filename)
        if self._next_put_is_short():
            with open(source_path, "rb") as f:
                self._short_put(f, remote_filename, os.path.getsize(source_path))
        self.inner._put(source_path, remote_filename)

    def _get(self, remote_filename: str, local_path: str) -> None:
        self._enter("get", remote_filename)
        self.inner._get(remote_filename, local_path)
        if self._next_get_flips():
            with open(local_path, "r+b") as f:
                data = self._flip(f.read())
                f.seek(0)
                f.write(data)

    def _list(self) -> Iterator[ListEntry | str]:
        self._enter("list")
        if self.counts["list"] not in self.list_cut:
            yield from self.inner._list()
            return
        entries = list(self.inner._list())
        yield from entries[: len(entries) // 2]
        raise TransientBackendError(
            f"injected failure of list after {len(entries) // 2} names", backend=self.display_name
        )

    def _delete(self, filename: str) -> None:
        self._enter("delete", filename)
        self.inner._delete(filename)

    # --- optional primitives ------------------------------------------------------------

    def _short_put(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        if size is None:  # half of an unknown size: read it all to know
            data = fileobj.read()
            fileobj, size = io.BytesIO(data), len(data)
        data_limit = size // 2
        message = f"injected short upload of {remote_filename} after {data_limit} bytes"
        half = cast(IO[bytes], _HalfReader(fileobj, data_limit, message))
        self.inner._put_stream(half, remote_filename, size)
        raise TransientBackendError(message, backend=self.display_name)

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        self._enter("put", remote_filename)
        if self._next_put_is_short():
            self._short_put(fileobj, remote_filename, size)
        self.inner._put_stream(fileobj, remote_filename, size)

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        self._enter("get", remote_filename)
        if not self._next_get_flips():
            self.inner._get_stream(remote_filename, fileobj)
            return
        buf = io.BytesIO()
        self.inner._get_stream(remote_filename, buf)
        fileobj.write(self._flip(buf.getvalue()))

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        self._enter("get", remote_filename)
        data: bytes = self.inner._get_range(remote_filename, offset, length)
        return self._flip(data) if self._next_get_flips() else data

    def _query(self, filename: str) -> dict[str, int]:
        self._enter("query", filename)
        info: dict[str, int] = self.inner._query(filename)
        return info

    def _query_list(self, filename_list: builtins.list[str]) -> dict[str, dict[str, int]]:
        self._enter("query")
        infos: dict[str, dict[str, int]] = self.inner._query_list(filename_list)
        return infos

    def _delete_list(self, filename_list: builtins.list[str]) -> None:
        self._enter("delete")
        self.inner._delete_list(filename_list)

    def _move(self, source_filename: str, remote_filename: str) -> None:
        self._enter("move", source_filename)
        self.inner._move(source_filename, remote_filename)

    def _validate(self, remote_filename: str, size: int, **kwargs: object) -> tuple[bool, str]:
        verdict: tuple[bool, str] = self.inner._validate(remote_filename, size, **kwargs)
        return verdict

    # --- the folder ---------------------------------------------------------------------

    def _test(self) -> None:
        self._enter("test")
        self.inner._test()

    def _create_folder(self) -> None:
        self.inner._create_folder()

    # --- errors and clean-up ------------------------------------------------------------

    def _retry_cleanup(self) -> None:
        self.inner._retry_cleanup()

    def _error_code(self, operation: str, e: Exception) -> BackendError | None:
        mapped: BackendError | None = self.inner._error_code(operation, e)
        return mapped

    def _close(self) -> None:
        self.inner._close()

    def _clean_temporaries(self, older_than: float) -> builtins.list[str]:
        self._enter("clean")
        removed: builtins.list[str] = self.inner._clean_temporaries(older_than)
        return removed


def get_plugin_class() -> type[FaultyBackend]:
    """The backend class of this plugin module."""
    return FaultyBackend
