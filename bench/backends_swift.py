"""Throughput of the s3:// and swift:// backends beside rclone, on the local Swift server.

Run it with the server up (``scripts/servers/all.sh start swift``)::

    .venv/bin/python bench/backends_swift.py [--small N] [--large N] [--names N] [--json FILE]

For each of ``s3://`` (through Swift's s3api) and ``swift://`` it measures, in the same
run and against the same server:

* put and get of ``--small`` objects of 1 MiB and ``--large`` objects of 16 MiB, one at a
  time, by pannier's backend and by ``rclone copy --transfers 1`` (the same single
  stream; rclone is given the names, so it lists neither side), in MiB/s, rclone's
  process start included as a user of it would pay it;
* a listing of ``--names`` names (10,000 by default, created at once with Swift's bulk
  archive upload into one container that is both the bucket and the container), by
  ``Backend.list`` and by ``rclone lsf``, in seconds;

and prints the ratio pannier / rclone (above 1 is faster than rclone; the target is at
least 0.8). The functions :func:`bench_target` and :func:`bench_listing` are what
``bench/bench_backends.py`` imports for its s3 and swift rows; they return plain dicts.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOP = Path(__file__).resolve().parent.parent
MIB = 1 << 20


def server_facts() -> dict[str, str]:
    """The KEY=VALUE facts of the running Swift test server; exits when it is down."""
    servers = Path(os.environ.get("PANNIER_SERVERS_DIR", TOP / ".servers"))
    env_file = servers / "swift.env"
    if not env_file.is_file():
        sys.exit("the Swift test server is not running: scripts/servers/all.sh start swift")
    facts = {}
    for line in env_file.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key.strip()] = value.strip()
    return facts


def swift_token(facts: dict[str, str]) -> tuple[str, str]:
    """``(storage_url, token)`` of the test server's admin user."""
    import requests

    r = requests.get(
        facts["PANNIER_TEST_SWIFT_AUTH_URL"],
        headers={
            "X-Auth-User": facts["PANNIER_TEST_SWIFT_USER"],
            "X-Auth-Key": facts["PANNIER_TEST_SWIFT_KEY"],
        },
        timeout=30,
    )
    r.raise_for_status()
    return r.headers["X-Storage-Url"], r.headers["X-Auth-Token"]


def urls(facts: dict[str, str], container: str) -> dict[str, str]:
    """The pannier URL of each target for ``container``."""
    s3 = (
        f"s3://{container}?endpoint={facts['PANNIER_TEST_S3_ENDPOINT']}"
        f"&access-key={facts['PANNIER_TEST_S3_ACCESS_KEY']}"
        f"&secret-key={facts['PANNIER_TEST_S3_SECRET_KEY']}"
    )
    swift = (
        f"swift://{container}?auth-url={facts['PANNIER_TEST_SWIFT_AUTH_URL']}"
        f"&user={facts['PANNIER_TEST_SWIFT_USER']}&password={facts['PANNIER_TEST_SWIFT_KEY']}"
    )
    return {"s3": s3, "swift": swift}


def rclone_env(facts: dict[str, str], workdir: Path) -> dict[str, str]:
    """Environment giving rclone the remotes ``bs3:`` and ``bswift:`` (no config file)."""
    conf = workdir / "rclone.conf"
    conf.write_text("")
    # rclone's S3 SDK refuses AWS_CA_BUNDLE with its own HTTP transport; the server is
    # plain http on 127.0.0.1, so no CA bundle is needed.
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    env.update(
        {
            "RCLONE_CONFIG": str(conf),
            "RCLONE_CONFIG_BS3_TYPE": "s3",
            "RCLONE_CONFIG_BS3_PROVIDER": "Other",
            "RCLONE_CONFIG_BS3_ENDPOINT": facts["PANNIER_TEST_S3_ENDPOINT"],
            "RCLONE_CONFIG_BS3_ACCESS_KEY_ID": facts["PANNIER_TEST_S3_ACCESS_KEY"],
            "RCLONE_CONFIG_BS3_SECRET_ACCESS_KEY": facts["PANNIER_TEST_S3_SECRET_KEY"],
            "RCLONE_CONFIG_BS3_REGION": facts.get("PANNIER_TEST_S3_REGION", "us-east-1"),
            "RCLONE_CONFIG_BS3_FORCE_PATH_STYLE": "true",
            "RCLONE_CONFIG_BSWIFT_TYPE": "swift",
            "RCLONE_CONFIG_BSWIFT_AUTH": facts["PANNIER_TEST_SWIFT_AUTH_URL"],
            "RCLONE_CONFIG_BSWIFT_USER": facts["PANNIER_TEST_SWIFT_USER"],
            "RCLONE_CONFIG_BSWIFT_KEY": facts["PANNIER_TEST_SWIFT_KEY"],
        }
    )
    return env


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _rclone(env: dict[str, str], *args: str) -> None:
    subprocess.run(["rclone", *args], env=env, check=True, capture_output=True)


