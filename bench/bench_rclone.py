"""rclone:// design check: one long-running ``rclone rcd`` versus one rclone process per
operation, on the same remote, in the same run.

    .venv/bin/python bench/bench_rclone.py [--ops N] [--large N] [--remote REMOTE:PATH]

Measures, each the best of ``--repeat`` runs:

* small operations per second: ``--ops`` rounds of put (4 KiB), stat and get, through
  pannier's rclone backend (one ``rclone rcd``), and through the equivalent CLI calls
  (``rclone copyto``, ``rclone lsjson --stat``, ``rclone cat``), one process each, which
  is how a backend that forks per operation works;
* 16 MiB put and get throughput the same two ways (``--large`` objects);

and prints the ratio rcd / per-process. The default remote is ``:local:`` in a temporary
directory, where the process start is the whole difference; ``--remote`` takes any
rclone remote (a connection string such as ``:sftp,host=...:path``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

MIB = 1 << 20


def best(fn: Callable[[], object], repeat: int) -> float:
    """The shortest of ``repeat`` timed runs of ``fn``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class PerProcess:
    """One rclone process per operation."""

    def __init__(self, remote: str, env: dict[str, str]) -> None:
        self.remote = remote.rstrip("/")
        self.env = env

    def _run(self, *args: str) -> bytes:
        return subprocess.run(
            ["rclone", *args], env=self.env, check=True, capture_output=True
        ).stdout

    def _at(self, name: str) -> str:
        sep = "" if self.remote.endswith(":") else "/"
        return f"{self.remote}{sep}{name}"

    def put(self, path: str, name: str) -> None:
        self._run("copyto", path, self._at(name))

    def stat(self, name: str) -> int:
        import json

        return int(json.loads(self._run("lsjson", "--stat", self._at(name)))["Size"])

    def get(self, name: str, path: str) -> None:
        with open(path, "wb") as out:
            subprocess.run(["rclone", "cat", self._at(name)], env=self.env, check=True, stdout=out)


def main(argv: list[str] | None = None) -> int:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ops", type=int, default=20, help="rounds of put+stat+get (20)")
    parser.add_argument("--large", type=int, default=2, help="16 MiB objects (2)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; best kept")
    parser.add_argument("--remote", help="an rclone remote:path (default: :local: in a tmp dir)")
    args = parser.parse_args(argv)
    if shutil.which("rclone") is None:
        print("rclone is not installed")
        return 1
    from pannier.backend_registry import get_backend_object

    with tempfile.TemporaryDirectory(prefix="pannier-bench-rclone-") as tmp:
        work = Path(tmp)
        config = work / "rclone.conf"
        config.write_text("")
        env = {**os.environ, "RCLONE_CONFIG": str(config)}
        remote = args.remote or f":local:{work / 'store'}"
        (work / "store").mkdir()
        small = work / "small"
        small.write_bytes(os.urandom(4096))
        large = work / "large"
        large.write_bytes(os.urandom(16 * MIB))
        out = str(work / "out")

        backend = get_backend_object(f"rclone://{remote}?config={config}")
        backend.create_folder()
        cli = PerProcess(remote, env)

        def rounds(put: Callable[[str, str], None], stat: Callable[[str], int],
                   get: Callable[[str, str], None]) -> None:  # fmt: skip
            for i in range(args.ops):
                put(str(small), f"s{i}")
                assert stat(f"s{i}") == 4096
                get(f"s{i}", out)

        def transfers(put: Callable[[str, str], None], get: Callable[[str, str], None]) -> None:
            for i in range(args.large):
                put(str(large), f"l{i}")
                get(f"l{i}", out)

        try:
            backend.list()  # start the rcd process outside the timing, as a backup would
            ops = 3 * args.ops
            rcd_small = best(lambda: rounds(backend.put, backend.query, backend.get), args.repeat)
            cli_small = best(lambda: rounds(cli.put, cli.stat, cli.get), args.repeat)
            rcd_large = best(lambda: transfers(backend.put, backend.get), args.repeat)
            cli_large = best(lambda: transfers(cli.put, cli.get), args.repeat)
        finally:
            backend.close()

    mib = 2 * 16 * args.large
    # Only the backend type of a connection string: its options may hold credentials.
    if not args.remote:
        label = ":local: (temporary directory)"
    elif remote.startswith(":"):
        label = ":" + remote[1:].split(",")[0].split(":")[0] + ": (connection string)"
    else:
        label = remote.split(":")[0] + ":"
    print(f"rclone remote {label}")
    print(
        f"small ops (put 4 KiB, stat, get): rcd {ops / rcd_small:7.1f} ops/s, "
        f"one process per op {ops / cli_small:7.1f} ops/s, ratio {cli_small / rcd_small:5.1f}x"
    )
    print(
        f"16 MiB put+get: rcd {mib / rcd_large:7.1f} MiB/s, "
        f"one process per op {mib / cli_large:7.1f} MiB/s, ratio {cli_large / rcd_large:5.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
