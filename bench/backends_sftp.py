"""The sftp:// target of bench/bench_backends.py: pannier's sftp backend beside
``rclone copy`` to the same sshd (scripts/servers/sshd.sh start).

bench_backends.py imports :func:`bench_sftp` as its ``sftp`` target; run alone it prints
the same rows::

    .venv/bin/python bench/backends_sftp.py [--small N] [--large N] [--names N] [--repeat N]
        [--json FILE]

Both sides talk to the same OpenSSH server on 127.0.0.1 with the same key, one transfer at
a time; pannier goes through ``get_backend`` (retry, limits, validation, logging).
"""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported from elsewhere: its neighbours must be importable
    sys.path.insert(0, str(HERE))

import bench_backends as harness  # noqa: E402  (the folder is on sys.path now)
from local_servers import ServerNotRunning, server_facts  # noqa: E402

MIB = 1 << 20


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
    if shutil.which("rclone") is None:
        raise harness.Unavailable("rclone is not installed")
    try:
        facts = server_facts("sshd")
    except ServerNotRunning as e:
        raise harness.Unavailable(str(e)) from None
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
        baseline = harness.RcloneBaseline(theirs, env, workdir)
        for size, count in ((MIB, settings.small), (16 * MIB, settings.large)):
            if count:
                rows.append(
                    harness.measure_transfers(
                        "sftp", ours, baseline, size, count, settings, workdir
                    )
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
                harness.measure_listing(
                    "sftp",
                    ours,
                    harness.RcloneBaseline(theirs, env, workdir),
                    settings.names,
                    settings,
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
    """Run the sftp target alone: bench_backends.py with ``--targets sftp`` unless other
    targets are named."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--targets" or a.startswith("--targets=") for a in args):
        args = ["--targets", "sftp", *args]
    status: int = harness.main(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
