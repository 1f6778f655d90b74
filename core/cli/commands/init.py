"""``pannier init``: create a repository."""

from __future__ import annotations

import argparse
from typing import Any

from ..context import CLIContext
from ..repo_options import add_repo_options, get_backend, get_password, repo_url


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``init`` command."""
    p = subparsers.add_parser(
        "init",
        parents=parents,
        help="create a repository",
        description="Create a repository at the URL given with -r (or PANNIER_REPOSITORY). "
        "With the default encryption 'repokey' the password is asked for (or read from "
        "PANNIER_PASSWORD / --password-file); it cannot be recovered if lost.",
    )
    add_repo_options(p)
    p.add_argument(
        "--encryption",
        default="repokey",
        type=str.lower,
        choices=["repokey", "none"],
        help="'repokey' (AES-256-GCM, key sealed by the password; default) or 'none'",
    )
    p.add_argument(
        "--compression",
        type=int,
        default=3,
        metavar="N",
        help="zstd level 1-22, 0 to store uncompressed (default 3)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Create the repository and print its id."""
    from ...repo import Repository

    url = repo_url(args)
    password = None
    if args.encryption == "repokey":
        password = get_password(args, ctx, prompt="new repository password: ", confirm=True)
    backend = get_backend(url)
    ctx.on_close(backend.close)
    repo = Repository.init(
        backend, password, encryption=args.encryption, compression_level=args.compression
    )
    repo.close()
    if ctx.json:
        ctx.out_json(
            {"id": repo.id, "repository": backend.display_name, "encryption": args.encryption}
        )
    else:
        ctx.out(f"created repository {repo.id[:10]} at {backend.display_name}")
        if args.encryption == "repokey":
            ctx.out("keep the password safe: data cannot be recovered without it")
    return 0
