"""The sftp:// target of bench/bench_backends.py: pannier's sftp backend beside
``rclone copy`` to the same sshd (scripts/servers/sshd.sh start).

bench_backends.py imports :func:`bench_sftp` as its ``sftp`` target; run alone it prints
the same rows::

    .venv/bin/python bench/backends_sftp.py [--small N] [--large N] [--names N] [--repeat N]

Both sides talk to the same OpenSSH server on 127.0.0.1 with the same key, one transfer at
a time; pannier goes through ``get_backend`` (retry, limits, validation, logging).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
TOP = HERE.parent
MIB = 1 << 20


def _harness() -> Any:
    sys.path.insert(0, str(HERE))
    try:
        import bench_backends
    finally:
        sys.path.pop(0)
    return bench_backends


def server_facts() -> dict[str, str]:
    """The sshd test server's facts, or the harness's Unavailable when it is not running."""
    servers = Path(os.environ.get("PANNIER_SERVERS_DIR", TOP / ".servers"))
    env_file = servers / "sshd.env"
    if not env_file.is_file():
        raise _harness().Unavailable("sshd is not running (scripts/servers/all.sh start sshd)")
    facts = {}
    for line in env_file.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            facts[key.strip()] = value.strip()
    return facts


def urls(facts: dict[str, str], folder: str) -> tuple[str, str]:
    """The pannier URL and the rclone remote for ``folder`` under the server's test root."""
    path = f"{facts['PANNIER_TEST_SFTP_ROOT']}/{folder}"
    pannier = (
        f"sftp://{facts['PANNIER_TEST_SFTP_USER']}@{facts['PANNIER_TEST_SFTP_HOST']}:"
        f"{facts['PANNIER_TEST_SFTP_PORT']}/{path}"
        f"?key-file={facts['PANNIER_TEST_SFTP_KEY_FILE']}"
        f"&known-hosts={facts['PANNIER_TEST_SFTP_KNOWN_HOSTS']}"
    )
    remote = (
        f":sftp,host={facts['PANNIER_TEST_SFTP_HOST']},port={facts['PANNIER_TEST_SFTP_PORT']},"
        f"user={facts['PANNIER_TEST_SFTP_USER']},key_file={facts['PANNIER_TEST_SFTP_KEY_FILE']},"
        f"known_hosts_file={facts['PANNIER_TEST_SFTP_KNOWN_HOSTS']},"
        # No remote shell probing and no hash commands: rclone's fastest plain transfers.
        f"shell_type=none,disable_hashcheck=true:{path}"
    )
    return pannier, remote


def bench_sftp(settings: Any, workdir: Path) -> list[dict[str, Any]]:
    """sftp:// beside ``rclone copy`` (transfers) and ``rclone lsf`` (listing)."""
    h = _harness()
    if shutil.which("rclone") is None:
        raise h.Unavailable("rclone is not installed")
    facts = server_facts()
    config = workdir / "rclone.conf"
    config.write_text("")
    env = {"RCLONE_CONFIG": str(config)}
    tag = uuid.uuid4().hex[:8]
    made: list[Path] = []
    rows = []
    try:
        ours, _ = urls(facts, f"bench-{tag}-pannier")
        _, theirs = urls(facts, f"bench-{tag}-rclone")
        made += [Path(facts["PANNIER_TEST_SFTP_ROOT"]) / f"bench-{tag}-{w}" for w in ("pannier",)]
        (Path(facts["PANNIER_TEST_SFTP_ROOT"]) / f"bench-{tag}-rclone").mkdir()
        baseline = h.RcloneBaseline(theirs, env, workdir)
        for size, count in ((MIB, settings.small), (16 * MIB, settings.large)):
            if count:
                rows.append(
                    h.measure_transfers("sftp", ours, baseline, size, count, settings, workdir)
                )
        if settings.names:
            listed = f"bench-{tag}-list"
            # The names are made on the server's disk directly (it is this machine).
            local = Path(facts["PANNIER_TEST_SFTP_ROOT"]) / listed
            made.append(local)
            local.mkdir()
            for i in range(settings.names):
                (local / f"name-{i:06d}").touch()
            ours, theirs = urls(facts, listed)
            rows.append(
                h.measure_listing(
                    "sftp", ours, h.RcloneBaseline(theirs, env, workdir), settings.names, settings
                )
            )
    finally:
        for path in made:
            shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(
            Path(facts["PANNIER_TEST_SFTP_ROOT"]) / f"bench-{tag}-rclone", ignore_errors=True
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the sftp target alone and print its rows."""
    import tempfile

    h = _harness()
    parser = argparse.ArgumentParser(description="sftp:// beside rclone copy")
    parser.add_argument("--small", type=int, default=32)
    parser.add_argument("--large", type=int, default=4)
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    settings = h.Settings(args.small, args.large, args.names, max(1, args.repeat))
    with tempfile.TemporaryDirectory(prefix="pannier-bench-sftp-") as tmp:
        try:
            rows = bench_sftp(settings, Path(tmp))
        except h.Unavailable as e:
            print(f"sftp skipped: {e}")
            return 1
    for row in rows:
        print(h.format_row(row))
    ratios = [r[k] for r in rows for k in ("put_ratio", "get_ratio", "ratio") if k in r]
    print(f"worst ratio {min(ratios):.2f}x (target: at least 0.80x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
