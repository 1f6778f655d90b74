"""Benchmark the repository layer alone: chunking, storing, reading, index memory.

Figures printed (one run, on this machine, whatever else it is doing):

* ``chunker``: FastCDC throughput over pseudo-random bytes held in memory (and, when the
  ``fastcdc`` package is installed, the same for it: the reason pannier uses ``pyfastcdc``);
* ``store random`` / ``store text``: ``Repository.store_stream`` of a file of incompressible
  or compressible bytes into an encrypted ``file://`` repository, flushed: wall and CPU
  seconds, MB/s by wall, stored size;
* ``small files``: many small files stored at once through ``submit_stream``: files/s;
* ``read``: ``iter_blobs`` of everything stored, verified: MB/s;
* ``open 1M index``: opening a repository whose index names one million blobs;
* ``index``: the in-memory table for one million blobs: bytes per blob, lookups per second.

Usage::

    python bench/bench_repo.py [--size-mb 256] [--small-files 20000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3
from pannier.backend_registry import get_backend
from pannier.repo import Repository
from pannier.repo.chunker import Chunker
from pannier.repo.index import Index
from pannier.repo.pack import PackEntry


def measure(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """``(wall s, CPU s, result)`` of ``fn()``."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - t0, time.process_time() - c0, result


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_text(size: int) -> bytes:
    """Compressible bytes: source files from the Python standard library, repeated with
    a varying prefix so chunks differ."""
    sources = []
    for p in sorted(Path(os.__file__).parent.glob("*.py"))[:200]:
        sources.append(p.read_bytes())
    corpus = b"".join(sources) or b"lorem ipsum dolor sit amet " * 1000
    out = bytearray()
    n = 0
    while len(out) < size:
        out += f"# copy {n}\n".encode() + corpus
        n += 1
    return bytes(out[:size])


def row(name: str, wall: float, cpu: float, extra: str) -> None:
    print(f"{name:<16} wall {wall:7.2f} s  cpu {cpu:7.2f} s  {extra}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--small-files", type=int, default=20000)
    args = ap.parse_args(argv)
    size = args.size_mb * 1024 * 1024
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")

    noise = blake3.blake3(b"bench").digest(length=size)
    chunker = Chunker(12345)
    wall, cpu, n = measure(lambda: sum(1 for _ in chunker.chunk_bytes(noise)))
    row("chunker", wall, cpu, f"{size / wall / 1e6:8.0f} MB/s  {n} chunks (pyfastcdc)")
    try:
        import fastcdc  # the other FastCDC on PyPI, compared when installed

        wall, cpu, n = measure(
            lambda: sum(1 for _ in fastcdc.fastcdc(noise, 256 * 1024, 1024 * 1024, 4 << 20))
        )
        row("chunker (alt)", wall, cpu, f"{size / wall / 1e6:8.0f} MB/s  {n} chunks (fastcdc)")
    except ImportError:
        pass

    with tempfile.TemporaryDirectory(prefix="pannier-bench-repo-") as tmp:
        root = Path(tmp)
        (root / "random").write_bytes(noise)
        (root / "text").write_bytes(make_text(size))
        noise = b""  # free it
        repo = Repository.init(get_backend(f"file://{root / 'repo'}"), "bench")
        ids: list[bytes] = []
        for name in ("random", "text"):
            before = repo.stats.bytes_stored

            def store(name: str = name) -> list[bytes]:
                got = repo.store_stream(str(root / name))
                repo.flush()
                return got

            wall, cpu, got = measure(store)
            ids += got
            stored = (repo.stats.bytes_stored - before) / 1e6
            row(
                f"store {name}",
                wall,
                cpu,
                f"{size / wall / 1e6:8.0f} MB/s  stored {stored:.0f} MB of {size / 1e6:.0f}",
            )

        small = root / "small"
        small.mkdir()
        rng = random.Random(7)
        paths = []
        for i in range(args.small_files):
            p = small / f"f{i}"
            p.write_bytes(rng.randbytes(rng.randint(200, 8000)))
            paths.append(p)

        def store_small() -> None:
            futures = [repo.submit_stream(str(p)) for p in paths]
            for f in futures:
                f.result()
            repo.flush()

        wall, cpu, _ = measure(store_small)
        row("small files", wall, cpu, f"{len(paths) / wall:8.0f} files/s")
        repo.close()

        reopened = Repository.open(get_backend(f"file://{root / 'repo'}"), "bench")
        wall, cpu, total = measure(lambda: sum(len(b) for b in reopened.iter_blobs(ids)))
        row("read", wall, cpu, f"{total / wall / 1e6:8.0f} MB/s")
        reopened.close()

    with tempfile.TemporaryDirectory(prefix="pannier-bench-index-") as tmp:
        # an index object naming a million blobs (in 20,000 packs that are not there:
        # only loading the index is measured)
        url = f"file://{tmp}/repo"
        repo = Repository.init(get_backend(url), "bench")
        packs = {
            os.urandom(32): [PackEntry(0, os.urandom(32), i * 100, 100, 120) for i in range(50)]
            for _ in range(20_000)
        }
        repo.write_index(packs)
        repo.close()
        del packs

        def load() -> int:
            opened = Repository.open(get_backend(url), "bench")
            n = len(opened.index)
            opened.close()
            return n

        wall, cpu, n = measure(load)
        row("open 1M index", wall, cpu, f"{n} blobs (key derivation included)")

    index = Index()
    pack = os.urandom(32)
    blob_ids = [os.urandom(32) for _ in range(1_000_000)]
    wall, cpu, _ = measure(
        lambda: [index.add(b, pack, i, 100, 100, 0) for i, b in enumerate(blob_ids)]
    )
    probe = blob_ids[::10]
    lwall, _, _ = measure(lambda: [index.lookup(b) for b in probe])
    row(
        "index 1M",
        wall,
        cpu,
        f"{index.memory_bytes() / len(index):5.1f} B/blob  "
        f"{len(probe) / lwall / 1e3:6.0f} k lookups/s",
    )
    print(f"peak RSS {rss_mb():.0f} MiB (the whole run, data held in memory included)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
