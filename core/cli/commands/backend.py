"""``pannier backend ...``: one storage operation at a time, and the conformance kit.

Duplicati's backend tool and tester in one command::

    pannier backend ls URL                  list names and sizes
    pannier backend get URL NAME [LOCAL]    fetch NAME to LOCAL (default ./NAME; - = stdout)
    pannier backend put URL NAME [LOCAL]    store LOCAL (default ./NAME; - = stdin) as NAME
    pannier backend rm URL NAME...          delete names (missing ones are fine)
    pannier backend mkdir URL               create the folder, bucket or container
    pannier backend test URL [--clean]      run the conformance kit on an empty location
    pannier backend schemes                 list the URL schemes available

Every operation goes through the wrapper stack (retries, limits, validation), so URL
options such as ``?retries=2`` apply; ``-o NAME=VALUE`` gives an option outside the URL
(the URL query wins over it). ``get`` writes LOCAL atomically and refuses to replace
an existing file without ``--force``. ``test`` exits 1 when any check fails.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from typing import Any

from ...errors import EXIT_FAILURE, EXIT_OK, ConfigError, FolderMissingError, PannierError
from ...url import parse_url, redact
from ..context import CLIContext

__all__ = ["register"]


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``backend`` and its actions."""
    parser = subparsers.add_parser(
        "backend",
        parents=parents,
        help="one storage operation (ls, get, put, rm, mkdir) or the conformance test",
        description=(
            "Run one operation on a storage backend URL, or the backend conformance kit. "
            "See docs/backends/index.md for URLs and options."
        ),
    )
    actions = parser.add_subparsers(dest="backend_action", metavar="ACTION")
    parser.set_defaults(func=_usage(parser))
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a backend or wrapper option (retries=8, bwlimit-up=1M); the URL query wins",
    )
    parents = [*parents, options]

    p = actions.add_parser("ls", parents=parents, help="list names and sizes")
    p.add_argument("url", metavar="URL")
    p.set_defaults(func=run_ls)

    p = actions.add_parser("get", parents=parents, help="fetch an object to a local file")
    p.add_argument("url", metavar="URL")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "local", metavar="LOCAL", nargs="?", help="local file (default ./NAME; - = stdout)"
    )
    p.add_argument("--force", action="store_true", help="replace LOCAL when it exists")
    p.set_defaults(func=run_get)

    p = actions.add_parser("put", parents=parents, help="store a local file as an object")
    p.add_argument("url", metavar="URL")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "local", metavar="LOCAL", nargs="?", help="local file (default ./NAME; - = stdin)"
    )
    p.set_defaults(func=run_put)

    p = actions.add_parser("rm", parents=parents, help="delete objects")
    p.add_argument("url", metavar="URL")
    p.add_argument("names", metavar="NAME", nargs="+")
    p.set_defaults(func=run_rm)

    p = actions.add_parser("mkdir", parents=parents, help="create the folder, bucket or container")
    p.add_argument("url", metavar="URL")
    p.set_defaults(func=run_mkdir)

    p = actions.add_parser(
        "test", parents=parents, help="run the conformance kit on an empty location"
    )
    p.add_argument("url", metavar="URL")
    p.add_argument("--clean", action="store_true", help="delete every object in the location first")
    p.add_argument(
        "--check", action="append", metavar="NAME", help="run only this check (repeatable)"
    )
    p.set_defaults(func=run_test)

    p = actions.add_parser("schemes", parents=parents[:-1], help="list the URL schemes available")
    p.set_defaults(func=run_schemes)


def _usage(parser: argparse.ArgumentParser) -> Any:
    def run(args: argparse.Namespace, ctx: CLIContext) -> int:
        parser.print_help(ctx.stderr)
        return 2

    return run


def _options(args: argparse.Namespace) -> dict[str, str]:
    result = {}
    for item in args.option:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ConfigError(f"option {item!r} is not NAME=VALUE")
        result[name.strip()] = value
    return result


