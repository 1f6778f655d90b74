"""What the backend tests share: unique names, a fresh location, the check of a put from a
bad source, and ``pannier backend`` run in a real process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from pannier import Backend, FileMissingError, PermanentBackendError, TransientBackendError
from pannier.backend_registry import get_backend_object
from pannier.testing.backend_checks import NonSeekableReader


def unique(label: str) -> str:
    """A folder, container or bucket name no other test uses (S3 bucket rules: lower
    case, digits, ``-``)."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


def fresh(url: str) -> str:
    """``url``, after creating its folder (``create_folder``)."""
    backend = get_backend_object(url)
    try:
        backend.create_folder()
    finally:
        backend.close()
    return url


def check_put_from_bad_sources(backend: Backend, broken: str) -> None:
    """A put from a source that gives fewer or more bytes than announced raises
    PermanentBackendError, one from a source that breaks TransientBackendError (whose
    message matches ``broken``); none leaves an object or changes the one it replaces."""
    backend.put_bytes("old", b"old content")
    with pytest.raises(PermanentBackendError, match="gave 3 bytes, not the 10 announced"):
        backend.put_stream(io.BytesIO(b"abc"), "old", 10)
    with pytest.raises(PermanentBackendError, match="more than the 10 bytes announced"):
        backend.put_stream(io.BytesIO(b"x" * 20), "old", 10)
    with pytest.raises(TransientBackendError, match=broken):
        backend.put_stream(NonSeekableReader(b"abcd" * 4, fail_after=4), "new")  # type: ignore[arg-type]
    assert [(e.name, e.size) for e in backend.list()] == [("old", 11)]
    assert backend.get_bytes("old") == b"old content"


def check_get_to_unwritable_or_missing(backend: Backend, tmp_path: Path) -> None:
    """A get to a path that cannot be created raises PermanentBackendError "cannot
    write"; a get of a missing object raises FileMissingError and makes no local file."""
    backend.put_bytes("a", b"1")
    with pytest.raises(PermanentBackendError, match="cannot write"):
        backend.get("a", str(tmp_path / "no" / "such" / "dir"))
    with pytest.raises(FileMissingError):
        backend.get("b", str(tmp_path / "b"))
    assert not (tmp_path / "b").exists()


class BackendTool:
    """``pannier backend ARGS...`` in a real process; :attr:`env` is the environment
    (the test's variables over the current one), which a test may change between runs."""

    def __init__(self, **env: str) -> None:
        self.env = {**os.environ, **env}

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pannier", "backend", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def fails(self, *args: str, saying: str) -> str:
        """Run; it must fail with a one-line error that contains ``saying``. Return it."""
        done = self(*args)
        assert done.returncode != 0, done.stdout
        assert saying in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        return done.stderr

    def round_trip(self, url: str, tmp_path: Path) -> None:
        """``put`` a local file as ``obj``, see it in ``ls``, ``get`` it back unchanged."""
        source, back = tmp_path / "source", tmp_path / "back"
        source.write_bytes(b"through the command line")
        assert self("put", url, "obj", str(source)).returncode == 0
        listed = self("ls", url)
        assert listed.returncode == 0 and "obj" in listed.stdout, listed.stderr
        assert self("get", url, "obj", str(back)).returncode == 0
        assert back.read_bytes() == b"through the command line"

    def kit_passes(self, url: str) -> None:
        """``pannier backend test URL``: the conformance kit finds no failure."""
        done = self("test", url)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "OK: 0 of" in done.stdout
