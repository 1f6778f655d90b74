"""Access to the local test servers started by ``scripts/servers/all.sh``.

A test that needs a server calls :func:`require_server`; when the server is not running
the test is skipped on a developer's machine and *fails* under ``CI=true``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TOP = Path(__file__).resolve().parent.parent
SERVERS_DIR = Path(os.environ.get("PANNIER_SERVERS_DIR", TOP / ".servers"))


def in_ci() -> bool:
    """Whether the tests run under CI (where a missing server is a failure)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip, or fail under CI, because something a test needs is missing."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing test dependency is a failure)")
    pytest.skip(reason)


def require_server(name: str) -> dict[str, str]:
    """The KEY=VALUE facts of the running test server ``name``."""
    env_file = SERVERS_DIR / f"{name}.env"
    if not env_file.is_file():
        unavailable(f"test server {name!r} is not running (scripts/servers/all.sh start {name})")
    facts: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            facts[key.strip()] = value.strip()
    return facts
