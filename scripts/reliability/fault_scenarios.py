#!/usr/bin/env python3
"""Storage-fault scenarios: back up through a failing backend and prove nothing is lost.

Every scenario runs the real ``pannier`` command line on a real dataset; faults come from
the ``faulty+`` prefix backend (seeded, reproducible) or from a real SFTP server (OpenSSH
``sshd``, started privately for the scenario) stopped and restarted during a backup.

* ``transient``: 10 % of all backend calls fail with a transient error
  (``fail-rate=0.1``): backup and restore succeed through retries, the restore is
  identical, ``check --read-data`` passes.
* ``rate-limit``: the first three calls are rate-limited with ``retry-after`` seconds;
  the backup succeeds and takes at least the waits asked for (the extra time over an
  unlimited run is measured and reported).
* ``permanent``: the K-th put fails with a permanent error, for every K a clean backup
  makes: exit code 1, one ``pannier: error:`` line naming the failure, no snapshot, no
  temporary or lock object left, ``check --read-data`` passes, and the next backup
  completes and restores identically.
* ``short-upload``: the K-th put delivers half of the data and fails: with retries the
  backup succeeds; without retries it fails cleanly; either way no truncated object is
  visible or indexed (``check --read-data`` passes).
* ``bad-read``: the k-th get of a restore (k = 1..6) returns one flipped byte and
  reports nothing, as a bad disk would: the restore never writes wrong content, and names
  every file it leaves out.
* ``server-restart``: the SFTP server (and every session it serves) is killed during a
  backup and started again two seconds later: the backup completes or fails with a
  one-line error, and a later backup, ``check --read-data`` and a restore all pass.

Usage::

    python scripts/reliability/fault_scenarios.py --seeds 5 --json faults.json
    python scripts/reliability/fault_scenarios.py --scenarios transient,permanent --seeds 2

It prints one line per trial and the figures, and writes them as JSON to the path given
with ``--json``. The exit code is 0 when every trial passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability.conftest import (  # noqa: E402
    PASSWORD,
    MiB,
    init_repo,
    json_lines,
    make_dataset,
    mutate_dataset,
    ok_pannier,
    run_pannier,
    start_pannier,
    tree_facts,
)

SCENARIOS = (
    "transient",
    "rate-limit",
    "permanent",
    "short-upload",
    "bad-read",
    "server-restart",
)


@dataclass
class Trial:
    """One run of a scenario; ``passed`` when ``problems`` is empty."""

    scenario: str
    seed: int
    detail: str = ""
    outcome: str = ""
    figures: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether every rule of the scenario held."""
        return not self.problems


# --------------------------------------------------------------------------- checks


def snapshot_ids(url: str) -> list[str]:
    """The ids of the snapshots in the repository ``url``."""
    out = json.loads(ok_pannier("snapshots", "-r", url, "--json").stdout)
    return sorted(s.get("id") or s.get("snapshot_id") for s in out)


def leftovers(repo: Path) -> list[str]:
    """Temporary files of uploads and lock objects left in the ``file://`` repository."""
    return sorted(p.name for p in repo.rglob("*") if p.name.startswith((".pannier-tmp-", "lock-")))


def verify_repo(t: Trial, url: str, data: Path, work: Path, *, expect_latest: bool) -> None:
    """``check --read-data`` passes and, with ``expect_latest``, the latest snapshot
    restores identical to ``data``."""
    done = run_pannier("check", "-r", url, "--read-data")
    if done.returncode != 0:
        t.problems.append(f"check --read-data failed: {done.stdout}{done.stderr}")
    if expect_latest:
        target = work / f"restore-{len(list(work.glob('restore-*')))}"
        done = run_pannier("restore", "latest", "-r", url, "--target", str(target))
        if done.returncode != 0:
            t.problems.append(f"restore failed: {done.stderr}")
        elif tree_facts(target) != tree_facts(data):
            want, got = tree_facts(data), tree_facts(target)
            diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
            t.problems.append(f"restore differs from the data: {diff[:5]}")


def clean_failure(t: Trial, done: subprocess.CompletedProcess[str], what: str) -> None:
    """A failed command: exit code 1 and exactly one ``pannier: error:`` line."""
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    errors = [x for x in lines if x.startswith("pannier: error: ")]
    if done.returncode != 1:
        t.problems.append(f"{what}: exit {done.returncode}, expected 1: {done.stderr!r}")
    if len(errors) != 1 or "Traceback" in done.stderr:
        t.problems.append(f"{what}: not one clean error line: {done.stderr!r}")


