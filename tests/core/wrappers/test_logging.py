"""The logging wrapper: a line per operation, failures logged, secrets never."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pannier.backend_registry import get_backend_object
from pannier.errors import FileMissingError
from pannier.url import parse_url
from pannier.wrappers.logging import LoggingWrapper


def test_operations_are_logged_with_sizes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    backend = LoggingWrapper(get_backend_object(f"file://{tmp_path}"))
    with caplog.at_level(logging.DEBUG, logger="pannier.backend"):
        backend.put_bytes("a", b"12345")
        backend.get_bytes("a")
        backend.list()
    text = caplog.text
    assert "put a (5 bytes)" in text
    assert "get a in" in text
    assert "list of 1 names" in text


def test_failures_are_logged_and_raised_unchanged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = LoggingWrapper(get_backend_object(f"file://{tmp_path}"))
    with caplog.at_level(logging.DEBUG, logger="pannier.backend"), pytest.raises(FileMissingError):
        backend.get_bytes("absent")
    assert "get absent failed" in caplog.text


def test_passwords_never_reach_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = get_backend_object(f"file://{tmp_path}")
    raw.url = parse_url(f"file://user:hunter2@{tmp_path}?token=tok3n")
    backend = LoggingWrapper(raw)
    with caplog.at_level(logging.DEBUG, logger="pannier.backend"):
        backend.put_bytes("a", b"1")
        with pytest.raises(FileMissingError):
            backend.get_bytes("b")
    assert caplog.records
    assert "hunter2" not in caplog.text and "tok3n" not in caplog.text


def test_clean_temporaries_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / ".pannier-tmp-interrupted").write_bytes(b"half an upload")
    backend = LoggingWrapper(get_backend_object(f"file://{tmp_path}"))
    with caplog.at_level(logging.DEBUG, logger="pannier.backend"):
        assert backend.clean_temporaries(0) == [".pannier-tmp-interrupted"]
    assert "clean temporaries in" in caplog.text
