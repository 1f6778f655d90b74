"""Fixtures shared across the test tree: the local Swift server (scripts/servers/swift.sh),
which the swift://, swiftkeys:// and s3:// (Swift's s3api) backend tests and the tests of
the server scripts themselves use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.plugins.backends.swift_server import SwiftAdmin
from tests.servers import require_server


@pytest.fixture(scope="module")
def swift_facts() -> dict[str, str]:
    """The facts of the running Swift server (``.servers/swift.env``)."""
    return require_server("swift")


@pytest.fixture(scope="module")
def swift_admin(swift_facts: dict[str, str]) -> Iterator[SwiftAdmin]:
    """Raw Swift requests with the admin token, to set up and inspect containers."""
    with SwiftAdmin(swift_facts) as admin:
        yield admin
