"""Fixtures for the repository tests: a real directory store and repositories on it.

The store is a minimal :class:`pannier.backend.Backend` over a local directory (atomic
put by rename, ranged get), so these tests exercise the repository on real files without
depending on the ``file`` backend plugin's discovery.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pannier.backend import Backend, BackendCapabilities, ListEntry
from pannier.errors import FileMissingError, FolderMissingError
from pannier.repo import KdfParams, Repository
from pannier.repo.crypto import MasterKey

#: Cheap key derivation so tests do not spend seconds in Argon2id.
FAST_KDF = KdfParams(memory_cost=1024, iterations=1, lanes=1)
#: A fixed master key: the golden-bytes and key-object tests pin what it produces.
FIXED_MASTER = MasterKey(bytes(range(32)), bytes(range(32, 64)), 0x1234567890ABCDEF)
PASSWORD = "correct horse battery staple"


class DirBackend(Backend):
    """A directory as a backend: flat files, atomic puts, ranged gets."""

    plugin_api_version = 1
    schemes = ("testdir",)
    capabilities = BackendCapabilities(atomic_put=True, ranged_get=True, connections=8)

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.puts: list[str] = []

    @property
    def display_name(self) -> str:
        return f"testdir://{self.directory.name}"

    def _check(self) -> None:
        if not self.directory.is_dir():
            raise FolderMissingError(f"{self.directory.name} does not exist")

    def _put(self, source_path: str, remote_filename: str) -> None:
        with open(source_path, "rb") as f:
            self._write(remote_filename, f.read())

    def _write(self, name: str, data: bytes) -> None:
        self._check()
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, self.directory / name)
        self.puts.append(name)

    def _put_stream(self, fileobj, remote_filename, size):  # type: ignore[no-untyped-def]
        self._write(remote_filename, fileobj.read())

    def _get(self, remote_filename: str, local_path: str) -> None:
        with open(local_path, "wb") as f:
            f.write(self._read(remote_filename))

    def _read(self, name: str) -> bytes:
        self._check()
        try:
            return (self.directory / name).read_bytes()
        except FileNotFoundError:
            raise FileMissingError(f"{name} does not exist") from None

    def _get_stream(self, remote_filename, fileobj):  # type: ignore[no-untyped-def]
        fileobj.write(self._read(remote_filename))

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        self._check()
        try:
            with open(self.directory / remote_filename, "rb") as f:
                f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            raise FileMissingError(f"{remote_filename} does not exist") from None

    def _list(self) -> Iterator[ListEntry]:
        self._check()
        for p in self.directory.iterdir():
            if not p.name.startswith(".tmp-"):
                yield ListEntry(p.name, p.stat().st_size)

    def _query(self, filename: str) -> dict[str, int]:
        self._check()
        p = self.directory / filename
        return {"size": p.stat().st_size if p.exists() else -1}

    def _delete(self, filename: str) -> None:
        (self.directory / filename).unlink(missing_ok=True)

    def _create_folder(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def repo_dir(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@pytest.fixture
def backend(repo_dir: Path) -> DirBackend:
    return DirBackend(repo_dir)


@pytest.fixture
def repo(backend: DirBackend) -> Iterator[Repository]:
    r = Repository.init(backend, PASSWORD, kdf=FAST_KDF)
    yield r
    r.close()


@pytest.fixture
def plain_repo(backend: DirBackend) -> Iterator[Repository]:
    r = Repository.init(backend, None, encryption="none")
    yield r
    r.close()


@pytest.fixture(autouse=True)
def no_engine_walkers(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests store raw streams, not the engine's tree: keep the engine's walker
    (which parses "tree" streams) out, so referenced blobs are the stream blobs."""
    from pannier.repo import repository

    monkeypatch.setattr(repository, "_walkers", [lambda repo, snap: ()])
