"""Backend throughput: pannier's backends beside the plain tool for the same storage.

    .venv/bin/python bench/bench_backends.py [--targets file,file-rclone,s3,swift,sftp]
        [--small N] [--large N] [--names N] [--repeat N] [--json FILE]

For each target it measures, in one run and on the same storage:

* put and get of ``--small`` objects of 1 MiB and ``--large`` objects of 16 MiB, one at a
  time, through the wrapped backend pannier really uses (``get_backend``: retry, limits,
  validation after put, logging), in MiB/s, beside the target's *baseline* tool moving
  the same files (``cp`` for ``file://``, ``rclone copy`` for remote backends);
* a listing of ``--names`` names (10,000 by default), with their sizes, in seconds, beside
  the baseline's listing (``rclone lsf`` for remote backends; for ``file://``, ``rclone
  lsl`` of the same directory, which gives names with sizes as pannier's listing does);

and prints each ratio pannier / baseline (for listings: baseline time / pannier time), so
above 1 means pannier is faster. The issue's target is at least 0.8 everywhere; its peers
are rclone and ``cp``, and since ``cp`` does not list, the ``file://`` listing's peer is
rclone. ``find -printf '%s %f'`` is printed beside it as a *reference* (one ``stat`` per
name in C: the floor a listing with sizes can reach), marked so and left out of the worst
ratio. Each
figure is the best of ``--repeat`` rounds (default 3), since the machine is shared; in
each round pannier and the baseline run one after the other, so both meet the same load.
A baseline's time includes starting its process (one per round), as its user pays it.

Adding a target: write a function ``bench_NAME(settings, workdir) -> list[Row]`` that
returns rows made with :func:`transfer_row` and :func:`listing_row` (or raises
:class:`Unavailable` when its server is not running), and add it to :data:`TARGETS`.
:func:`measure_transfers` and :func:`measure_listing` do the work for any backend URL and
baseline; :class:`RcloneBaseline` is the baseline for any rclone remote.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

TOP = Path(__file__).resolve().parent.parent
MIB = 1 << 20
Row = dict[str, Any]

if __name__ == "__main__":  # run as a script: the target modules import it by this name
    sys.modules.setdefault("bench_backends", sys.modules[__name__])


class Unavailable(Exception):
    """A target cannot run here (its server is not running, a tool is missing)."""


@dataclass
class Settings:
    """What to measure: object counts per size, names to list, repetitions."""

    small: int = 32
    large: int = 4
    names: int = 10_000
    repeat: int = 3


class Baseline(Protocol):
    """The plain tool a target is compared with."""

    name: str

    def put(self, src_dir: Path, names: list[str]) -> None:
        """Copy the files ``names`` of ``src_dir`` to the storage."""

    def get(self, names: list[str], dst_dir: Path) -> None:
        """Copy the objects ``names`` from the storage into ``dst_dir``."""

    def list(self) -> int:
        """List the storage; return the number of names."""

    def clear(self) -> None:
        """Remove what ``put`` stored."""


def transfer_row(
    target: str, size: int, count: int, put_s: float, get_s: float, baseline: str,
    base_put_s: float, base_get_s: float,
) -> Row:  # fmt: skip
    """One row of put/get throughput for ``count`` objects of ``size`` bytes."""
    mib = size * count / MIB
    return {
        "target": target,
        "kind": "transfer",
        "size": size,
        "count": count,
        "baseline": baseline,
        "pannier_put_mib_s": mib / put_s,
        "pannier_get_mib_s": mib / get_s,
        "baseline_put_mib_s": mib / base_put_s,
        "baseline_get_mib_s": mib / base_get_s,
        "put_ratio": base_put_s / put_s,
        "get_ratio": base_get_s / get_s,
    }


def listing_row(
    target: str, names: int, seconds: float, baseline: str, base_s: float,
    reference: bool = False,
) -> Row:  # fmt: skip
    """One row of listing time for ``names`` names. A ``reference`` row compares with a
    tool that is not the target's peer: its ratio is ``reference_ratio``, not ``ratio``."""
    return {
        "target": target,
        "kind": "listing",
        "names": names,
        "baseline": baseline,
        "pannier_seconds": seconds,
        "baseline_seconds": base_s,
        "reference_ratio" if reference else "ratio": base_s / seconds,
    }


