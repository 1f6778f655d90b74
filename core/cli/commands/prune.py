"""``pannier prune``: delete data no snapshot uses, repack partly used packs."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import ConfigError
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository


def parse_share(text: str) -> float:
    """``"5%"`` or ``"0.05"`` -> 0.05; ConfigError outside 0-100 %."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ConfigError(f"--max-unused {text!r}: use a percentage such as 5%") from None
    if not 0 <= value <= 1:
        raise ConfigError(f"--max-unused {text!r}: must be between 0% and 100%")
    return value


def add_prune_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--max-unused`` (shared with ``forget --prune``)."""
    parser.add_argument(
        "--max-unused",
        default="5%",
        metavar="PERCENT",
        help="repack packs whose unused share is above this (default 5%%)",
    )


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``prune`` command."""
    p = subparsers.add_parser(
        "prune",
        parents=parents,
        help="delete data no snapshot uses",
        description="Take the exclusive lock, find the data every snapshot uses, repack "
        "packs that are partly unused, write a new index, then delete old indexes and "
        "unused packs (in that order, so an interruption loses nothing).",
    )
    add_repo_options(p)
    add_prune_options(p)
    p.add_argument("-n", "--dry-run", action="store_true", help="only say what would be done")
    p.set_defaults(func=run)


def run_prune(args: argparse.Namespace, ctx: CLIContext, repo: Any, *, dry_run: bool) -> int:
    """Prune an open, exclusively locked repository and report (used by ``forget``)."""
    from ...repo.prune import prune_repository

    progress = ctx.info if (ctx.tty and not ctx.json) else None
    result = prune_repository(
        repo, max_unused=parse_share(args.max_unused), dry_run=dry_run, progress=progress
    )
    if result.temporaries_error:
        ctx.warn(f"temporaries of interrupted uploads not removed: {result.temporaries_error}")
    if ctx.json:
        ctx.out_json(result.to_json())
    else:
        done = "would be" if dry_run else ""
        ctx.out(
            f"{result.snapshots} snapshots use {result.blobs_used} blobs; packs {done} "
            f"deleted: {result.packs_deleted}, repacked: {result.packs_repacked}, kept: "
            f"{result.packs_kept}; space {done} freed: about {_size(result.bytes_freed)}".replace(
                "  ", " "
            )
            + (
                f"; temporaries of interrupted uploads removed: {result.temporaries_removed}"
                if result.temporaries_removed
                else ""
            )
        )
    return 0


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Prune the repository."""
    repo = open_repository(args, ctx, lock="exclusive")
    return run_prune(args, ctx, repo, dry_run=args.dry_run)


def _size(n: int) -> str:
    value = float(max(n, 0))
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
