"""What scripts/servers/swift.sh promises about the server it starts: every process it
started is recorded, everything listens on 127.0.0.1 only, no UDP socket is left open
(the logs go to the script's own UNIX socket sink), and the listing limits it announces
are the ones the server enforces."""

from __future__ import annotations

import os
from pathlib import Path

import requests

from tests.plugins.backends.swift_server import SwiftAdmin, unique
from tests.servers import SERVERS_DIR, require_server


def _pids() -> list[int]:
    return [int(p) for p in (SERVERS_DIR / "swift.pid").read_text().split()]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _inet_sockets(table: str) -> dict[str, tuple[str, int]]:
    """inode -> (local address in hex, state) from /proc/net/<table>."""
    rows = {}
    for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
        fields = line.split()
        rows[fields[9]] = (fields[1], int(fields[3], 16))
    return rows


def test_every_process_is_recorded_and_alive() -> None:
    require_server("swift")
    pids = _pids()
    assert len(pids) == 6  # log sink, memcached, account, container, object, proxy
    for pid in pids:
        assert Path(f"/proc/{pid}").exists(), f"process {pid} of swift.pid is gone"


def test_listens_on_loopback_only_and_no_udp() -> None:
    require_server("swift")
    tcp = {**_inet_sockets("tcp"), **_inet_sockets("tcp6")}
    udp = {**_inet_sockets("udp"), **_inet_sockets("udp6")}
    listening = 0
    for pid in _pids():
        for inode in _socket_inodes(pid):
            assert inode not in udp, f"process {pid} holds a UDP socket"
            if inode in tcp and tcp[inode][1] == 0x0A:  # LISTEN
                address = tcp[inode][0].split(":")[0]
                assert address == "0100007F", f"process {pid} listens on {tcp[inode][0]}"
                listening += 1
    assert listening == 5  # memcached and the four Swift servers


def test_logs_reach_the_sink(swift_facts: dict[str, str], swift_admin: SwiftAdmin) -> None:
    name = unique("pannier-log")
    swift_admin.create_container(name)
    swift_admin.delete_container(name)
    log = Path(swift_facts["PANNIER_TEST_SWIFT_LOG"]).read_text(errors="replace")
    assert "PUT /d1/" in log and name in log


def test_announced_listing_limits_are_enforced(
    swift_facts: dict[str, str], swift_admin: SwiftAdmin
) -> None:
    limit = int(swift_facts["PANNIER_TEST_SWIFT_LISTING_LIMIT"])
    assert int(swift_facts["PANNIER_TEST_S3_LISTING_LIMIT"]) < limit  # s3api asks for one more
    name = unique("pannier-limit")
    swift_admin.create_container(name)
    try:
        over = swift_admin.request("GET", name, params={"limit": str(limit + 1)})
        assert over.status_code == 412
        assert swift_admin.request("GET", name, params={"limit": str(limit)}).status_code == 204
    finally:
        swift_admin.delete_container(name)
    info = requests.get(f"{swift_facts['PANNIER_TEST_SWIFT_PROXY']}/info", timeout=30).json()
    assert info["swift"]["container_listing_limit"] == limit
    assert "s3api" in info
