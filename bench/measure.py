"""Measuring one command for the benchmarks: wall and CPU time, peak RSS, and the page cache.

``run_measured`` runs a command and returns a ``Measure``: wall seconds, CPU seconds (user and
system of the process and its waited-for children, from ``wait4``), and peak RSS, the larger of
``wait4``'s maximum for one process and the sum over the whole process tree sampled every
50 ms (so a tool that forks workers is charged for all of them). ``make_cold`` empties the page
cache (``drop_caches``) or evicts given trees file by file (``posix_fadvise``) where that is not
permitted; ``make_warm`` reads given trees once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RSS_SAMPLE_SECONDS = 0.05


@dataclass
class Measure:
    """One measured command: times in seconds, peak RSS in bytes, exit code."""

    wall: float
    cpu: float
    user: float
    system: float
    peak_rss: int
    returncode: int
    loadavg: float
    timed_out: bool = False


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants, now."""
    total = 0
    todo = [pid]
    seen: set[int] = set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _rss(p)
        todo.extend(_children(p))
    return total


def run_measured(
    argv: list[str], *, cwd: Path, env: dict[str, str], log: Path, timeout: float
) -> Measure:
    """Run ``argv`` to completion and measure it; output goes to ``log`` (appended).

    A command still running after ``timeout`` seconds is killed with its process group and
    reported with ``timed_out``.
    """
    load = os.getloadavg()[0]
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}   (cwd {cwd})\n".encode())
        out.flush()
        start = time.monotonic()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=out, stderr=out, start_new_session=True
        )
        peak = 0
        done = threading.Event()
        timed_out = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, tree_rss(proc.pid))
                if time.monotonic() - start > timeout and not timed_out.is_set():
                    timed_out.set()
                    os.killpg(proc.pid, signal.SIGKILL)
                done.wait(RSS_SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Measure(
        wall=round(wall, 3),
        cpu=round(usage.ru_utime + usage.ru_stime, 3),
        user=round(usage.ru_utime, 3),
        system=round(usage.ru_stime, 3),
        peak_rss=max(peak, usage.ru_maxrss * 1024),
        returncode=proc.returncode,
        loadavg=round(load, 2),
        timed_out=timed_out.is_set(),
    )


def _iter_files(root: Path) -> Iterator[str]:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                yield p


def drop_caches_works() -> bool:
    """True when ``echo 3 > /proc/sys/vm/drop_caches`` is permitted here."""
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def make_cold(paths: list[Path], method: str) -> None:
    """Empty the page cache (``drop_caches``), or evict ``paths`` file by file (``fadvise``)."""
    os.sync()
    if method == "drop_caches":
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return
    for root in paths:
        for p in _iter_files(root):
            try:
                fd = os.open(p, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def make_warm(paths: list[Path]) -> None:
    """Read every file under ``paths`` once, so a warm run finds them in the page cache.

    Dirty pages are written back first (``sync``), as before a cold run, so that neither run
    pays for writes left over from an earlier step.
    """
    os.sync()
    for root in paths:
        for p in _iter_files(root):
            try:
                with open(p, "rb") as f:
                    while f.read(1 << 20):
                        pass
            except OSError:
                continue


def dir_bytes(root: Path) -> int:
    """Sum of the sizes of all regular files under ``root`` (what a remote store would bill)."""
    return sum(os.lstat(p).st_size for p in _iter_files(root))
