"""Benchmark pannier's backup and restore against restic and borg on one dataset, in one run.

Steps, for every tool, each measured with the page cache dropped ("cold") and warm:

1. ``initial``   first backup of the dataset (bench/dataset.py) into a fresh repository;
2. ``no-change`` a second backup with nothing changed;
3. ``mutation``  a backup after the deterministic 1 % mutation (bench/mutate.py);
4. ``restore``   a full restore of the last snapshot into an empty directory, then a check that
   the restored tree is identical to the dataset in content, mode, mtime (ns), owner, symlink
   targets and xattrs (``compare_trees``).

Cold and warm runs use two repositories per tool, so both see the same history. Steps run one
after the other for all tools (step 1 for every tool, then step 2, ...), so that a burst of load
from elsewhere on the machine hits the tools alike. A cold run starts after
``sync; echo 3 > /proc/sys/vm/drop_caches``; when that is not permitted, each file of the dataset
and the repositories is evicted with ``posix_fadvise(DONTNEED)`` instead and the results say so.
A warm run starts after a ``sync`` and one read of its inputs (the dataset for a backup, the
repository for a restore).

Figures per run: wall seconds, CPU seconds (user + system of the process and its children, from
``wait4``), peak RSS (the larger of ``wait4``'s maximum and the sum over the process tree sampled
every 50 ms) and the repository size (bytes of all its files). Each tool runs as its users run
it: pannier with encryption (``repokey``), restic 0.14 (repository v2, compression ``auto``,
always encrypted) and borg 1.2 (``--compression zstd,3``, encryption ``repokey``); each with its
own cache directory kept between runs, as a user's would be.

The table printed at the end gives pannier's ratio to the better peer of each figure (the faster
for times, the smaller for sizes and RSS) beside the targets (initial backup <= 0.6, no-change
<= 0.3, after mutation <= 0.4, restore <= 0.7, repository size <= 1.0, peak RSS <= 1.2). The
whole result goes to ``bench/results/backup-<time>.json`` and ``bench/results/latest.json``; a
Markdown table to ``bench/results/latest.md``; bench/plot.py draws the JSON.

Usage::

    python bench/bench_backup.py [--tools pannier,restic,borg] [--modes cold,warm]
                                 [--pannier EXE] [--update-docs]
    python bench/bench_backup.py --report bench/results/latest.json [--update-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from compare import compare_trees, restored_root
from dataset import DEFAULT_DEST, Manifest, describe, ensure_dataset, fingerprint
from measure import Measure, dir_bytes, drop_caches_works, make_cold, make_warm, run_measured
from mutate import DEFAULT_SEED, mutate_dataset

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
DEFAULT_WORKDIR = BENCH_DIR / "data" / "work"
STEPS = ("initial", "no-change", "mutation", "restore")
MODES = ("cold", "warm")
PEERS = ("restic", "borg")
#: pannier's figure divided by the better peer's must not exceed these.
TARGETS = {
    "initial": 0.6,
    "no-change": 0.3,
    "mutation": 0.4,
    "restore": 0.7,
    "repo size": 1.0,
    "peak RSS": 1.2,
}
PASSWORD = "pannier-bench-password"
DOCS_PAGE = BENCH_DIR.parent / "docs" / "performance.md"
MARK_START = "<!-- bench_backup results: start -->"
MARK_END = "<!-- bench_backup results: end -->"


# --------------------------------------------------------------------------- tools


class Tool:
    """A backup program under test: how to init, back up and restore with it."""

    name = ""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.cache = home / "cache"

    def env(self) -> dict[str, str]:
        """The environment for this tool's commands (passwords, cache directories)."""
        env = dict(os.environ)
        env["HOME"] = str(self.home)
        env["XDG_CACHE_HOME"] = str(self.cache)
        return env

    def version(self) -> str | None:
        """The tool's version line, or None when it is not installed."""
        raise NotImplementedError

    def init(self, repo: Path) -> list[str]:
        """Command that creates an encrypted repository at ``repo``."""
        raise NotImplementedError

    def backup(self, repo: Path, source: str, snapshot: str) -> list[str]:
        """Command, run in the dataset's parent, that backs up ``source`` as ``snapshot``."""
        raise NotImplementedError

    def restore(self, repo: Path, snapshot: str, target: Path) -> list[str]:
        """Command, run inside ``target``, that restores ``snapshot`` into ``target``."""
        raise NotImplementedError


def _version(argv: list[str]) -> str | None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0]


