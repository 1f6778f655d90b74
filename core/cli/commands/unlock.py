"""``pannier unlock``: remove stale locks (or every lock)."""

from __future__ import annotations

import argparse
from typing import Any

from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``unlock`` command."""
    p = subparsers.add_parser(
        "unlock",
        parents=parents,
        help="remove stale locks",
        description="Remove locks whose owner is gone (same host, PID no longer running) "
        "or that were not refreshed for 30 minutes. --remove-all removes every lock: use it "
        "only when no other pannier process uses the repository.",
    )
    add_repo_options(p)
    p.add_argument("--remove-all", action="store_true", help="remove every lock, live or not")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Remove the locks and list what was removed."""
    from ...repo.locks import remove_locks

    repo = open_repository(args, ctx, lock=None)
    removed = remove_locks(repo.backend, repo.cipher, remove_all=args.remove_all)
    if ctx.json:
        ctx.out_json({"removed": [lk.to_dict() for lk in removed]})
    else:
        for lk in removed:
            ctx.out(f"removed {lk.name}: {lk.describe()}")
        ctx.out(f"{len(removed)} lock(s) removed")
    return 0
