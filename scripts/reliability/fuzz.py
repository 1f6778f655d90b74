#!/usr/bin/env python3
"""Long fuzzing run of pannier's parsers of untrusted input.

Drives the targets of ``tests/reliability/test_fuzz.py`` (tree stream, metadata stream,
index, pack, payload, snapshot, config, key and lock decoders, and the backend URL
parser) two ways:

* **hypothesis**: raw bytes and structured msgpack documents inside valid framing,
  ``--examples`` of each per target (random seeds, no example database);
* **atheris** (libFuzzer, coverage-guided, when ``import atheris`` works): each target in
  its own subprocess for ``--atheris-seconds``, pannier's modules instrumented for
  coverage, starting from a corpus of valid objects written by pannier's own writers.

The contract checked is the suites': bad input ends in a ``PannierError`` with a message,
anything else (a crash, a MemoryError, an OverflowError...) is a finding. Prints the
figures and writes a JSON summary to ``--json``; exits 1 when anything was found.

    python scripts/reliability/fuzz.py --examples 5000 --atheris-seconds 60 \\
        --json build/reliability/fuzz.json
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------- hypothesis


def run_hypothesis(target: str, examples: int) -> dict[str, Any]:
    """``examples`` raw and ``examples`` structured inputs for ``target``; the counts and
    the first finding of each mode."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    from tests.reliability import test_fuzz as tf

    result: dict[str, Any] = {"target": target, "inputs": 0, "clean_errors": 0, "findings": []}
    strategies = {
        "raw": st.binary(max_size=2048),
        "structured": tf.structured(target) if target != "url" else tf.urls(),
    }
    if target == "url":
        strategies["raw"] = st.text(max_size=200).map(lambda s: s.encode("utf-8", "replace"))
    for mode, strategy in strategies.items():
        cfg = settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )

        @cfg
        @given(data=strategy)
        def trial(data: Any) -> None:
            raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
            result["inputs"] += 1
            try:
                tf.TARGETS[target](raw)
            except tf.PannierError as e:
                assert str(e).strip(), f"{type(e).__name__} without a message"
                result["clean_errors"] += 1

        try:
            trial()
        except BaseException as e:  # a finding: hypothesis raises it after shrinking
            if isinstance(e, KeyboardInterrupt):
                raise
            result["findings"].append(f"{mode}: {type(e).__name__}: {str(e)[:400]}")
    return result


# --------------------------------------------------------------------------- atheris


def seed_corpus(target: str, directory: Path) -> int:
    """Write valid objects of ``target``'s kind, made by pannier's own writers, into
    ``directory``; return how many."""
    import msgpack
    from pannier.engine.tree import TreeEntry, TreeWriter
    from pannier.meta_stream import MetaStreamWriter, StreamHeader
    from pannier.repo import crypto, index as index_mod, pack
    from pannier.repo.config import encode_config, new_settings
    from pannier.repo.snapshot import Snapshot

    seeds: list[bytes] = []
    bid = bytes(range(32))
    if target == "tree":
        buf = io.BytesIO()
        w = TreeWriter(buf)
        w.add(TreeEntry((), "d", 0o40755, 0, 0, 0, 1, 1, 1, None, 0))
        w.add(TreeEntry((b"a",), "f", 0o100644, 0, 0, 5, 1, 1, 2, (bid,), 0))
        w.add(TreeEntry((b"b",), "l", 0o120777, 0, 0, 1, 1, 1, 3, b"a", 0))
        w.add(TreeEntry((b"c",), "h", 0o100644, 0, 0, 5, 1, 1, 2, (b"a",), 0))
        w.add(TreeEntry((b"d",), "c", 0o20644, 0, 0, 0, 1, 1, 4, 259, 0))
        w.close()
        seeds.append(buf.getvalue())
    elif target == "meta-stream":
        buf = io.BytesIO()
        header = StreamHeader("fuzz", "1", "fz", ("index", "mode", "name"))
        with MetaStreamWriter(buf, header) as mw:
            for i in range(5):
                mw.write_row(((b"d", b"f%d" % i), 0o644, "x" * i))
        seeds.append(buf.getvalue())
    elif target == "index":
        entries = [pack.PackEntry(1, bid, 0, 100, 90), pack.PackEntry(0, bid[::-1], 100, 7, 7)]
        seeds.append(index_mod.encode_index_object({bid: entries}, ["ab" * 32]))
    elif target == "pack":
        pw = pack.PackWriter()
        pw.add(1, bid, crypto.encode_payload(b"x" * 40, 0), 40)
        pw.add(0, bid[::-1], crypto.encode_payload(b"y" * 400, 3), 400)
        seeds.append(pw.finish(crypto.Cipher(None))[1])
        seeds.append(pack.encode_header([pack.PackEntry(1, bid, 0, 10, 10)]))
    elif target == "payload":
        seeds += [crypto.encode_payload(b"hello " * 50, 3), crypto.encode_payload(b"x", 0)]
    elif target == "snapshot":
        snap = Snapshot(hostname="h", paths=["/p"], tags=["t"], streams={"tree": [bid]})
        seeds.append(snap.encode())
    elif target == "config":
        seeds.append(encode_config(crypto.Cipher(None), "ab" * 32, "none", new_settings(3)))
    elif target == "key":
        master = crypto.MasterKey.generate()
        seeds.append(crypto.make_key_object(master, "fuzz password", kdf=crypto.TEST_KDF))
    elif target == "lock":
        body = {
            "version": 1,
            "hostname": "h",
            "pid": 1,
            "username": "u",
            "time": "2020-01-01T00:00:00Z",
            "exclusive": False,
        }
        seeds.append(crypto.encode_payload(msgpack.packb(body), 0))
    elif target == "url":
        seeds += [
            b"file:///srv/backup",
            b"sftp://user:secret@[::1]:2222/srv?key-file=/k&timeout=5",
            b"faulty+s3://AKIA:pw@host:9000/bucket?fail-rate=0.1&secret-key=x",
            b"rclone://remote:path/sub",
        ]
    directory.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds):
        (directory / f"seed-{i}").write_bytes(s)
    return len(seeds)


