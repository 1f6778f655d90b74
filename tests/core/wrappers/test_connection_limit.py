"""The connection limit: never more operations at once than allowed, per location."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pannier.backend_registry import get_backend, get_backend_object
from pannier.wrappers.connection_limit import ConnectionLimitWrapper, shared_semaphore


class Gauge:
    """Counts operations running at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def test_at_most_n_operations_at_once_across_instances(tmp_path: Path) -> None:
    gauge = Gauge()
    url = f"file://{tmp_path}?connections=2"
    backends = [get_backend(url) for _ in range(6)]
    for b in backends:
        raw = b.unwrap()
        original = raw._query

        def slow_query(name: str, original=original) -> dict[str, int]:  # type: ignore[no-untyped-def]
            with gauge:
                time.sleep(0.1)
                return original(name)

        raw._query = slow_query  # type: ignore[method-assign]
    barrier = threading.Barrier(len(backends))

    def start_together(b) -> None:  # type: ignore[no-untyped-def]
        barrier.wait()
        b.query("x")

    threads = [threading.Thread(target=start_together, args=(b,)) for b in backends]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gauge.peak == 2


def test_zero_means_unlimited(tmp_path: Path) -> None:
    raw = get_backend_object(f"file://{tmp_path}?connections=0")
    assert ConnectionLimitWrapper.from_url(raw, raw.url).semaphore is None


def test_default_is_the_declared_connections(tmp_path: Path) -> None:
    raw = get_backend_object(f"file://{tmp_path}/limit-default")
    wrapper = ConnectionLimitWrapper.from_url(raw, raw.url)
    assert wrapper.semaphore is shared_semaphore(f"file://{tmp_path}/limit-default", 8)


def test_listing_does_not_hold_the_slot_while_the_caller_iterates(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(b"x")
    backend = get_backend(f"file://{tmp_path}?connections=1")
    seen = []
    for entry in backend.iter_list():
        seen.append(entry.name)
        assert backend.query(entry.name) == 1  # would dead-lock if the slot were held
    assert sorted(seen) == ["a", "b"]