class Restic(Tool):
    """restic: repository v2 (compression ``auto``), always encrypted."""

    name = "restic"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["RESTIC_PASSWORD"] = PASSWORD
        env["RESTIC_CACHE_DIR"] = str(self.cache)
        return env

    def version(self) -> str | None:
        return _version(["restic", "version"])

    def init(self, repo: Path) -> list[str]:
        return ["restic", "-r", str(repo), "init", "--repository-version", "2"]

    def backup(self, repo: Path, source: str, snapshot: str) -> list[str]:
        return ["restic", "-r", str(repo), "backup", "--host", "bench", "--tag", snapshot, source]

    def restore(self, repo: Path, snapshot: str, target: Path) -> list[str]:
        return ["restic", "-r", str(repo), "restore", "latest", "--target", str(target)]


class Borg(Tool):
    """borg 1.2: ``--compression zstd,3``, encryption ``repokey``."""

    name = "borg"

    def env(self) -> dict[str, str]:
        env = super().env()
        env["BORG_PASSPHRASE"] = PASSWORD
        env["BORG_BASE_DIR"] = str(self.home)
        env["BORG_CACHE_DIR"] = str(self.cache)
        return env

    def version(self) -> str | None:
        return _version(["borg", "--version"])

    def init(self, repo: Path) -> list[str]:
        return ["borg", "init", "--encryption", "repokey", str(repo)]

    def backup(self, repo: Path, source: str, snapshot: str) -> list[str]:
        return ["borg", "create", "--compression", "zstd,3", f"{repo}::{snapshot}", source]

    def restore(self, repo: Path, snapshot: str, target: Path) -> list[str]:
        return ["borg", "extract", f"{repo}::{snapshot}"]


class Pannier(Tool):
    """pannier with encryption ``repokey``: the ``pannier`` beside this Python, or ``exe``."""

    name = "pannier"
    #: The pannier command to run; ``--pannier`` sets it (e.g. one installed from a wheel).
    exe_override: str | None = None

    def __init__(self, home: Path) -> None:
        super().__init__(home)
        beside = Path(sys.executable).absolute().parent / "pannier"
        default = str(beside) if beside.exists() else (shutil.which("pannier") or "pannier")
        self.exe = self.exe_override or default

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PANNIER_PASSWORD"] = PASSWORD
        return env

    def version(self) -> str | None:
        return _version([self.exe, "--version"])

    def url(self, repo: Path) -> str:
        """The repository URL of a local directory."""
        return f"file://{repo}"

    def init(self, repo: Path) -> list[str]:
        return [self.exe, "init", "-r", self.url(repo), "--encryption", "repokey"]

    def backup(self, repo: Path, source: str, snapshot: str) -> list[str]:
        return [self.exe, "backup", source, "-r", self.url(repo), "--tag", snapshot]

    def restore(self, repo: Path, snapshot: str, target: Path) -> list[str]:
        return [self.exe, "restore", "latest", "--target", str(target), "-r", self.url(repo)]


TOOLS: dict[str, type[Tool]] = {"pannier": Pannier, "restic": Restic, "borg": Borg}


# --------------------------------------------------------------------------- the run


@dataclass
class Record:
    """One measured step of one tool in one cache mode."""

    tool: str
    step: str
    mode: str
    measure: Measure
    repo_bytes: int
    check: dict[str, object] | None = None


