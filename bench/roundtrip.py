"""Round trip of the benchmark dataset through pannier on real storage: is it identical after?

For each repository URL (by default a fresh ``file://`` directory, ``sftp://`` on the local
sshd, ``s3://`` on the local Swift's s3api and ``swift://`` on the same Swift), in order:

1. ``pannier init`` with encryption (``repokey``);
2. ``pannier backup`` of the dataset (bench/dataset.py, ``bench/data/dataset``);
3. ``pannier check --read-data`` (every pack downloaded and verified);
4. ``pannier restore latest`` into an empty directory;
5. ``compare_trees`` (bench/compare.py) of the restored tree with the dataset: content, mode,
   mtime to the nanosecond, owner, symlink targets and xattrs;
6. for a ``file://`` repository also scripts/standalone_restore.py (no pannier), compared the
   same way, as a row of its own.

Each command runs in its own process, with the repository URL and the password in the
environment (``PANNIER_REPOSITORY``, ``PANNIER_PASSWORD``), so no secret reaches a command line
or the log. The table printed at the end has one row per round trip: the target, its URL
(redacted, without its query), backup, check and restore wall seconds, the repository's size
(the sum of its objects' sizes, as the backend lists them) and whether the restored tree is
identical. The dataset's fingerprint is taken before and after the run; a dataset changed
meanwhile (another benchmark mutating it) fails the run, since the comparison would mean
nothing. The exit status is 0 when every round trip is identical, 1 otherwise (a failed
command, a difference, a changed dataset), 2 on bad usage (an unknown target, a server that
is not running).

Each repository is deleted after its round trip, and the restored trees (1 GB each) all at
the end, whatever happened, unless ``--keep`` is given: writing a large tree right after
deleting one is several times slower on ext4 (see "Noise" in docs/performance.md), which would
charge one target's restore for the previous one's cleanup. Server facts come from
``.servers/NAME.env``, written by ``bash scripts/servers/all.sh start sshd swift``
(``PANNIER_SERVERS_DIR`` moves it). The log of every command goes to
``WORKDIR/roundtrip.log``; the result as JSON to ``--results``
(``bench/results/roundtrip-latest.json``).

Usage::

    python bench/roundtrip.py [--targets file,sftp,s3,swift] [URL ...]
                              [--dataset DIR] [--workdir DIR] [--keep] [--pannier EXE]
                              [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import local_servers
from compare import compare_trees, restored_root
from dataset import DEFAULT_DEST, fingerprint
from measure import Measure, run_measured
from pannier import get_backend_object, parse_url

BENCH_DIR = Path(__file__).resolve().parent
TOP = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_WORKDIR = BENCH_DIR / "data" / "roundtrip"
STANDALONE = TOP / "scripts" / "standalone_restore.py"
TARGETS = ("file", "sftp", "s3", "swift")
#: The bucket (s3) and container (swift) holding each run's repository under its own prefix.
BUCKET = "pannier-roundtrip"
PASSWORD = "pannier-roundtrip-password"
#: Seconds any one command may take before it is killed and its round trip failed.
TIMEOUT = 3600.0


class UsageError(Exception):
    """A target that cannot be built: unknown name, server not running."""


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    """One repository to round-trip through: a label, its URL, and the local directory of a
    ``file://`` repository (for the stand-alone restore), if it is one."""

    label: str
    url: str
    local_dir: Path | None = None

    @property
    def display(self) -> str:
        """The URL redacted and without its query (which holds credentials and key paths)."""
        return parse_url(self.url).redacted.split("?", 1)[0]


def server_facts(name: str) -> dict[str, str]:
    """The KEY=VALUE facts of a running local server (bench/local_servers.py); UsageError
    when it is not running."""
    try:
        return local_servers.server_facts(name)
    except local_servers.ServerNotRunning as e:
        raise UsageError(str(e)) from None


def _query(options: dict[str, str]) -> str:
    return "&".join(f"{k}={v}" for k, v in options.items())