# --- generic measurements ------------------------------------------------------------


def _write_objects(directory: Path, size: int, count: int) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    names = [f"obj-{size // 1024}k-{i:04d}" for i in range(count)]
    for name in names:
        (directory / name).write_bytes(os.urandom(size))
    return names


def _same_files(a: Path, b: Path, names: list[str], who: str) -> None:
    for name in names:
        if (a / name).read_bytes() != (b / name).read_bytes():
            raise RuntimeError(f"{who}: {name} came back different")


def measure_transfers(
    target: str, url: str, baseline: Baseline, size: int, count: int, settings: Settings,
    workdir: Path,
) -> Row:  # fmt: skip
    """Put and get ``count`` objects of ``size`` bytes through pannier at ``url`` and
    through ``baseline``, alternating the two in each round so both meet the same load;
    check every byte came back; return a :func:`transfer_row` of the best rounds."""
    from pannier.backend_registry import get_backend

    src = workdir / f"src-{size}"
    names = _write_objects(src, size, count)
    out, base_out = workdir / f"out-{size}", workdir / f"base-out-{size}"

    def fresh(directory: Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir()

    backend = get_backend(url)
    best = {"put": float("inf"), "get": float("inf"), "base_put": float("inf"),
            "base_get": float("inf")}  # fmt: skip

    def timed(key: str, fn: Callable[[], Any]) -> None:
        start = time.perf_counter()
        fn()
        best[key] = min(best[key], time.perf_counter() - start)

    try:
        backend.create_folder()
        for _ in range(settings.repeat):
            backend.delete_list(names)
            baseline.clear()
            fresh(out)
            fresh(base_out)
            timed("put", lambda: [backend.put(str(src / n), n) for n in names])
            timed("base_put", lambda: baseline.put(src, names))
            timed("get", lambda: [backend.get(n, str(out / n)) for n in names])
            timed("base_get", lambda: baseline.get(names, base_out))
        _same_files(src, out, names, f"pannier {target}")
        _same_files(src, base_out, names, f"{baseline.name} {target}")
        backend.delete_list(names)
        baseline.clear()
    finally:
        backend.close()
    for d in (src, out, base_out):
        shutil.rmtree(d, ignore_errors=True)
    return transfer_row(target, size, count, best["put"], best["get"], baseline.name,
                        best["base_put"], best["base_get"])  # fmt: skip


def measure_listing(
    target: str, url: str, baseline: Baseline, names: int, settings: Settings
) -> Row:
    """List a location holding ``names`` names (already there) through pannier and the
    baseline, alternating; check both counts; return a :func:`listing_row`."""
    return measure_listings(target, url, baseline, (), names, settings)[0]


def measure_listings(
    target: str, url: str, baseline: Baseline, references: tuple[Baseline, ...], names: int,
    settings: Settings,
) -> list[Row]:  # fmt: skip
    """:func:`measure_listing` beside ``baseline`` and each of ``references`` (tools that
    are not the target's peer), all alternating in each round; one row per tool, the
    reference rows marked as such."""
    from pannier.backend_registry import get_backend

    tools = (baseline, *references)
    backend = get_backend(url)
    counted: set[int] = set()
    tool_counted: list[set[int]] = [set() for _ in tools]
    seconds = float("inf")
    tool_s = [float("inf")] * len(tools)
    try:
        for _ in range(settings.repeat):
            start = time.perf_counter()
            counted.add(len(backend.list()))
            seconds = min(seconds, time.perf_counter() - start)
            for i, tool in enumerate(tools):
                start = time.perf_counter()
                tool_counted[i].add(tool.list())
                tool_s[i] = min(tool_s[i], time.perf_counter() - start)
    finally:
        backend.close()
    for tool, found in zip(tools, tool_counted, strict=True):
        if counted != {names} or found != {names}:
            raise RuntimeError(f"{target}: listed {counted} by pannier, {found} by {tool.name}")
    return [
        listing_row(target, names, seconds, tool.name, tool_s[i], reference=i > 0)
        for i, tool in enumerate(tools)
    ]


# --- baselines ------------------------------------------------------------------------


class CpBaseline:
    """``cp`` into and out of a directory (one process for all files); ``find -printf
    '%s %f'`` to list names with sizes."""

    name = "cp"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def put(self, src_dir: Path, names: list[str]) -> None:
        subprocess.run(["cp", *(str(src_dir / n) for n in names), str(self.directory)], check=True)

    def get(self, names: list[str], dst_dir: Path) -> None:
        subprocess.run(["cp", *(str(self.directory / n) for n in names), str(dst_dir)], check=True)

    def list(self) -> int:
        # Names *and sizes*, as pannier's listing gives: one stat per file, like pannier.
        out = subprocess.run(
            ["find", str(self.directory), "-mindepth", "1", "-maxdepth", "1", "-type", "f",
             "-printf", "%s %f\n"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return len([n for n in out.stdout.split(b"\n") if n])

    def clear(self) -> None:
        for p in self.directory.iterdir():
            p.unlink()


class FindReference(CpBaseline):
    """``find -printf '%s %f'`` of a directory: the reference beside ``file://``'s listing
    peer (a stat per name in C, the floor of a listing with sizes)."""

    name = "find -printf"


class RcloneBaseline:
    """``rclone copy`` to and from ``remote`` (``--transfers 1``: one stream, as pannier
    measures), ``rclone lsf`` to list. ``env`` configures the remote
    (``RCLONE_CONFIG_<NAME>_TYPE=...``)."""

    name = "rclone copy"

    def __init__(self, remote: str, env: dict[str, str], workdir: Path) -> None:
        self.remote = remote
        self.env = {**os.environ, **env}
        self.workdir = workdir

    def _rclone(self, *args: str) -> bytes:
        result = subprocess.run(["rclone", *args], env=self.env, check=True, capture_output=True)
        return result.stdout

    def _names_file(self, names: list[str]) -> str:
        path = self.workdir / "rclone-names"
        path.write_text("".join(f"{n}\n" for n in names))
        return str(path)

    def put(self, src_dir: Path, names: list[str]) -> None:
        files = self._names_file(names)
        self._rclone("copy", "--transfers", "1", "--checkers", "1", "--no-check-dest",
                     "--files-from", files, str(src_dir), self.remote)  # fmt: skip

    def get(self, names: list[str], dst_dir: Path) -> None:
        files = self._names_file(names)
        self._rclone("copy", "--transfers", "1", "--checkers", "1", "--no-traverse",
                     "--files-from", files, self.remote, str(dst_dir))  # fmt: skip

    def list(self) -> int:
        return len([n for n in self._rclone("lsf", "--files-only", self.remote).split(b"\n") if n])

    def clear(self) -> None:
        self._rclone("delete", self.remote)


class RcloneLslBaseline(RcloneBaseline):
    """``rclone lsl`` (names with sizes and times, one level) of ``remote``: the listing
    peer of ``file://``, whose listing also gives sizes."""

    name = "rclone lsl"

    def list(self) -> int:
        out = self._rclone("lsl", "--max-depth", "1", self.remote)
        return len([n for n in out.split(b"\n") if n])


# --- targets --------------------------------------------------------------------------


def _fill_names(directory: Path, names: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(names):
        (directory / f"name-{i:06d}").touch()


def bench_file(settings: Settings, workdir: Path) -> list[Row]:
    """file:// beside cp (transfers) and find -printf (listing with sizes)."""
    store = workdir / "file-store"
    baseline = CpBaseline(workdir / "cp-store")
    rows = [
        measure_transfers("file", f"file://{store}", baseline, size, count, settings, workdir)
        for size, count in ((MIB, settings.small), (16 * MIB, settings.large))
        if count
    ]
    if settings.names:
        listed = workdir / "file-list"
        _fill_names(listed, settings.names)
        if shutil.which("rclone") is None:
            raise Unavailable("rclone is not installed (the file:// listing's peer)")
        config = workdir / "rclone.conf"
        config.write_text("")
        peer = RcloneLslBaseline(str(listed), {"RCLONE_CONFIG": str(config)}, workdir)
        rows += measure_listings(
            "file", f"file://{listed}", peer, (FindReference(listed),), settings.names, settings
        )
    return rows


def bench_file_rclone(settings: Settings, workdir: Path) -> list[Row]:
    """file:// beside rclone copy to a local directory (checks the rclone baseline)."""
    if shutil.which("rclone") is None:
        raise Unavailable("rclone is not installed")
    store = workdir / "file-store"
    theirs = workdir / "rclone-store"
    theirs.mkdir()
    baseline = RcloneBaseline(str(theirs), {}, workdir)
    rows = [
        measure_transfers(
            "file-rclone", f"file://{store}", baseline, size, count, settings, workdir
        )
        for size, count in ((MIB, settings.small), (16 * MIB, settings.large))
        if count
    ]
    if settings.names:
        listed = workdir / "rclone-list"
        _fill_names(listed, settings.names)
        baseline = RcloneBaseline(str(listed), {}, workdir)
        rows.append(
            measure_listing("file-rclone", f"file://{listed}", baseline, settings.names, settings)
        )
    return rows


def _swift_targets() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import backends_swift
    finally:
        sys.path.pop(0)
    return backends_swift


def bench_s3(settings: Settings, workdir: Path) -> list[Row]:
    """s3:// (Swift's s3api) beside rclone (bench/backends_swift.py)."""
    rows: list[Row] = _swift_targets().bench_s3(settings, workdir)
    return rows


def bench_swift(settings: Settings, workdir: Path) -> list[Row]:
    """swift:// beside rclone copy and swift list (bench/backends_swift.py)."""
    rows: list[Row] = _swift_targets().bench_swift(settings, workdir)
    return rows


def bench_sftp(settings: Settings, workdir: Path) -> list[Row]:
    """sftp:// beside rclone copy to the same sshd (bench/backends_sftp.py)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        import backends_sftp
    finally:
        sys.path.pop(0)
    rows: list[Row] = backends_sftp.bench_sftp(settings, workdir)
    return rows


#: Every target: name -> function.
TARGETS: dict[str, Callable[[Settings, Path], list[Row]]] = {
    "file": bench_file,
    "file-rclone": bench_file_rclone,
    "s3": bench_s3,
    "swift": bench_swift,
    "sftp": bench_sftp,
}


# --- report ---------------------------------------------------------------------------


def format_row(row: Row) -> str:
    """One printed line for a row."""
    if row["kind"] == "transfer":
        size = f"{row['size'] // MIB} MiB"
        return (
            f"{row['target']:12} {size:>7} x{row['count']:<4} "
            f"put {row['pannier_put_mib_s']:8.1f} vs {row['baseline_put_mib_s']:8.1f} MiB/s "
            f"{row['put_ratio']:5.2f}x   "
            f"get {row['pannier_get_mib_s']:8.1f} vs {row['baseline_get_mib_s']:8.1f} MiB/s "
            f"{row['get_ratio']:5.2f}x   ({row['baseline']})"
        )
    reference = "reference_ratio" in row
    ratio = row["reference_ratio"] if reference else row["ratio"]
    return (
        f"{row['target']:12} list {row['names']} names: "
        f"{row['pannier_seconds'] * 1000:8.1f} ms vs {row['baseline_seconds'] * 1000:8.1f} ms "
        f"{ratio:5.2f}x   ({row['baseline']}{'; reference, not the peer' if reference else ''})"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the chosen targets and print the table and the worst ratio."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--targets", default="file,file-rclone,s3,swift,sftp",
                        help=f"comma-separated, from: {', '.join(TARGETS)}")  # fmt: skip
    parser.add_argument("--small", type=int, default=32, help="1 MiB objects (default 32)")
    parser.add_argument("--large", type=int, default=4, help="16 MiB objects (default 4)")
    parser.add_argument("--names", type=int, default=10_000, help="names to list (10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; best kept")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    settings = Settings(args.small, args.large, args.names, max(1, args.repeat))
    chosen = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target {unknown[0]!r}; targets: {', '.join(TARGETS)}")
    print("pannier backends vs the plain tool; ratio = pannier speed / tool speed (>= 0.8 wanted)")
    rows: list[Row] = []
    for target in chosen:
        with tempfile.TemporaryDirectory(prefix=f"pannier-bench-{target}-") as tmp:
            try:
                found = TARGETS[target](settings, Path(tmp))
            except Unavailable as e:
                print(f"{target:12} skipped: {e}")
                continue
        for row in found:
            print(format_row(row), flush=True)
        rows.extend(found)
    ratios = [r[k] for r in rows for k in ("put_ratio", "get_ratio", "ratio") if k in r]
    if ratios:
        print(f"worst ratio {min(ratios):.2f}x (target: at least 0.80x)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
