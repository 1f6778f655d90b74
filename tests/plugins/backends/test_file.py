"""file:// -- the conformance kit, then what only a local directory promises."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from pannier.backend import Backend
from pannier.backend_registry import get_backend, get_backend_object
from pannier.errors import FileMissingError, FolderMissingError, PermanentBackendError
from pannier.testing.backend_suite import BackendConformance


class TestFileConformance(BackendConformance):
    @pytest.fixture
    def make_backend(self, tmp_path: Path) -> Callable[[], Backend]:
        return lambda: get_backend_object(f"file://{tmp_path}")


class TestFileConformanceWithFsync(BackendConformance):
    @pytest.fixture
    def make_backend(self, tmp_path: Path) -> str:
        return f"file://{tmp_path}?fsync=true"


def test_missing_directory_raises_folder_missing_and_create_folder_makes_it(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    backend = get_backend_object(f"file://{target}")
    for call in (backend.test, backend.list, lambda: backend.put_bytes("x", b"1")):
        with pytest.raises(FolderMissingError, match="does not exist"):
            call()
    backend.create_folder()
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
    backend.create_folder()  # again: no error
    backend.put_bytes("x", b"1")
    assert backend.get_bytes("x") == b"1"


def test_temporary_files_and_directories_are_not_listed(tmp_path: Path) -> None:
    (tmp_path / ".pannier-tmp-abc").write_bytes(b"partial")
    (tmp_path / "subdir").mkdir()
    (tmp_path / "real").write_bytes(b"12")
    names = [(e.name, e.size) for e in get_backend_object(f"file://{tmp_path}").list()]
    assert names == [("real", 2)]


def test_a_failed_put_leaves_no_temporary_file(tmp_path: Path) -> None:
    class Breaks(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, b) -> int:  # type: ignore[no-untyped-def]
            raise OSError("source disk failed")

    backend = get_backend_object(f"file://{tmp_path}")
    with pytest.raises(Exception, match="source disk failed"):
        backend.put_stream(Breaks(), "x")  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == []


def test_objects_are_private_to_the_owner(tmp_path: Path) -> None:
    get_backend_object(f"file://{tmp_path}").put_bytes("x", b"1")
    assert stat.S_IMODE(os.stat(tmp_path / "x").st_mode) == 0o600


def test_relative_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rel" / "dir").mkdir(parents=True)
    get_backend_object("file://rel/dir").put_bytes("x", b"1")
    assert (tmp_path / "rel" / "dir" / "x").read_bytes() == b"1"


def test_a_file_where_the_directory_should_be_is_a_permanent_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_bytes(b"")
    backend = get_backend_object(f"file://{tmp_path}/plain")
    with pytest.raises(PermanentBackendError, match="is not a directory"):
        backend.test()
    with pytest.raises(PermanentBackendError, match="is not a directory"):
        backend.list()


def test_a_read_only_file_system_error_is_permanent(tmp_path: Path) -> None:
    backend = get_backend_object(f"file://{tmp_path}")
    (tmp_path / "x").mkdir()  # a directory where an object should be
    with pytest.raises(PermanentBackendError):
        backend.put_bytes("x", b"1")


def test_move_of_a_missing_name_raises_file_missing(tmp_path: Path) -> None:
    with pytest.raises(FileMissingError):
        get_backend_object(f"file://{tmp_path}").move("a", "b")


def test_fsync_option_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_backend_object(f"file://{tmp_path}?fsync=yes").fsync is True  # type: ignore[attr-defined]
    monkeypatch.setenv("PANNIER_FILE_FSYNC", "1")
    assert get_backend_object(f"file://{tmp_path}").fsync is True  # type: ignore[attr-defined]
    assert get_backend_object(f"file://{tmp_path}?fsync=off").fsync is False  # type: ignore[attr-defined]


def test_copy_falls_back_to_user_space_without_sendfile(tmp_path: Path) -> None:
    from pannier.plugins.backends.file import _copy

    with open(tmp_path / "out", "wb") as out:
        _copy(io.BytesIO(b"no file descriptor here"), out)  # type: ignore[arg-type]
    assert (tmp_path / "out").read_bytes() == b"no file descriptor here"


def test_put_of_an_unreadable_source_names_it(tmp_path: Path) -> None:
    backend = get_backend_object(f"file://{tmp_path}")
    with pytest.raises(PermanentBackendError, match=r"cannot read .*absent"):
        backend.put(str(tmp_path / "absent"), "x")
    assert os.listdir(tmp_path) == []


def test_localhost_url_is_absolute(tmp_path: Path) -> None:
    backend = get_backend_object(f"file://localhost{tmp_path}")
    backend.put_bytes("x", b"1")
    assert (tmp_path / "x").read_bytes() == b"1"


# --- a model of the contract: a dict, and random sequences of operations ---------------

NAMES = st.sampled_from(["a", "b.c", "d-1", "E2"])


class FileAgainstADict(RuleBasedStateMachine):
    """The wrapped file backend behaves like a dict under any sequence of operations."""

    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="pannier-model-")
        self.backend = get_backend(f"file://{self.directory}?retries=1")
        self.model: dict[str, bytes] = {}

    @rule(name=NAMES, data=st.binary(max_size=300), stream=st.booleans())
    def put(self, name: str, data: bytes, stream: bool) -> None:
        if stream:
            self.backend.put_stream(io.BytesIO(data), name)
        else:
            path = os.path.join(self.directory, ".src")
            with open(path, "wb") as f:
                f.write(data)
            self.backend.put(path, name)
            os.unlink(path)
        self.model[name] = data

    @rule(name=NAMES)
    def delete(self, name: str) -> None:
        self.backend.delete(name)
        self.model.pop(name, None)

    @rule(source=NAMES, destination=NAMES)
    def move(self, source: str, destination: str) -> None:
        if source not in self.model:
            with pytest.raises(FileMissingError):
                self.backend.move(source, destination)
            return
        self.backend.move(source, destination)
        self.model[destination] = self.model.pop(source)

    @rule(name=NAMES, offset=st.integers(0, 320), length=st.integers(0, 320))
    def read(self, name: str, offset: int, length: int) -> None:
        if name not in self.model:
            with pytest.raises(FileMissingError):
                self.backend.get_bytes(name)
            assert self.backend.query(name) == -1
            return
        assert self.backend.get_bytes(name) == self.model[name]
        assert (
            self.backend.get_range(name, offset, length)
            == self.model[name][offset : offset + length]
        )

    @invariant()
    def listing_matches(self) -> None:
        listed = {e.name: e.size for e in self.backend.list()}
        assert listed == {n: len(d) for n, d in self.model.items()}

    def teardown(self) -> None:
        self.backend.close()
        shutil.rmtree(self.directory)


FileAgainstADict.TestCase.settings = settings(
    max_examples=25, stateful_step_count=15, deadline=None
)
TestFileAgainstADict = FileAgainstADict.TestCase


def test_a_directory_is_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    backend = get_backend_object(f"file://{tmp_path}")
    assert backend.query("sub") == -1
    assert not backend.exists("sub")
    assert backend.list() == []


def test_clean_temporaries_removes_only_old_temporaries(tmp_path: Path) -> None:
    """Temporaries untouched for longer than the age go; a fresh one, objects, other hidden
    files and directories stay."""
    backend = get_backend(tmp_path.as_uri())
    backend.put_bytes("obj", b"data")
    old, fresh = tmp_path / ".pannier-tmp-old", tmp_path / ".pannier-tmp-fresh"
    for path in (old, fresh, tmp_path / ".other"):
        path.write_bytes(b"half")
    (tmp_path / ".pannier-tmp-dir").mkdir()
    hour_ago = os.stat(old).st_mtime - 3600
    os.utime(old, (hour_ago, hour_ago))
    os.utime(tmp_path / "obj", (hour_ago, hour_ago))
    assert backend.clean_temporaries(1800) == [".pannier-tmp-old"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".other", ".pannier-tmp-dir", ".pannier-tmp-fresh", "obj"
    ]  # fmt: skip
    assert backend.clean_temporaries(1800) == []
    assert backend.clean_temporaries(0) == [".pannier-tmp-fresh"]


def test_clean_temporaries_of_a_missing_directory_removes_nothing(tmp_path: Path) -> None:
    backend = get_backend((tmp_path / "absent").as_uri())
    assert backend.clean_temporaries(0) == []
    with pytest.raises(ValueError, match="at least 0"):
        backend.clean_temporaries(-1)