class Run:
    """One benchmark run over all tools, steps and modes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.dataset: Path = args.dataset.resolve()
        self.work: Path = args.workdir.resolve()
        self.modes: list[str] = args.modes
        self.timeout: float = args.timeout
        self.seed: int = args.seed
        self.records: list[Record] = []
        self.tools: list[Tool] = []
        self.versions: dict[str, str] = {}
        self.cold_method = "drop_caches" if drop_caches_works() else "fadvise"
        self.log = self.work / "commands.log"
        self.failed: dict[tuple[str, str], str] = {}
        # Taken before the run: other commits may land while it goes on.
        self.commit = args.commit or _git_commit()
        for name in args.tools:
            tool = TOOLS[name](self.work / name)
            v = tool.version()
            if v is None:
                say(f"{name}: not installed, left out")
                continue
            self.versions[name] = v
            self.tools.append(tool)

    def repo(self, tool: Tool, mode: str) -> Path:
        """The repository of ``tool`` for cache ``mode``."""
        return tool.home / f"repo-{mode}"

    def prepare(self) -> Manifest:
        """Fresh working directory, pristine dataset, one empty repository per tool and mode."""
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        manifest = ensure_dataset(self.dataset)
        say(f"dataset: {describe(manifest)}")
        for tool in self.tools:
            tool.home.mkdir(parents=True)
            for mode in self.modes:
                m = run_measured(
                    tool.init(self.repo(tool, mode)),
                    cwd=tool.home,
                    env=tool.env(),
                    log=self.log,
                    timeout=self.timeout,
                )
                if m.returncode != 0:
                    self.failed[(tool.name, mode)] = f"init exited {m.returncode}"
                    say(f"{tool.name} {mode}: init FAILED (exit {m.returncode}), see {self.log}")
        return manifest

    def step(self, step: str) -> None:
        """Run ``step`` for every tool, cold then warm."""
        for tool in self.tools:
            for mode in self.modes:
                if (tool.name, mode) in self.failed:
                    continue
                repo = self.repo(tool, mode)
                target = tool.home / f"restore-{mode}"
                if step == "restore":
                    target.mkdir()
                    argv = tool.restore(repo, "mutation", target)
                    cwd, inputs = target, [repo]
                else:
                    argv = tool.backup(repo, self.dataset.name, step)
                    cwd, inputs = self.dataset.parent, [self.dataset]
                if mode == "cold":
                    make_cold([self.dataset, repo], self.cold_method)
                else:
                    make_warm(inputs)
                m = run_measured(argv, cwd=cwd, env=tool.env(), log=self.log, timeout=self.timeout)
                rec = Record(tool.name, step, mode, m, dir_bytes(repo))
                status = "" if m.returncode == 0 else f" EXIT {m.returncode}"
                if m.timed_out:
                    status += " TIMED OUT"
                # restic and borg exit 1 (warnings) on files they could not read: keep going.
                if m.returncode != 0 and not (tool.name in PEERS and m.returncode == 1):
                    self.failed[(tool.name, mode)] = f"{step} exited {m.returncode}"
                if step == "restore" and not m.timed_out:
                    comparison = compare_trees(self.dataset, restored_root(target, self.dataset))
                    rec.check = comparison.to_json()
                    status += " " + comparison.summary()
                # Restored trees stay until the end: on ext4 here, writing many files right
                # after deleting a large tree costs 3-5x the system time (measured), which
                # would fall on the next tool's run.
                self.records.append(rec)
                say(
                    f"{step:9} {tool.name:7} {mode:4} wall {m.wall:8.2f} s  cpu {m.cpu:8.2f} s  "
                    f"rss {m.peak_rss / 2**20:7.1f} MiB  repo {rec.repo_bytes / 1e6:8.1f} MB  "
                    f"load {m.loadavg:.2f}{status}"
                )

    def execute(self) -> dict[str, object]:
        """Run every step and return the full result document."""
        started = time.time()
        say(f"cold runs use: {self.cold_method}")
        manifest = self.prepare()
        self.step("initial")
        self.step("no-change")
        mutation = mutate_dataset(self.dataset, self.seed)
        mutated = fingerprint(self.dataset)
        say(
            f"mutation: {mutation.touched} files touched, "
            f"{mutation.bytes_written / 1e6:.1f} MB written; now {describe(mutated)}"
        )
        self.step("mutation")
        self.step("restore")
        return {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "seconds": round(time.time() - started, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "loadavg_end": os.getloadavg(),
                "mem_total_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            },
            "cold_method": self.cold_method,
            "versions": self.versions,
            "pannier_exe": next((t.exe for t in self.tools if isinstance(t, Pannier)), None),
            "pannier_commit": self.commit,
            "dataset": asdict(manifest),
            "mutation": asdict(mutation) | {"touched": mutation.touched},
            "mutated_fingerprint": mutated.fingerprint,
            "failed": {f"{t} {m}": why for (t, m), why in self.failed.items()},
            "records": [asdict(r) for r in self.records],
            "ratios": ratios(self.records, self.modes),
        }


# --------------------------------------------------------------------------- ratios and tables


def _best(records: list[Record], step: str, mode: str, key: str) -> tuple[str, float] | None:
    """The peer with the lowest ``key`` figure for ``step`` and ``mode``."""
    best: tuple[str, float] | None = None
    for r in records:
        if r.tool in PEERS and r.step == step and r.mode == mode and r.measure.returncode in (0, 1):
            v = float(getattr(r.measure, key))
            if best is None or v < best[1]:
                best = (r.tool, v)
    return best


def ratios(records: list[Record], modes: list[str]) -> list[dict[str, object]]:
    """pannier's figure over the better peer's, per step and mode, with the target for each."""
    out: list[dict[str, object]] = []

    def add(
        figure: str,
        mode: str,
        ours: float | None,
        best: tuple[str, float] | None,
        cpu: tuple[float, float] | None = None,
    ) -> None:
        ratio = None if ours is None or best is None or best[1] == 0 else ours / best[1]
        target = TARGETS[figure]
        out.append(
            {
                "figure": figure,
                "mode": mode,
                "pannier": ours,
                "peer": best[0] if best else None,
                "peer_value": best[1] if best else None,
                "ratio": None if ratio is None else round(ratio, 3),
                "target": target,
                "met": None if ratio is None else ratio <= target,
                # For the timed steps: pannier's CPU seconds over the lowest of the peers'.
                "cpu_ratio": round(cpu[0] / cpu[1], 3) if cpu and cpu[1] else None,
            }
        )

    def ours(step: str, mode: str) -> Record | None:
        for r in records:
            if r.tool == "pannier" and r.step == step and r.mode == mode:
                return r if r.measure.returncode == 0 else None
        return None

    for mode in modes:
        for step in STEPS:
            r = ours(step, mode)
            best_cpu = _best(records, step, mode, "cpu")
            cpu = (r.measure.cpu, best_cpu[1]) if r and best_cpu else None
            add(step, mode, r.measure.wall if r else None, _best(records, step, mode, "wall"), cpu)
        # Repository size after the last backup, and the largest peak RSS over all steps.
        sizes: dict[str, float] = {}
        rss: dict[str, float] = {}
        for r in records:
            if r.mode != mode:
                continue
            if r.step == "mutation":
                sizes[r.tool] = r.repo_bytes
            rss[r.tool] = max(rss.get(r.tool, 0), r.measure.peak_rss)
        for figure, table in (("repo size", sizes), ("peak RSS", rss)):
            peers = [(t, v) for t, v in table.items() if t in PEERS]
            best = min(peers, key=lambda tv: tv[1]) if peers else None
            mine = table.get("pannier") if ours("mutation", mode) else None
            add(figure, mode, mine, best)
    return out


def markdown(result: dict[str, object]) -> str:
    """The figures and the ratios as two Markdown tables."""
    lines = [
        "| step | mode | tool | wall s | CPU s | peak RSS MiB | repo MB | restore check |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    records = result["records"]
    assert isinstance(records, list)
    for r in records:
        m = r["measure"]
        check = ""
        if r["check"] is not None:
            check = "identical" if r["check"]["identical"] else "DIFFERENT"
        if m["returncode"] != 0:
            check = (check + f" exit {m['returncode']}").strip()
        lines.append(
            f"| {r['step']} | {r['mode']} | {r['tool']} | {m['wall']:.1f} | {m['cpu']:.1f} | "
            f"{m['peak_rss'] / 2**20:.0f} | {r['repo_bytes'] / 1e6:.0f} | {check} |"
        )
    lines += [
        "",
        "| figure | mode | pannier | better peer | ratio | target | met | CPU ratio |",
        "|---|---|---:|---|---:|---:|---|---:|",
    ]
    rs = result["ratios"]
    assert isinstance(rs, list)
    for q in rs:
        fig = q["figure"]
        unit = {"repo size": 1e6, "peak RSS": 2**20}.get(fig, 1.0)

        def fmt(v: object, unit: float = unit) -> str:
            return "n/a" if v is None else f"{float(v) / unit:.1f}"  # type: ignore[arg-type]

        peer = f"{q['peer']} {fmt(q['peer_value'])}" if q["peer"] else "n/a"
        ratio = "n/a" if q["ratio"] is None else f"{q['ratio']:.2f}"
        met = {None: "n/a", True: "yes", False: "no"}[q["met"]]
        cpu = q.get("cpu_ratio")
        cpu_text = "" if cpu is None else f"{cpu:.2f}"
        lines.append(
            f"| {fig} | {q['mode']} | {fmt(q['pannier'])} | {peer} | {ratio} | "
            f"<= {q['target']} | {met} | {cpu_text} |"
        )
    return "\n".join(lines) + "\n"


def docs_section(result: dict[str, Any]) -> str:
    """The results section of docs/performance.md: how the run went, then the two tables."""
    records = result["records"]
    loads = [r["measure"]["loadavg"] for r in records] or [0.0]
    d, mut = result["dataset"], result["mutation"]
    commit = (result.get("pannier_commit") or "unknown")[:10]
    versions = "; ".join(f"{k}: {v}" for k, v in result["versions"].items())
    names = list(result["versions"])
    tools = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
    at = f"; pannier at commit `{commit}`" if "pannier" in names else ""
    failed = result.get("failed") or {}
    checks = [r for r in records if r["check"] is not None]
    same = sum(1 for r in checks if r["check"]["identical"])
    lines = [
        f"Run of {result['started'].replace('T', ' ').rstrip('Z')} UTC, "
        f"{result['seconds'] / 60:.0f} minutes, {tools} in one run{at}. "
        f"{result['machine']['cpus']} CPUs shared with other work: load average "
        f"{min(loads):.1f} to {max(loads):.1f} at the start of the commands. Cold runs after "
        f"`{result['cold_method']}`.",
        "",
        f"Dataset: {d['bytes'] / 1e9:.2f} GB in {d['files']} files, {d['dirs']} directories, "
        f"{d['symlinks']} symlinks, {d['xattrs']} xattrs (fingerprint `{d['fingerprint'][:16]}`);"
        f" the mutation (seed {mut['seed']}) touched {mut['touched']} files and wrote "
        f"{mut['bytes_written'] / 1e6:.1f} MB. Versions: {versions}.",
        "",
        f"Restore check: {same} of {len(checks)} restores identical to the dataset"
        + ("." if same == len(checks) else " (the JSON result lists each difference)."),
    ]
    if failed:
        lines += ["", "Failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items()) + "."]
    lines += ["", markdown(result).rstrip("\n")]
    return "\n".join(lines) + "\n"


def update_docs(result: dict[str, Any], result_path: Path) -> None:
    """Put ``docs_section`` between the markers of docs/performance.md; redraw the plot."""
    import plot

    text = DOCS_PAGE.read_text()
    start = text.index(MARK_START) + len(MARK_START)
    end = text.index(MARK_END)
    DOCS_PAGE.write_text(text[:start] + "\n" + docs_section(result) + text[end:])
    plot.main([str(result_path), "-o", str(DOCS_PAGE.with_name("performance.png"))])
    say(f"docs: {DOCS_PAGE} updated")


def _git_commit() -> str | None:
    """The commit of this checkout (what the pannier under test was built from), or None."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def say(msg: str) -> None:
    """Print a progress line with the time of day."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the benchmark, print the tables, write the results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tools", default="pannier,restic,borg", type=lambda s: [t for t in s.split(",") if t]
    )
    parser.add_argument(
        "--modes", default="cold,warm", type=lambda s: [m for m in s.split(",") if m]
    )
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DEST)
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds after which one command is killed"
    )
    parser.add_argument("--keep", action="store_true", help="keep repositories afterwards")
    parser.add_argument(
        "--pannier",
        default=None,
        metavar="EXE",
        help="the pannier command (default: the one beside this Python)",
    )
    parser.add_argument(
        "--commit",
        default=None,
        help="the commit the pannier under test was built from (default: this checkout's HEAD)",
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="write the tables into docs/performance.md and redraw docs/performance.png",
    )
    parser.add_argument(
        "--report", type=Path, default=None, metavar="JSON", help="print the tables of a result"
    )
    args = parser.parse_args(argv)
    bad = [t for t in args.tools if t not in TOOLS] + [m for m in args.modes if m not in MODES]
    if bad:
        parser.error(f"unknown tool or mode: {', '.join(bad)}")
    if args.report is not None:
        result = json.loads(args.report.read_text())
        # Ratios are computed again, so an older result gets every column of today's table.
        records = [
            Record(r["tool"], r["step"], r["mode"], Measure(**r["measure"]), r["repo_bytes"])
            for r in result["records"]
        ]
        modes = [m for m in MODES if any(r.mode == m for r in records)]
        result["ratios"] = ratios(records, modes)
        print(markdown(result))
        if args.update_docs:
            update_docs(result, args.report)
        return 0
    Pannier.exe_override = args.pannier
    run = Run(args)
    if not run.tools:
        parser.error("none of the tools is installed (see scripts/install-bench-deps.sh)")
    result = run.execute()
    table = markdown(result)
    print()
    print(table)
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    text = json.dumps(result, indent=1) + "\n"
    saved = RESULTS_DIR / f"backup-{stamp}.json"
    saved.write_text(text)
    (RESULTS_DIR / "latest.json").write_text(text)
    (RESULTS_DIR / "latest.md").write_text(table)
    say(f"results: {saved}")
    if args.update_docs:
        update_docs(result, saved)
    # Cleaning up last: deleting the restored trees and repositories takes minutes here.
    for tool in run.tools:
        for mode in run.modes:
            shutil.rmtree(tool.home / f"restore-{mode}", ignore_errors=True)
    if not args.keep:
        shutil.rmtree(run.work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
