#!/usr/bin/env python3
"""Plugin discovery benchmark: prints median wall times, one figure per line.

Measured, each in fresh processes (the median of ``--runs`` runs):

1. ``pannier plugins --json`` end to end (process start to exit; every plugin imported
   and checked), ``pannier plugins --json --no-load`` (discovery only) and
   ``pannier --version`` (the command line's own start-up: every command module and the
   hook plugins); target: median <= 150 ms; wall time, with the CPU time (user + system)
   beside it;
2. discovery alone (``pannier.discovery.discover_all()``, timed inside the process after
   its imports) with the installed environment, cold (no entry-point cache) and warm;
   wall time, and the process's CPU time beside it (what a loaded machine inflates less);
3. the same with 500 extra distributions on ``sys.path`` (each a ``*.dist-info`` with
   entry points, one in ten in a ``pannier.*`` group); target: warm <= 10 ms whatever the
   number of distributions;
4. for comparison, in the same processes: ``importlib.metadata.entry_points()`` (the
   call, and the import of :mod:`importlib.metadata`);
5. what ``pannier plugins`` spends importing plugins: each plugin's load time (its
   module and that module's own imports), the slowest listed.

Byte-code caching is on (``PYTHONDONTWRITEBYTECODE`` is dropped; the warm-up runs write
the caches), as for installed software. The extra distributions get time-stamps a minute
old, as an environment installed earlier has (a distribution changed within the cache's
racy window is re-read on purpose). Run::

    .venv/bin/python bench/bench_discovery.py [--runs 15] [--dists 500]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_CLI_MS = 150.0
TARGET_WARM_MS = 10.0

PROBE = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore", DeprecationWarning)
t0 = time.perf_counter()
from pannier.discovery import discover_all
t1 = time.perf_counter()
c1 = time.process_time()
found = discover_all()
c2 = time.process_time()
t2 = time.perf_counter()
import importlib.metadata
t3 = time.perf_counter()
eps = importlib.metadata.entry_points()
t4 = time.perf_counter()
print(json.dumps({
    "import_ms": (t1 - t0) * 1e3,
    "discover_ms": (t2 - t1) * 1e3,
    "discover_cpu_ms": (c2 - c1) * 1e3,
    "plugins": sum(len(v) for v in found.values()),
    "metadata_import_ms": (t3 - t2) * 1e3,
    "entry_points_ms": (t4 - t3) * 1e3,
    "entry_points": sum(len(g) for g in eps.values()) if hasattr(eps, "values") else len(eps),
}))
"""


LOAD_PROBE = r"""
import json, time
import pannier.backend, pannier.registry
from pannier.plugin import PluginKind
manager = pannier.registry.get_plugin_manager()
manager.hooks
costs = {}
for kind in PluginKind:
    for name in manager.names(kind):
        t0 = time.perf_counter()
        try:
            manager.get(kind, name)
        except Exception:
            pass
        costs[f"{kind.value}:{name}"] = (time.perf_counter() - t0) * 1e3
print(json.dumps(costs))
"""


