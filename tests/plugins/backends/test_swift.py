"""The swift:// backend against the local Swift all-in-one server (tempauth, v1 auth)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pannier import (
    ConfigError,
    FileMissingError,
    FolderMissingError,
    PermanentBackendError,
    RateLimitedError,
    TransientBackendError,
)
from pannier.backend_registry import get_backend_object
from pannier.testing.backend_checks import NonSeekableReader
from pannier.testing.backend_suite import BackendConformance

from tests.plugins.backends.shared import BackendTool, check_get_to_unwritable_or_missing
from tests.plugins.backends.swift_server import SwiftAdmin, admin_session, classified, unique

MIB = 1 << 20
_SWIFT_ENV = (
    "SWIFT_AUTHURL", "SWIFT_USERNAME", "SWIFT_PASSWORD", "SWIFT_PASSWORD_FILE",
    "SWIFT_AUTHVERSION", "SWIFT_TENANTNAME", "SWIFT_USER_DOMAIN_NAME", "SWIFT_PROJECT_NAME",
    "SWIFT_PROJECT_DOMAIN_NAME", "SWIFT_REGIONNAME", "SWIFT_PREAUTHURL", "SWIFT_PREAUTHTOKEN",
)  # fmt: skip


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No SWIFT_* variable of the developer's shell leaks into a test."""
    for name in _SWIFT_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def swift_env(swift_facts: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """duplicity's variables for the test server's administrator."""
    monkeypatch.setenv("SWIFT_AUTHURL", swift_facts["PANNIER_TEST_SWIFT_AUTH_URL"])
    monkeypatch.setenv("SWIFT_USERNAME", swift_facts["PANNIER_TEST_SWIFT_USER"])
    monkeypatch.setenv("SWIFT_PASSWORD", swift_facts["PANNIER_TEST_SWIFT_KEY"])
    monkeypatch.setenv("SWIFT_AUTHVERSION", "1")


@pytest.fixture
def container(swift_admin: SwiftAdmin) -> Iterator[str]:
    name = unique("pannier-swift")
    swift_admin.create_container(name)
    yield name
    swift_admin.delete_container(name)
    swift_admin.delete_container(f"{name}_segments")


class TestSwiftConformance(BackendConformance):
    """The kit through duplicity's SWIFT_* variables, with a page size equal to the
    server's limit (so listing crosses pages) and a small segment threshold."""

    @pytest.fixture
    def make_backend(self, swift_facts: dict[str, str], container: str, swift_env: None) -> str:
        page = swift_facts["PANNIER_TEST_SWIFT_LISTING_LIMIT"]
        return f"swift://{container}/kit?page-size={page}&segment-threshold=2M&segment-size=1M"


def test_listing_follows_pages_beyond_the_server_limit(
    swift_facts: dict[str, str], container: str, swift_admin: SwiftAdmin, swift_env: None
) -> None:
    limit = int(swift_facts["PANNIER_TEST_SWIFT_LISTING_LIMIT"])
    count = 2 * limit + 13
    backend = get_backend_object(f"swift://{container}")  # no page-size: the server's limit
    names = [f"obj-{i:04d}" for i in range(count)]
    for name in names:
        backend.put_bytes(name, name.encode())
    assert len(swift_admin.listing(container)) == limit  # the server does cut the listing
    listed = backend.list()
    assert [e.name for e in listed] == names
    assert all(e.size == len(e.name) for e in listed)


def test_segmented_upload_and_its_segments(
    container: str, swift_admin: SwiftAdmin, swift_env: None
) -> None:
    backend = get_backend_object(f"swift://{container}/pre?segment-threshold=2M&segment-size=1M")
    data = bytes(range(256)) * (3 * MIB // 256) + b"end"
    backend.put_stream(NonSeekableReader(data), "big")  # type: ignore[arg-type]
    head = swift_admin.request("HEAD", f"{container}/pre/big")
    assert head.headers.get("X-Static-Large-Object") == "True"
    assert len(swift_admin.listing(f"{container}_segments")) == 4  # 1M, 1M, 1M, 3 bytes
    assert backend.get_bytes("big") == data
    assert backend.query("big") == len(data)
    assert [(e.name, e.size) for e in backend.list()] == [("big", len(data))]
    assert backend.get_range("big", MIB - 2, 4) == data[MIB - 2 : MIB + 2]
    # Replacing a segmented object removes its old segments; so does deleting it.
    backend.put_bytes("big", data[: 2 * MIB + 5])
    assert len(swift_admin.listing(f"{container}_segments")) == 3
    assert backend.get_bytes("big") == data[: 2 * MIB + 5]
    backend.move("big", "moved")  # the manifest moves, the segments stay shared
    assert backend.get_bytes("moved") == data[: 2 * MIB + 5]
    backend.delete("moved")
    assert swift_admin.listing(f"{container}_segments") == []
    assert backend.list() == []


def test_failed_segmented_upload_leaves_nothing(
    container: str, swift_admin: SwiftAdmin, swift_env: None
) -> None:
    backend = get_backend_object(f"swift://{container}?segment-threshold=2M&segment-size=1M")
    broken = NonSeekableReader(b"s" * (4 * MIB), fail_after=3 * MIB)
    with pytest.raises(OSError, match="broke"):
        backend.put_stream(broken, "big")  # type: ignore[arg-type]
    short = io.BytesIO(b"s" * (3 * MIB))  # announced 4M, gives 3M
    with pytest.raises(PermanentBackendError, match=f"gave {3 * MIB} bytes, not the {4 * MIB}"):
        backend.put_stream(short, "big", 4 * MIB)
    assert backend.query("big") == -1
    assert swift_admin.listing(f"{container}_segments") == []


def test_preauthenticated_url_and_token(
    swift_facts: dict[str, str], container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage_url, token = admin_session(swift_facts)
    monkeypatch.setenv("SWIFT_PREAUTHURL", storage_url)
    monkeypatch.setenv("SWIFT_PREAUTHTOKEN", token)
    backend = get_backend_object(f"swift://{container}")
    backend.put_bytes("pre", b"authenticated")
    assert backend.get_bytes("pre") == b"authenticated"
    monkeypatch.setenv("SWIFT_PREAUTHTOKEN", "AUTH_tk-not-a-token")
    refused = get_backend_object(f"swift://{container}")
    with pytest.raises(PermanentBackendError, match="401") as info:
        refused.list()
    assert "AUTH_tk-not-a-token" not in str(info.value)


def test_wrong_password_is_a_permanent_one_line_error(
    swift_facts: dict[str, str], container: str, monkeypatch: pytest.MonkeyPatch, swift_env: None
) -> None:
    monkeypatch.setenv("SWIFT_PASSWORD", "not-the-password")
    backend = get_backend_object(f"swift://{container}")
    with pytest.raises(PermanentBackendError) as info:
        backend.list()
    message = str(info.value)
    assert "authentication refused" in message and "\n" not in message
    assert "not-the-password" not in message


def test_password_in_the_url_query_is_redacted(swift_facts: dict[str, str], container: str) -> None:
    url = (
        f"swift://{container}?auth-url={swift_facts['PANNIER_TEST_SWIFT_AUTH_URL']}"
        f"&user={swift_facts['PANNIER_TEST_SWIFT_USER']}&password=wrong-one"
    )
    backend = get_backend_object(url)
    with pytest.raises(PermanentBackendError) as info:
        backend.test()
    assert "wrong-one" not in str(info.value) and "password=***" in str(info.value)


def test_password_from_a_file(
    swift_facts: dict[str, str], container: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
    swift_env: None,
) -> None:  # fmt: skip
    secret = tmp_path / "swift-password"
    secret.write_text(swift_facts["PANNIER_TEST_SWIFT_KEY"] + "\n")
    monkeypatch.delenv("SWIFT_PASSWORD")
    monkeypatch.setenv("SWIFT_PASSWORD_FILE", str(secret))
    get_backend_object(f"swift://{container}").test()


def test_missing_container_is_created_only_when_asked(
    container: str, swift_admin: SwiftAdmin, swift_env: None
) -> None:
    name = f"{container}-new"
    backend = get_backend_object(f"swift://{name}")
    try:
        with pytest.raises(FolderMissingError, match=f"container {name} does not exist"):
            backend.test()
        with pytest.raises(FolderMissingError):
            backend.list()
        with pytest.raises(FolderMissingError):
            backend.put_bytes("x", b"1")
        assert swift_admin.request("HEAD", name).status_code == 404
        backend.create_folder()
        backend.test()
        backend.put_bytes("x", b"1")
        assert [e.name for e in backend.list()] == ["x"]
    finally:
        swift_admin.delete_container(name)


def test_user_without_rights_gets_a_permanent_error(
    swift_facts: dict[str, str],
    container: str,
    swift_admin: SwiftAdmin,
    monkeypatch: pytest.MonkeyPatch,
    swift_env: None,
) -> None:
    monkeypatch.setenv("SWIFT_USERNAME", swift_facts["PANNIER_TEST_SWIFT_USER2"])
    monkeypatch.setenv("SWIFT_PASSWORD", swift_facts["PANNIER_TEST_SWIFT_KEY2"])
    backend = get_backend_object(f"swift://{container}")
    with pytest.raises(PermanentBackendError, match="403"):
        backend.list()
    # A read ACL for that user: listing and reading work, writing is refused.
    swift_admin.request(
        "POST", container, headers={"X-Container-Read": swift_facts["PANNIER_TEST_SWIFT_USER2"]}
    ).raise_for_status()
    swift_admin.request("PUT", f"{container}/shared", data=b"readable").raise_for_status()
    assert [e.name for e in backend.list()] == ["shared"]
    assert backend.get_bytes("shared") == b"readable"
    with pytest.raises(PermanentBackendError, match="403"):
        backend.put_bytes("mine", b"no")


def test_missing_credentials_name_the_variables() -> None:
    with pytest.raises(ConfigError, match="SWIFT_AUTHURL, SWIFT_USERNAME, SWIFT_PASSWORD"):
        get_backend_object("swift://container")
    with pytest.raises(ConfigError, match="SWIFT_PREAUTHTOKEN"):
        get_backend_object("swift://container?preauth-url=http://127.0.0.1:9/v1/AUTH_x")
    with pytest.raises(ConfigError, match="names no container"):
        get_backend_object("swift:///x?auth-url=http://h/auth/v1.0&user=u&password=p")


def test_keystone_options_follow_duplicity_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWIFT_AUTHURL", "https://keystone.example/v3")
    monkeypatch.setenv("SWIFT_USERNAME", "backup")
    monkeypatch.setenv("SWIFT_PASSWORD", "pw")
    monkeypatch.setenv("SWIFT_AUTHVERSION", "3")
    monkeypatch.setenv("SWIFT_USER_DOMAIN_NAME", "Default")
    monkeypatch.setenv("SWIFT_PROJECT_NAME", "backups")
    monkeypatch.setenv("SWIFT_PROJECT_DOMAIN_NAME", "Default")
    monkeypatch.setenv("SWIFT_REGIONNAME", "RegionOne")
    backend: Any = get_backend_object("swift://c?region=RegionTwo")
    assert backend.auth_version == "3"
    assert backend.os_options == {
        "user_domain_name": "Default",
        "project_name": "backups",
        "project_domain_name": "Default",
        "region_name": "RegionTwo",  # the URL query wins over the environment
    }
    with pytest.raises(ConfigError, match="auth-version"):
        get_backend_object("swift://c?auth-version=4")


def test_unreachable_auth_url_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = get_backend_object(
        "swift://c?auth-url=http://127.0.0.1:9/auth/v1.0&user=u&password=p&timeout=2"
    )
    with pytest.raises(TransientBackendError, match="cannot reach"):
        backend.list()


def test_get_to_unwritable_or_of_missing_object(
    container: str, swift_env: None, tmp_path: Path
) -> None:
    with get_backend_object(f"swift://{container}") as backend:
        check_get_to_unwritable_or_missing(backend, tmp_path)


def test_missing_object(container: str, swift_env: None) -> None:
    backend = get_backend_object(f"swift://{container}")
    with pytest.raises(FileMissingError, match="absent does not exist"):
        backend.get_bytes("absent")
    with pytest.raises(FileMissingError):
        backend.get_range("absent", 0, 0)
    backend.delete("absent")
    assert backend.query_list(["absent"]) == {"absent": -1}


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retry_after"),
    [
        (429, {"Retry-After": "5"}, RateLimitedError, 5.0),
        (498, {}, RateLimitedError, None),
        (500, {}, TransientBackendError, None),
        (503, {}, TransientBackendError, None),
        (400, {}, PermanentBackendError, None),
    ],
)
def test_server_answers_are_classified(
    status: int, headers: dict[str, str], expected: type, retry_after: float | None
) -> None:
    error = classified(
        status, b"canned", headers,
        lambda server: f"swift://c?preauth-url={server}/v1/AUTH_x&preauth-token=tk",
        expected, retry_after,
    )  # fmt: skip
    assert str(status) in str(error)


def test_an_expired_token_is_renewed_once(container: str, swift_env: None) -> None:
    backend: Any = get_backend_object(f"swift://{container}?segment-threshold=2M&segment-size=1M")
    backend.put_bytes("before", b"1")
    expired = "AUTH_tk-expired-long-ago"  # what the server says of an expired token: 401
    backend.connection.token = expired
    backend.put_bytes("after", b"2")  # 401, one new authentication, the data sent again
    assert backend.connection.token != expired
    big = b"b" * (3 * MIB)
    backend.connection.token = expired
    backend.put_bytes("big", big)  # the same for a segment
    assert backend.get_bytes("big") == big
    backend.connection.token = expired
    assert [e.name for e in backend.list()] == ["after", "before", "big"]
    # A stream that cannot be rewound cannot be sent again: a transient error, no object.
    backend.connection.token = expired
    with pytest.raises(TransientBackendError):
        backend.put_stream(NonSeekableReader(b"once"), "stream", 4)  # type: ignore[arg-type]
    assert backend.query("stream") == -1


def test_keystone_without_its_client_library_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    if importlib.util.find_spec("keystoneclient") is not None:
        pytest.skip("python-keystoneclient is installed here")
    backend = get_backend_object(
        "swift://c?auth-url=http://127.0.0.1:9/v3&user=u&password=p&auth-version=3"
    )
    with pytest.raises(ConfigError, match="pip install python-keystoneclient"):
        backend.list()


def test_the_backend_tool_with_duplicity_variables(
    swift_facts: dict[str, str], swift_admin: SwiftAdmin, tmp_path: Path
) -> None:
    """``pannier backend`` in a real process, credentials only in the environment."""
    name = unique("pannier-cli")
    tool = BackendTool(
        SWIFT_AUTHURL=swift_facts["PANNIER_TEST_SWIFT_AUTH_URL"],
        SWIFT_USERNAME=swift_facts["PANNIER_TEST_SWIFT_USER"],
        SWIFT_PASSWORD=swift_facts["PANNIER_TEST_SWIFT_KEY"],
    )
    try:
        tool.fails("ls", f"swift://{name}", saying=f"container {name} does not exist")
        assert tool("mkdir", f"swift://{name}").returncode == 0
        tool.round_trip(f"swift://{name}", tmp_path)
        tool.env["SWIFT_PASSWORD"] = "wrong-password"
        refused = tool.fails("ls", f"swift://{name}", saying="authentication refused")
        assert "wrong-password" not in refused
    finally:
        swift_admin.delete_container(name)


def test_delete_list_of_many_names_uses_bulk_deletes_and_keeps_segments_right(
    container: str, swift_admin: SwiftAdmin, swift_env: None, swift_facts: dict[str, str]
) -> None:
    backend = get_backend_object(f"swift://{container}/p?segment-threshold=1M&segment-size=1M")
    names = [f"n{i:03d}" for i in range(45)]
    for name in names:
        backend.put_bytes(name, b"z")
    backend.put_bytes("large", b"L" * (2 * MIB + 1))  # segmented: 3 segments
    swift_admin.request("PUT", f"{container}/other", data=b"outside the prefix").raise_for_status()
    assert len(swift_admin.listing(f"{container}_segments")) == 3
    backend.delete_list([*names[:40], "large", "never-there"])
    assert sorted(e.name for e in backend.list()) == names[40:]
    assert swift_admin.listing(f"{container}_segments") == []  # the segments went too
    assert [e["name"] for e in swift_admin.listing(container, prefix="other")] == ["other"]
    # A user with only a write ACL on the container deletes many names too.
    swift_admin.request(
        "POST",
        container,
        headers={
            "X-Container-Read": swift_facts["PANNIER_TEST_SWIFT_USER2"],
            "X-Container-Write": swift_facts["PANNIER_TEST_SWIFT_USER2"],
        },
    ).raise_for_status()
    user2 = get_backend_object(
        f"swift://{container}/p?user={swift_facts['PANNIER_TEST_SWIFT_USER2']}"
        f"&password={swift_facts['PANNIER_TEST_SWIFT_KEY2']}"
    )
    user2.delete_list(names[40:] + [f"absent-{i}" for i in range(20)])
    assert user2.list() == []
