"""The s3:// and swift:// targets of bench/bench_backends.py, on the local Swift server.

Run alone (with ``scripts/servers/all.sh start swift``) it prints the same rows::

    .venv/bin/python bench/backends_swift.py [--targets s3,swift] [--small N] [--large N]
        [--names N] [--repeat N] [--json FILE]

Both targets use the one Swift server: ``s3://`` goes through its s3api, ``swift://``
through its native API, and a bucket is a container. For each, through the harness of
bench_backends.py (the wrapped backend pannier uses; pannier and the baseline alternate
in each round; the best of ``--repeat`` rounds is kept):

* put and get of 1 MiB and 16 MiB objects, one at a time, beside ``rclone copy
  --transfers 1`` given the names (so it lists neither side);
* a listing of ``--names`` names (10,000 by default; made once with Swift's bulk archive
  upload and kept in the container ``bench-list-N`` between runs, since creating them
  one by one takes the server minutes), beside ``rclone lsf`` for S3 and ``swift list``
  (python-swiftclient's command) for Swift: rclone 1.60's Swift backend always asks for
  1,000 names a page, above the test server's listing limit of 100, and gets 412.

:func:`bench_s3` and :func:`bench_swift` are the harness's target functions.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tarfile
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # imported from elsewhere: its neighbours must be importable
    sys.path.insert(0, str(HERE))

import bench_backends as harness  # noqa: E402  (the folder is on sys.path now)
from local_servers import ServerNotRunning, server_facts  # noqa: E402

MIB = 1 << 20


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


def urls(facts: dict[str, str], container: str, prefix: str = "") -> dict[str, str]:
    """The pannier URL of each target for ``container`` (and an optional prefix)."""
    path = f"{container}/{prefix}" if prefix else container
    s3 = (
        f"s3://{path}?endpoint={facts['PANNIER_TEST_S3_ENDPOINT']}"
        f"&access-key={facts['PANNIER_TEST_S3_ACCESS_KEY']}"
        f"&secret-key={facts['PANNIER_TEST_S3_SECRET_KEY']}"
    )
    swift = (
        f"swift://{path}?auth-url={facts['PANNIER_TEST_SWIFT_AUTH_URL']}"
        f"&user={facts['PANNIER_TEST_SWIFT_USER']}&password={facts['PANNIER_TEST_SWIFT_KEY']}"
    )
    return {"s3": s3, "swift": swift}


def rclone_env(facts: dict[str, str], workdir: Path) -> dict[str, str]:
    """Variables giving rclone the remotes ``bs3:`` and ``bswift:`` (no config file)."""
    conf = workdir / "rclone.conf"
    conf.write_text("")
    return {
        "RCLONE_CONFIG": str(conf),
        # rclone's S3 SDK refuses a CA bundle with its own HTTP transport; the server is
        # plain http on 127.0.0.1, so none is needed.
        "AWS_CA_BUNDLE": "",
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


def fill_container(facts: dict[str, str], container: str, names: int) -> None:
    """Create ``names`` empty objects in ``container`` with one bulk archive upload,
    unless it already holds exactly that many."""
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
        timeout=1800,
    )
    r.raise_for_status()
    created = r.json().get("Number Files Created")
    if created != names:
        raise RuntimeError(f"bulk upload created {created} of {names} objects: {r.text[:200]}")


def drop_container(facts: dict[str, str], container: str) -> None:
    """Delete a container and its objects, a bulk delete per listing page."""
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


def _known_names_rclone(remote: str, env: dict[str, str], workdir: Path) -> Any:
    """An rclone baseline that never lists: it deletes the names it put, by name (a
    listing of the Swift test server by rclone 1.60 fails, see the module docstring)."""

    class KnownNames(harness.RcloneBaseline):  # type: ignore[misc]
        last: list[str] = []

        def put(self, src_dir: Path, names: list[str]) -> None:
            self.last = list(names)
            super().put(src_dir, names)

        def clear(self) -> None:
            if self.last:
                self._rclone("delete", "--no-traverse", "--files-from",
                             self._names_file(self.last), self.remote)  # fmt: skip

    return KnownNames(remote, env, workdir)


class SwiftListBaseline:
    """``swift list CONTAINER`` (python-swiftclient's command; it pages with marker) as
    the listing baseline for Swift."""

    name = "swift list"

    def __init__(self, facts: dict[str, str], container: str) -> None:
        exe = shutil.which("swift", path=str(Path(sys.executable).parent)) or shutil.which("swift")
        if exe is None:
            raise harness.Unavailable("python-swiftclient's swift command is not installed")
        self.command = [
            exe, "-A", facts["PANNIER_TEST_SWIFT_AUTH_URL"], "-U",
            facts["PANNIER_TEST_SWIFT_USER"], "-K", facts["PANNIER_TEST_SWIFT_KEY"],
            "list", container,
        ]  # fmt: skip

    def list(self) -> int:
        out = subprocess.run(self.command, check=True, capture_output=True).stdout
        return len([n for n in out.split(b"\n") if n])


def _bench(target: str, settings: Any, workdir: Path) -> list[dict[str, Any]]:
    if shutil.which("rclone") is None:
        raise harness.Unavailable("rclone is not installed")
    try:
        facts = server_facts("swift")
    except ServerNotRunning as e:
        raise harness.Unavailable(str(e)) from None
    env = rclone_env(facts, workdir)
    container = f"bench-{target}-{uuid.uuid4().hex[:8]}"
    ours = urls(facts, container, "pannier")[target]
    baseline = _known_names_rclone(f"b{target}:{container}/rclone", env, workdir)
    rows = []
    try:
        for size, count in ((MIB, settings.small), (16 * MIB, settings.large)):
            if count:
                rows.append(
                    harness.measure_transfers(
                        target, ours, baseline, size, count, settings, workdir
                    )
                )
    finally:
        drop_container(facts, container)
    if settings.names:
        listed = f"bench-list-{settings.names}"
        fill_container(facts, listed, settings.names)
        if target == "s3":
            lister: Any = harness.RcloneBaseline(f"bs3:{listed}", env, workdir)
            lister.name = "rclone lsf"
        else:
            lister = SwiftListBaseline(facts, listed)
        rows.append(
            harness.measure_listing(
                target, urls(facts, listed)[target], lister, settings.names, settings
            )
        )
    return rows


def bench_s3(settings: Any, workdir: Path) -> list[dict[str, Any]]:
    """s3:// through Swift's s3api beside ``rclone copy`` and ``rclone lsf``."""
    return _bench("s3", settings, workdir)


def bench_swift(settings: Any, workdir: Path) -> list[dict[str, Any]]:
    """swift:// beside ``rclone copy`` and ``swift list``."""
    return _bench("swift", settings, workdir)


def main(argv: list[str] | None = None) -> int:
    """Run the s3 and swift targets alone: bench_backends.py with ``--targets s3,swift``
    unless other targets are named."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--targets" or a.startswith("--targets=") for a in args):
        args = ["--targets", "s3,swift", *args]
    status: int = harness.main(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
