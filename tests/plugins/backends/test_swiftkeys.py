"""The swiftkeys:// backend against the local Swift server, whose proxy runs the project's
container-keys filter (scripts/servers/container_keys.py)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pannier import (
    ConfigError,
    FileMissingError,
    PermanentBackendError,
    RateLimitedError,
    TransientBackendError,
)
from pannier.backend_registry import get_backend_object
from pannier.testing.backend_suite import BackendConformance

from tests.plugins.backends.shared import (
    BackendTool,
    check_get_to_unwritable_or_missing,
    check_put_from_bad_sources,
)
from tests.plugins.backends.swift_server import SwiftAdmin, classified, unique

FULL_KEY = "full-key-for-tests-0123456789"
READ_KEY = "read-key-for-tests-9876543210"
_ENV = (
    "SWIFT_STORAGE_URL", "SWIFT_CONTAINER_FULL_TOKEN", "SWIFT_CONTAINER_FULL_TOKEN_FILE",
    "SWIFT_CONTAINER_READ_TOKEN",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def container(swift_admin: SwiftAdmin) -> Iterator[str]:
    """A container whose owner set a full key and a read key."""
    name = unique("pannier-keys")
    swift_admin.create_container(
        name, **{"X-Container-Meta-Full-Key": FULL_KEY, "X-Container-Meta-Read-Key": READ_KEY}
    )
    yield name
    swift_admin.delete_container(name)


@pytest.fixture
def keys_env(swift_facts: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables of duplicity-swiftkeys: the storage URL and the full key."""
    monkeypatch.setenv("SWIFT_STORAGE_URL", swift_facts["PANNIER_TEST_SWIFT_STORAGE_URL"])
    monkeypatch.setenv("SWIFT_CONTAINER_FULL_TOKEN", FULL_KEY)


class TestSwiftKeysConformance(BackendConformance):
    """The kit with only a container key, listing in pages of the server's limit."""

    @pytest.fixture
    def make_backend(self, swift_facts: dict[str, str], container: str, keys_env: None) -> str:
        return f"swiftkeys://{container}/kit?page-size={swift_facts['PANNIER_TEST_SWIFT_LISTING_LIMIT']}"


def test_listing_follows_pages_beyond_the_server_limit(
    swift_facts: dict[str, str], container: str, swift_admin: SwiftAdmin, keys_env: None
) -> None:
    limit = int(swift_facts["PANNIER_TEST_SWIFT_LISTING_LIMIT"])
    count = 2 * limit + 5
    backend = get_backend_object(f"swiftkeys://{container}")
    names = [f"obj-{i:04d}" for i in range(count)]
    for name in names:
        backend.put_bytes(name, b"k")
    assert len(swift_admin.listing(container)) == limit  # one server page is not everything
    assert [e.name for e in backend.list()] == names  # duplicity-swiftkeys stopped here