def default_target(name: str, workdir: Path, run: str) -> Target:
    """The repository URL of target ``name`` for run ``run``: a fresh, empty location."""
    if name == "file":
        path = workdir / f"repo-{run}"
        return Target("file", f"file://{path}", local_dir=path)
    if name == "sftp":
        f = server_facts("sshd")
        query = _query(
            {
                "key-file": f["PANNIER_TEST_SFTP_KEY_FILE"],
                "known-hosts": f["PANNIER_TEST_SFTP_KNOWN_HOSTS"],
            }
        )
        return Target(
            "sftp",
            f"sftp://{f['PANNIER_TEST_SFTP_USER']}@{f['PANNIER_TEST_SFTP_HOST']}:"
            f"{f['PANNIER_TEST_SFTP_PORT']}/{f['PANNIER_TEST_SFTP_ROOT']}/roundtrip-{run}?{query}",
        )
    if name == "s3":
        f = server_facts("swift")
        query = _query(
            {
                "endpoint": f["PANNIER_TEST_S3_ENDPOINT"],
                "access-key": f["PANNIER_TEST_S3_ACCESS_KEY"],
                "secret-key": f["PANNIER_TEST_S3_SECRET_KEY"],
            }
        )
        return Target("s3", f"s3://{BUCKET}/roundtrip-{run}?{query}")
    if name == "swift":
        f = server_facts("swift")
        query = _query(
            {
                "auth-url": f["PANNIER_TEST_SWIFT_AUTH_URL"],
                "user": f["PANNIER_TEST_SWIFT_USER"],
                "password": f["PANNIER_TEST_SWIFT_KEY"],
            }
        )
        return Target("swift", f"swift://{BUCKET}/roundtrip-{run}?{query}")
    raise UsageError(f"unknown target {name!r}: choose from {', '.join(TARGETS)}")


def url_target(url: str) -> Target:
    """A target given as a URL; a ``file://`` one must name a missing or empty directory."""
    parsed = parse_url(url)
    local = None
    if parsed.scheme == "file":
        local = Path(parsed.path)
    return Target(parsed.scheme, url, local_dir=local)


# --------------------------------------------------------------------------- one round trip


@dataclass
class Row:
    """The result of one round trip (or of the stand-alone restore of a file:// one)."""

    target: str
    url: str
    backup_s: float | None = None
    backup_cpu_s: float | None = None
    check_s: float | None = None
    restore_s: float | None = None
    restore_cpu_s: float | None = None
    repo_bytes: int | None = None
    identical: bool = False
    summary: str = ""
    error: str | None = None
    differences: dict[str, object] = field(default_factory=dict)


