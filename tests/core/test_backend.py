"""The Backend base class: name checks, public methods over the underscore ones, and the
defaults a minimal backend inherits."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from pannier.backend import Backend, BackendCapabilities, ListEntry, check_name
from pannier.errors import InvalidNameError
from pannier.url import parse_url


@pytest.mark.parametrize("name", ["a", "0", "snap-2024.01.01", "A" * 255, "x.y-z"])
def test_flat_names_are_accepted(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "-a", ".a", "a/b", "a b", "a\n", "a\\b", "caf\u00e9", "a_b", "a:b", "A" * 256]
)
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        check_name(name)


def test_a_long_bad_name_is_shortened_in_the_message() -> None:
    with pytest.raises(InvalidNameError) as info:
        check_name("/" * 1000)
    assert len(str(info.value)) < 200


class Minimal(Backend):
    """Only the four required primitives, in a directory."""

    plugin_api_version = 1
    capabilities = BackendCapabilities(max_name_length=20)

    def __init__(self, directory: Path) -> None:
        self.url = parse_url(f"minimal://user:secret@host{directory}")
        self.directory = directory

    def _put(self, source_path: str, remote_filename: str) -> None:
        (self.directory / remote_filename).write_bytes(Path(source_path).read_bytes())

    def _get(self, remote_filename: str, local_path: str) -> None:
        Path(local_path).write_bytes((self.directory / remote_filename).read_bytes())

    def _list(self) -> Iterator[str]:
        for p in self.directory.iterdir():
            yield p.name

    def _delete(self, filename: str) -> None:
        (self.directory / filename).unlink(missing_ok=True)


def test_the_defaults_work_on_the_four_primitives(tmp_path: Path) -> None:
    b = Minimal(tmp_path)
    b.put_bytes("a", b"hello")
    b.put_stream(io.BytesIO(b"world!"), "b")
    assert b.get_bytes("a") == b"hello"
    assert b.get_range("b", 1, 3) == b"orl"
    assert sorted(b.list(), key=lambda e: e.name) == [ListEntry("a", -1), ListEntry("b", -1)]
    assert b.query("a") == 5  # the listing has no sizes: measured by reading
    assert b.query_list(["a", "zz"])["zz"] == -1
    assert b.exists("b") and not b.exists("zz")
    b.delete_list(["a", "b", "zz"])
    assert b.list() == []


def test_names_are_checked_against_the_declared_length_and_name_the_backend(tmp_path: Path) -> None:
    b = Minimal(tmp_path)
    with pytest.raises(InvalidNameError, match="longer than the 20 allowed") as info:
        b.put_bytes("n" * 21, b"")
    assert str(info.value).startswith("minimal://user:***@host")
    assert "secret" not in str(info.value)


def test_unsupported_optional_operations_say_so(tmp_path: Path) -> None:
    b = Minimal(tmp_path)
    with pytest.raises(NotImplementedError, match="cannot rename"):
        b.move("a", "b")
    with pytest.raises(NotImplementedError, match="cannot create its folder"):
        b.create_folder()


def test_repr_and_capabilities_as_dict(tmp_path: Path) -> None:
    b = Minimal(tmp_path)
    assert repr(b) == f"Minimal(minimal://user:***@host{tmp_path})"
    assert b.get_capabilities().as_dict()["max_name_length"] == 20
    assert b.unwrap() is b
