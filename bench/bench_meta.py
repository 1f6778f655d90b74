"""Metadata stream throughput: write, read and join 1,000,000 file records.

Run it with ``python bench/bench_meta.py [--files N] [--repeat R] [--dir DIR]``. It
builds the records of N files (default 1,000,000) for the main ``attr`` plugin and three
others (``xattr`` on every 10th file, ``acl`` on every 50th, ``checksum`` on every regular
file), then measures, through the public API:

* write: the meta manager's combined writer (``write_records``) into a directory;
* read+join: ``MetaManager.iter_joined`` over the four streams, every record decoded;
* the whole run (write + read + join), in file records per second.

It prints files/s for each phase, by wall clock and by this process's CPU time (the
machine may be shared), the records/s over all four streams, and the rate with the cost
of building the records (the engine's work, measured in a separate pass) subtracted.
Target: at least 200,000 file records/s for the whole run. It also prints the peak RSS
growth of the process across the run (target: under 50 MB;
records are generated on the fly, so the growth is what the streams hold in memory).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from pannier.meta_manager import MetaManager
from pannier.plugins.meta.acl import AclPlugin, AclRecord
from pannier.plugins.meta.attr import AttrPlugin, AttrRecord
from pannier.plugins.meta.checksum import ChecksumPlugin, ChecksumRecord
from pannier.plugins.meta.xattr import XattrPlugin, XattrRecord

ACL = (
    ("user_obj", None, None, "rw-"),
    ("user", 1000, "alice", "rw-"),
    ("group_obj", None, None, "r--"),
    ("mask", None, None, "rw-"),
    ("other", None, None, "---"),
)


def file_records(count: int) -> Iterator[dict[str, Any]]:
    """Yield the records of ``count`` files, in index order (100 files a directory)."""
    digest = bytes(range(32))
    for n in range(count):
        directory, name = b"dir%06d" % (n // 100), b"file%03d.txt" % (n % 100)
        index = (b"home", b"user", directory, name)
        records: dict[str, Any] = {
            "attr": AttrRecord(
                index, "reg", 0o644, 1000, 1000, "user", "user", n * 7,
                1_700_000_000_000_000_000 + n, 1_700_000_000_000_000_000 + n,
                1_000_000 + n, 1,
            ),
            "checksum": ChecksumRecord(index, "blake3", digest),
        }  # fmt: skip
        if n % 10 == 0:
            records["xattr"] = XattrRecord(index, ((b"user.tag", b"value %d" % n),))
        if n % 50 == 0:
            records["acl"] = AclRecord(index, ACL, None)
        yield records


def peak_rss_mb() -> float:
    """The peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(count: int, directory: str) -> dict[str, float]:
    """Write, read and join ``count`` files' records in ``directory``; return figures."""
    manager = MetaManager([AttrPlugin, XattrPlugin, AclPlugin, ChecksumPlugin])
    rss_before = peak_rss_mb()
    build_start = time.process_time()
    for _ in file_records(count):  # what building the records costs, to subtract
        pass
    build_cpu = time.process_time() - build_start
    start, cpu_start = time.perf_counter(), time.process_time()
    with manager.get_writer(directory) as writer:
        write_records = writer.write_records
        for records in file_records(count):
            write_records(records)
    written, cpu_written = time.perf_counter(), time.process_time()
    files = joined_records = 0
    for _index, records in manager.iter_joined(directory):
        files += 1
        joined_records += len(records) - list(records.values()).count(None)
    done, cpu_done = time.perf_counter(), time.process_time()
    if files != count or joined_records != sum(writer.counts.values()):
        raise SystemExit(f"join lost records: {files} files, {joined_records} records")
    size = sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory))
    return {
        "files": count,
        "records": float(joined_records),
        "write_s": written - start,
        "read_join_s": done - written,
        "total_s": done - start,
        "write_cpu_s": cpu_written - cpu_start,
        "read_join_cpu_s": cpu_done - cpu_written,
        "total_cpu_s": cpu_done - cpu_start,
        "build_cpu_s": build_cpu,
        "bytes": float(size),
        "rss_growth_mb": peak_rss_mb() - rss_before,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1_000_000, help="number of files")
    parser.add_argument("--dir", help="where to write the streams (default: a temp dir)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs; the fastest (by CPU time) is printed"
    )
    args = parser.parse_args(argv)
    directory = args.dir or tempfile.mkdtemp(prefix="pannier-bench-meta-")
    os.makedirs(directory, exist_ok=True)
    try:
        runs = []
        for _ in range(max(1, args.repeat)):
            for name in os.listdir(directory):
                os.unlink(os.path.join(directory, name))
            runs.append(run(args.files, directory))
        figures = min(runs, key=lambda f: f["total_cpu_s"])
        figures["rss_growth_mb"] = max(f["rss_growth_mb"] for f in runs)
    finally:
        if not args.dir:
            shutil.rmtree(directory, ignore_errors=True)
    files = figures["files"]
    print(f"runs: {max(1, args.repeat)} (the fastest shown)")
    print(f"metadata streams: {files:,.0f} files, {figures['records']:,.0f} records in 4 streams")
    print(f"  stream bytes        {figures['bytes'] / 1e6:9.1f} MB")
    print("                        wall clock       CPU time (this process)")
    for label, key in (
        ("write", "write"),
        ("read + join", "read_join"),
        ("write + read + join", "total"),
    ):
        wall, cpu = figures[f"{key}_s"], figures[f"{key}_cpu_s"]
        print(f"  {label:<20}{files / wall:12,.0f} files/s {files / cpu:12,.0f} files/s")
    total, total_cpu = figures["total_s"], figures["total_cpu_s"]
    print(
        f"  records (all 4 streams) written, read and joined: "
        f"{figures['records'] / total:,.0f}/s wall, {figures['records'] / total_cpu:,.0f}/s CPU"
    )
    stream_cpu = total_cpu - figures["build_cpu_s"]
    print(
        f"  streams only (CPU, building the records subtracted): "
        f"{files / stream_cpu:,.0f} files/s, {figures['records'] / stream_cpu:,.0f} records/s"
    )
    print("  target: >= 200,000 file records/s for write + read + join")
    print(f"  peak RSS growth     {figures['rss_growth_mb']:9.1f} MB     target < 50 MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
