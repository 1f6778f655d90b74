"""``pannier key list|add|remove``: manage the passwords of an encrypted repository."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

import attrs

from ...errors import ConfigError
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``key`` command and its sub-commands."""
    p = subparsers.add_parser(
        "key",
        parents=parents,
        help="list, add or remove repository passwords",
        description="Each password of an encrypted repository is a key object holding the "
        "same master key. 'add' asks for the new password (or reads --new-password-file, "
        "or PANNIER_NEW_PASSWORD); 'remove ID' revokes one (not the one in use).",
    )
    sub = p.add_subparsers(dest="key_command", metavar="ACTION")
    sub.required = True
    lst = sub.add_parser("list", parents=parents, help="list the keys")
    add_repo_options(lst)
    lst.set_defaults(func=run_list)
    add = sub.add_parser("add", parents=parents, help="add a password")
    add_repo_options(add)
    add.add_argument("--new-password-file", metavar="FILE", default=None)
    add.set_defaults(func=run_add)
    rm = sub.add_parser("remove", parents=parents, help="remove a password by key id")
    add_repo_options(rm)
    rm.add_argument("key_id", metavar="ID")
    rm.set_defaults(func=run_remove)


def run_list(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Print the keys, marking the one in use."""
    repo = open_repository(args, ctx, lock=None)
    keys = repo.list_keys()
    if ctx.json:
        ctx.out_json([attrs.asdict(k) for k in keys])
        return 0
    if not keys:
        ctx.out("the repository is not encrypted: it has no keys")
    for k in keys:
        mark = "*" if k.current else " "
        version = f"v{k.version}" if k.version else "v?"
        ctx.out(f"{mark} {k.id}  {version}  {k.created}  {k.username}@{k.hostname}  {k.kdf}")
    return 0


def _new_password(args: argparse.Namespace, ctx: CLIContext) -> str:
    if args.new_password_file:
        try:
            with open(args.new_password_file, encoding="utf-8") as f:
                pw = (f.read().splitlines() or [""])[0]
        except OSError as e:
            raise ConfigError(
                f"cannot read the new password file {args.new_password_file}: {e.strerror}"
            ) from None
    elif os.environ.get("PANNIER_NEW_PASSWORD"):
        pw = os.environ["PANNIER_NEW_PASSWORD"]
    elif sys.stdin.isatty():
        pw = getpass.getpass("new password: ")
        if getpass.getpass("enter it again: ") != pw:
            raise ConfigError("the passwords do not match")
    else:
        raise ConfigError(
            "no new password given: use --new-password-file, set PANNIER_NEW_PASSWORD, "
            "or run on a terminal"
        )
    if not pw:
        raise ConfigError("the new password is empty")
    return pw


def run_add(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Add a key for a new password."""
    repo = open_repository(args, ctx, lock=None)
    key_id = repo.add_key(_new_password(args, ctx))
    if ctx.json:
        ctx.out_json({"added": key_id})
    else:
        ctx.out(f"added key {key_id}")
    return 0


def run_remove(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Remove a key under the exclusive lock."""
    repo = open_repository(args, ctx, lock="exclusive")
    repo.remove_key(args.key_id)
    if ctx.json:
        ctx.out_json({"removed": args.key_id})
    else:
        ctx.out(f"removed key {args.key_id}")
    return 0
