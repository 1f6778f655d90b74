"""Engine benchmark: walk, initial backup, no-change backup, restore, in one process.

Measures the backup engine apart from process start-up and key derivation (the
repository is created in-process with a cheap KDF; the no-change backup runs twice, the
second time with the walk in a background thread as ``pannier backup`` does it), on a
directory of real files (default /usr/share/doc), into a fresh encrypted repository on a
local directory:

    python bench/bench_engine.py [SRC] [--workers N]

Prints, per step, the wall and CPU seconds and the rate (entries or bytes per second),
and checks that the restore is identical to the source (content, mode, mtime, symlinks).
The side-by-side comparison with restic and borg is bench/bench_backup.py's job.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import stat
import tempfile
import time
from collections.abc import Callable
from typing import Any


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(label: str, fn: Callable[[], Any], unit: str, amount: float) -> Any:
    w0, c0 = time.perf_counter(), cpu()
    result = fn()
    wall, used = time.perf_counter() - w0, cpu() - c0
    rate = amount / wall if wall else 0.0
    print(f"{label:<22} wall {wall:7.2f} s   cpu {used:7.2f} s   {rate:12,.0f} {unit}/s")
    return result


def facts(root: str) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            data: Any = None
            if stat.S_ISLNK(st.st_mode):
                data = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    data = hash(f.read())
            mtime = st.st_mtime_ns if not stat.S_ISLNK(st.st_mode) else None
            out[os.path.relpath(path, root)] = (st.st_mode, mtime, data)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="/usr/share/doc")
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    from pannier.backend_registry import get_backend
    from pannier.engine.backup import BackupOptions, run_backup
    from pannier.engine.entries import ScanAhead
    from pannier.engine.restore import RestoreOptions, run_restore
    from pannier.plugin import PluginKind
    from pannier.registry import get_plugin_manager
    from pannier.repo import KdfParams, Repository

    fs = get_plugin_manager().get(PluginKind.SOURCE, "filesystem")
    work = tempfile.mkdtemp(prefix="pannier-bench-engine-")
    try:
        entries = sum(1 for _ in fs(args.source, {}).scan())
        nbytes = sum(
            e.stat.st_size for e in fs(args.source, {}).scan() if e.is_file and not e.hardlink_to
        )
        print(f"source {args.source}: {entries:,} entries, {nbytes / 2**20:,.1f} MiB")
        measure("walk", lambda: sum(1 for _ in fs(args.source, {}).scan()), "entries", entries)
        kdf = KdfParams(memory_cost=1024, iterations=1, lanes=1)
        repo = Repository.init(get_backend(f"file://{work}/repo"), "bench", kdf=kdf)
        opts = BackupOptions(workers=args.workers, reread_probability=0)
        first = measure(
            "initial backup", lambda: run_backup(repo, [fs(args.source, {})], opts), "B", nbytes
        )
        print(f"{'':<22} added {first.bytes_added / 2**20:,.1f} MiB to the repository")
        measure(
            "no-change backup",
            lambda: run_backup(repo, [fs(args.source, {})], opts),
            "entries",
            entries,
        )

        def scanned_ahead() -> Any:
            sources = [fs(args.source, {})]
            return run_backup(repo, sources, opts, scan_ahead=ScanAhead(sources))

        measure("no-change, scan ahead", scanned_ahead, "entries", entries)
        snap = repo.load_snapshot(first.snapshot_id)
        target = os.path.join(work, "restore")
        ropts = RestoreOptions(workers=args.workers)
        summary = measure("restore", lambda: run_restore(repo, snap, target, ropts), "B", nbytes)
        again = measure(
            "restore over itself",
            lambda: run_restore(repo, snap, target, RestoreOptions(overwrite=True)),
            "entries",
            entries,
        )
        same = facts(args.source) == facts(target)
        print(
            f"restore identical: {same}; errors: {len(summary.errors)}; "
            f"rewritten the second time: {again.files_restored}"
        )
        repo.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
