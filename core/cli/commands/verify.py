"""``pannier verify SNAPSHOT SRC...``: compare a snapshot with the live source."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import EXIT_FAILURE, EXIT_OK
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository
from ._lines import LineWriter
from .snapshots import add_filter_options


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``verify`` command."""
    p = subparsers.add_parser(
        "verify",
        parents=parents,
        help="compare a snapshot with the live source",
        description="Walk SRC and SNAPSHOT side by side and report each difference: "
        "entries only in the source (+) or only in the snapshot (-), another type (T), "
        "other content (M, compared by hashing the live files locally), other metadata "
        "(U). Exit code 0 when they match, 1 when anything differs. Use the same "
        "--source and exclude options as the backup.",
    )
    add_repo_options(p)
    p.add_argument("snapshot", metavar="SNAPSHOT", help="snapshot id, prefix, or 'latest'")
    p.add_argument("sources", nargs="+", metavar="SRC", help="what the snapshot was taken of")
    p.add_argument("--source", default="filesystem", metavar="KIND", help="the source plugin")
    p.add_argument(
        "-e", "--exclude", action="append", default=[], metavar="PATTERN", help="as for backup"
    )
    p.add_argument(
        "--exclude-file", action="append", default=[], metavar="FILE", help="as for backup"
    )
    p.add_argument(
        "--exclude-if-present", action="append", default=[], metavar="NAME", help="as for backup"
    )
    p.add_argument("-x", "--one-file-system", action="store_true", help="as for backup")
    p.add_argument("--metadata-only", action="store_true", help="do not hash the files' content")
    add_filter_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Print each difference; exit 1 when there is any."""
    from ...engine.snapshots import resolve_snapshot
    from ...engine.verify import verify_snapshot
    from ...plugin import PluginKind
    from ...registry import get_plugin_manager

    source_class = get_plugin_manager().get(PluginKind.SOURCE, args.source)
    options = {
        "exclude": list(args.exclude),
        "exclude_file": list(args.exclude_file),
        "exclude_if_present": list(args.exclude_if_present),
        "one_file_system": bool(args.one_file_system),
    }
    sources = [source_class(spec, options) for spec in args.sources]
    repo = open_repository(args, ctx, lock="shared")
    snap = resolve_snapshot(
        repo,
        args.snapshot,
        hosts=args.host,
        tags=args.tag,
        paths=args.path_filter,
        warn=ctx.warn,
    )
    count = 0
    try:
        with LineWriter(ctx) as out:
            for d in verify_snapshot(repo, snap, sources, content=not args.metadata_only):
                count += 1
                if ctx.json:
                    ctx.out_json(
                        {
                            "message_type": "difference",
                            "modifier": d.kind,
                            "path": d.path,
                            "detail": d.detail,
                        }
                    )
                else:
                    out.line(f"{d.kind}    {d.path}: {d.detail}")
    finally:
        for s in sources:
            s.close()
    if ctx.json:
        ctx.out_json({"message_type": "summary", "snapshot": snap.id, "differences": count})
    elif count:
        ctx.out(f"{count} differences between snapshot {snap.short_id} and the source")
    else:
        ctx.out(f"snapshot {snap.short_id} matches the source")
    return EXIT_FAILURE if count else EXIT_OK
