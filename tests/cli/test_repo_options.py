"""The shared repository options: where the URL and the password come from."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
from pannier.cli.context import CLIContext
from pannier.cli.repo_options import add_repo_options, get_password, repo_url
from pannier.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "PANNIER_PASSWORD",
        "PANNIER_PASSWORD_FILE",
        "PANNIER_PASSWORD_COMMAND",
        "PANNIER_REPOSITORY",
    ):
        monkeypatch.delenv(name, raising=False)


def parse(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_repo_options(p)
    return p.parse_args(list(argv))


def ctx() -> CLIContext:
    return CLIContext()


def test_url_from_option_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert repo_url(parse("-r", "file:///a")) == "file:///a"
    with pytest.raises(ConfigError, match="no repository given"):
        repo_url(parse())
    monkeypatch.setenv("PANNIER_REPOSITORY", "file:///env")
    assert repo_url(parse()) == "file:///env"
    assert repo_url(parse("--repo", "file:///b")) == "file:///b"


def test_password_file_first_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "pw"
    f.write_text("secret one\nsecond line\n")
    monkeypatch.setenv("PANNIER_PASSWORD", "from env")
    assert get_password(parse("--password-file", str(f)), ctx()) == "secret one"
    monkeypatch.setenv("PANNIER_PASSWORD_FILE", str(f))
    assert get_password(parse(), ctx()) == "secret one"


def test_password_file_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=r"cannot read the password file .*nope"):
        get_password(parse("--password-file", str(missing)), ctx())
    empty = tmp_path / "empty"
    empty.write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        get_password(parse("--password-file", str(empty)), ctx())


def test_password_command(tmp_path: Path) -> None:
    ok = f"{sys.executable} -c \"print('from command')\""
    assert get_password(parse("--password-command", ok), ctx()) == "from command"
    failing = f"{sys.executable} -c \"import sys; print('hunter2'); sys.exit(3)\""
    with pytest.raises(ConfigError, match="exited with status 3") as err:
        get_password(parse("--password-command", failing), ctx())
    assert "hunter2" not in str(err.value)
    silent = f'{sys.executable} -c "pass"'
    with pytest.raises(ConfigError, match="printed nothing"):
        get_password(parse("--password-command", silent), ctx())


def test_environment_then_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANNIER_PASSWORD", "env secret")
    assert get_password(parse(), ctx()) == "env secret"
    monkeypatch.delenv("PANNIER_PASSWORD")
    # stdin is not a terminal under pytest: no prompt, a clear error
    with pytest.raises(ConfigError, match="no password given"):
        get_password(parse(), ctx())


def test_no_password_option_on_the_command_line() -> None:
    with pytest.raises(SystemExit):
        parse("--password", "x")
