"""The bandwidth limit: schedules, pacing, and pass-through when unlimited."""

from __future__ import annotations

import datetime
import io
from pathlib import Path

import pytest
from pannier.backend_registry import get_backend_object
from pannier.errors import ConfigError
from pannier.wrappers.bandwidth import BandwidthWrapper, RateSchedule, TokenBucket

T = datetime.time


def test_plain_rate_and_off() -> None:
    assert RateSchedule.parse("1M").rate_at(T(3)) == 1 << 20
    assert RateSchedule.parse("off").unlimited
    assert RateSchedule.parse("0").unlimited


def test_time_of_day_schedule() -> None:
    s = RateSchedule.parse("08:00-18:00=1M,off")
    assert s.rate_at(T(7, 59)) is None
    assert s.rate_at(T(8, 0)) == 1 << 20
    assert s.rate_at(T(17, 59)) == 1 << 20
    assert s.rate_at(T(18, 0)) is None


def test_schedule_wrapping_midnight_with_a_default() -> None:
    s = RateSchedule.parse("22:00-06:00=off,256k")
    assert s.rate_at(T(23, 30)) is None
    assert s.rate_at(T(5, 0)) is None
    assert s.rate_at(T(12, 0)) == 256 * 1024


@pytest.mark.parametrize("spec", ["fast", "8-18=1M", "25:00-26:00=1M", "08:00-18:00=lots"])
def test_bad_schedules_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError, match="bandwidth schedule"):
        RateSchedule.parse(spec)


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept += s
        self.now += s


def test_token_bucket_paces_to_the_rate() -> None:
    t = FakeTime()
    bucket = TokenBucket(
        RateSchedule.parse("1000"), burst=0.0, clock=t.clock, sleep=t.sleep, now=lambda: T(12)
    )
    for _ in range(10):
        bucket.consume(500)
    assert t.slept == pytest.approx(5.0)


def test_token_bucket_follows_the_schedule() -> None:
    t = FakeTime()
    hour = [T(12)]
    bucket = TokenBucket(
        RateSchedule.parse("08:00-18:00=1000,off"),
        burst=0.0,
        clock=t.clock,
        sleep=t.sleep,
        now=lambda: hour[0],
    )
    bucket.consume(2000)
    assert t.slept == pytest.approx(2.0)
    hour[0] = T(20)
    bucket.consume(10**9)
    assert t.slept == pytest.approx(2.0)


def throttled(tmp_path: Path, up: str, down: str) -> tuple[BandwidthWrapper, FakeTime]:
    raw = get_backend_object(f"file://{tmp_path}")
    t = FakeTime()

    def bucket(spec: str) -> TokenBucket:
        return TokenBucket(RateSchedule.parse(spec), burst=0.0, clock=t.clock, sleep=t.sleep)

    return BandwidthWrapper(raw, bucket(up), bucket(down)), t


def test_upload_and_download_are_paced_separately(tmp_path: Path) -> None:
    backend, t = throttled(tmp_path, up="100k", down="200k")
    data = b"z" * (300 * 1024)
    backend.put_bytes("a", data)
    assert t.slept == pytest.approx(3.0, rel=0.01)
    assert backend.get_bytes("a") == data
    assert t.slept == pytest.approx(4.5, rel=0.01)
    src = tmp_path / "src"
    src.write_bytes(data)
    backend.put(str(src), "b")
    assert t.slept == pytest.approx(7.5, rel=0.01)
    backend.get("b", str(tmp_path / "copy"))
    assert (tmp_path / "copy").read_bytes() == data
    assert t.slept == pytest.approx(9.0, rel=0.01)


def test_unlimited_passes_straight_through(tmp_path: Path) -> None:
    backend, t = throttled(tmp_path, up="off", down="off")
    assert backend.up is None and backend.down is None
    backend.put_stream(io.BytesIO(b"q" * 100000), "a")
    assert backend.get_bytes("a") == b"q" * 100000
    assert t.slept == 0


def test_options_from_the_url(tmp_path: Path) -> None:
    raw = get_backend_object(f"file://{tmp_path}?bwlimit=1M&bwlimit-down=off")
    wrapper = BandwidthWrapper.from_url(raw, raw.url)
    assert wrapper.up is not None and wrapper.up.schedule.default == 1 << 20
    assert wrapper.down is None


def test_a_failed_throttled_get_leaves_the_local_file_alone(tmp_path: Path) -> None:
    from pannier.errors import FileMissingError

    backend, _ = throttled(tmp_path, up="off", down="100k")
    local = tmp_path / "local"
    local.write_bytes(b"keep me")
    with pytest.raises(FileMissingError):
        backend.get("absent", str(local))
    assert local.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["local"]
