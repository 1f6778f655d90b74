"""The repository options every repository command shares, and opening the repository.

A command adds the options with :func:`add_repo_options` and opens the repository with
:func:`open_repository`::

    def register(subparsers, parents):
        p = subparsers.add_parser("snapshots", parents=parents, help="...")
        add_repo_options(p)
        p.set_defaults(func=run)

    def run(args, ctx):
        repo = open_repository(args, ctx, lock="shared")
        ...

The repository URL comes from ``-r/--repo`` or ``PANNIER_REPOSITORY``. The password comes
from, in order: ``--password-file FILE`` (or ``PANNIER_PASSWORD_FILE``),
``--password-command CMD`` (or ``PANNIER_PASSWORD_COMMAND``), ``PANNIER_PASSWORD``, and
finally a prompt when stdin is a terminal. It is never taken from the command line itself,
where other users could read it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shlex
import subprocess
import sys
from typing import Literal

from ..backend import Backend
from ..errors import ConfigError
from ..repo import Repository
from .context import CLIContext

__all__ = ["add_repo_options", "get_backend", "get_password", "open_repository"]

LockMode = Literal["shared", "exclusive"] | None


def add_repo_options(parser: argparse.ArgumentParser) -> None:
    """Add ``-r/--repo``, ``--password-file`` and ``--password-command`` to ``parser``."""
    g = parser.add_argument_group("repository options")
    g.add_argument(
        "-r",
        "--repo",
        metavar="URL",
        default=None,
        help="repository URL, e.g. file:///backups/repo (env PANNIER_REPOSITORY)",
    )
    g.add_argument(
        "--password-file",
        metavar="FILE",
        default=None,
        help="read the password from the first line of FILE (env PANNIER_PASSWORD_FILE)",
    )
    g.add_argument(
        "--password-command",
        metavar="CMD",
        default=None,
        help="run CMD and use the first line it prints as the password "
        "(env PANNIER_PASSWORD_COMMAND)",
    )


def repo_url(args: argparse.Namespace) -> str:
    """The repository URL from ``-r`` or ``PANNIER_REPOSITORY``; ConfigError when neither
    is given."""
    url = getattr(args, "repo", None) or os.environ.get("PANNIER_REPOSITORY")
    if not url:
        raise ConfigError("no repository given: use -r URL or set PANNIER_REPOSITORY")
    return str(url)


def get_backend(url: str) -> Backend:
    """The wrapped backend for ``url`` (retries, limits, logging)."""
    from ..backend_registry import get_backend as _get_backend

    return _get_backend(url)


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""


def get_password(
    args: argparse.Namespace,
    ctx: CLIContext,
    *,
    prompt: str = "repository password: ",
    confirm: bool = False,
) -> str:
    """The password from ``--password-file``, ``--password-command``, ``PANNIER_PASSWORD``
    or a terminal prompt (asked twice with ``confirm``). ConfigError when none is
    available or the file or command fails; the message never contains the password."""
    path = getattr(args, "password_file", None) or os.environ.get("PANNIER_PASSWORD_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                pw = _first_line(f.read())
        except OSError as e:
            raise ConfigError(f"cannot read the password file {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"the password file {path} is not UTF-8 text") from None
        if not pw:
            raise ConfigError(f"the password file {path} is empty")
        return pw
    command = getattr(args, "password_command", None) or os.environ.get("PANNIER_PASSWORD_COMMAND")
    if command:
        try:
            done = subprocess.run(
                shlex.split(command), capture_output=True, text=True, check=False, timeout=120
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ConfigError(f"the password command failed: {e}") from None
        if done.returncode != 0:
            raise ConfigError(f"the password command exited with status {done.returncode}")
        pw = _first_line(done.stdout)
        if not pw:
            raise ConfigError("the password command printed nothing")
        return pw
    env = os.environ.get("PANNIER_PASSWORD")
    if env:
        return env
    if sys.stdin.isatty():
        try:
            pw = getpass.getpass(prompt)
            if confirm and getpass.getpass("enter it again: ") != pw:
                raise ConfigError("the passwords do not match")
        except EOFError:
            pw = ""
        if pw:
            return pw
    raise ConfigError(
        "no password given: set PANNIER_PASSWORD, use --password-file or "
        "--password-command, or run on a terminal"
    )


def open_repository(
    args: argparse.Namespace, ctx: CLIContext, *, lock: LockMode = None
) -> Repository:
    """Open the repository named by ``args`` and take the lock asked for (``"shared"``,
    ``"exclusive"`` or None). The lock is released and the repository closed (pending
    writes flushed) when the command ends; the password is asked for only when the
    repository is encrypted."""
    url = repo_url(args)
    backend = get_backend(url)
    ctx.on_close(backend.close)
    repo = Repository.open(
        backend, lambda: get_password(args, ctx), backend_factory=lambda: get_backend(url)
    )
    if lock is not None:
        held = repo.lock(exclusive=lock == "exclusive")
        held.acquire()
        ctx.on_close(held.release)
    ctx.on_close(repo.close)
    ctx.on_close(lambda: _warn_index_errors(ctx, repo))
    return repo


def _warn_index_errors(ctx: CLIContext, repo: Repository) -> None:
    for error in repo.index_errors:
        ctx.warn(f"{error}; it was skipped and its packs read from their headers")
