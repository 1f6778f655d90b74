"""The retry wrapper: what it retries, how long it waits, and what it never does."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from pannier.backend import Backend, ListEntry
from pannier.backend_registry import get_backend_object
from pannier.errors import (
    BackendError,
    FileMissingError,
    PermanentBackendError,
    TransientBackendError,
)
from pannier.wrappers.retry import RetryPolicy, RetryWrapper


class Recorder:
    """A fake sleep and clock: sleeping advances the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def wrap(backend: Backend, rec: Recorder, **policy: float) -> RetryWrapper:
    return RetryWrapper(
        backend,
        RetryPolicy(**policy),  # type: ignore[arg-type]
        sleep=rec.sleep,
        clock=rec.clock,
        rng=random.Random(1),
    )


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


def faulty(tmp_path: Path, query: str) -> Backend:
    return get_backend_object(f"faulty+file://{tmp_path}?{query}")


def test_transient_failures_are_retried_until_success(tmp_path: Path, rec: Recorder) -> None:
    inner = faulty(tmp_path, "fail-put=1,2")
    backend = wrap(inner, rec)
    backend.put_bytes("a", b"data")
    assert (tmp_path / "a").read_bytes() == b"data"
    assert len(rec.sleeps) == 2


def test_full_jitter_delays_stay_under_the_exponential_bound(tmp_path: Path, rec: Recorder) -> None:
    backend = wrap(
        faulty(tmp_path, "fail-get=1,2,3,4,5,6"), rec, attempts=7, base_delay=1.0, max_delay=5.0
    )
    (tmp_path / "x").write_bytes(b"1")
    assert backend.get_bytes("x") == b"1"
    bounds = [1, 2, 4, 5, 5, 5]
    assert len(rec.sleeps) == 6
    assert all(0 <= s <= b for s, b in zip(rec.sleeps, bounds, strict=True))
    assert len(set(rec.sleeps)) == 6  # jittered, not fixed


def test_gives_up_after_the_attempts_and_says_so(tmp_path: Path, rec: Recorder) -> None:
    backend = wrap(faulty(tmp_path, "fail-put=1,2,3,4"), rec, attempts=3)
    with pytest.raises(TransientBackendError, match="gave up after 3 attempts") as info:
        backend.put_bytes("a", b"data")
    assert "injected failure of put a (call 3 of put)" in str(info.value)
    assert len(rec.sleeps) == 2
    assert not (tmp_path / "a").exists()


def test_gives_up_when_the_elapsed_time_budget_is_spent(tmp_path: Path, rec: Recorder) -> None:
    backend = wrap(
        faulty(tmp_path, "fail-list=1,2,3,4,5,6,7,8"),
        rec,
        attempts=50,
        base_delay=10.0,
        max_delay=10.0,
        max_elapsed=25.0,
    )
    with pytest.raises(TransientBackendError, match="gave up after"):
        backend.list()
    assert sum(rec.sleeps) <= 25.0


def test_file_missing_is_never_retried(tmp_path: Path, rec: Recorder) -> None:
    backend = wrap(get_backend_object(f"file://{tmp_path}"), rec)
    with pytest.raises(FileMissingError):
        backend.get_bytes("absent")
    assert rec.sleeps == []


def test_permanent_errors_are_never_retried(tmp_path: Path, rec: Recorder) -> None:
    class Denied(Backend):
        plugin_api_version = 1
        calls = 0

        def _delete(self, filename: str) -> None:
            self.calls += 1
            raise PermanentBackendError("permission denied")

    inner = Denied()
    with pytest.raises(PermanentBackendError, match="permission denied"):
        wrap(inner, rec).delete("a")
    assert inner.calls == 1 and rec.sleeps == []


def test_rate_limit_waits_at_least_retry_after(tmp_path: Path, rec: Recorder) -> None:
    backend = wrap(faulty(tmp_path, "rate-limit=1&retry-after=7"), rec, base_delay=0.01)
    backend.put_bytes("a", b"x")
    assert len(rec.sleeps) == 1 and rec.sleeps[0] >= 7


def test_retry_cleanup_runs_between_attempts(tmp_path: Path, rec: Recorder) -> None:
    inner = faulty(tmp_path, "fail-query=1,2")
    cleanups: list[int] = []
    inner._retry_cleanup = lambda: cleanups.append(1)  # type: ignore[method-assign]
    assert wrap(inner, rec).query("absent") == -1
    assert len(cleanups) == 2


class Foreign(Backend):
    """Raises SDK-style exceptions and maps some with _error_code."""

    plugin_api_version = 1

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors

    def _query(self, filename: str) -> dict[str, int]:
        if self.errors:
            raise self.errors.pop(0)
        return {"size": 3}

    def _error_code(self, operation: str, e: Exception) -> BackendError | None:
        if isinstance(e, KeyError):
            return PermanentBackendError(f"{operation}: mapped {e}")
        return None


