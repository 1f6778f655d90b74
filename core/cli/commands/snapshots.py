"""``pannier snapshots``: list the snapshots of the repository."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import EXIT_OK
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--host``, ``--tag`` and ``--path`` (snapshot filters; ``latest`` honours
    them) to ``parser``."""
    g = parser.add_argument_group("snapshot filters")
    g.add_argument(
        "--host",
        action="append",
        default=[],
        metavar="HOST",
        help="only snapshots of HOST (repeatable)",
    )
    g.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG[,TAG]",
        help="only snapshots with all these tags (repeatable: any of them)",
    )
    g.add_argument(
        "--path",
        action="append",
        default=[],
        dest="path_filter",
        metavar="PATH",
        help="only snapshots of PATH (repeatable)",
    )


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``snapshots`` command."""
    p = subparsers.add_parser(
        "snapshots",
        parents=parents,
        help="list snapshots",
        description="List the snapshots, oldest first, as a table or (--json) a JSON list.",
    )
    add_repo_options(p)
    add_filter_options(p)
    p.add_argument("--latest", type=int, default=0, metavar="N", help="only the N newest")
    p.set_defaults(func=run)


def snapshot_json(snap: Any) -> dict[str, Any]:
    """The JSON form of a snapshot as ``snapshots --json`` prints it."""
    return {
        "id": snap.id,
        "short_id": snap.short_id,
        "time": snap.time if isinstance(snap.time, str) else str(snap.time),
        "hostname": snap.hostname,
        "username": snap.username,
        "paths": list(snap.paths),
        "tags": list(snap.tags),
        "parent": snap.parent,
        "summary": snap.summary,
        "program_version": snap.program_version,
        "source_kinds": list(snap.source_kinds),
        "streams": sorted(snap.streams),
    }


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Print the table or the JSON list."""
    from ...engine.progress import format_bytes
    from ...engine.snapshots import filter_snapshots, readable_snapshots, snapshot_time

    repo = open_repository(args, ctx, lock=None)
    snaps = filter_snapshots(
        readable_snapshots(repo, ctx.warn), hosts=args.host, tags=args.tag, paths=args.path_filter
    )
    if args.latest > 0:
        snaps = snaps[-args.latest :]
    if ctx.json:
        ctx.out_json([snapshot_json(s) for s in snaps])
        return EXIT_OK
    rows = [("ID", "Time", "Host", "Tags", "Size", "Paths")]
    for s in snaps:
        t = snapshot_time(s).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        size = (s.summary or {}).get("total_bytes")
        rows.append(
            (
                s.short_id,
                t,
                s.hostname,
                ",".join(s.tags),
                format_bytes(size) if isinstance(size, int) else "",
                ", ".join(s.paths),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        ctx.out("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    ctx.out(f"{len(snaps)} snapshots")
    return EXIT_OK