class Runner:
    """Runs the round trips of one invocation: shared workdir, log, pannier command."""

    def __init__(self, dataset: Path, workdir: Path, pannier: str, run: str) -> None:
        self.dataset = dataset
        self.workdir = workdir
        self.pannier = pannier
        self.run = run
        self.log = workdir / "roundtrip.log"
        self.created: list[Path] = []

    def env(self, url: str) -> dict[str, str]:
        """The environment of every command: repository, password, no stray settings."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PANNIER_")}
        env["PANNIER_REPOSITORY"] = url
        env["PANNIER_PASSWORD"] = PASSWORD
        return env

    def step(self, row: Row, what: str, argv: list[str], url: str) -> Measure | None:
        """Run one command, measured; on failure put its last error line into ``row``."""
        start = self.log.stat().st_size if self.log.exists() else 0
        say(f"  {row.target}: {what}")
        m = run_measured(argv, cwd=self.workdir, env=self.env(url), log=self.log, timeout=TIMEOUT)
        if m.returncode == 0 and not m.timed_out:
            return m
        with self.log.open("rb") as f:
            f.seek(start)
            tail = f.read().decode("utf-8", "replace").splitlines()
        lines = [x for x in tail[1:] if x.strip()]
        errors = [x for x in lines if "error" in x.lower()]
        last = (errors or lines or ["no output"])[-1].strip()
        why = "timed out" if m.timed_out else f"exit {m.returncode}"
        row.error = f"{what} failed ({why}): {last}"
        return None

    def fresh_dir(self, name: str) -> Path:
        """An empty directory ``name`` under the workdir, deleted at the end."""
        path = self.workdir / f"{name}-{self.run}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        self.created.append(path)
        return path

    def compare(self, row: Row, target: Path) -> None:
        """Compare what was restored into ``target`` with the dataset; fill in ``row``."""
        c = compare_trees(self.dataset, restored_root(target, self.dataset))
        row.identical = c.identical
        row.summary = c.summary()
        if not c.identical:
            row.differences = c.to_json()

    def round_trip(self, target: Target) -> list[Row]:
        """init, backup, check --read-data, restore, compare; the stand-alone restore too for
        a file:// repository. Returns one row, or two for file://; an exception of the script
        itself (a backend that fails to load, a listing that fails) is the error of the row
        it happened in, and the run goes on with the next target."""
        rows = [Row(target.label, target.display)]
        try:
            self._round_trip(target, rows)
        except Exception as e:
            rows[-1].error = one_line(f"{type(e).__name__}: {e}")
            rows[-1].identical = False
        return rows

    def _round_trip(self, target: Target, rows: list[Row]) -> None:
        row = rows[0]
        url = target.url
        exe = self.pannier
        if self.step(row, "init", [exe, "init", "--encryption", "repokey"], url) is None:
            return
        m = self.step(row, "backup", [exe, "backup", str(self.dataset)], url)
        if m is None:
            return
        row.backup_s, row.backup_cpu_s = m.wall, m.cpu
        row.repo_bytes = repository_bytes(url)
        m = self.step(row, "check --read-data", [exe, "check", "--read-data"], url)
        if m is None:
            return
        row.check_s = m.wall
        restored = self.fresh_dir(f"restore-{target.label}")
        argv = [exe, "restore", "latest", "--target", str(restored)]
        m = self.step(row, "restore", argv, url)
        if m is None:
            return
        row.restore_s, row.restore_cpu_s = m.wall, m.cpu
        say(f"  {row.target}: compare")
        self.compare(row, restored)
        if target.local_dir is not None:
            rows.append(Row(f"{target.label} (stand-alone)", target.display))
            self.standalone(target, rows[-1], row)

    def standalone(self, target: Target, row: Row, pannier_row: Row) -> None:
        """scripts/standalone_restore.py from the file:// repository, compared the same way."""
        assert target.local_dir is not None
        row.repo_bytes = pannier_row.repo_bytes
        restored = self.fresh_dir(f"standalone-{target.label}")
        argv = [sys.executable, str(STANDALONE), str(target.local_dir), "latest", str(restored)]
        m = self.step(row, "stand-alone restore", argv, target.url)
        if m is not None:
            row.restore_s, row.restore_cpu_s = m.wall, m.cpu
            say(f"  {row.target}: compare")
            self.compare(row, restored)


def repository_bytes(url: str) -> int:
    """The sum of the sizes of the repository's objects, as its backend lists them."""
    backend = get_backend_object(url)
    try:
        return sum(max(e.size, 0) for e in backend.list())
    finally:
        backend.close()


def delete_repository(target: Target) -> None:
    """Delete every object of the repository, then its directory when it is a local one."""
    try:
        backend = get_backend_object(target.url)
        try:
            names = [e.name for e in backend.list()]
            if names:
                backend.delete_list(names)
        finally:
            backend.close()
    except Exception as e:  # never created, or the backend fails: say so, go on
        say(f"  {target.label}: cleanup failed: {one_line(str(e))}")
    if target.local_dir is not None:
        shutil.rmtree(target.local_dir, ignore_errors=True)
    parsed = parse_url(target.url)
    if parsed.scheme == "sftp" and parsed.host in ("127.0.0.1", "localhost"):
        # The local test sshd serves this machine's files: remove the emptied folder too.
        folder = Path("/" + parsed.path.lstrip("/"))
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


# --------------------------------------------------------------------------- report


