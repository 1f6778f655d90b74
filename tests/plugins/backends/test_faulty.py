"""faulty+ -- each injected fault, deterministic by seed, and pass-through otherwise."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from pannier.backend import Backend
from pannier.backend_registry import get_backend_object
from pannier.errors import ConfigError, RateLimitedError, TransientBackendError
from pannier.testing.backend_suite import BackendConformance


class TestFaultyWithoutFaultsConforms(BackendConformance):
    @pytest.fixture
    def make_backend(self, tmp_path: Path) -> str:
        return f"faulty+file://{tmp_path}?seed=3"


def faulty(tmp_path: Path, query: str) -> Backend:
    return get_backend_object(f"faulty+file://{tmp_path}?{query}")


def test_fail_the_nth_call_of_an_operation(tmp_path: Path) -> None:
    b = faulty(tmp_path, "fail-put=2,3")
    b.put_bytes("a", b"1")
    for _ in range(2):
        with pytest.raises(
            TransientBackendError, match=r"injected failure of put b \(call [23] of put\)"
        ):
            b.put_bytes("b", b"2")
    b.put_bytes("b", b"2")
    assert sorted(e.name for e in b.list()) == ["a", "b"]


@pytest.mark.parametrize(
    ("option", "call"),
    [
        ("fail-get", lambda b: b.get_bytes("a")),
        ("fail-list", lambda b: b.list()),
        ("fail-delete", lambda b: b.delete("a")),
        ("fail-query", lambda b: b.query("a")),
        ("fail-move", lambda b: b.move("a", "c")),
        ("fail-test", lambda b: b.test()),
    ],
)
def test_every_operation_can_fail(tmp_path: Path, option: str, call) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a").write_bytes(b"1")
    b = faulty(tmp_path, f"{option}=1")
    with pytest.raises(TransientBackendError, match="injected failure"):
        call(b)
    call(b)  # the second call passes


def test_rate_limit_carries_retry_after(tmp_path: Path) -> None:
    b = faulty(tmp_path, "rate-limit=2&retry-after=1.5")
    b.list()
    with pytest.raises(RateLimitedError) as info:
        b.list()
    assert info.value.retry_after == 1.5


def test_fail_rate_is_reproducible_by_seed(tmp_path: Path) -> None:
    def pattern(seed: int) -> list[bool]:
        b = faulty(tmp_path, f"seed={seed}&fail-rate=0.5")
        outcome = []
        for _ in range(40):
            try:
                b.query("x")
                outcome.append(True)
            except TransientBackendError:
                outcome.append(False)
        return outcome

    assert pattern(1) == pattern(1)
    assert pattern(1) != pattern(2)
    assert 5 < pattern(1).count(False) < 35


def test_short_upload_on_an_atomic_backend_leaves_nothing(tmp_path: Path) -> None:
    b = faulty(tmp_path, "short-upload=1")
    with pytest.raises(TransientBackendError, match="short upload of a after 5000 bytes"):
        b.put_stream(io.BytesIO(b"x" * 10000), "a")
    assert b.list() == []
    b.put_stream(io.BytesIO(b"x" * 10000), "a")
    assert b.get_bytes("a") == b"x" * 10000


class AppendOnly(Backend):
    """A non-atomic backend: it writes straight to the final file."""

    plugin_api_version = 1

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _put_stream(self, fileobj, remote_filename, size):  # type: ignore[no-untyped-def]
        with open(self.directory / remote_filename, "wb") as f:
            while chunk := fileobj.read(1000):
                f.write(chunk)


def test_short_upload_on_a_non_atomic_backend_leaves_a_truncated_object(tmp_path: Path) -> None:
    b = faulty(tmp_path, "short-upload=1")
    b.inner = AppendOnly(tmp_path)  # type: ignore[attr-defined]
    with pytest.raises(TransientBackendError, match="short upload"):
        b.put_stream(io.BytesIO(b"y" * 10000), "a")
    assert (tmp_path / "a").read_bytes() == b"y" * 5000


def test_short_upload_of_a_file_put(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"z" * 4000)
    b = faulty(tmp_path / "store", "short-upload=1")
    (tmp_path / "store").mkdir()
    with pytest.raises(TransientBackendError, match="after 2000 bytes"):
        b.put(str(src), "a")
    assert b.list() == []


def test_flip_read_changes_exactly_one_byte(tmp_path: Path) -> None:
    data = bytes(range(256)) * 10
    (tmp_path / "a").write_bytes(data)
    b = faulty(tmp_path, "flip-read=2,3,4&seed=5")
    assert b.get_bytes("a") == data
    flipped = b.get_bytes("a")
    assert sum(x != y for x, y in zip(flipped, data, strict=True)) == 1
    b.get("a", str(tmp_path / "copy"))
    got = (tmp_path / "copy").read_bytes()
    assert sum(x != y for x, y in zip(got, data, strict=True)) == 1
    part = b.get_range("a", 0, 100)
    assert part != data[:100] and len(part) == 100


def test_list_cut_fails_after_half_the_names(tmp_path: Path) -> None:
    for i in range(6):
        (tmp_path / f"n{i}").write_bytes(b"")
    b = faulty(tmp_path, "list-cut=1")
    seen = []
    with pytest.raises(TransientBackendError, match="after 3 names"):
        for entry in b.iter_list():
            seen.append(entry.name)
    assert len(seen) == 3
    assert len(b.list()) == 6


def test_delay_sleeps_before_each_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    import pannier.plugins.backends.faulty as module

    monkeypatch.setattr(module.time, "sleep", slept.append)
    b = faulty(tmp_path, "delay=0.25")
    b.list()
    b.query("a")
    assert slept == [0.25, 0.25]


def test_capabilities_pass_through(tmp_path: Path) -> None:
    inner = get_backend_object(f"file://{tmp_path}")
    assert faulty(tmp_path, "").get_capabilities() == inner.get_capabilities()


def test_bad_options_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fail-put: 'third' is not a list of call numbers"):
        faulty(tmp_path, "fail-put=third")
    with pytest.raises(ConfigError, match="option fail-rate"):
        faulty(tmp_path, "fail-rate=often")


def test_fail_mode_permanent_is_not_retried(tmp_path: Path) -> None:
    from pannier.backend_registry import get_backend
    from pannier.errors import PermanentBackendError

    backend = get_backend(f"faulty+file://{tmp_path}?fail-put=1&fail-mode=Permanent&retry-delay=0")
    with pytest.raises(PermanentBackendError, match="injected failure of put a"):
        backend.put_bytes("a", b"1")
    backend.put_bytes("a", b"1")  # the second call is not a fault: nothing was retried
    assert backend.unwrap().counts["put"] == 2  # type: ignore[attr-defined]
