"""The conformance kit itself: it passes a correct backend and catches each broken one."""

from __future__ import annotations

import io
import itertools
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from pannier.backend import Backend, BackendCapabilities, ListEntry
from pannier.errors import PannierError
from pannier.plugins.backends.file import FileBackend
from pannier.testing.backend_suite import CHECKS, run_conformance
from pannier.url import parse_url


def factory(cls: type[FileBackend], directory: Path) -> Callable[[], Backend]:
    return lambda: cls(parse_url(f"file://{directory}"))


def failed(cls: type[FileBackend], directory: Path, only: str | None = None) -> dict[str, str]:
    report = run_conformance(factory(cls, directory), only=[only] if only else None)
    assert not report.ok
    return {r.name: r.detail for r in report.results if r.status == "failed"}


def test_a_correct_backend_passes_every_check(tmp_path: Path) -> None:
    report = run_conformance(factory(FileBackend, tmp_path))
    assert report.ok, report.format()
    assert [r.name for r in report.results] == [c.name for c in CHECKS]
    assert f"OK: 0 of {len(CHECKS)} checks failed" in report.format()
    assert report.capabilities["atomic_put"] is True
    assert os.listdir(tmp_path) == []


class DuplicateListing(FileBackend):
    def _list(self) -> Iterator[ListEntry]:
        entries = list(super()._list())
        yield from entries
        yield from entries[:1]


def test_a_name_listed_twice_fails(tmp_path: Path) -> None:
    assert "twice" in failed(DuplicateListing, tmp_path)["list"]


class OnePageOnly(FileBackend):
    capabilities = BackendCapabilities(**{**FileBackend.capabilities.as_dict(), "page_size": 7})  # type: ignore[arg-type]

    def _list(self) -> Iterator[ListEntry]:
        yield from itertools.islice(super()._list(), 7)


def test_a_listing_cut_at_one_page_fails(tmp_path: Path) -> None:
    assert "list missed 1 of 8 names" in failed(OnePageOnly, tmp_path)["list"]


class WrongMissingError(FileBackend):
    def _get(self, remote_filename: str, local_path: str) -> None:
        if not os.path.exists(self._path(remote_filename)):
            raise KeyError(remote_filename)
        super()._get(remote_filename, local_path)


def test_a_missing_name_without_file_missing_error_fails(tmp_path: Path) -> None:
    assert "KeyError, not FileMissingError" in failed(WrongMissingError, tmp_path)["missing"]


class NotAtomic(FileBackend):
    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        with open(self._path(remote_filename), "wb") as out:
            while chunk := fileobj.read(65536):
                out.write(chunk)


def test_a_partial_object_fails_when_atomic_put_is_declared(tmp_path: Path) -> None:
    assert "partial object" in failed(NotAtomic, tmp_path)["failed-put"]


class SloppyRange(FileBackend):
    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        return super()._get_range(remote_filename, offset, length + 1)


def test_a_wrong_range_fails(tmp_path: Path) -> None:
    assert "get_range" in failed(SloppyRange, tmp_path)["range"]


class Rewinds(FileBackend):
    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        fileobj.seek(0)
        super()._put_stream(fileobj, remote_filename, size)


def test_seeking_a_non_seekable_stream_fails(tmp_path: Path) -> None:
    assert "seek" in failed(Rewinds, tmp_path)["stream"]


class KeepsTail(FileBackend):
    def _put(self, source_path: str, remote_filename: str) -> None:
        with open(source_path, "rb") as f:
            self._put_stream(f, remote_filename, None)

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        path = self._path(remote_filename)
        data = fileobj.read()
        with open(path, "r+b" if os.path.exists(path) else "wb") as out:
            out.write(data)


def test_an_overwrite_that_keeps_old_bytes_fails(tmp_path: Path) -> None:
    assert "old bytes" in failed(KeepsTail, tmp_path)["overwrite"]


class Shared(FileBackend):
    """Breaks when several instances run at once: a class-level buffer."""

    buffer = io.BytesIO()

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        Shared.buffer = io.BytesIO()
        for chunk in iter(lambda: fileobj.read(1000), b""):
            Shared.buffer.write(chunk)
            time.sleep(0.002)  # let the other threads in
        super()._put_stream(io.BytesIO(Shared.buffer.getvalue()), remote_filename, size)


def test_shared_state_between_instances_fails_the_connections_check(tmp_path: Path) -> None:
    assert "did not round-trip" in failed(Shared, tmp_path, "connections")["connections"]


def test_a_non_empty_location_is_refused_unless_cleaned(tmp_path: Path) -> None:
    (tmp_path / "precious").write_bytes(b"data")
    with pytest.raises(PannierError, match=r"holds 1 objects .*--clean"):
        run_conformance(f"file://{tmp_path}")
    assert (tmp_path / "precious").exists()
    report = run_conformance(f"file://{tmp_path}", clean=True, only=["folder"])
    assert report.ok and not (tmp_path / "precious").exists()