def one_line(text: str) -> str:
    """``text`` on one line (an error message for the table)."""
    return " ".join(text.split())


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def table(rows: list[Row]) -> str:
    """The result as a Markdown table: one line per round trip."""
    out = [
        "| target | URL (redacted) | backup s | check s | restore s | repo MB | identical |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        mb = "" if r.repo_bytes is None else f"{r.repo_bytes / 1e6:.0f}"
        verdict = "yes" if r.identical else ("FAILED" if r.error else "NO")
        out.append(
            f"| {r.target} | `{r.url}` | {_fmt(r.backup_s)} | {_fmt(r.check_s)} | "
            f"{_fmt(r.restore_s)} | {mb} | {verdict} |"
        )
    return "\n".join(out)


def say(msg: str) -> None:
    """A progress line on stderr, so stdout holds only the table."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def default_pannier() -> str:
    """The ``pannier`` beside this Python, else the one on PATH."""
    beside = Path(sys.executable).absolute().parent / "pannier"
    return str(beside) if beside.exists() else (shutil.which("pannier") or "pannier")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    """Run the round trips and print the table; 0 when every one is identical."""
    ap = argparse.ArgumentParser(
        prog="roundtrip.py",
        description="Back up the benchmark dataset to each repository URL, check it, restore "
        "it and compare; print a table and exit non-zero on any difference.",
    )
    ap.add_argument("urls", nargs="*", metavar="URL", help="repository URLs (fresh locations)")
    ap.add_argument(
        "--targets",
        default=None,
        help=f"comma-separated built-in targets (default {','.join(TARGETS)} when no URL is given)",
    )
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DEST, help="the tree to round-trip")
    ap.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="for restores, logs")
    ap.add_argument("--pannier", default=None, help="the pannier command to run")
    ap.add_argument("--keep", action="store_true", help="keep repositories and restored trees")
    ap.add_argument(
        "--results",
        type=Path,
        default=RESULTS_DIR / "roundtrip-latest.json",
        help="where to write the result as JSON",
    )
    args = ap.parse_args(argv)

    dataset = args.dataset.absolute()
    if not dataset.is_dir():
        print(
            f"roundtrip.py: error: no dataset at {dataset} (build it: python bench/dataset.py)",
            file=sys.stderr,
        )
        return 2
    workdir = args.workdir.absolute()
    workdir.mkdir(parents=True, exist_ok=True)
    run = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    names = args.targets.split(",") if args.targets else ([] if args.urls else list(TARGETS))
    try:
        targets = [default_target(n.strip(), workdir, run) for n in names if n.strip()]
        targets += [url_target(u) for u in args.urls]
    except UsageError as e:
        print(f"roundtrip.py: error: {e}", file=sys.stderr)
        return 2
    if not targets:
        print("roundtrip.py: error: no target given", file=sys.stderr)
        return 2

    runner = Runner(dataset, workdir, args.pannier or default_pannier(), run)
    started = time.time()
    say(f"dataset {dataset}: fingerprint")
    before = fingerprint(dataset)
    say(f"dataset: {before.files} files, {before.bytes / 1e9:.2f} GB")
    rows: list[Row] = []
    try:
        for t in targets:
            say(f"{t.label}: {t.display}")
            try:
                rows.extend(runner.round_trip(t))
            finally:
                if not args.keep:
                    say(f"  {t.label}: deleting the repository")
                    delete_repository(t)
    finally:
        if not args.keep:
            for path in runner.created:
                shutil.rmtree(path, ignore_errors=True)
    after = fingerprint(dataset)
    changed = after.fingerprint != before.fingerprint

    print(table(rows))
    for r in rows:
        if r.error:
            print(f"{r.target}: {r.error}")
        elif not r.identical:
            print(f"{r.target}: {r.summary}")
    if changed:
        print("the dataset changed during the run: the comparisons mean nothing; run again")
    ok = bool(rows) and all(r.identical for r in rows) and not changed
    print(
        f"{sum(r.identical for r in rows)} of {len(rows)} round trips identical "
        f"({before.files} files, {before.bytes / 1e9:.2f} GB, "
        f"fingerprint {before.fingerprint[:16]}); {time.time() - started:.0f} s in all"
    )
    args.results.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "run": run,
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started)),
        "dataset": {"files": before.files, "bytes": before.bytes, "fp": before.fingerprint},
        "dataset_changed": changed,
        "rows": [asdict(r) for r in rows],
        "ok": ok,
    }
    args.results.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
