"""The facts of the local test servers, for the benchmarks.

``scripts/servers/NAME.sh start`` writes ``.servers/NAME.env``: ``KEY=VALUE`` lines giving
the server's address, users and keys (``PANNIER_SERVERS_DIR`` names another folder). The
benchmark scripts import this module from the ``bench`` folder they run in.
"""

from __future__ import annotations

import os
from pathlib import Path

TOP = Path(__file__).resolve().parent.parent


class ServerNotRunning(Exception):
    """Raised when a server has written no facts: it is not running."""


def servers_dir() -> Path:
    """Where the servers write their facts: ``PANNIER_SERVERS_DIR``, else ``.servers``."""
    return Path(os.environ.get("PANNIER_SERVERS_DIR") or TOP / ".servers")


def server_facts(name: str) -> dict[str, str]:
    """The facts of the running server ``name`` (``sshd``, ``swift``, ``webdav``);
    ServerNotRunning, naming the command that starts it, when it is not running."""
    env_file = servers_dir() / f"{name}.env"
    if not env_file.is_file():
        raise ServerNotRunning(
            f"the {name} test server is not running: bash scripts/servers/all.sh start {name}"
        )
    facts = {}
    for line in env_file.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            facts[key.strip()] = value.strip()
    return facts
