"""Peer tools for the storage backend benchmark: ``rclone copy`` to a remote, and ``cp``.

bench/bench_backends.py times pannier's backends; this module times the same transfers done by
rclone (for ``s3://``, ``sftp://``, ``swift://`` and local remotes) and by ``cp`` (for
``file://``), so both sides run in the same session against the same servers.

Remotes are rclone *connection strings*, which need no configuration file::

    :local:/srv/dir
    :s3,provider=Other,endpoint='http://127.0.0.1:8080',access_key_id='k',secret_access_key='s':bucket/prefix
    :sftp,host=127.0.0.1,port=2222,user=me,key_file='/path/id_ed25519',shell_type=none:/path
    :swift,user='test:tester',key='testing',auth='http://127.0.0.1:8080/auth/v1.0':container/prefix

Build them with ``local_remote``, ``s3_remote``, ``sftp_remote`` and ``swift_remote``, which
quote every value; ``redact`` hides the secrets of one for printing. Then:

* ``make_objects(dir, count, size)`` writes ``count`` objects of ``size`` bytes;
* ``rclone_put(dir, remote)`` / ``rclone_get(remote, dir)`` copy a directory of objects up or
  down with ``rclone copy``; ``rclone_list(remote)`` lists the names with ``rclone lsf``,
  ``rclone_lsl(remote)`` the names with their sizes (the peer of a pannier listing, which
  gives sizes); ``rclone_purge(remote)`` removes what a run left;
* ``cp_put(dir, dest)`` / ``cp_get(dest, dir)`` do the same with ``cp -r``, ``ls_list(dir)``
  lists with ``ls -f``.

Each returns a ``PeerTiming``: seconds of wall time (including the one process start of
about 0.1 s), objects and bytes moved, ``mb_per_s`` and ``objects_per_s``, the exit code and
the last error line. Uploads use ``--no-traverse --no-check-dest`` (a plain upload, as a backup
tool does: no listing of the destination first); rclone keeps its default verification of sizes
and checksums. Every rclone call runs with an empty ``RCLONE_CONFIG`` and without
``AWS_CA_BUNDLE`` (which rclone's S3 client cannot combine with its own HTTP transport).

Known limit: rclone 1.60 lists Swift containers 1,000 names per request; a Swift server whose
``container_listing_limit`` is lower answers 412, so ``rclone_list`` and ``rclone_purge`` fail
there (the put and a get of known ``names`` still work); ``swift_delete_container`` cleans up
over Swift's own API.

Usage (a small check of every helper against the local test servers)::

    python bench/peers.py [--objects 20] [--size 1048576]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported from elsewhere: its neighbours must be importable
    sys.path.insert(0, str(HERE))

from local_servers import ServerNotRunning, server_facts  # noqa: E402

__all__ = [
    "PeerTiming",
    "cp_get",
    "cp_put",
    "local_remote",
    "ls_list",
    "make_objects",
    "quote",
    "rclone_get",
    "rclone_list",
    "rclone_lsl",
    "rclone_purge",
    "rclone_put",
    "redact",
    "remotes_from_servers",
    "s3_remote",
    "sftp_remote",
    "swift_delete_container",
    "swift_remote",
]

SECRET_KEYS = ("secret_access_key", "key", "pass", "password", "auth_token", "access_key_id")


@dataclass
class PeerTiming:
    """One timed transfer by a peer tool."""

    tool: str
    operation: str
    target: str
    objects: int
    bytes: int
    seconds: float
    returncode: int
    error: str = ""

    @property
    def ok(self) -> bool:
        """True when the tool exited 0."""
        return self.returncode == 0

    @property
    def mb_per_s(self) -> float:
        """Throughput in MB (10^6 bytes) per second; 0 for a failed or empty transfer."""
        return self.bytes / 1e6 / self.seconds if self.ok and self.seconds > 0 else 0.0

    @property
    def objects_per_s(self) -> float:
        """Objects per second; 0 for a failed transfer."""
        return self.objects / self.seconds if self.ok and self.seconds > 0 else 0.0

    def line(self) -> str:
        """One printable line with the figures."""
        status = "" if self.ok else f"  FAILED (exit {self.returncode}): {self.error}"
        return (
            f"{self.tool:6} {self.operation:4} {self.target}: {self.objects} objects, "
            f"{self.bytes / 1e6:.1f} MB in {self.seconds:.2f} s = {self.mb_per_s:.1f} MB/s, "
            f"{self.objects_per_s:.0f} obj/s{status}"
        )


# --------------------------------------------------------------------------- remotes


def quote(value: str) -> str:
    """Quote one connection-string value for rclone (single quotes, inner ones doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def _remote(backend: str, params: dict[str, str | int | bool | None], path: str) -> str:
    parts = [backend]
    for k, v in params.items():
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        parts.append(f"{k}={quote(str(v))}")
    return ":" + ",".join(parts) + ":" + path


def local_remote(path: str | Path) -> str:
    """The rclone remote of a local directory."""
    return f":local:{Path(path).resolve()}"


def s3_remote(
    endpoint: str,
    access_key: str,
    secret_key: str,
    bucket: str,
    prefix: str = "",
    region: str = "us-east-1",
    list_chunk: int | None = None,
) -> str:
    """An S3-compatible remote (path-style addressing) at ``bucket/prefix``."""
    params: dict[str, str | int | bool | None] = {
        "provider": "Other",
        "endpoint": endpoint,
        "access_key_id": access_key,
        "secret_access_key": secret_key,
        "region": region,
        "force_path_style": True,
        "list_chunk": list_chunk,
    }
    return _remote("s3", params, f"{bucket}/{prefix}".rstrip("/"))


def sftp_remote(
    host: str,
    port: int,
    user: str,
    path: str,
    key_file: str | None = None,
    known_hosts_file: str | None = None,
) -> str:
    """An SFTP remote at ``path``, key login; ``shell_type=none`` (no remote commands)."""
    params: dict[str, str | int | bool | None] = {
        "host": host,
        "port": port,
        "user": user,
        "key_file": key_file,
        "known_hosts_file": known_hosts_file,
        "shell_type": "none",
    }
    return _remote("sftp", params, path)


def swift_remote(
    auth_url: str | None,
    user: str | None,
    key: str | None,
    container: str,
    prefix: str = "",
    storage_url: str | None = None,
    auth_token: str | None = None,
) -> str:
    """A Swift remote at ``container/prefix``, by v1 auth (user, key) or a storage URL + token."""
    params: dict[str, str | int | bool | None] = {
        "auth": auth_url,
        "user": user,
        "key": key,
        "storage_url": storage_url,
        "auth_token": auth_token,
    }
    return _remote("swift", params, f"{container}/{prefix}".rstrip("/"))


def redact(remote: str) -> str:
    """``remote`` with the values of secret parameters replaced by ``***``."""
    pattern = r"(?<=[,:])(" + "|".join(SECRET_KEYS) + r")=('(?:[^']|'')*'|[^,:]*)"
    return re.sub(pattern, r"\1=***", remote)


def remotes_from_servers(prefix: str) -> dict[str, str]:
    """rclone remotes for the running local test servers (bench/local_servers.py).

    Keys are ``s3``, ``sftp`` and ``swift`` (each present when its server is running);
    ``prefix`` names the bucket/container (s3, swift) or the directory under the SFTP root.
    """

    def read(name: str) -> dict[str, str]:
        try:
            return server_facts(name)
        except ServerNotRunning:
            return {}

    remotes: dict[str, str] = {}
    swift = read("swift")
    if "PANNIER_TEST_S3_ENDPOINT" in swift:
        remotes["s3"] = s3_remote(
            swift["PANNIER_TEST_S3_ENDPOINT"],
            swift["PANNIER_TEST_S3_ACCESS_KEY"],
            swift["PANNIER_TEST_S3_SECRET_KEY"],
            prefix,
            region=swift.get("PANNIER_TEST_S3_REGION", "us-east-1"),
            list_chunk=int(swift["PANNIER_TEST_S3_LISTING_LIMIT"])
            if "PANNIER_TEST_S3_LISTING_LIMIT" in swift
            else None,
        )
    if "PANNIER_TEST_SWIFT_AUTH_URL" in swift:
        remotes["swift"] = swift_remote(
            swift["PANNIER_TEST_SWIFT_AUTH_URL"],
            swift["PANNIER_TEST_SWIFT_USER"],
            swift["PANNIER_TEST_SWIFT_KEY"],
            prefix,
        )
    sshd = read("sshd")
    if "PANNIER_TEST_SFTP_HOST" in sshd:
        remotes["sftp"] = sftp_remote(
            sshd["PANNIER_TEST_SFTP_HOST"],
            int(sshd["PANNIER_TEST_SFTP_PORT"]),
            sshd["PANNIER_TEST_SFTP_USER"],
            f"{sshd['PANNIER_TEST_SFTP_ROOT']}/{prefix}",
            key_file=sshd.get("PANNIER_TEST_SFTP_KEY_FILE"),
            known_hosts_file=sshd.get("PANNIER_TEST_SFTP_KNOWN_HOSTS"),
        )
    return remotes


# --------------------------------------------------------------------------- objects


def make_objects(directory: Path, count: int, size: int, seed: int = 0) -> int:
    """Write ``count`` objects ``obj-000000...`` of ``size`` incompressible bytes; return bytes.

    The bytes come from a seeded generator, so two runs write the same objects.
    """
    import random

    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    block = rng.randbytes(min(size, 1 << 20)) if size else b""
    for i in range(count):
        with (directory / f"obj-{i:06d}").open("wb") as f:
            left = size
            # A different first 16 bytes per object keeps them from being identical.
            head = rng.randbytes(min(16, size))
            f.write(head)
            left -= len(head)
            while left > 0:
                chunk = block[: min(left, len(block))]
                f.write(chunk)
                left -= len(chunk)
    return count * size


def _dir_stats(directory: Path) -> tuple[int, int]:
    n = total = 0
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            n += 1
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return n, total


# --------------------------------------------------------------------------- timing


def _rclone_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    conf = Path(tempfile.gettempdir()) / "pannier-bench-rclone.conf"
    if not conf.exists():
        conf.write_text("")
    env["RCLONE_CONFIG"] = str(conf)
    return env


def _timed(
    tool: str, operation: str, target: str, argv: Sequence[str], env: dict[str, str] | None
) -> tuple[PeerTiming, str]:
    start = time.monotonic()
    proc = subprocess.run(list(argv), capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - start
    err = proc.stderr.strip().splitlines()[-1] if proc.returncode and proc.stderr.strip() else ""
    timing = PeerTiming(tool, operation, target, 0, 0, round(seconds, 4), proc.returncode, err)
    return timing, proc.stdout


def rclone_put(
    local_dir: Path, remote: str, transfers: int = 4, extra_args: Sequence[str] = ()
) -> PeerTiming:
    """Time ``rclone copy local_dir remote`` (a plain upload of every file in ``local_dir``)."""
    argv = [
        "rclone",
        "copy",
        str(local_dir),
        remote,
        "--transfers",
        str(transfers),
        "--no-traverse",
        "--no-check-dest",
        *extra_args,
    ]
    timing, _ = _timed("rclone", "put", redact(remote), argv, _rclone_env())
    timing.objects, timing.bytes = _dir_stats(local_dir)
    return timing


def rclone_get(
    remote: str,
    local_dir: Path,
    transfers: int = 4,
    extra_args: Sequence[str] = (),
    names: Sequence[str] | None = None,
) -> PeerTiming:
    """Time ``rclone copy remote local_dir`` (a download of every object under ``remote``).

    With ``names``, only those objects are fetched, each by name, without listing the remote
    (``--files-from`` with ``--no-traverse``): a get of known names, as a backup tool does.
    """
    local_dir.mkdir(parents=True, exist_ok=True)
    argv = ["rclone", "copy", remote, str(local_dir), "--transfers", str(transfers), *extra_args]
    with tempfile.NamedTemporaryFile("w", suffix=".names") as listing:
        if names is not None:
            listing.write("".join(f"{n}\n" for n in names))
            listing.flush()
            argv += ["--files-from", listing.name, "--no-traverse"]
        timing, _ = _timed("rclone", "get", redact(remote), argv, _rclone_env())
    timing.objects, timing.bytes = _dir_stats(local_dir)
    return timing


def rclone_list(remote: str, extra_args: Sequence[str] = ()) -> PeerTiming:
    """Time ``rclone lsf --files-only remote``; ``objects`` is the number of names listed."""
    argv = ["rclone", "lsf", "--files-only", remote, *extra_args]
    timing, out = _timed("rclone", "list", redact(remote), argv, _rclone_env())
    timing.objects = len(out.splitlines())
    return timing


def rclone_lsl(remote: str, extra_args: Sequence[str] = ()) -> PeerTiming:
    """Time ``rclone lsl --max-depth 1 remote`` (names with sizes and times, one level);
    ``objects`` is the number of names listed."""
    argv = ["rclone", "lsl", "--max-depth", "1", remote, *extra_args]
    timing, out = _timed("rclone", "lsl", redact(remote), argv, _rclone_env())
    timing.objects = len(out.splitlines())
    return timing


def rclone_purge(remote: str) -> bool:
    """Delete ``remote`` and everything under it; True when rclone succeeded."""
    proc = subprocess.run(
        ["rclone", "purge", remote], capture_output=True, env=_rclone_env(), check=False
    )
    return proc.returncode == 0


def swift_delete_container(auth_url: str, user: str, key: str, container: str) -> int:
    """Delete every object of ``container`` and the container itself, over Swift's v1 API.

    Pages through the listing with ``marker`` at the server's own limit, so it works where
    ``rclone_purge`` cannot (a listing limit under 1,000). Returns the objects deleted; a
    missing container deletes nothing.
    """
    import urllib.error
    import urllib.parse
    import urllib.request

    req = urllib.request.Request(auth_url, headers={"X-Auth-User": user, "X-Auth-Key": key})
    with urllib.request.urlopen(req, timeout=30) as resp:
        token = resp.headers["X-Auth-Token"]
        storage = resp.headers["X-Storage-Url"]
    base = f"{storage}/{urllib.parse.quote(container)}"

    def call(method: str, url: str) -> bytes:
        r = urllib.request.Request(url, method=method, headers={"X-Auth-Token": token})
        try:
            with urllib.request.urlopen(r, timeout=30) as resp:
                body: bytes = resp.read()
                return body
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return b""
            raise

    deleted = 0
    while True:
        names = call("GET", base).decode().splitlines()
        if not names:
            break
        for n in names:
            call("DELETE", f"{base}/{urllib.parse.quote(n)}")
            deleted += 1
    call("DELETE", base)
    return deleted


def cp_put(local_dir: Path, dest_dir: Path) -> PeerTiming:
    """Time ``cp -r local_dir/. dest_dir`` (the ``file://`` peer of a put)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    argv = ["cp", "-r", f"{local_dir}/.", str(dest_dir)]
    timing, _ = _timed("cp", "put", str(dest_dir), argv, None)
    timing.objects, timing.bytes = _dir_stats(local_dir)
    return timing


def cp_get(dest_dir: Path, local_dir: Path) -> PeerTiming:
    """Time ``cp -r dest_dir/. local_dir`` (the ``file://`` peer of a get)."""
    local_dir.mkdir(parents=True, exist_ok=True)
    argv = ["cp", "-r", f"{dest_dir}/.", str(local_dir)]
    timing, _ = _timed("cp", "get", str(dest_dir), argv, None)
    timing.objects, timing.bytes = _dir_stats(local_dir)
    return timing


def ls_list(directory: Path) -> PeerTiming:
    """Time ``ls -f directory`` (unsorted listing); ``objects`` counts the names, not . and .."""
    timing, out = _timed("ls", "list", str(directory), ["ls", "-f", str(directory)], None)
    timing.objects = len([n for n in out.splitlines() if n not in (".", "..")])
    return timing


# --------------------------------------------------------------------------- self check


def main(argv: list[str] | None = None) -> int:
    """Put, get and list a few objects with every peer against the local test servers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=20)
    parser.add_argument("--size", type=int, default=1 << 20)
    args = parser.parse_args(argv)
    if shutil.which("rclone") is None:
        print("peers: rclone is not installed (scripts/install-bench-deps.sh)", file=sys.stderr)
        return 1
    failures = 0
    with tempfile.TemporaryDirectory(prefix="pannier-peers-") as tmp:
        src = Path(tmp, "src")
        make_objects(src, args.objects, args.size)
        local = Path(tmp, "local-store")
        for t in (cp_put(src, local), ls_list(local), cp_get(local, Path(tmp, "cp-back"))):
            print(t.line())
            failures += not t.ok
        name = f"pannier-peers-{os.getpid()}"
        remotes = {"local": local_remote(Path(tmp, "rclone-local"))}
        remotes.update(remotes_from_servers(name))
        for kind, remote in remotes.items():
            names = sorted(p.name for p in src.iterdir())
            timings = [
                rclone_put(src, remote),
                rclone_list(remote),
                rclone_lsl(remote),
                rclone_get(remote, Path(tmp, f"back-{kind}"), names=names),
            ]
            for t in timings:
                print(f"[{kind}] {t.line()}")
                listing = t.operation in ("list", "lsl")
                known_limit = kind == "swift" and listing and "412" in t.error
                if known_limit:
                    print(f"[{kind}] (the server's listing limit is under rclone's 1,000)")
                failures += not t.ok and not known_limit
            if kind == "swift":
                facts = server_facts("swift")
                swift_delete_container(
                    facts["PANNIER_TEST_SWIFT_AUTH_URL"],
                    facts["PANNIER_TEST_SWIFT_USER"],
                    facts["PANNIER_TEST_SWIFT_KEY"],
                    name,
                )
            elif not rclone_purge(remote):
                print(f"[{kind}] rclone purge failed: clean up {redact(remote)} by hand")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
