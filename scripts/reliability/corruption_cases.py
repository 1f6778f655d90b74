#!/usr/bin/env python3
"""Corruption cases: damage one repository object and prove pannier notices and loses
nothing it could have kept.

A case is one *object kind* (``pack``, ``meta``, ``index``, ``snapshot``, ``key``,
``config``, ``lock``), one *damage* (``flip``: one byte XORed at a seeded position;
``truncate``: cut at a seeded length; ``delete``), one encryption mode (``repokey`` or
``none``) and a seed. ``pack`` is a pack of file content; ``meta`` is a pack of tree blobs
(the metadata streams: the engine's tree and the ``meta/...`` streams); ``lock`` is a
stale lock left by a process that died.

Each case copies a prepared repository (two snapshots of a real dataset, the second after
changing it), damages the chosen object, then:

1. runs ``pannier check --read-data`` and records whether it failed *and* named the
   damaged object (``detected``), whether it said ``authentication`` or that an object
   does not match its name (``authenticated``), and the files it named as affected;
2. restores every snapshot into a fresh directory and compares each restored file with
   the file that was backed up: a file with different content is *wrong* (data lost, must
   be 0); a file not restored must be named on standard error (``unreported`` must be 0);
   a file check did not name as affected must be restored (``lost`` must be 0).

What must be detected: every damage except those that destroy nothing a reader can miss:
deleting a lock (nothing depends on it) and deleting a whole snapshot (indistinguishable
from ``pannier forget``: the repository stays consistent). For these ``expect_detect`` is
false and the case passes when check passes and every other snapshot restores.

Usage::

    python scripts/reliability/corruption_cases.py --seeds 3 --json corruption.json

It prints one line per case and the figures, and writes them as JSON to the path given
with ``--json``. The exit code is 0 when every case passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.reliability.conftest import (  # noqa: E402
    PASSWORD,
    MiB,
    backup,
    init_repo,
    make_dataset,
    mutate_dataset,
    pannier_env,
    run_pannier,
    tree_facts,
)

KINDS = ("pack", "meta", "index", "snapshot", "key", "config", "lock")
DAMAGES = ("flip", "truncate", "delete")
ENCRYPTIONS = ("repokey", "none")

#: Damages after which the repository is still consistent, so check has nothing to report:
#: a lock nobody needs, a snapshot removed whole (as ``forget`` does), an index whose packs
#: are found again from their own headers (check warns that they are not indexed).
NOT_DETECTABLE = {("lock", "delete"), ("snapshot", "delete"), ("index", "delete")}


@dataclass
class Prepared:
    """A repository with two snapshots, and what each snapshot must restore to."""

    repo: Path
    encryption: str
    facts: dict[str, dict[str, tuple[Any, ...]]]
    lock_name: str


@dataclass
class CaseResult:
    """The outcome of one case; ``passed`` sums it up."""

    kind: str
    damage: str
    encryption: str
    seed: int
    victim: str = ""
    original_repo: str = ""
    expect_detect: bool = True
    detected: bool = False
    authenticated: bool = False
    check_exit: int = -1
    affected: list[str] = field(default_factory=list)
    files_expected: int = 0
    files_restored: int = 0
    wrong: int = 0
    unreported: int = 0
    lost: int = 0
    tracebacks: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """Whether the case met every rule in the module docstring."""
        return not self.problems


def _file_paths(facts: dict[str, tuple[Any, ...]]) -> set[str]:
    return {rel for rel, f in facts.items() if f[0] == "file"}


def _plant_stale_lock(repo: Path, url: str) -> str:
    """Take a lock in a process that then dies without releasing it; return its name."""
    before = {p.name for p in repo.glob("lock-*")}
    code = (
        "import os\n"
        "from pannier.backend_registry import get_backend\n"
        "from pannier.repo.repository import Repository\n"
        f"r = Repository.open(get_backend({url!r}), {PASSWORD!r})\n"
        "r.lock(exclusive=False).acquire()\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=pannier_env(), timeout=120)
    made = sorted({p.name for p in repo.glob("lock-*")} - before)
    assert len(made) == 1, made
    return made[0]


def prepare(work: Path, encryption: str, *, seed: int = 0, data_mib: int = 4) -> Prepared:
    """Make the dataset, the repository, two snapshots and a stale lock under ``work``."""
    data = make_dataset(work / "data", seed=seed, total_bytes=data_mib * MiB)
    handle = init_repo(work / f"repo-{encryption}", encryption=encryption)
    facts: dict[str, dict[str, tuple[Any, ...]]] = {}
    first = backup(handle.url, data)
    facts[first["snapshot_id"]] = tree_facts(data)
    mutate_dataset(data, seed=seed + 1, new_bytes=MiB // 2)
    second = backup(handle.url, data)
    facts[second["snapshot_id"]] = tree_facts(data)
    lock_name = _plant_stale_lock(handle.path, handle.url)
    return Prepared(handle.path, encryption, facts, lock_name)


def _pack_kinds(repo: Path) -> dict[str, set[int]]:
    """Pack name -> the blob kinds its header lists (read through the repository API)."""
    from pannier.backend_registry import get_backend
    from pannier.repo.pack import read_pack_header
    from pannier.repo.repository import Repository

    backend = get_backend(repo.as_uri())
    r = Repository.open(backend, PASSWORD)
    try:
        out: dict[str, set[int]] = {}
        for p in sorted(repo.glob("data-*")):
            entries = read_pack_header(r.backend, p.name, p.stat().st_size, r.cipher)
            out[p.name] = {e.kind for e in entries}
        return out
    finally:
        r.close()
        backend.close()


def choose_victim(prep: Prepared, repo: Path, kind: str, rng: random.Random) -> Path:
    """The object of ``kind`` the case damages, chosen by ``rng``."""
    if kind in ("pack", "meta"):
        kinds = _pack_kinds(repo)
        want = 0 if kind == "pack" else 1
        names = sorted(n for n, k in kinds.items() if want in k)
    elif kind == "lock":
        names = [prep.lock_name]
    elif kind == "config":
        names = ["config"]
    else:
        names = sorted(p.name for p in repo.glob(f"{kind}-*"))
    if not names:
        raise RuntimeError(f"the repository has no {kind} object to damage")
    return repo / rng.choice(names)


def damage(path: Path, how: str, rng: random.Random) -> str:
    """Damage the file ``path`` (``flip``, ``truncate`` or ``delete``); describe it."""
    data = path.read_bytes()
    if how == "delete":
        path.unlink()
        return "deleted"
    if how == "truncate":
        cut = rng.randrange(len(data))
        path.write_bytes(data[:cut])
        return f"truncated from {len(data)} to {cut} bytes"
    pos = rng.randrange(len(data))
    mask = rng.randrange(1, 256)
    buf = bytearray(data)
    buf[pos] ^= mask
    path.write_bytes(bytes(buf))
    return f"byte {pos} of {len(data)} XOR {mask:#04x}"


_AFFECTED = re.compile(r"^affected: ([0-9a-f]+):(.*) \(blob [0-9a-f]+\)$")


def run_case(prep: Prepared, kind: str, how: str, seed: int, work: Path) -> CaseResult:
    """Run one case in the empty directory ``work`` (see the module docstring)."""
    t0 = time.monotonic()
    res = CaseResult(kind, how, prep.encryption, seed)
    res.original_repo = str(prep.repo)
    res.expect_detect = (kind, how) not in NOT_DETECTABLE
    if how == "flip" and kind in ("lock", "config") and prep.encryption == "none":
        # Without encryption nothing authenticates a lock or the config's settings: a
        # flip there may go unnoticed (it must still lose nothing).
        res.expect_detect = False
    rng = random.Random(f"{kind}/{how}/{prep.encryption}/{seed}")
    repo = work / "repo"
    shutil.copytree(prep.repo, repo)
    url = repo.as_uri()
    victim = choose_victim(prep, repo, kind, rng)
    res.victim = f"{victim.name}: {damage(victim, how, rng)}"
    try:
        _check(res, url, victim.name)
        if kind == "lock":
            # A lock that does not open cannot be proven stale: it blocks every command
            # until removed. The way out the error message gives must work.
            run_pannier("unlock", "--remove-all", "-r", url)
        _restores(res, prep, url, work)
    except Exception:
        res.problems.append("harness error: " + traceback.format_exc(limit=3))
    res.seconds = round(time.monotonic() - t0, 2)
    return res


def _check(res: CaseResult, url: str, victim: str) -> None:
    done = run_pannier("check", "-r", url, "--read-data")
    text = done.stdout + done.stderr
    res.check_exit = done.returncode
    res.tracebacks += text.count("Traceback (most recent call last)")
    for line in done.stdout.splitlines():
        m = _AFFECTED.match(line.strip())
        if m:
            res.affected.append(f"{m.group(1)}:{m.group(2)}")
    short = victim.removeprefix("snapshot-")[:8]
    named = victim in text or (victim.startswith("snapshot-") and f"snapshot {short}" in text)
    if victim.startswith("key-"):
        # With one password, a damaged key and a wrong password look alike: no key opens.
        named = named or "no key" in text
    res.detected = done.returncode != 0 and named
    res.authenticated = any(
        word in text for word in ("authentication", "does not match its name", "unreadable")
    )
    if res.expect_detect and not res.detected:
        res.problems.append(f"check did not name {victim} (exit {done.returncode}): {text!r}")
        if victim.startswith("key-"):
            res.problems.append(_key_field_changed(res, url, victim))
    if not res.expect_detect and done.returncode != 0 and not res.detected:
        res.problems.append(f"check failed on a consistent repository: {text!r}")
    if res.tracebacks:
        res.problems.append("check printed a traceback")
    _one_line_errors(res, "check", done)


def _key_field_changed(res: CaseResult, url: str, victim: str) -> str:
    """Which field of a damaged key object that still opens was changed."""
    import msgpack

    original = Path(res.original_repo) / victim
    damaged = Path(url.removeprefix("file://")) / victim
    try:
        before = msgpack.unpackb(original.read_bytes(), raw=False)
        after = msgpack.unpackb(damaged.read_bytes(), raw=False)
    except Exception as e:
        return f"the damaged key does not decode ({e})"
    changed = sorted(str(k) for k in set(before) | set(after) if before.get(k) != after.get(k))
    return f"the flip changed the key's field(s) {changed} and the key still opened"


def _one_line_errors(res: CaseResult, what: str, done: subprocess.CompletedProcess[str]) -> None:
    """A failed command says ``pannier: error: ...``, and stderr holds nothing else than
    ``pannier:`` lines."""
    lines = done.stderr.strip().splitlines()
    if done.returncode != 0 and not any(x.startswith("pannier: error: ") for x in lines):
        res.problems.append(f"{what} failed without a 'pannier: error:' line: {done.stderr!r}")
    if any(not x.startswith("pannier: ") for x in lines):
        res.problems.append(f"{what} wrote stray lines to stderr: {done.stderr!r}")


def _restores(res: CaseResult, prep: Prepared, url: str, work: Path) -> None:
    affected = set(res.affected)
    for snap_id, facts in prep.facts.items():
        target = work / f"restore-{snap_id[:8]}"
        done = run_pannier("restore", snap_id, "-r", url, "--target", str(target))
        res.tracebacks += done.stderr.count("Traceback (most recent call last)")
        files = _file_paths(facts)
        res.files_expected += len(files)
        got = tree_facts(target) if target.exists() else {}
        snapshot_gone = res.kind == "snapshot" and snap_id in res.victim
        # A damaged key, config or tree makes files unrestorable only when the damage
        # counts: an unnoticed flip (an unauthenticated field) must lose nothing.
        damaged = res.check_exit != 0
        unrestorable = (res.kind in ("key", "config", "meta") and damaged) or snapshot_gone
        # A hard-link group shares one content: check names the member that holds it.
        groups = {rel: facts[rel][5] or rel for rel in files}
        mine = [a.removeprefix(f"{snap_id[:8]}:/") for a in affected if a.startswith(snap_id[:8])]
        hit_groups = {groups[rel] for rel in mine if rel in groups}
        for rel in sorted(files):
            want = facts[rel]
            have = got.get(rel)
            if have is None:
                named = ("/" + rel) in done.stderr or unrestorable
                if done.returncode == 0 or not named:
                    res.unreported += 1
                    res.problems.append(f"{snap_id[:8]}:{rel} not restored and not reported")
                named_by_check = f"{snap_id[:8]}:/{rel}" in affected or groups[rel] in hit_groups
                if not named_by_check and not unrestorable:
                    res.lost += 1
                    res.problems.append(f"{snap_id[:8]}:{rel} unaffected but not restored")
                continue
            res.files_restored += 1
            if have[0] != "file" or have[2:4] != want[2:4]:
                res.wrong += 1
                res.problems.append(f"{snap_id[:8]}:{rel} restored with wrong content")
        _one_line_errors(res, "restore", done)
        if unrestorable and not snapshot_gone and res.kind != "meta" and done.returncode == 0:
            res.problems.append(f"restore of {snap_id[:8]} succeeded without a usable {res.kind}")
    if res.tracebacks:
        res.problems.append("restore printed a traceback")


def summarize(results: list[CaseResult]) -> dict[str, Any]:
    """The figures of a run."""
    must = [r for r in results if r.expect_detect]
    enc = [r for r in results if r.encryption == "repokey" and r.damage == "flip"]
    return {
        "cases_tried": len(results),
        "cases_passed": sum(r.passed for r in results),
        "detectable_cases": len(must),
        "detected": sum(r.detected for r in must),
        "encrypted_flips": len(enc),
        "encrypted_flips_authenticated": sum(r.authenticated for r in enc),
        "files_compared": sum(r.files_expected for r in results),
        "files_restored": sum(r.files_restored for r in results),
        "wrong_content": sum(r.wrong for r in results),
        "unaffected_not_restored": sum(r.lost for r in results),
        "not_restored_not_reported": sum(r.unreported for r in results),
        "tracebacks": sum(r.tracebacks for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the cases the options select; print and write the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=1, help="seeds per kind, damage and mode")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--damages", default=",".join(DAMAGES))
    ap.add_argument("--encryptions", default=",".join(ENCRYPTIONS))
    ap.add_argument("--data-mib", type=int, default=4)
    ap.add_argument("--json", type=Path, help="write the figures and cases here")
    opts = ap.parse_args(argv)
    results: list[CaseResult] = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pannier-corruption-") as tmp:
        base = Path(tmp)
        for encryption in opts.encryptions.split(","):
            prep = prepare(base / f"prep-{encryption}", encryption, data_mib=opts.data_mib)
            for kind in opts.kinds.split(","):
                if kind == "key" and encryption == "none":
                    continue  # a repository without encryption has no key object
                for how in opts.damages.split(","):
                    for seed in range(opts.seeds):
                        work = base / f"case-{encryption}-{kind}-{how}-{seed}"
                        work.mkdir()
                        r = run_case(prep, kind, how, seed, work)
                        results.append(r)
                        shutil.rmtree(work, ignore_errors=True)
                        mark = "ok  " if r.passed else "FAIL"
                        print(
                            f"{mark} {encryption:7} {kind:8} {how:8} seed {seed}: {r.victim}; "
                            f"check exit {r.check_exit}, detected {r.detected}, "
                            f"restored {r.files_restored}/{r.files_expected}, wrong {r.wrong}",
                            flush=True,
                        )
                        for p in r.problems:
                            print(f"     {p}", flush=True)
    figures = summarize(results)
    figures["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(figures, indent=2))
    if opts.json:
        opts.json.write_text(
            json.dumps(
                {"figures": figures, "cases": [asdict(r) | {"passed": r.passed} for r in results]},
                indent=2,
            )
        )
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PANNIER_PASSWORD", PASSWORD)
    sys.exit(main())
