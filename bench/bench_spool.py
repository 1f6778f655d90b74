"""Spool of tree streams: the cost of spilling encrypted instead of in clear.

Run it with ``python bench/bench_spool.py [--entries N] [--repeat R]``. It writes the
tree stream of N entries (default 48,000, about 5 MB: the size of a backup of a 48k-file
tree) with the engine's ``TreeWriter`` into the spool a backup uses, rewinds it and reads
it back the way the repository's chunker does (2 MiB ``readinto`` calls), for:

* ``plain``: ``tempfile.SpooledTemporaryFile`` (what pannier used before: the spill
  holds the names in clear);
* ``encrypted``: ``EncryptedSpool`` (AES-256-GCM frames under a key held in memory).

It prints, for each, the best CPU time of R runs for the write and the read, the stream
size, and the peak of Python allocations (tracemalloc, a separate run) while writing and
reading. Target: the encrypted spool costs under 10 % more CPU than the plain one
and allocates under 1 MiB more (the in-memory limit is the same; about two frames).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from collections.abc import Callable
from typing import IO

from pannier.engine.spool import spooled_file
from pannier.engine.tree import TreeEntry, TreeWriter


def entries(n: int) -> list[TreeEntry]:
    """N file entries with realistic names, sizes and two chunk ids each."""
    out = []
    for i in range(n):
        index = (b"home", b"user", b"project-%03d" % (i // 1000), b"module_%06d.py" % i)
        chunks = (i.to_bytes(32, "big"), (i + 1).to_bytes(32, "big"))
        out.append(
            TreeEntry(index, "f", 0o100644, 1000, 1000, 4096 + i, 10**18 + i, 10**18 + i, i, chunks)
        )
    return out


def run(make: Callable[[], IO[bytes]], tree: list[TreeEntry]) -> tuple[float, float, int]:
    """CPU seconds to write and to read back, and the stream size."""
    t0 = time.process_time()
    f = make()
    w = TreeWriter(f)
    for e in tree:
        w.add(e)
    w.close()
    t1 = time.process_time()
    f.seek(0)
    buf = bytearray(2 << 20)
    size = 0
    while n := f.readinto(buf):  # type: ignore[attr-defined]
        size += n
    t2 = time.process_time()
    f.close()
    return t1 - t0, t2 - t1, size


def peak(make: Callable[[], IO[bytes]], tree: list[TreeEntry]) -> int:
    """Peak bytes allocated while writing and reading the spool."""
    tracemalloc.start()
    try:
        run(make, tree)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main() -> None:
    """Measure and print."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=48_000)
    ap.add_argument("--repeat", type=int, default=7)
    opts = ap.parse_args()
    tree = entries(opts.entries)
    kinds: dict[str, Callable[[], IO[bytes]]] = {
        "plain": lambda: spooled_file(encrypted=False),
        "encrypted": lambda: spooled_file(encrypted=True),
    }
    best: dict[str, tuple[float, float, int]] = {}
    for _ in range(opts.repeat):
        for name, make in kinds.items():  # interleaved: both see the same machine load
            w, r, size = run(make, tree)
            old = best.get(name)
            best[name] = (min(w, old[0]) if old else w, min(r, old[1]) if old else r, size)
    for name, make in kinds.items():
        w, r, size = best[name]
        print(
            f"{name:9} {opts.entries} entries, {size / 1e6:.2f} MB: write {w * 1000:.1f} ms CPU, "
            f"read {r * 1000:.1f} ms CPU, peak allocations {peak(make, tree) / 2**20:.2f} MiB"
        )
    extra = sum(best["encrypted"][:2]) - sum(best["plain"][:2])
    print(f"encryption costs {extra * 1000:+.1f} ms CPU for the whole stream")


if __name__ == "__main__":
    main()