def _log_to_stderr(ctx: CLIContext) -> None:
    """``-v``: retries and failures of the backend on stderr; ``-vv``: every operation."""
    if not ctx.verbose:
        return
    logger = logging.getLogger("pannier.backend")
    handler = logging.StreamHandler(ctx.stderr)
    handler.setFormatter(logging.Formatter("pannier: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if ctx.verbose > 1 else logging.INFO)
    ctx.on_close(lambda: logger.removeHandler(handler))


def _open(args: argparse.Namespace, ctx: CLIContext) -> Any:
    from ...backend_registry import get_backend

    _log_to_stderr(ctx)

    backend = get_backend(args.url, **_options(args))
    ctx.on_close(backend.close)
    return backend


def run_ls(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Print every name with its size (``-`` when the listing gives none)."""
    entries = sorted(_open(args, ctx).iter_list(), key=lambda e: e.name)
    if ctx.json:
        ctx.out_json([{"name": e.name, "size": e.size} for e in entries])
    else:
        for e in entries:
            ctx.out(f"{e.size if e.size >= 0 else '-':>12}  {e.name}")
    return EXIT_OK


def run_get(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Fetch NAME into LOCAL through a temporary file renamed into place."""
    backend = _open(args, ctx)
    local = args.local or args.name
    if local == "-":
        backend.get_stream(args.name, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return EXIT_OK
    if os.path.exists(local) and not args.force:
        raise ConfigError(f"{local} exists; use --force to replace it")
    directory = os.path.dirname(os.path.abspath(local))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".pannier-get-", dir=directory)
    except OSError as e:
        raise PannierError(f"cannot write {local}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            backend.get_stream(args.name, out)
        os.replace(tmp, local)
    except BaseException as e:
        os.unlink(tmp)
        if isinstance(e, OSError):
            raise PannierError(f"cannot write {local}: {e.strerror or e}") from None
        raise
    if ctx.json:
        ctx.out_json({"name": args.name, "local": local, "size": os.path.getsize(local)})
    elif not ctx.quiet:
        ctx.info(f"{args.name} -> {local} ({os.path.getsize(local)} bytes)")
    return EXIT_OK


def run_put(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Store LOCAL (or stdin) as NAME."""
    backend = _open(args, ctx)
    local = args.local or args.name
    if local == "-":
        backend.put_stream(sys.stdin.buffer, args.name)
    else:
        if not os.path.isfile(local):
            raise ConfigError(f"{local} is not a readable file")
        backend.put(local, args.name)
    size = backend.query(args.name)
    if ctx.json:
        ctx.out_json({"name": args.name, "size": size})
    elif not ctx.quiet:
        ctx.info(f"{local} -> {args.name} ({size} bytes)")
    return EXIT_OK


def run_rm(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Delete the names given; missing ones are not an error."""
    _open(args, ctx).delete_list(list(args.names))
    if ctx.json:
        ctx.out_json({"deleted": list(args.names)})
    return EXIT_OK


def run_mkdir(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Create the backend's folder, bucket or container."""
    backend = _open(args, ctx)
    backend.create_folder()
    if ctx.json:
        ctx.out_json({"created": backend.display_name})
    return EXIT_OK


def run_test(args: argparse.Namespace, ctx: CLIContext) -> int:
    """Run the conformance kit; exit 1 when any check fails."""
    from ...testing.backend_suite import CHECKS, CheckResult, run_conformance

    known = {c.name for c in CHECKS}
    unknown = [c for c in args.check or () if c not in known]
    if unknown:
        raise ConfigError(f"unknown check {unknown[0]!r}; checks: {', '.join(sorted(known))}")

    def progress(result: CheckResult) -> None:
        if not ctx.json:
            ctx.out(result.line())

    if not ctx.json:
        ctx.out(f"conformance of {redact(args.url)}")
    url = parse_url(args.url).with_options(_options(args))
    try:
        report = run_conformance(url, clean=args.clean, only=args.check, progress=progress)
    except FolderMissingError as e:
        if "mkdir" in str(e):
            raise
        raise FolderMissingError(f"{e} (create it with: pannier backend mkdir URL)") from e
    if ctx.json:
        ctx.out_json(report.as_dict())
    else:
        ctx.out("\n".join(report.format().splitlines()[len(report.results) + 1 :]))
    return EXIT_OK if report.ok else EXIT_FAILURE


def run_schemes(args: argparse.Namespace, ctx: CLIContext) -> int:
    """List the schemes available and the backend plugins that failed to load."""
    from ...backend_registry import available_schemes, failed_backends

    schemes = available_schemes()
    failures = failed_backends()
    if ctx.json:
        ctx.out_json({"schemes": schemes, "failed": failures})
        return EXIT_OK
    for scheme, description in schemes.items():
        written = scheme if scheme.endswith("+") else f"{scheme}://"
        ctx.out(f"{written:12} {description}")
    for name, error in failures.items():
        ctx.warn(f"backend plugin {name} failed to load: {error}")
    return EXIT_OK