def test_unmapped_foreign_exceptions_are_transient(rec: Recorder) -> None:
    backend = wrap(Foreign([ConnectionResetError("reset"), TimeoutError("slow")]), rec)
    assert backend.query("a") == 3
    assert len(rec.sleeps) == 2


def test_error_code_mapping_decides(rec: Recorder) -> None:
    with pytest.raises(PermanentBackendError, match="mapped"):
        wrap(Foreign([KeyError("bucket")]), rec).query("a")
    assert rec.sleeps == []


def test_programming_errors_are_not_retried(rec: Recorder) -> None:
    with pytest.raises(TypeError):
        wrap(Foreign([TypeError("bug")]), rec).query("a")
    assert rec.sleeps == []


def test_seekable_stream_is_rewound_for_the_next_attempt(tmp_path: Path, rec: Recorder) -> None:
    backend = wrap(faulty(tmp_path, "short-upload=1"), rec)
    backend.put_stream(io.BytesIO(b"0123456789" * 1000), "a")
    assert (tmp_path / "a").read_bytes() == b"0123456789" * 1000
    assert len(rec.sleeps) == 1


class OneShot(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
        chunk = self.data.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


def test_non_seekable_stream_is_not_read_twice(tmp_path: Path, rec: Recorder) -> None:
    backend = wrap(faulty(tmp_path, "short-upload=1"), rec)
    with pytest.raises(TransientBackendError, match="short upload"):
        backend.put_stream(OneShot(b"x" * 10000), "a")  # type: ignore[arg-type]
    assert rec.sleeps == []
    assert not (tmp_path / "a").exists()


def test_untouched_non_seekable_stream_is_retried(tmp_path: Path, rec: Recorder) -> None:
    backend = wrap(faulty(tmp_path, "fail-put=1"), rec)
    backend.put_stream(OneShot(b"y" * 100), "a")  # type: ignore[arg-type]
    assert (tmp_path / "a").read_bytes() == b"y" * 100


def test_get_stream_retry_truncates_what_was_written(tmp_path: Path, rec: Recorder) -> None:
    (tmp_path / "a").write_bytes(b"abcdef")
    backend = wrap(faulty(tmp_path, "fail-get=1"), rec)
    out = io.BytesIO()
    out.write(b"head:")
    backend.get_stream("a", out)
    assert out.getvalue() == b"head:abcdef"


def test_listing_retried_from_scratch_never_yields_a_name_twice(
    tmp_path: Path, rec: Recorder
) -> None:
    for i in range(10):
        (tmp_path / f"n{i}").write_bytes(b"x" * i)
    backend = wrap(faulty(tmp_path, "list-cut=1,2"), rec)
    names = [e.name for e in backend.iter_list()]
    assert sorted(names) == sorted(f"n{i}" for i in range(10))
    assert len(names) == len(set(names))
    assert len(rec.sleeps) == 2


class Flaky(Backend):
    """Lists page by page from a fixed list; fails once after the first page."""

    plugin_api_version = 1

    def __init__(self) -> None:
        self.calls = 0

    def _list(self) -> Iterator[ListEntry]:
        self.calls += 1
        yield ListEntry("a", 1)
        yield ListEntry("b", 2)
        if self.calls == 1:
            raise TransientBackendError("page 2 timed out")
        yield ListEntry("c", 3)


def test_listing_failure_midway_delivers_each_name_once(rec: Recorder) -> None:
    backend = wrap(Flaky(), rec)
    assert [(e.name, e.size) for e in backend.iter_list()] == [("a", 1), ("b", 2), ("c", 3)]


def test_policy_from_url_options(tmp_path: Path) -> None:
    inner = get_backend_object(f"file://{tmp_path}?retries=2&retry-delay=0.5&retry-max-time=9")
    wrapper = RetryWrapper.from_url(inner, inner.url)
    assert wrapper.policy == RetryPolicy(
        attempts=2, base_delay=0.5, max_delay=30.0, max_elapsed=9.0
    )


@pytest.mark.parametrize("option", ["retry-delay=-1", "retry-max-delay=nan", "retry-max-time=-5"])
def test_negative_durations_are_config_errors(tmp_path: Path, option: str) -> None:
    from pannier.errors import ConfigError

    inner = get_backend_object(f"file://{tmp_path}?{option}")
    with pytest.raises(ConfigError, match=f"option {option.split('=')[0]}: .* is not a duration"):
        RetryWrapper.from_url(inner, inner.url)


def test_clean_temporaries_is_retried(tmp_path: Path, rec: Recorder) -> None:
    stale = tmp_path / ".pannier-tmp-interrupted"
    stale.write_bytes(b"half an upload")
    (tmp_path / "kept").write_bytes(b"an object")
    backend = wrap(faulty(tmp_path, "fail-clean=1"), rec)
    assert backend.clean_temporaries(0) == [stale.name]
    assert len(rec.sleeps) == 1
    assert not stale.exists() and (tmp_path / "kept").exists()