def test_undeclared_capabilities_are_skipped_and_reported(tmp_path: Path) -> None:
    class Plain(FileBackend):
        capabilities = BackendCapabilities(atomic_put=False)

    report = run_conformance(factory(Plain, tmp_path))
    status = {r.name: r.status for r in report.results}
    assert status["range"] == "skipped" and status["rename"] == "skipped"
    assert report.notes["failed put"] == "clean"
    assert report.ok


def test_url_runs_check_the_prefixes_too(tmp_path: Path) -> None:
    report = run_conformance(f"file://{tmp_path}", only=["wrappers"])
    assert report.ok, report.format()
    assert report.notes["prefixes"] == "faulty+, multi+ pass through"


def test_report_as_dict_is_plain_data(tmp_path: Path) -> None:
    data = run_conformance(f"file://{tmp_path}", only=["folder"]).as_dict()
    assert data["ok"] is True
    [result] = data["results"]  # type: ignore[misc]
    assert {k: result[k] for k in ("name", "status", "detail")} == {
        "name": "folder",
        "status": "passed",
        "detail": "",
    }
    assert isinstance(result["seconds"], float)


class MkdirOnce(FileBackend):
    def _create_folder(self) -> None:
        os.mkdir(self.directory, 0o700)  # fails when it exists


def test_create_folder_that_fails_on_an_existing_folder_fails(tmp_path: Path) -> None:
    assert "FileExistsError" in failed(MkdirOnce, tmp_path, "folder")["folder"]


def test_create_folder_support_is_reported(tmp_path: Path) -> None:
    report = run_conformance(factory(FileBackend, tmp_path), only=["folder"])
    assert report.notes["create folder"] == "yes, idempotent"


class AlwaysValid(FileBackend):
    def _validate(self, remote_filename: str, size: int, **kwargs: object) -> tuple[bool, str]:
        return True, ""


def test_a_validate_that_accepts_anything_fails(tmp_path: Path) -> None:
    assert "wrong size" in failed(AlwaysValid, tmp_path, "validate")["validate"]


def test_a_prefix_backend_built_on_backend_wrapper_passes(tmp_path: Path) -> None:
    from pannier.backend_registry import (
        get_backend_object,
        register_backend_prefix,
        unregister_backend,
    )
    from pannier.url import BackendURL
    from pannier.wrappers import BackendWrapper

    class Tag(BackendWrapper):
        schemes = ("tagkit",)
        is_prefix = True

        def __init__(self, url: BackendURL) -> None:
            assert url.inner is not None
            super().__init__(get_backend_object(url.inner))
            self.url = url

    register_backend_prefix("tagkit", Tag)
    try:
        report = run_conformance(f"tagkit+file://{tmp_path}")
    finally:
        unregister_backend("tagkit")
    assert report.ok, report.format()


def test_an_interrupt_during_a_check_is_not_swallowed(tmp_path: Path) -> None:
    from pannier.testing.backend_checks import Check, Kit
    from pannier.testing.backend_suite import run_check

    def interrupted(kit: Kit) -> None:
        kit.put(kit.name("interrupted"), b"x")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_check(Check("interrupted", interrupted), factory(FileBackend, tmp_path))
    assert os.listdir(tmp_path) == []  # the clean-up still ran


class CleansTooMuch(FileBackend):
    """Its clean-up also removes the oldest object."""

    def _clean_temporaries(self, older_than: float) -> list[str]:
        removed = super()._clean_temporaries(older_than)
        oldest = min(self._list(), key=lambda e: os.stat(self._path(e.name)).st_mtime)
        os.unlink(self._path(oldest.name))
        return removed


class ClaimsObjects(FileBackend):
    """Its clean-up removes nothing wrongly but reports a listed object as removed."""

    def _clean_temporaries(self, older_than: float) -> list[str]:
        return [*super()._clean_temporaries(older_than), next(self._list()).name]


def test_a_clean_up_that_removes_an_object_fails(tmp_path: Path) -> None:
    detail = failed(CleansTooMuch, tmp_path, "temporaries")["temporaries"]
    assert "removed 1 listed objects" in detail


def test_a_clean_up_that_names_an_object_fails(tmp_path: Path) -> None:
    detail = failed(ClaimsObjects, tmp_path, "temporaries")["temporaries"]
    assert "returned listed names as removed" in detail


def test_the_clean_up_check_is_reported_or_skipped(tmp_path: Path) -> None:
    report = run_conformance(factory(FileBackend, tmp_path), only=["temporaries"])
    assert report.ok, report.format()
    assert report.notes["clean temporaries"] == "removes only temporaries (0 after a failed put)"

    class NoTemporaries(FileBackend):
        _clean_temporaries = Backend._clean_temporaries

    report = run_conformance(factory(NoTemporaries, tmp_path), only=["temporaries"])
    assert [r.status for r in report.results] == ["skipped"]
    assert "leaves no temporaries" in report.results[0].detail
