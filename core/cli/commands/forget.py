"""``pannier forget``: remove snapshots by a retention policy (and ``--prune`` the data)."""

from __future__ import annotations

import argparse
from typing import Any

from ...errors import EXIT_OK
from ..context import CLIContext
from ..repo_options import add_repo_options, open_repository
from .prune import add_prune_options, run_prune
from .snapshots import add_filter_options


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``forget`` command."""
    p = subparsers.add_parser(
        "forget",
        parents=parents,
        help="remove snapshots by a retention policy",
        description="Apply the --keep-* rules to each group of snapshots (by default: "
        "same host and paths), keep every snapshot some rule keeps, and remove the others "
        "(their data stays until 'pannier prune', or use --prune). SNAPSHOT ids given "
        "explicitly are removed without a policy.",
    )
    add_repo_options(p)
    p.add_argument("snapshot_ids", nargs="*", metavar="SNAPSHOT", help="remove these snapshots")
    g = p.add_argument_group("policy")
    for name, what in [
        ("last", "the N newest snapshots"),
        ("hourly", "the newest snapshot of each of the N newest hours"),
        ("daily", "the newest snapshot of each of the N newest days"),
        ("weekly", "the newest snapshot of each of the N newest weeks"),
        ("monthly", "the newest snapshot of each of the N newest months"),
        ("yearly", "the newest snapshot of each of the N newest years"),
    ]:
        g.add_argument(f"--keep-{name}", type=int, default=0, metavar="N", help=f"keep {what}")
    g.add_argument(
        "--keep-within",
        default=None,
        metavar="DURATION",
        help="keep snapshots younger than DURATION (e.g. 1y6m, 2w3d, 12h) before the newest",
    )
    g.add_argument(
        "--keep-tag", action="append", default=[], metavar="TAG", help="keep snapshots with TAG"
    )
    p.add_argument(
        "--group-by",
        default="host,paths",
        metavar="FIELDS",
        help="apply the policy per group of host, paths and/or tags "
        "(default host,paths; '' = one group)",
    )
    p.add_argument("-n", "--dry-run", action="store_true", help="only say what would be removed")
    p.add_argument("--prune", action="store_true", help="then delete the data no snapshot uses")
    add_prune_options(p)
    add_filter_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Decide, print, remove, and prune when asked."""
    from ...engine.forget import Policy, apply_policy, group_snapshots
    from ...engine.snapshots import filter_snapshots, readable_snapshots, resolve_snapshot

    repo = open_repository(args, ctx, lock="exclusive")
    remove: list[Any] = []
    report: list[dict[str, Any]] = []
    if args.snapshot_ids:
        remove = [resolve_snapshot(repo, s) for s in args.snapshot_ids]
        for s in remove:
            report.append({"id": s.id, "keep": False, "reasons": ["named on the command line"]})
            if not ctx.json:
                ctx.out(f"remove {s.short_id}  {s.time}  {s.hostname}  {', '.join(s.paths)}")
    else:
        policy = Policy(
            last=args.keep_last,
            hourly=args.keep_hourly,
            daily=args.keep_daily,
            weekly=args.keep_weekly,
            monthly=args.keep_monthly,
            yearly=args.keep_yearly,
            within=args.keep_within,
            tags=list(args.keep_tag),
        )
        snaps = filter_snapshots(
            readable_snapshots(repo, ctx.warn),
            hosts=args.host,
            tags=args.tag,
            paths=args.path_filter,
        )
        group_by = [f for f in args.group_by.split(",") if f]
        for key, group in sorted(
            group_snapshots(snaps, group_by).items(), key=lambda kv: repr(kv[0])
        ):
            decisions = apply_policy(group, policy)
            if not ctx.json:
                label = "; ".join(
                    f"{k} {v if isinstance(v, str) else ', '.join(v)}" for k, v in key
                )
                ctx.out(f"snapshots of {label or 'all'}:")
            for d in decisions:
                s = d.snapshot
                report.append({"id": s.id, "keep": d.keep, "reasons": d.reasons})
                if not d.keep:
                    remove.append(s)
                if not ctx.json:
                    verdict = "keep  " if d.keep else "remove"
                    ctx.out(f"  {verdict} {s.short_id}  {s.time}  {', '.join(d.reasons)}")
    if not args.dry_run and remove:
        repo.remove_snapshots([s.id for s in remove])
    if ctx.json:
        ctx.out_json(
            {"dry_run": args.dry_run, "removed": [s.id for s in remove], "snapshots": report}
        )
    else:
        done = "would remove" if args.dry_run else "removed"
        ctx.out(f"{done} {len(remove)} snapshots")
    if args.prune and remove:
        return run_prune(args, ctx, repo, dry_run=args.dry_run)
    return EXIT_OK
