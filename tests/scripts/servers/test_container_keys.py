"""The container-keys filter (scripts/servers/container_keys.py), through the real Swift
proxy of the local test server: only the key check is ours, the rest is Swift."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.plugins.backends.swift_server import SwiftAdmin, unique
from tests.servers import require_server

FULL = "X-Container-Meta-Full-Key"
READ = "X-Container-Meta-Read-Key"


@pytest.fixture(scope="module")
def facts() -> dict[str, str]:
    return require_server("swift")


@pytest.fixture(scope="module")
def admin(facts: dict[str, str]) -> Iterator[SwiftAdmin]:
    client = SwiftAdmin(facts)
    yield client
    client.close()


@pytest.fixture
def box(admin: SwiftAdmin) -> Iterator[str]:
    """A container with a full key, a second and third full key, and a read key."""
    name = unique("pannier-ck")
    admin.create_container(
        name,
        **{
            FULL: "full-1",
            "X-Container-Meta-Full-Key-2": "full-2",
            "X-Container-Meta-Full-Key-3": "full-3",
            READ: "read-1",
        },
    )
    yield name
    admin.delete_container(name)


def call(
    admin: SwiftAdmin, method: str, path: str, key: tuple[str, str] | None, **kwargs: object
) -> requests.Response:
    """A request without any token, carrying only ``key`` as ``(header, value)``."""
    headers = dict(kwargs.pop("headers", {}) or {})  # type: ignore[call-overload]
    if key is not None:
        headers[key[0]] = key[1]
    return requests.request(
        method, f"{admin.storage_url}/{path}", headers=headers, timeout=30, **kwargs
    )  # type: ignore[arg-type]


def test_full_key_grants_every_object_operation(admin: SwiftAdmin, box: str) -> None:
    key = (FULL, "full-1")
    assert call(admin, "PUT", f"{box}/obj", key, data=b"payload").status_code == 201
    assert call(admin, "GET", f"{box}/obj", key).content == b"payload"
    assert call(admin, "HEAD", f"{box}/obj", key).headers["Content-Length"] == "7"
    assert call(admin, "GET", box, key).text.split() == ["obj"]
    assert call(admin, "HEAD", box, key).status_code == 204
    assert call(admin, "POST", f"{box}/obj", key, headers={"X-Object-Meta-A": "b"}).ok
    copy = call(admin, "PUT", f"{box}/copy", key, headers={"X-Copy-From": f"{box}/obj"})
    assert copy.status_code == 201
    assert call(admin, "DELETE", f"{box}/obj", key).status_code == 204
    assert call(admin, "GET", f"{box}/obj", key).status_code == 404


@pytest.mark.parametrize("value", ["full-2", "full-3"])
def test_second_and_third_full_keys_work(admin: SwiftAdmin, box: str, value: str) -> None:
    assert call(admin, "PUT", f"{box}/o", (FULL, value), data=b"x").status_code == 201


@pytest.mark.parametrize(
    "key",
    [(FULL, "wrong"), (FULL, "full-1x"), (FULL, "full-"), (FULL, ""), (READ, "full-1"),
     (FULL, "read-1"), (READ, "wrong")],
)  # fmt: skip
def test_a_wrong_key_gets_401(admin: SwiftAdmin, box: str, key: tuple[str, str]) -> None:
    response = call(admin, "GET", box, key)
    assert response.status_code == 401
    if key[1]:
        assert "Auth Key invalid" in response.text


def test_no_key_and_no_token_is_refused(admin: SwiftAdmin, box: str) -> None:
    assert call(admin, "GET", box, None).status_code == 401


def test_read_key_grants_reading_only(admin: SwiftAdmin, box: str) -> None:
    admin.request("PUT", f"{box}/obj", data=b"data").raise_for_status()
    key = (READ, "read-1")
    assert call(admin, "GET", f"{box}/obj", key).content == b"data"
    assert call(admin, "HEAD", f"{box}/obj", key).status_code == 200
    assert call(admin, "GET", box, key).text.split() == ["obj"]
    assert call(admin, "PUT", f"{box}/new", key, data=b"x").status_code == 403
    assert call(admin, "DELETE", f"{box}/obj", key).status_code == 403
    assert call(admin, "POST", f"{box}/obj", key).status_code == 403
    assert admin.request("HEAD", f"{box}/new").status_code == 404


def test_keys_never_change_the_container(admin: SwiftAdmin, box: str) -> None:
    key = (FULL, "full-1")
    post = call(admin, "POST", box, key, headers={"X-Container-Meta-Full-Key": "mine-now"})
    assert post.status_code == 403
    assert call(admin, "DELETE", box, key).status_code == 403
    assert call(admin, "PUT", f"{box}-sibling", key).status_code == 401
    assert admin.request("HEAD", box).headers[FULL] == "full-1"


def test_keys_are_not_revealed_to_key_holders(admin: SwiftAdmin, box: str) -> None:
    for key in ((READ, "read-1"), (FULL, "full-1")):
        for method in ("HEAD", "GET"):
            response = call(admin, method, box, key)
            assert response.ok
            leaked = [h for h in response.headers if h.lower().startswith("x-container-meta-")]
            assert leaked == []
    assert admin.request("HEAD", box).headers[READ] == "read-1"  # the owner still sees them


def test_the_grant_is_scoped_to_its_container(admin: SwiftAdmin, box: str) -> None:
    other = unique("pannier-ck-other")
    admin.create_container(other, **{FULL: "other-key"})
    try:
        admin.request("PUT", f"{other}/secret", data=b"not yours").raise_for_status()
        key = (FULL, "full-1")
        assert call(admin, "GET", f"{other}/secret", key).status_code == 401
        assert call(admin, "GET", other, key).status_code == 401
        # A server-side copy from another container is refused too.
        copy = call(admin, "PUT", f"{box}/stolen", key, headers={"X-Copy-From": f"{other}/secret"})
        assert copy.status_code in (401, 403)
        assert admin.request("HEAD", f"{box}/stolen").status_code == 404
        # The account itself is not reachable with a container key.
        assert call(admin, "GET", "", key).status_code == 401
    finally:
        admin.delete_container(other)


def test_missing_container_looks_like_a_wrong_key(admin: SwiftAdmin) -> None:
    assert call(admin, "GET", unique("pannier-ck-none"), (FULL, "anything")).status_code == 401


def test_a_token_goes_to_normal_auth(admin: SwiftAdmin, box: str) -> None:
    # With a valid token the key header is ordinary metadata: that is how owners set it.
    headers = {"X-Auth-Token": admin.token, FULL: "rotated"}
    assert requests.post(f"{admin.storage_url}/{box}", headers=headers, timeout=30).ok
    assert admin.request("HEAD", box).headers[FULL] == "rotated"
    assert call(admin, "GET", box, (FULL, "rotated")).ok
    assert call(admin, "GET", box, (FULL, "full-1")).status_code == 401
    # A bad token with a good key is judged by normal auth, and refused.
    bad = {"X-Auth-Token": "AUTH_tk-bad", FULL: "rotated"}
    assert requests.get(f"{admin.storage_url}/{box}", headers=bad, timeout=30).status_code == 401


def test_s3_requests_are_untouched(facts: dict[str, str], box: str) -> None:
    from tests.plugins.backends.swift_server import s3_client

    client = s3_client(facts)
    try:
        client.put_object(Bucket=box, Key="via-s3", Body=b"s3")
        assert client.get_object(Bucket=box, Key="via-s3")["Body"].read() == b"s3"
    finally:
        client.close()
