"""The command source: stdout stored as one file; a failing command fails the snapshot."""

from __future__ import annotations

import pytest
from pannier.errors import SourceError
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager


def source(spec: str, **options: object):  # type: ignore[no-untyped-def]
    return get_plugin_manager().get(PluginKind.SOURCE, "command")(spec, options)


def test_stdout_becomes_one_file() -> None:
    src = source("sh -c 'printf \"a\\nb\\n\"; echo to-stderr >&2'", filename="dump.txt")
    try:
        entries = list(src.scan())
        assert [e.index for e in entries] == [(), (b"dump.txt",)]
        with entries[1].open() as f:
            assert f.read() == b"a\nb\n"
        assert entries[0].is_dir and entries[1].is_file
    finally:
        src.close()


def test_default_name_is_stdout() -> None:
    src = source("true")
    try:
        assert list(src.scan())[-1].index == (b"stdout",)
    finally:
        src.close()


def test_failing_command_is_a_source_error() -> None:
    src = source("sh -c 'echo partial; exit 7'")
    try:
        with pytest.raises(SourceError, match="exited with status 7"):
            list(src.scan())
    finally:
        src.close()


def test_missing_program() -> None:
    src = source("/nonexistent/program --flag")
    with pytest.raises(SourceError, match="cannot run '/nonexistent/program'"):
        list(src.scan())
    src.close()


@pytest.mark.parametrize("spec", ["", "unbalanced 'quote"])
def test_bad_command_line(spec: str) -> None:
    with pytest.raises(SourceError):
        source(spec)


def test_bad_filename() -> None:
    src = source("true", filename="../escape")
    with pytest.raises(SourceError, match="plain file name"):
        list(src.scan())
    src.close()


def test_the_output_is_private_while_the_command_writes_it() -> None:
    """The spool file is 0600 from its creation (the command sees its own stdout)."""
    src = source("stat -L -c %a /dev/stdout")
    try:
        entries = list(src.scan())
        with entries[1].open() as f:
            assert f.read() == b"600\n"
        assert entries[1].stat.st_mode & 0o777 == 0o600
    finally:
        src.close()