def test_wrong_key_is_a_permanent_error_without_the_key(
    container: str, keys_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWIFT_CONTAINER_FULL_TOKEN", "guessed-key")
    backend = get_backend_object(f"swiftkeys://{container}")
    for operation in (backend.list, backend.test, lambda: backend.put_bytes("x", b"1")):
        with pytest.raises(PermanentBackendError, match="401") as info:
            operation()
        assert "guessed-key" not in str(info.value) and "\n" not in str(info.value)
        assert not isinstance(info.value, FileMissingError)


def test_key_of_another_container_is_refused(
    container: str, swift_admin: SwiftAdmin, keys_env: None
) -> None:
    other = unique("pannier-keys-other")
    swift_admin.create_container(other, **{"X-Container-Meta-Full-Key": "other-key"})
    try:
        with pytest.raises(PermanentBackendError, match="401"):
            get_backend_object(f"swiftkeys://{other}").list()
    finally:
        swift_admin.delete_container(other)


def test_missing_container_is_refused_like_a_wrong_key(keys_env: None) -> None:
    backend = get_backend_object(f"swiftkeys://{unique('pannier-keys-none')}")
    with pytest.raises(PermanentBackendError, match="container exists"):
        backend.test()
    with pytest.raises(PermanentBackendError, match="cannot create container"):
        backend.create_folder()


def test_read_key_reads_but_cannot_write(
    swift_facts: dict[str, str],
    container: str,
    swift_admin: SwiftAdmin,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    swift_admin.request("PUT", f"{container}/existing", data=b"restore me").raise_for_status()
    monkeypatch.setenv("SWIFT_STORAGE_URL", swift_facts["PANNIER_TEST_SWIFT_STORAGE_URL"])
    monkeypatch.setenv("SWIFT_CONTAINER_READ_TOKEN", READ_KEY)
    backend = get_backend_object(f"swiftkeys://{container}")
    assert [e.name for e in backend.list()] == ["existing"]
    assert backend.get_bytes("existing") == b"restore me"
    with pytest.raises(PermanentBackendError, match="a read key cannot write"):
        backend.put_bytes("new", b"no")
    with pytest.raises(PermanentBackendError, match="403"):
        backend.delete("existing")
    assert swift_admin.request("HEAD", f"{container}/existing").status_code == 200


def test_source_of_wrong_size_or_broken_leaves_nothing(container: str, keys_env: None) -> None:
    with get_backend_object(f"swiftkeys://{container}") as backend:
        check_put_from_bad_sources(backend, broken="reading the source failed")


def test_get_to_unwritable_or_of_missing_object(
    container: str, keys_env: None, tmp_path: Path
) -> None:
    with get_backend_object(f"swiftkeys://{container}") as backend:
        check_get_to_unwritable_or_missing(backend, tmp_path)


def test_key_from_a_file(
    swift_facts: dict[str, str], container: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pathlib import Path

    key_file = Path(str(tmp_path)) / "key"
    key_file.write_text(FULL_KEY + "\n")
    monkeypatch.setenv("SWIFT_STORAGE_URL", swift_facts["PANNIER_TEST_SWIFT_STORAGE_URL"])
    monkeypatch.setenv("SWIFT_CONTAINER_FULL_TOKEN_FILE", str(key_file))
    get_backend_object(f"swiftkeys://{container}").test()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with an empty 204 listing and records its headers."""

    seen: list[dict[str, str]] = []

    def _answer(self) -> None:
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(200 if self.command == "GET" else 204)
        body = b"[]" if self.command == "GET" else b""
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = _answer

    def log_message(self, *args: object) -> None:
        pass


def test_no_token_is_sent_only_the_key(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    netrc = Path(str(tmp_path)) / ".netrc"  # requests would read credentials from here
    netrc.write_text("machine 127.0.0.1 login someone password netrc-secret\n")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("SWIFT_STORAGE_URL", f"http://127.0.0.1:{server.server_port}/v1/AUTH_x")
    monkeypatch.setenv("SWIFT_CONTAINER_FULL_TOKEN", FULL_KEY)
    _Recorder.seen = []
    try:
        backend = get_backend_object("swiftkeys://box")
        backend.test()
        assert backend.list() == []
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Recorder.seen) == 2
    for headers in _Recorder.seen:
        assert headers["x-container-meta-full-key"] == FULL_KEY
        assert "x-auth-token" not in headers and "x-storage-token" not in headers
        assert "authorization" not in headers


def test_configuration_errors_name_the_variables() -> None:
    with pytest.raises(ConfigError, match="SWIFT_STORAGE_URL"):
        get_backend_object("swiftkeys://box?full-token=k")
    with pytest.raises(ConfigError, match="SWIFT_CONTAINER_FULL_TOKEN"):
        get_backend_object("swiftkeys://box?storage-url=http://127.0.0.1:9/v1/AUTH_x")
    with pytest.raises(ConfigError, match="not an http"):
        get_backend_object("swiftkeys://box?storage-url=ftp://x&full-token=k")
    with pytest.raises(ConfigError, match="names no container"):
        get_backend_object("swiftkeys:///?storage-url=http://h/v1/AUTH_x&full-token=k")


def test_unreachable_server_is_transient() -> None:
    backend = get_backend_object(
        "swiftkeys://box?storage-url=http://127.0.0.1:9/v1/AUTH_x&full-token=k&timeout=2"
    )
    with pytest.raises(TransientBackendError, match="cannot reach"):
        backend.list()


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retry_after"),
    [
        (429, {"Retry-After": "3"}, RateLimitedError, 3.0),
        (500, {}, TransientBackendError, None),
        (507, {}, TransientBackendError, None),
        (413, {}, PermanentBackendError, None),
    ],
)
def test_server_answers_are_classified(
    status: int, headers: dict[str, str], expected: type, retry_after: float | None
) -> None:
    error = classified(
        status, b"canned", headers,
        lambda server: f"swiftkeys://c?storage-url={server}/v1/AUTH_x&full-token={FULL_KEY}",
        expected, retry_after,
    )  # fmt: skip
    assert str(status) in str(error) and FULL_KEY not in str(error)


def test_the_backend_tool_with_a_key_in_a_file(
    swift_facts: dict[str, str], container: str, tmp_path: Path
) -> None:
    """``pannier backend`` in a real process, the key read from a file."""
    (tmp_path / "key").write_text(FULL_KEY + "\n")
    tool = BackendTool(
        SWIFT_STORAGE_URL=swift_facts["PANNIER_TEST_SWIFT_STORAGE_URL"],
        SWIFT_CONTAINER_FULL_TOKEN_FILE=str(tmp_path / "key"),
    )
    url = f"swiftkeys://{container}"
    tool.round_trip(url, tmp_path)
    tool.fails("mkdir", url, saying="cannot create container")
    (tmp_path / "key").write_text("not-the-key\n")
    wrong = tool.fails("ls", url, saying="container key was refused")
    assert "not-the-key" not in wrong
