"""The container-keys filter (scripts/servers/container_keys.py), through the real Swift
proxy of the local test server: only the key check is ours, the rest is Swift."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.plugins.backends.swift_server import SwiftAdmin, unique

FULL = "X-Container-Meta-Full-Key"
READ = "X-Container-Meta-Read-Key"


@pytest.fixture
def box(swift_admin: SwiftAdmin) -> Iterator[str]:
    """A container with a full key, a second and third full key, and a read key."""
    name = unique("pannier-ck")
    swift_admin.create_container(
        name,
        **{
            FULL: "full-1",
            "X-Container-Meta-Full-Key-2": "full-2",
            "X-Container-Meta-Full-Key-3": "full-3",
            READ: "read-1",
        },
    )
    yield name
    swift_admin.delete_container(name)


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


def test_full_key_grants_every_object_operation(swift_admin: SwiftAdmin, box: str) -> None:
    key = (FULL, "full-1")
    assert call(swift_admin, "PUT", f"{box}/obj", key, data=b"payload").status_code == 201
    assert call(swift_admin, "GET", f"{box}/obj", key).content == b"payload"
    assert call(swift_admin, "HEAD", f"{box}/obj", key).headers["Content-Length"] == "7"
    assert call(swift_admin, "GET", box, key).text.split() == ["obj"]
    assert call(swift_admin, "HEAD", box, key).status_code == 204
    assert call(swift_admin, "POST", f"{box}/obj", key, headers={"X-Object-Meta-A": "b"}).ok
    copy = call(swift_admin, "PUT", f"{box}/copy", key, headers={"X-Copy-From": f"{box}/obj"})
    assert copy.status_code == 201
    assert call(swift_admin, "DELETE", f"{box}/obj", key).status_code == 204
    assert call(swift_admin, "GET", f"{box}/obj", key).status_code == 404


@pytest.mark.parametrize("value", ["full-2", "full-3"])
def test_second_and_third_full_keys_work(swift_admin: SwiftAdmin, box: str, value: str) -> None:
    assert call(swift_admin, "PUT", f"{box}/o", (FULL, value), data=b"x").status_code == 201


@pytest.mark.parametrize(
    "key",
    [(FULL, "wrong"), (FULL, "full-1x"), (FULL, "full-"), (FULL, ""), (READ, "full-1"),
     (FULL, "read-1"), (READ, "wrong")],
)  # fmt: skip
def test_a_wrong_key_gets_401(swift_admin: SwiftAdmin, box: str, key: tuple[str, str]) -> None:
    response = call(swift_admin, "GET", box, key)
    assert response.status_code == 401
    if key[1]:
        assert "Auth Key invalid" in response.text


def test_no_key_and_no_token_is_refused(swift_admin: SwiftAdmin, box: str) -> None:
    assert call(swift_admin, "GET", box, None).status_code == 401


def test_read_key_grants_reading_only(swift_admin: SwiftAdmin, box: str) -> None:
    swift_admin.request("PUT", f"{box}/obj", data=b"data").raise_for_status()
    key = (READ, "read-1")
    assert call(swift_admin, "GET", f"{box}/obj", key).content == b"data"
    assert call(swift_admin, "HEAD", f"{box}/obj", key).status_code == 200
    assert call(swift_admin, "GET", box, key).text.split() == ["obj"]
    assert call(swift_admin, "PUT", f"{box}/new", key, data=b"x").status_code == 403
    assert call(swift_admin, "DELETE", f"{box}/obj", key).status_code == 403
    assert call(swift_admin, "POST", f"{box}/obj", key).status_code == 403
    assert swift_admin.request("HEAD", f"{box}/new").status_code == 404


def test_keys_never_change_the_container(swift_admin: SwiftAdmin, box: str) -> None:
    key = (FULL, "full-1")
    post = call(swift_admin, "POST", box, key, headers={"X-Container-Meta-Full-Key": "mine-now"})
    assert post.status_code == 403
    assert call(swift_admin, "DELETE", box, key).status_code == 403
    assert call(swift_admin, "PUT", f"{box}-sibling", key).status_code == 401
    assert swift_admin.request("HEAD", box).headers[FULL] == "full-1"


def test_keys_are_not_revealed_to_key_holders(swift_admin: SwiftAdmin, box: str) -> None:
    for key in ((READ, "read-1"), (FULL, "full-1")):
        for method in ("HEAD", "GET"):
            response = call(swift_admin, method, box, key)
            assert response.ok
            leaked = [h for h in response.headers if h.lower().startswith("x-container-meta-")]
            assert leaked == []
    assert swift_admin.request("HEAD", box).headers[READ] == "read-1"  # the owner still sees them


def test_the_grant_is_scoped_to_its_container(swift_admin: SwiftAdmin, box: str) -> None:
    other = unique("pannier-ck-other")
    swift_admin.create_container(other, **{FULL: "other-key"})
    try:
        swift_admin.request("PUT", f"{other}/secret", data=b"not yours").raise_for_status()
        key = (FULL, "full-1")
        assert call(swift_admin, "GET", f"{other}/secret", key).status_code == 401
        assert call(swift_admin, "GET", other, key).status_code == 401
        # A server-side copy from another container is refused too.
        copy = call(
            swift_admin, "PUT", f"{box}/stolen", key, headers={"X-Copy-From": f"{other}/secret"}
        )
        assert copy.status_code in (401, 403)
        assert swift_admin.request("HEAD", f"{box}/stolen").status_code == 404
        # The account itself is not reachable with a container key.
        assert call(swift_admin, "GET", "", key).status_code == 401
    finally:
        swift_admin.delete_container(other)


def test_missing_container_looks_like_a_wrong_key(swift_admin: SwiftAdmin) -> None:
    assert (
        call(swift_admin, "GET", unique("pannier-ck-none"), (FULL, "anything")).status_code == 401
    )


def test_a_token_goes_to_normal_auth(swift_admin: SwiftAdmin, box: str) -> None:
    # With a valid token the key header is ordinary metadata: that is how owners set it.
    headers = {"X-Auth-Token": swift_admin.token, FULL: "rotated"}
    assert requests.post(f"{swift_admin.storage_url}/{box}", headers=headers, timeout=30).ok
    assert swift_admin.request("HEAD", box).headers[FULL] == "rotated"
    assert call(swift_admin, "GET", box, (FULL, "rotated")).ok
    assert call(swift_admin, "GET", box, (FULL, "full-1")).status_code == 401
    # A bad token with a good key is judged by normal auth, and refused.
    bad = {"X-Auth-Token": "AUTH_tk-bad", FULL: "rotated"}
    assert (
        requests.get(f"{swift_admin.storage_url}/{box}", headers=bad, timeout=30).status_code == 401
    )


def test_s3_requests_are_untouched(swift_facts: dict[str, str], box: str) -> None:
    from tests.plugins.backends.swift_server import s3_client

    client = s3_client(swift_facts)
    try:
        client.put_object(Bucket=box, Key="via-s3", Body=b"s3")
        assert client.get_object(Bucket=box, Key="via-s3")["Body"].read() == b"s3"
    finally:
        client.close()