def run_backup(url: str, data: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``pannier backup`` and return it with its wall time."""
    t0 = time.monotonic()
    done = run_pannier("backup", str(data), "-r", url, "--json", *extra)
    return done, time.monotonic() - t0


def summary(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The summary object of a ``backup --json`` run (empty when there is none)."""
    objs = [o for o in json_lines(done.stdout) if o.get("message_type") == "summary"]
    return objs[0] if objs else {}


# --------------------------------------------------------------------------- scenarios


def fresh(work: Path, seed: int, data_mib: int) -> tuple[Path, Path, str]:
    """A dataset and an empty encrypted repository under ``work``."""
    data = make_dataset(work / "data", seed=seed, total_bytes=data_mib * MiB)
    handle = init_repo(work / "repo")
    return data, handle.path, handle.url


def transient(t: Trial, work: Path, data_mib: int) -> None:
    """10 % of the calls fail; backup and restore go through."""
    data, repo, url = fresh(work, t.seed, data_mib)
    faulty = f"faulty+{url}?fail-rate=0.1&seed={t.seed}&retry-delay=0.01&retries=8"
    t.detail = faulty.replace(str(repo), "REPO")
    for round_ in range(2):
        done, _ = run_backup(faulty, data)
        if done.returncode != 0:
            t.problems.append(f"backup {round_ + 1} failed: {done.stderr}")
            return
        mutate_dataset(data, seed=t.seed + 10 + round_) if round_ == 0 else None
    target = work / "faulty-restore"
    done = run_pannier("restore", "latest", "-r", faulty, "--target", str(target))
    if done.returncode != 0:
        t.problems.append(f"restore through faults failed: {done.stderr}")
    # The second backup ran after the data changed once more; compare with the data now.
    elif tree_facts(target) != tree_facts(data):
        t.problems.append("restore through faults differs from the data")
    if len(snapshot_ids(url)) != 2:
        t.problems.append(f"expected 2 snapshots, found {snapshot_ids(url)}")
    verify_repo(t, url, data, work, expect_latest=True)
    t.outcome = "completed through retries"


def rate_limit(t: Trial, work: Path, data_mib: int) -> None:
    """Three rate limits in a row: the backup waits at least what they ask for."""
    wait = round(0.4 + 0.1 * (t.seed % 4), 2)
    data, repo, url = fresh(work, t.seed, data_mib)
    base = work / "baseline"
    shutil.copytree(repo, base)
    _, plain = run_backup(f"faulty+{base.as_uri()}?retry-delay=0", data)
    limited = f"faulty+{url}?rate-limit=1,2,3&retry-after={wait}&retry-delay=0"
    t.detail = limited.replace(str(repo), "REPO")
    done, secs = run_backup(limited, data)
    if done.returncode != 0:
        t.problems.append(f"backup failed: {done.stderr}")
        return
    extra = secs - plain
    t.figures = {"asked_s": round(3 * wait, 3), "extra_s": round(extra, 3)}
    t.outcome = f"asked {3 * wait:.2f}s of waits, took {extra:.2f}s longer than unlimited"
    # Sleeping is a lower bound: the run cannot be shorter than the waits asked for.
    if secs < 3 * wait:
        t.problems.append(f"backup took {secs:.2f}s, less than the {3 * wait:.2f}s asked")
    verify_repo(t, url, data, work, expect_latest=True)


def count_puts(work: Path, data: Path) -> int:
    """How many puts a clean first backup of ``data`` makes (counted on a scratch
    repository through a logging ``faulty+`` that fails nothing)."""
    scratch = init_repo(work / "count-repo")
    done, _ = run_backup(f"faulty+{scratch.url}", data)
    assert done.returncode == 0, done.stderr
    # Every object the backup wrote is one put (config and key objects come from init);
    # the lock is put and deleted, so add one.
    made = [p for p in scratch.path.rglob("*") if p.is_file()]
    puts = sum(1 for p in made if p.name != "config" and not p.name.startswith("key-"))
    shutil.rmtree(scratch.path)
    return puts + 1


def permanent(t: Trial, work: Path, data_mib: int, k: int) -> None:
    """The k-th put fails permanently: a clean failure with nothing half-written."""
    data, repo, url = fresh(work, t.seed, data_mib)
    first = ok_pannier("backup", str(data), "-r", url, "--json")
    before = snapshot_ids(url)
    mutate_dataset(data, seed=t.seed + 100)
    faulty = f"faulty+{url}?fail-put={k}&fail-mode=permanent"
    t.detail = faulty.replace(str(repo), "REPO")
    done, _ = run_backup(faulty, data)
    if done.returncode == 0:
        # Every instance counts its own puts: a k beyond what one instance puts is a
        # backup without a fault.
        t.outcome = "no fault reached (fewer puts)"
        verify_repo(t, url, data, work, expect_latest=True)
        return
    clean_failure(t, done, "backup")
    if "injected failure" not in done.stderr:
        t.problems.append(f"the error does not name the failure: {done.stderr!r}")
    if snapshot_ids(url) != before:
        t.problems.append("a failed backup left a snapshot")
    if leftovers(repo):
        t.problems.append(f"left behind: {leftovers(repo)}")
    verify_repo(t, url, data, work, expect_latest=False)
    again = run_pannier("backup", str(data), "-r", url, "--json")
    if again.returncode != 0:
        t.problems.append(f"the next backup failed: {again.stderr}")
    verify_repo(t, url, data, work, expect_latest=True)
    del first
    t.outcome = "clean failure; next backup restored identically"


def short_upload(t: Trial, work: Path, data_mib: int, k: int) -> None:
    """The k-th put is cut short: retried (or a clean failure), never indexed."""
    data, repo, url = fresh(work, t.seed, data_mib)
    retries = 1 if t.seed % 2 else 5
    faulty = f"faulty+{url}?short-upload={k}&retries={retries}&retry-delay=0.01"
    t.detail = faulty.replace(str(repo), "REPO")
    done, _ = run_backup(faulty, data)
    if retries > 1:
        if done.returncode != 0:
            t.problems.append(f"backup with retries failed: {done.stderr}")
        t.outcome = "retried, completed"
    elif done.returncode == 0:
        t.outcome = "no fault reached (fewer puts)"
    else:
        clean_failure(t, done, "backup")
        if snapshot_ids(url):
            t.problems.append("a failed backup left a snapshot")
        t.outcome = "clean failure without retries"
    if leftovers(repo):
        t.problems.append(f"left behind: {leftovers(repo)}")
    verify_repo(t, url, data, work, expect_latest=done.returncode == 0)
    if done.returncode != 0:
        ok_pannier("backup", str(data), "-r", url)
        verify_repo(t, url, data, work, expect_latest=True)


def bad_read(t: Trial, work: Path, data_mib: int, k: int) -> None:
    """The k-th get of a restore returns one flipped byte, silently (a bad disk): no
    file is written with wrong content, and a file left out is reported."""
    data, repo, url = fresh(work, t.seed, data_mib)
    ok_pannier("backup", str(data), "-r", url)
    want = tree_facts(data)
    faulty = f"faulty+{url}?flip-read={k}&seed={t.seed}"
    t.detail = faulty.replace(str(repo), "REPO")
    target = work / "out"
    done = run_pannier("restore", "latest", "-r", faulty, "--target", str(target))
    got = tree_facts(target) if target.exists() else {}
    wrong = [r for r, f in got.items() if f[0] == "file" and want.get(r, f)[:4] != f[:4]]
    missing = [r for r, f in want.items() if f[0] == "file" and r not in got]
    if wrong:
        t.problems.append(f"restored with wrong content: {wrong}")
    if done.returncode == 0 and missing:
        t.problems.append(f"exit 0 but not restored: {missing}")
    if done.returncode != 0:
        # A flipped read of the config, the key or the only snapshot stops the restore
        # before it writes anything: with one line, whatever its exit code (a damaged
        # key reads as a wrong password: 12; no readable snapshot for 'latest': 2).
        errors = [x for x in done.stderr.splitlines() if x.startswith("pannier: error: ")]
        if len(errors) != 1 or "Traceback" in done.stderr:
            t.problems.append(f"restore: not one clean error line: {done.stderr!r}")
        unreported = [r for r in missing if "/" + r not in done.stderr]
        if unreported and got:
            t.problems.append(f"not restored and not reported: {unreported}")
    t.figures = {"missing": len(missing)}
    t.outcome = "restored identically" if done.returncode == 0 else f"{len(missing)} files reported"
    verify_repo(t, url, data, work, expect_latest=True)


# --------------------------------------------------------------------------- a real server


class PrivateSshd:
    """An OpenSSH server of one scenario, started with scripts/servers/sshd.sh in a
    private servers directory, that can be killed (with every session) and restarted on
    the same port with the same keys."""

    def __init__(self, servers_dir: Path) -> None:
        self.servers_dir = servers_dir
        self.env = {**os.environ, "PANNIER_SERVERS_DIR": str(servers_dir)}
        self.script = ROOT / "scripts" / "servers" / "sshd.sh"
        self.facts: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the servers with the project's script and read their facts."""
        subprocess.run(
            ["bash", str(self.script), "start"],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        for line in (self.servers_dir / "sshd.env").read_text().splitlines():
            key, _, value = line.partition("=")
            self.facts[key] = value

    @property
    def config(self) -> Path:
        return self.servers_dir / "sshd" / "sshd_config"

    def url(self, name: str) -> str:
        """An sftp:// URL of the directory ``name`` under the server's root."""
        f = self.facts
        query = (
            f"key-file={f['PANNIER_TEST_SFTP_KEY_FILE']}"
            f"&known-hosts={f['PANNIER_TEST_SFTP_KNOWN_HOSTS']}"
        )
        return (
            f"sftp://{f['PANNIER_TEST_SFTP_USER']}@127.0.0.1:{f['PANNIER_TEST_SFTP_PORT']}/"
            f"{f['PANNIER_TEST_SFTP_ROOT']}/{name}?{query}"
        )

    def _sshd_pids(self) -> list[int]:
        """The listening sshd of this config and every process descending from it."""
        roots = []
        pidfile = self.servers_dir / "sshd" / "sshd.pid"
        if pidfile.exists():
            roots.append(int(pidfile.read_text().split()[0]))
        if self.proc is not None and self.proc.poll() is None:
            roots.append(self.proc.pid)
        children: dict[int, list[int]] = {}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(ppid, []).append(int(d.name))
        out, todo = [], list(roots)
        while todo:
            pid = todo.pop()
            if pid not in out:
                out.append(pid)
                todo.extend(children.get(pid, []))
        return out

    def kill(self) -> None:
        """Kill the server and every session it serves (a crash of the machine's sshd)."""
        for pid in self._sshd_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        """Start sshd again with the same configuration (same port, keys and root)."""
        log = open(self.servers_dir / "sshd" / "sshd.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["/usr/sbin/sshd", "-D", "-e", "-f", str(self.config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        port = int(self.facts["PANNIER_TEST_SFTP_PORT"])
        deadline = time.monotonic() + 20
        import socket

        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("sshd did not come back")

    def stop(self) -> None:
        """Stop everything this server started."""
        self.kill()
        subprocess.run(
            ["bash", str(self.script), "stop"], env=self.env, capture_output=True, timeout=60
        )


def server_restart(t: Trial, work: Path, data_mib: int, sshd: PrivateSshd) -> None:
    """Kill the SFTP server during a backup, start it again; nothing is lost."""
    data = make_dataset(work / "data", seed=t.seed, total_bytes=data_mib * MiB)
    url = sshd.url(f"repo-{t.seed}")
    ok_pannier("init", "-r", url)
    # An upload limit (16 MiB at 4 MiB/s: about 4 s) and a small per-call delay keep the
    # backup running long enough to be cut mid-way, however fast the machine is.
    slow = f"faulty+{url}&delay=0.02&bwlimit-up=4M&retry-delay=0.5&retry-max-delay=2"
    t.detail = f"kill sshd after {0.5 + 0.25 * (t.seed % 5):.2f}s, restart after 2s"
    proc = start_pannier("backup", str(data), "-r", slow, "--json")
    time.sleep(0.5 + 0.25 * (t.seed % 5))
    if proc.poll() is not None:
        t.problems.append("the backup ended before the server was killed: not a trial")
    sshd.kill()
    time.sleep(2.0)
    sshd.restart()
    out, err = proc.communicate(timeout=600)
    stderr = err.decode(errors="replace")
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out.decode(), stderr)
    if proc.returncode == 0:
        t.outcome = "completed across the restart"
    else:
        clean_failure(t, done, "backup")
        t.outcome = f"failed cleanly: ...{stderr.strip().splitlines()[-1][-120:]}"
        if snapshot_ids(url):
            t.problems.append("a failed backup left a snapshot")
        ok_pannier("unlock", "-r", url)
    again = run_pannier("backup", str(data), "-r", url)
    if again.returncode != 0:
        t.problems.append(f"the backup after the restart failed: {again.stderr}")
    verify_repo(t, url, data, work, expect_latest=True)


# --------------------------------------------------------------------------- running


def run_trials(scenario: str, seeds: int, base: Path, data_mib: int) -> list[Trial]:
    """Every trial of ``scenario``: ``seeds`` seeds (for permanent and short-upload, one
    trial per put position of a clean backup, across seeds)."""
    trials: list[Trial] = []

    def one(seed: int, fn: Callable[[Trial, Path], None]) -> None:
        t = Trial(scenario, seed)
        work = base / f"{scenario}-{seed}-{len(trials)}"
        work.mkdir(parents=True)
        t0 = time.monotonic()
        try:
            fn(t, work)
        except Exception:
            t.problems.append("harness error: " + traceback.format_exc(limit=4))
        t.seconds = round(time.monotonic() - t0, 2)
        trials.append(t)
        shutil.rmtree(work, ignore_errors=True)
        mark = "ok  " if t.passed else "FAIL"
        print(f"{mark} {scenario:14} seed {seed}: {t.detail} -> {t.outcome}", flush=True)
        for p in t.problems:
            print(f"     {p[:2000]}", flush=True)

    if scenario == "transient":
        for s in range(seeds):
            one(s, lambda t, w: transient(t, w, data_mib))
    elif scenario == "rate-limit":
        for s in range(seeds):
            one(s, lambda t, w: rate_limit(t, w, data_mib))
    elif scenario in ("permanent", "short-upload"):
        probe = base / "probe"
        probe.mkdir(parents=True, exist_ok=True)
        puts = count_puts(probe, make_dataset(probe / "data", seed=0, total_bytes=data_mib * MiB))
        shutil.rmtree(probe, ignore_errors=True)
        ks = list(range(2 if scenario == "permanent" else 1, puts + 1))
        fn = permanent if scenario == "permanent" else short_upload
        for s in range(seeds):
            for k in ks:
                one(s, lambda t, w, k=k: fn(t, w, data_mib, k))  # type: ignore[misc]
    elif scenario == "bad-read":
        for s in range(seeds):
            for k in range(1, 7):
                one(s, lambda t, w, k=k: bad_read(t, w, data_mib, k))  # type: ignore[misc]
    elif scenario == "server-restart":
        if not Path("/usr/sbin/sshd").exists():
            raise SystemExit("server-restart needs OpenSSH's sshd (scripts/install-system-deps.sh)")
        sshd = PrivateSshd(base / "servers")
        sshd.start()
        try:
            for s in range(seeds):
                one(s, lambda t, w: server_restart(t, w, max(data_mib, 16), sshd))
        finally:
            sshd.stop()
    return trials


def figures(trials: list[Trial]) -> dict[str, Any]:
    """Trials run and passed per scenario, with the measured rate-limit waits."""
    out: dict[str, Any] = {}
    for name in SCENARIOS:
        mine = [t for t in trials if t.scenario == name]
        if mine:
            out[name] = {
                "trials": len(mine),
                "passed": sum(t.passed for t in mine),
                "outcomes": sorted({t.outcome.split(":")[0] for t in mine}),
            }
    limited = [t for t in trials if t.scenario == "rate-limit" and t.figures]
    if limited:
        out["rate-limit"]["asked_s"] = [t.figures["asked_s"] for t in limited]
        out["rate-limit"]["extra_s"] = [t.figures["extra_s"] for t in limited]
    out["all"] = {"trials": len(trials), "passed": sum(t.passed for t in trials)}
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios the options select; print and write the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--data-mib", type=int, default=4)
    ap.add_argument("--json", type=Path, help="write the figures and trials here")
    opts = ap.parse_args(argv)
    t0 = time.monotonic()
    trials: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="pannier-faults-") as tmp:
        for name in opts.scenarios.split(","):
            trials += run_trials(name, opts.seeds, Path(tmp) / name, opts.data_mib)
    figs = figures(trials)
    figs["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(figs, indent=2))
    if opts.json:
        opts.json.write_text(
            json.dumps(
                {"figures": figs, "trials": [asdict(t) | {"passed": t.passed} for t in trials]},
                indent=2,
            )
        )
    return 0 if all(t.passed for t in trials) else 1


if __name__ == "__main__":
    os.environ.setdefault("PANNIER_PASSWORD", PASSWORD)
    sys.exit(main())
