"""Validation after put: a mismatch becomes a transient error the retry wrapper answers."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from pannier.backend_registry import get_backend, get_backend_object
from pannier.errors import TransientBackendError
from pannier.wrappers.validation import ValidationWrapper


def lossy(tmp_path: Path, losses: list[bool]) -> Any:
    """A file backend that drops the last byte of the puts listed in ``losses``."""
    raw = get_backend_object(f"file://{tmp_path}")
    original = raw._put_stream

    def put_stream(fileobj: Any, name: str, size: Any) -> None:
        data = fileobj.read()
        if losses and losses.pop(0):
            data = data[:-1]
        original(io.BytesIO(data), name, size)

    def put(source_path: str, name: str) -> None:
        with open(source_path, "rb") as f:
            put_stream(f, name, None)

    raw._put_stream = put_stream  # type: ignore[method-assign]
    raw._put = put  # type: ignore[method-assign]
    return raw


def test_a_short_object_fails_validation_with_the_reason(tmp_path: Path) -> None:
    backend = ValidationWrapper(lossy(tmp_path, [True]))
    with pytest.raises(
        TransientBackendError,
        match=r"validation of a after put failed: .*size on server is 4, expected 5",
    ):
        backend.put_bytes("a", b"12345")


def test_a_file_put_is_validated_too(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.write_bytes(b"123")
    backend = ValidationWrapper(lossy(tmp_path, [True]))
    with pytest.raises(TransientBackendError, match="validation"):
        backend.put(str(src), "a")


def test_non_seekable_streams_are_counted(tmp_path: Path) -> None:
    class OneShot(io.RawIOBase):
        def __init__(self) -> None:
            self.left = 10

        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            n = min(len(b), self.left)
            b[:n] = b"x" * n
            self.left -= n
            return n

    backend = ValidationWrapper(lossy(tmp_path, [True]))
    with pytest.raises(TransientBackendError, match="expected 10"):
        backend.put_stream(OneShot(), "a")  # type: ignore[arg-type]


def test_the_retry_wrapper_puts_again_after_a_failed_validation(tmp_path: Path) -> None:
    raw = lossy(tmp_path, [True, False])
    backend = get_backend(raw.url, retry_delay=0)
    inner_validation = backend
    while not isinstance(inner_validation, ValidationWrapper):
        inner_validation = inner_validation.inner  # type: ignore[attr-defined]
    inner_validation.inner = raw
    backend.put_bytes("a", b"12345")
    assert (tmp_path / "a").read_bytes() == b"12345"


def test_validation_can_be_switched_off(tmp_path: Path) -> None:
    raw = lossy(tmp_path, [True])
    backend = ValidationWrapper.from_url(raw, raw.url.with_options({"validate": False}))
    backend.put_bytes("a", b"12345")
    assert (tmp_path / "a").read_bytes() == b"1234"


def test_a_seekable_stream_read_out_of_order_still_validates(tmp_path: Path) -> None:
    raw = get_backend_object(f"file://{tmp_path}")
    original = raw._put_stream

    def put_stream(fileobj: Any, name: str, size: Any) -> None:
        data = fileobj.read()
        fileobj.seek(0)  # like an SDK that rewinds after reading (e.g. to compute a hash)
        original(io.BytesIO(data), name, size)

    raw._put_stream = put_stream  # type: ignore[method-assign]
    ValidationWrapper(raw).put_stream(io.BytesIO(b"x" * 1000), "a")
    assert (tmp_path / "a").read_bytes() == b"x" * 1000