def bench_target(
    target: str, url: str, remote: str, size: int, count: int, workdir: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Put then get ``count`` objects of ``size`` bytes through pannier (``url``) and
    through rclone (``remote``: the same container); MiB/s for each and the ratios."""
    from pannier.backend_registry import get_backend_object

    src = workdir / f"src-{target}-{size}"
    src.mkdir()
    for i in range(count):
        (src / f"obj-{i:04d}").write_bytes(os.urandom(size))
    names = sorted(p.name for p in src.iterdir())
    mib = size * count / MIB
    backend = get_backend_object(url)
    backend.create_folder()
    prefix = f"p{size}-"
    put = _timed(lambda: [backend.put(str(src / n), prefix + n) for n in names])
    out = workdir / f"out-{target}-{size}"
    out.mkdir()
    get = _timed(lambda: [backend.get(prefix + n, str(out / n)) for n in names])
    for n in names:
        assert (out / n).read_bytes() == (src / n).read_bytes(), f"{target}: {n} differs"
    backend.delete_list([prefix + n for n in names])
    backend.close()
    dest = f"{remote}/r{size}"
    back = workdir / f"rclone-{target}-{size}"
    listfile = workdir / f"names-{target}-{size}"
    listfile.write_text("".join(f"{n}\n" for n in names))
    # rclone's quickest path for names known in advance: no listing of either side.
    single = ("--transfers", "1", "--checkers", "1")
    known = ("--files-from", str(listfile), "--no-traverse")
    rput = _timed(lambda: _rclone(env, "copy", *single, "--no-check-dest", str(src), dest))
    rget = _timed(lambda: _rclone(env, "copy", *single, *known, dest, str(back)))
    for n in names:
        assert (back / n).read_bytes() == (src / n).read_bytes(), f"rclone {target}: {n} differs"
    _rclone(env, "delete", *known, dest)
    shutil.rmtree(src)
    shutil.rmtree(out)
    shutil.rmtree(back)
    row = {
        "target": target,
        "size": size,
        "count": count,
        "pannier_put_mib_s": mib / put,
        "pannier_get_mib_s": mib / get,
        "rclone_put_mib_s": mib / rput,
        "rclone_get_mib_s": mib / rget,
    }
    row["put_ratio"] = row["pannier_put_mib_s"] / row["rclone_put_mib_s"]
    row["get_ratio"] = row["pannier_get_mib_s"] / row["rclone_get_mib_s"]
    return row


def fill_container(facts: dict[str, str], container: str, names: int) -> None:
    """Create ``names`` empty objects in ``container`` with one bulk archive upload,
    unless it already holds exactly that many (it is kept between runs: creating 10,000
    objects takes the test server minutes)."""
    import requests

    storage_url, token = swift_token(facts)
    head = requests.head(f"{storage_url}/{container}", headers={"X-Auth-Token": token}, timeout=60)
    if head.ok and head.headers.get("X-Container-Object-Count") == str(names):
        return
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(names):
            info = tarfile.TarInfo(f"name-{i:06d}")
            info.size = 0
            tar.addfile(info, io.BytesIO(b""))
    r = requests.put(
        f"{storage_url}/{container}?extract-archive=tar",
        data=buf.getvalue(),
        headers={"X-Auth-Token": token, "Accept": "application/json"},
        timeout=600,
    )
    r.raise_for_status()
    created = r.json().get("Number Files Created")
    if created != names:
        raise RuntimeError(f"bulk upload created {created} of {names} objects: {r.text[:200]}")


def drop_container(facts: dict[str, str], container: str) -> None:
    """Delete a container and its objects with one bulk delete per page."""
    import requests

    storage_url, token = swift_token(facts)
    headers = {"X-Auth-Token": token}
    while True:
        r = requests.get(f"{storage_url}/{container}", headers=headers, timeout=60)
        if r.status_code == 404 or not r.text.strip():
            break
        listing = "\n".join(f"/{container}/{n}" for n in r.text.split())
        requests.post(
            f"{storage_url}?bulk-delete",
            data=listing.encode(),
            headers={**headers, "Content-Type": "text/plain", "Accept": "application/json"},
            timeout=600,
        )
    requests.delete(f"{storage_url}/{container}", headers=headers, timeout=60)


def bench_listing(
    facts: dict[str, str], names: int, env: dict[str, str], repeat: int = 3
) -> list[dict[str, Any]]:
    """Seconds to list ``names`` names by pannier (a new backend each time, so its client
    set-up is counted, as rclone's process start is) and by ``rclone lsf``, per target;
    the best of ``repeat`` runs of each, taken in turn."""
    from pannier.backend_registry import get_backend_object

    container = f"bench-list-{names}"
    fill_container(facts, container, names)
    rows = []
    for target, url in urls(facts, container).items():
        ours: list[float] = []
        theirs: list[float] = []
        row: dict[str, Any] = {"target": target, "names": names, "repeat": repeat}
        for _ in range(repeat):
            backend = get_backend_object(url)
            start = time.perf_counter()
            listed = backend.list()
            ours.append(time.perf_counter() - start)
            backend.close()
            if len(listed) != names:
                raise RuntimeError(f"{target}: listed {len(listed)} of {names} names")
        row["pannier_seconds"] = min(ours)
        try:
            for _ in range(repeat):
                remote = f"b{target}:{container}"
                theirs.append(_timed(lambda r=remote: _rclone(env, "lsf", r)))
            row["rclone_seconds"] = min(theirs)
            row["ratio"] = row["rclone_seconds"] / row["pannier_seconds"]
        except subprocess.CalledProcessError as e:
            # rclone 1.60's Swift backend always asks for 1000 names a page; a server
            # whose listing limit is lower (the test server's is 100) answers 412.
            last = e.stderr.decode(errors="replace").strip().splitlines()[-1:]
            row["rclone_error"] = last[0] if last else f"exit {e.returncode}"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=24, help="1 MiB objects (default 24)")
    parser.add_argument("--large", type=int, default=4, help="16 MiB objects (default 4)")
    parser.add_argument("--names", type=int, default=10_000, help="names to list (10,000)")
    parser.add_argument("--repeat", type=int, default=3, help="listing runs, best kept (3)")
    parser.add_argument("--json", help="also write the rows as JSON to this file")
    args = parser.parse_args(argv)
    if shutil.which("rclone") is None:
        sys.exit("rclone is not installed (scripts/install-system-deps.sh)")
    facts = server_facts()
    container = f"bench-{os.getpid()}"
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pannier-bench-") as tmp:
        workdir = Path(tmp)
        env = rclone_env(facts, workdir)
        print(f"pannier vs rclone {'(single stream, --transfers 1)'} on the local Swift server")
        print(f"{'target':7} {'size':>6} {'n':>3}  {'put MiB/s':>22}  {'get MiB/s':>22}")
        print(f"{'':7} {'':>6} {'':>3}  {'pannier rclone ratio':>22}  {'pannier rclone ratio':>22}")
        try:
            for size, count in ((MIB, args.small), (16 * MIB, args.large)):
                if count <= 0:
                    continue
                for target, url in urls(facts, container).items():
                    remote = f"b{target}:{container}"
                    row = bench_target(target, url, remote, size, count, workdir, env)
                    rows.append(row)
                    print(
                        f"{target:7} {size // MIB:>5}M {count:>3}  "
                        f"{row['pannier_put_mib_s']:7.1f} {row['rclone_put_mib_s']:6.1f} "
                        f"{row['put_ratio']:5.2f}x  "
                        f"{row['pannier_get_mib_s']:7.1f} {row['rclone_get_mib_s']:6.1f} "
                        f"{row['get_ratio']:5.2f}x",
                        flush=True,
                    )
        finally:
            drop_container(facts, container)
        if args.names:
            print(
                f"\nlisting {args.names} names, best of {args.repeat}: seconds "
                "(ratio = rclone time / pannier time)"
            )
            for row in bench_listing(facts, args.names, env, args.repeat):
                rows.append(row)
                theirs = (
                    f"rclone {row['rclone_seconds']:6.2f}s  ratio {row['ratio']:5.2f}x"
                    if "ratio" in row
                    else f"rclone failed: {row['rclone_error']}"
                )
                print(f"{row['target']:7} pannier {row['pannier_seconds']:6.2f}s  {theirs}")
    worst = min(
        [r[k] for r in rows for k in ("put_ratio", "get_ratio", "ratio") if k in r], default=0.0
    )
    print(f"\nworst ratio {worst:.2f}x (target: at least 0.80x)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