def make_dists(site: Path, count: int) -> None:
    """``count`` installed-looking distributions, a minute old."""
    old = time.time() - 60
    for i in range(count):
        name = f"benchdist{i:04d}"
        info = site / f"{name}-1.{i}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.{i}\n\n")
        (info / "RECORD").write_text("")
        lines = ["[console_scripts]", f"{name} = {name}.cli:main", ""]
        if i % 10 == 0:
            group = ("pannier.meta", "pannier.backends", "pannier.sources", "pannier.hooks")[
                (i // 10) % 4
            ]
            lines += [f"[{group}]", f"{name} = {name}.plugin:Plugin", ""]
        (info / "entry_points.txt").write_text("\n".join(lines))
        for path in (info / "METADATA", info / "RECORD", info / "entry_points.txt", info):
            os.utime(path, (old, old))
    os.utime(site, (old, old))


def median(values: list[float]) -> float:
    return statistics.median(values)


def children_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1e3


def run_cli(args: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of ``pannier ARGS``."""
    times, cpu = [], []
    for _ in range(runs):
        c0 = children_cpu_ms()
        t0 = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pannier", *args], env=env, capture_output=True, text=True
        )
        times.append((time.perf_counter() - t0) * 1e3)
        cpu.append(children_cpu_ms() - c0)
        if result.returncode != 0:
            raise SystemExit(f"pannier {' '.join(args)} failed: {result.stderr.strip()}")
    return median(times), median(cpu)


def run_probe(env: dict[str, str], runs: int, cache: Path, cold: bool) -> list[dict[str, float]]:
    samples = []
    if not cold:  # prime the cache
        subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, check=True)
    for _ in range(runs):
        if cold:
            shutil.rmtree(cache, ignore_errors=True)
        out = subprocess.run(
            [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
        ).stdout
        samples.append(json.loads(out))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per figure (default 15)")
    parser.add_argument("--dists", type=int, default=500, help="extra distributions (500)")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pannier-bench-discovery-") as tmp:
        root = Path(tmp)
        cache_home = root / "cache"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PANNIER_")}
        env.pop("PYTHONPATH", None)
        # Measure as installed software runs: with byte-code caches (written by the warm-up).
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["XDG_CACHE_HOME"] = str(cache_home)
        cache = cache_home / "pannier"
        site = root / "site"
        make_dists(site, options.dists)
        env_many = {**env, "PYTHONPATH": str(site)}

        python = sys.version.split()[0]
        load = os.getloadavg()[0]
        print(
            f"pannier discovery benchmark: median of {options.runs} runs, python {python}, "
            f"{os.cpu_count()} CPUs, load average {load:.1f}"
        )
        run_cli(["plugins", "--json"], env, 2)  # warm the OS file cache and the entry-point cache
        cli, cli_cpu = run_cli(["plugins", "--json"], env, options.runs)
        no_load, no_load_cpu = run_cli(["plugins", "--json", "--no-load"], env, options.runs)
        version, version_cpu = run_cli(["--version"], env, options.runs)
        verdict = "OK" if cli <= TARGET_CLI_MS else "OVER"
        print(
            f"pannier plugins --json                      {cli:8.1f} ms  (CPU {cli_cpu:5.1f} ms)"
            f"  (target <= {TARGET_CLI_MS:.0f} ms)  {verdict}"
        )
        print(
            f"pannier plugins --json --no-load            {no_load:8.1f} ms  "
            f"(CPU {no_load_cpu:5.1f} ms)"
        )
        print(
            f"pannier --version (CLI start-up alone)      {version:8.1f} ms  "
            f"(CPU {version_cpu:5.1f} ms)"
        )

        rows = []
        for label, e in (("installed env", env), (f"+{options.dists} dists", env_many)):
            for cold in (True, False):
                samples = run_probe(e, options.runs, cache, cold)
                rows.append((label, "cold" if cold else "warm", samples))
        for label, state, samples in rows:
            d = median([s["discover_ms"] for s in samples])
            cpu = median([s["discover_cpu_ms"] for s in samples])
            target = ""
            if state == "warm":
                verdict = "OK" if d <= TARGET_WARM_MS else "OVER"
                target = f"  (target <= {TARGET_WARM_MS:.0f} ms)  {verdict}"
            print(
                f"discovery, {label:14s} {state}   {d:8.2f} ms  (CPU {cpu:5.2f} ms)  "
                f"[{int(samples[0]['plugins'])} plugins]{target}"
            )
        for label, state, samples in rows:
            if state != "warm":
                continue
            ep = median([s["entry_points_ms"] for s in samples])
            imp = median([s["metadata_import_ms"] for s in samples])
            count = int(samples[0]["entry_points"])
            print(
                f"importlib.metadata.entry_points(), {label:14s} {ep:8.2f} ms  "
                f"(+ {imp:.1f} ms to import importlib.metadata) [{count} entry points]"
            )
        imports = median([s["import_ms"] for s in rows[1][2]])
        print(f"import of pannier.discovery                 {imports:8.2f} ms")

        loads: dict[str, list[float]] = {}
        for _ in range(max(3, options.runs // 3)):
            out = subprocess.run(
                [sys.executable, "-c", LOAD_PROBE], env=env, capture_output=True, text=True
            ).stdout
            for plugin, ms in json.loads(out or "{}").items():
                loads.setdefault(plugin, []).append(ms)
        ranked = sorted(((median(v), k) for k, v in loads.items()), reverse=True)
        total = sum(ms for ms, _ in ranked)
        print(f"loading every plugin (as pannier plugins does) {total:8.1f} ms; slowest:")
        for ms, plugin in ranked[:6]:
            print(f"    {plugin:30s} {ms:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