def atheris_worker(target: str, seconds: int, workdir: Path) -> None:
    """Run in a subprocess: fuzz ``target`` with atheris until ``seconds`` pass or it
    finds a crash (libFuzzer writes the input to ``workdir/crash-*``)."""
    import atheris

    with atheris.instrument_imports(include=["pannier", "msgpack"]):
        from tests.reliability import test_fuzz as tf

    def one_input(data: bytes) -> None:
        tf.run_target(target, data)

    corpus = workdir / "corpus"
    seed_corpus(target, corpus)
    atheris.Setup(
        [
            sys.argv[0],
            str(corpus),
            f"-max_total_time={seconds}",
            "-rss_limit_mb=3072",
            "-max_len=4096",
            "-print_final_stats=1",
            f"-artifact_prefix={workdir}/",
        ],
        one_input,
    )
    atheris.Fuzz()


def run_atheris(target: str, seconds: int, workdir: Path) -> dict[str, Any]:
    """Fuzz ``target`` with atheris in a subprocess; its executions, coverage and
    findings."""
    workdir.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--atheris-worker",
            target,
            "--atheris-seconds",
            str(seconds),
            "--workdir",
            str(workdir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        timeout=seconds + 300,
        check=False,
    )
    log = done.stdout
    (workdir / "libfuzzer.log").write_text(log)
    runs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    cov = re.findall(r"cov: (\d+)", log)
    crashes = sorted(p.name for p in workdir.glob("crash-*")) + sorted(
        p.name for p in workdir.glob("oom-*")
    )
    findings = []
    if done.returncode != 0 or crashes:
        tail = [ln for ln in log.splitlines() if "Error" in ln or "Uncaught" in ln][-5:]
        findings.append(f"exit {done.returncode}; {crashes}; " + " | ".join(tail))
    return {
        "target": target,
        "executions": int(runs[-1]) if runs else 0,
        "coverage_edges": int(cov[-1]) if cov else 0,
        "seconds": seconds,
        "findings": findings,
    }


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=2000, help="hypothesis inputs per mode")
    p.add_argument("--atheris-seconds", type=int, default=30, help="per target; 0 = skip")
    p.add_argument("--targets", default="", help="comma-separated subset")
    p.add_argument("--json", type=Path, help="write the summary here")
    p.add_argument("--workdir", type=Path, help="atheris corpora and artifacts")
    p.add_argument("--atheris-worker", metavar="TARGET", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.atheris_worker:
        atheris_worker(args.atheris_worker, args.atheris_seconds, args.workdir)
        return 0

    from tests.reliability import test_fuzz as tf

    targets = [t for t in args.targets.split(",") if t] or list(tf.TARGETS)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="pannier-fuzz-"))
    summary: dict[str, Any] = {"hypothesis": [], "atheris": [], "atheris_available": False}
    started = time.monotonic()
    for t in targets:
        r = run_hypothesis(t, args.examples)
        summary["hypothesis"].append(r)
        print(
            f"hypothesis {t:12} inputs {r['inputs']:7}  clean errors {r['clean_errors']:7}"
            f"  findings {len(r['findings'])}",
            flush=True,
        )
        for f in r["findings"]:
            print(f"    FINDING {f}", flush=True)
    try:
        import atheris  # noqa: F401

        summary["atheris_available"] = True
    except ImportError as e:
        summary["atheris_error"] = str(e)
        print(f"atheris is not available ({e}): coverage-guided fuzzing skipped")
    if summary["atheris_available"] and args.atheris_seconds > 0:
        for t in targets:
            r = run_atheris(t, args.atheris_seconds, workdir / t)
            summary["atheris"].append(r)
            print(
                f"atheris    {t:12} executions {r['executions']:9}  edges "
                f"{r['coverage_edges']:5}  findings {len(r['findings'])}",
                flush=True,
            )
            for f in r["findings"]:
                print(f"    FINDING {f}", flush=True)
    h_inputs = sum(r["inputs"] for r in summary["hypothesis"])
    a_execs = sum(r["executions"] for r in summary["atheris"])
    findings = sum(len(r["findings"]) for r in summary["hypothesis"] + summary["atheris"])
    summary.update(
        targets=targets,
        hypothesis_inputs=h_inputs,
        atheris_executions=a_execs,
        total_inputs=h_inputs + a_execs,
        findings=findings,
        seconds=round(time.monotonic() - started, 1),
    )
    print(
        f"TOTAL targets {len(targets)}  hypothesis inputs {h_inputs}  atheris executions "
        f"{a_execs}  findings {findings}  seconds {summary['seconds']}"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
