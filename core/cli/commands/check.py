"""``pannier check``: verify the repository's structure and, optionally, its data."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import CorruptObjectError
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``check`` command."""
    p = subparsers.add_parser(
        "check",
        parents=parents,
        help="verify the repository",
        description="Check that every index, snapshot and referenced blob is present and "
        "readable. --read-data also downloads and verifies every pack; "
        "--read-data-subset n/t verifies the n-th of t groups of packs (run 1/t .. t/t "
        "over t days to cover everything), x%% a random x %% of them. Exits 1 and names "
        "the damaged packs and the snapshots or files affected when something is wrong.",
    )
    add_repo_options(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--read-data", action="store_true", help="read and verify every pack")
    g.add_argument(
        "--read-data-subset",
        metavar="n/t|x%",
        default=None,
        help="read and verify a subset of the packs",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Run the check; print errors and a summary; exit 1 when something is wrong."""
    from ...repo.check import check_repository, parse_subset

    subset = parse_subset(args.read_data_subset) if args.read_data_subset else None
    repo = open_repository(args, ctx, lock="shared")
    progress = ctx.info if (ctx.tty and not ctx.json) else None
    result = check_repository(
        repo, read_data=bool(args.read_data or subset), subset=subset, progress=progress
    )
    if ctx.json:
        ctx.out_json(result.to_json())
    else:
        for w in result.warnings:
            ctx.warn(w)
        for e in result.errors:
            ctx.out(f"error: {e}")
        for line in result.affected:
            ctx.out(f"affected: {line}")
        read = f", {result.packs_read} packs read" if result.packs_read else ""
        state = "no errors were found" if result.ok else f"{len(result.errors)} error(s)"
        ctx.out(
            f"checked {result.snapshots} snapshots, {result.packs} packs, "
            f"{result.blobs} blobs{read}: {state}"
        )
    if not result.ok:
        packs = ", ".join(result.damaged_packs[:5]) or "see the errors above"
        raise CorruptObjectError(f"the repository has errors (damaged packs: {packs})")
    return 0
