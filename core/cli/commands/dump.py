"""``pannier dump SNAPSHOT PATH``: write one file of a snapshot to stdout."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ...errors import EXIT_OK, ConfigError
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository
from .snapshots import add_filter_options


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``dump`` command."""
    p = subparsers.add_parser(
        "dump",
        parents=parents,
        help="write one file of a snapshot to stdout",
        description="Write the content of the file PATH of SNAPSHOT to stdout (or to "
        "--output FILE), e.g. a database dump stored by the command source.",
    )
    add_repo_options(p)
    p.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot id, prefix, or 'latest'")
    p.add_argument("path", metavar="PATH", help="the file's path in the snapshot")
    p.add_argument("-o", "--output", metavar="FILE", default=None, help="write to FILE instead")
    add_filter_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Stream the file's chunks to stdout."""
    from ...engine.snapshots import find_entry, resolve_snapshot
    from ...source import index_to_path, path_to_index

    index = path_to_index(args.path)
    repo = open_repository(args, ctx, lock="shared")
    snap = resolve_snapshot(
        repo,
        args.snapshot,
        hosts=args.host,
        tags=args.tag,
        paths=args.path_filter,
        warn=ctx.warn,
    )
    entry = find_entry(repo, snap, index)
    if entry is None:
        raise ConfigError(f"no {index_to_path(index)!r} in snapshot {snap.short_id}")
    if entry.kind == "h":
        entry = find_entry(repo, snap, tuple(entry.data))
    if entry is None or entry.kind != "f":
        raise ConfigError(f"{index_to_path(index)!r} in snapshot {snap.short_id} is not a file")
    out = open(args.output, "wb") if args.output else sys.stdout.buffer  # noqa: SIM115
    try:
        for data in repo.iter_blobs(list(entry.data or ())):
            out.write(data)
        out.flush()
    finally:
        if args.output:
            out.close()
    return EXIT_OK
