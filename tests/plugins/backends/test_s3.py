"""The s3:// backend against a real S3 server: Swift's s3api on the local test server."""

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
from pannier.url import parse_url

from tests.plugins.backends.shared import BackendTool
from tests.plugins.backends.swift_server import classified, s3_client, unique

MIB = 1 << 20


@pytest.fixture(scope="module")
def raw(swift_facts: dict[str, str]) -> Iterator[Any]:
    client = s3_client(swift_facts)
    yield client
    client.close()


def s3_url(swift_facts: dict[str, str], bucket: str, path: str = "", **options: str) -> str:
    """An s3:// URL for ``bucket`` on the test server, credentials in the query."""
    query = {
        "endpoint": swift_facts["PANNIER_TEST_S3_ENDPOINT"],
        "access-key": swift_facts["PANNIER_TEST_S3_ACCESS_KEY"],
        "secret-key": swift_facts["PANNIER_TEST_S3_SECRET_KEY"],
        **options,
    }
    return f"s3://{bucket}{path}?" + "&".join(f"{k}={v}" for k, v in query.items())


def drop_bucket(raw: Any, bucket: str) -> None:
    """Delete a bucket and its objects (best effort)."""
    try:
        while True:
            listed = raw.list_objects_v2(Bucket=bucket).get("Contents", [])
            if not listed:
                break
            for item in listed:
                raw.delete_object(Bucket=bucket, Key=item["Key"])
        raw.delete_bucket(Bucket=bucket)
    except Exception:
        pass


@pytest.fixture
def bucket(raw: Any) -> Iterator[str]:
    name = unique("pannier-s3")
    raw.create_bucket(Bucket=name)
    yield name
    drop_bucket(raw, name)


class TestS3Conformance(BackendConformance):
    """The conformance kit, with a page size and multipart threshold small enough that
    listing crosses pages and the kit's large object goes up in parts."""

    @pytest.fixture
    def make_backend(self, swift_facts: dict[str, str], bucket: str) -> str:
        page = swift_facts["PANNIER_TEST_S3_LISTING_LIMIT"]
        return s3_url(
            swift_facts, bucket, "/kit", **{"page-size": page, "multipart-threshold": "6M"}
        )


def test_scheme_is_found_through_discovery(swift_facts: dict[str, str], bucket: str) -> None:
    backend = get_backend_object(s3_url(swift_facts, bucket))
    assert type(backend).__name__ == "S3Backend"
    assert backend.get_capabilities().atomic_put


def test_listing_follows_pages_beyond_the_server_limit(
    swift_facts: dict[str, str], bucket: str, raw: Any
) -> None:
    limit = int(swift_facts["PANNIER_TEST_S3_LISTING_LIMIT"])
    count = 2 * limit + 7
    backend = get_backend_object(s3_url(swift_facts, bucket))  # page-size 1000: the server caps it
    names = [f"obj-{i:04d}" for i in range(count)]
    for name in names:
        backend.put_bytes(name, name.encode())
    page = raw.list_objects_v2(Bucket=bucket, MaxKeys=1000)
    assert page["KeyCount"] == limit and page["IsTruncated"]  # the server does page
    listed = backend.list()
    assert sorted(e.name for e in listed) == names
    assert all(e.size == len(e.name) for e in listed)


def test_prefixes_keep_objects_apart(swift_facts: dict[str, str], bucket: str, raw: Any) -> None:
    one = get_backend_object(s3_url(swift_facts, bucket, "/one"))
    two = get_backend_object(s3_url(swift_facts, bucket, "/two/deeper"))
    one.put_bytes("a", b"1")
    two.put_bytes("b", b"22")
    raw.put_object(Bucket=bucket, Key="one/sub/c", Body=b"nested")
    assert [(e.name, e.size) for e in one.list()] == [("a", 1)]
    assert [(e.name, e.size) for e in two.list()] == [("b", 2)]
    keys = sorted(o["Key"] for o in raw.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["one/a", "one/sub/c", "two/deeper/b"]


def test_multipart_upload_above_threshold(
    swift_facts: dict[str, str], bucket: str, raw: Any
) -> None:
    backend = get_backend_object(
        s3_url(swift_facts, bucket, **{"multipart-threshold": "5M", "part-size": "5M"})
    )
    data = bytes(range(256)) * (12 * MIB // 256) + b"tail"
    backend.put_stream(NonSeekableReader(data), "big")  # type: ignore[arg-type]
    head = raw.head_object(Bucket=bucket, Key="big")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5M, 5M, 2M + 4
    assert backend.get_bytes("big") == data
    small = b"x" * (5 * MIB)  # at the threshold: one PUT
    backend.put_bytes("small", small)
    assert "-" not in raw.head_object(Bucket=bucket, Key="small")["ETag"]


def test_failed_multipart_upload_leaves_nothing(
    swift_facts: dict[str, str], bucket: str, raw: Any
) -> None:
    backend = get_backend_object(
        s3_url(swift_facts, bucket, **{"multipart-threshold": "5M", "part-size": "5M"})
    )
    broken = NonSeekableReader(b"y" * (12 * MIB), fail_after=11 * MIB)
    with pytest.raises(OSError, match="broke"):
        backend.put_stream(broken, "big")  # type: ignore[arg-type]
    assert backend.query("big") == -1
    assert raw.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_part_size_below_the_s3_minimum_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"part-size.*5M"):
        get_backend_object("s3://bucket?part-size=1M&access-key=a&secret-key=b")


def test_storage_class_is_sent_and_checked(
    swift_facts: dict[str, str], bucket: str, raw: Any
) -> None:
    backend = get_backend_object(s3_url(swift_facts, bucket, **{"storage-class": "standard"}))
    assert backend.storage_class == "STANDARD"
    backend.put_bytes("obj", b"data")
    assert backend.get_bytes("obj") == b"data"
    with pytest.raises(ConfigError, match="STANDARD_IA"):
        get_backend_object(s3_url(swift_facts, bucket, **{"storage-class": "cheapest"}))


def test_wrong_secret_is_a_permanent_one_line_error(
    swift_facts: dict[str, str], bucket: str
) -> None:
    url = s3_url(swift_facts, bucket).replace("secret-key=testing", "secret-key=not-the-secret")
    backend = get_backend_object(url)
    with pytest.raises(PermanentBackendError) as info:
        backend.list()
    message = str(info.value)
    assert "SignatureDoesNotMatch" in message and "\n" not in message
    assert "not-the-secret" not in message and "secret-key=***" in message


def test_wrong_access_key_is_a_permanent_error(swift_facts: dict[str, str], bucket: str) -> None:
    url = s3_url(swift_facts, bucket).replace("access-key=test:tester", "access-key=nobody:none")
    with pytest.raises(PermanentBackendError) as info:
        get_backend_object(url).put_bytes("x", b"1")
    # tempauth cannot tell an unknown user from a wrong secret: any refusal code will do.
    codes = ("InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch")
    assert any(code in str(info.value) for code in codes)


def test_missing_bucket_is_created_only_when_asked(swift_facts: dict[str, str], raw: Any) -> None:
    name = unique("pannier-s3-missing")
    backend = get_backend_object(s3_url(swift_facts, name))
    try:
        with pytest.raises(FolderMissingError, match=f"bucket {name} does not exist"):
            backend.test()
        with pytest.raises(FolderMissingError):
            backend.list()
        with pytest.raises(FolderMissingError):
            backend.put_bytes("x", b"1")
        assert name not in [b["Name"] for b in raw.list_buckets()["Buckets"]]
        backend.create_folder()
        backend.test()
        backend.create_folder()  # creating it again is fine
        backend.put_bytes("x", b"1")
        assert backend.list()[0].name == "x"
    finally:
        drop_bucket(raw, name)


def test_missing_object_and_delete_list(swift_facts: dict[str, str], bucket: str) -> None:
    backend = get_backend_object(s3_url(swift_facts, bucket))
    with pytest.raises(FileMissingError, match="nothing does not exist"):
        backend.get_bytes("nothing")
    names = [f"d{i}" for i in range(5)]
    for name in names:
        backend.put_bytes(name, b"z")
    # DeleteObjects needs Content-MD5 on s3api: the backend's event hook adds it.
    backend.delete_list([*names[:4], "never-there"])
    assert [e.name for e in backend.list()] == ["d4"]


def test_credentials_from_the_environment_and_the_url(
    swift_facts: dict[str, str], bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = swift_facts["PANNIER_TEST_S3_ENDPOINT"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", swift_facts["PANNIER_TEST_S3_ACCESS_KEY"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", swift_facts["PANNIER_TEST_S3_SECRET_KEY"])
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    get_backend_object(f"s3://{bucket}").put_bytes("env", b"1")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    key = swift_facts["PANNIER_TEST_S3_ACCESS_KEY"].replace(":", "%3A")
    from_url = get_backend_object(
        f"s3://{key}:{swift_facts['PANNIER_TEST_S3_SECRET_KEY']}@{bucket}"
    )
    assert sorted(e.name for e in from_url.list()) == ["env"]
    assert swift_facts["PANNIER_TEST_S3_SECRET_KEY"] not in from_url.display_name


def test_half_given_credentials_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY_FILE", raising=False)
    with pytest.raises(ConfigError, match="no secret key"):
        get_backend_object("s3://bucket?access-key=someone")


def test_unreachable_endpoint_is_transient() -> None:
    backend = get_backend_object(
        "s3://bucket?endpoint=http://127.0.0.1:9&access-key=a&secret-key=b&timeout=2"
    )
    with pytest.raises(TransientBackendError, match=r"cannot reach http://127\.0\.0\.1:9"):
        backend.list()


def test_ranged_get_past_the_end_is_empty(swift_facts: dict[str, str], bucket: str) -> None:
    backend = get_backend_object(s3_url(swift_facts, bucket))
    backend.put_bytes("r", b"0123456789")
    assert backend.get_range("r", 8, 10) == b"89"
    assert backend.get_range("r", 10, 5) == b""
    assert backend.get_range("r", 3, 0) == b""
    with pytest.raises(FileMissingError):
        backend.get_range("absent", 0, 0)


def test_url_forms_are_parsed() -> None:
    backend: Any = get_backend_object(
        "s3://bk/a/b/?access-key=k&secret-key=s&region=eu-west-1&path-style=off"
    )
    assert (backend.bucket, backend.prefix, backend.region) == ("bk", "a/b/", "eu-west-1")
    assert backend.path_style is False
    with pytest.raises(ConfigError, match="names no bucket"):
        get_backend_object("s3:///nothing")
    assert parse_url("s3://k:secret@bk").redacted == "s3://k:***@bk"


def test_put_stream_of_unknown_size(swift_facts: dict[str, str], bucket: str) -> None:
    backend = get_backend_object(s3_url(swift_facts, bucket))
    backend.put_stream(io.BytesIO(b"abc" * 1000), "u")
    assert backend.query("u") == 3000


def _s3_error(code: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
        f"<Message>canned {code}</Message></Error>"
    ).encode()


@pytest.mark.parametrize(
    ("status", "code", "headers", "expected", "retry_after"),
    [
        (503, "SlowDown", {"Retry-After": "7"}, RateLimitedError, 7.0),
        (503, "ServiceUnavailable", {}, RateLimitedError, None),
        (500, "InternalError", {}, TransientBackendError, None),
        (403, "AccessDenied", {}, PermanentBackendError, None),
        (400, "InvalidArgument", {}, PermanentBackendError, None),
    ],
)
def test_server_answers_are_classified(
    status: int, code: str, headers: dict[str, str], expected: type, retry_after: float | None
) -> None:
    error = classified(
        status, _s3_error(code), headers,
        lambda server: f"s3://bucket?endpoint={server}&access-key=a&secret-key=b",
        expected, retry_after,
    )  # fmt: skip
    assert code in str(error)


def test_the_backend_tool_with_aws_variables(
    swift_facts: dict[str, str], raw: Any, tmp_path: Path
) -> None:
    """``pannier backend`` in a real process, credentials only in the environment."""
    name = unique("pannier-cli")
    tool = BackendTool(
        AWS_ENDPOINT_URL=swift_facts["PANNIER_TEST_S3_ENDPOINT"],
        AWS_ACCESS_KEY_ID=swift_facts["PANNIER_TEST_S3_ACCESS_KEY"],
        AWS_SECRET_ACCESS_KEY=swift_facts["PANNIER_TEST_S3_SECRET_KEY"],
    )
    try:
        tool.fails("ls", f"s3://{name}", saying=f"bucket {name} does not exist")
        assert tool("mkdir", f"s3://{name}").returncode == 0
        tool.round_trip(f"s3://{name}/pre", tmp_path)
        assert tool("rm", f"s3://{name}/pre", "obj").returncode == 0
        tool.env["AWS_SECRET_ACCESS_KEY"] = "wrong-secret"
        refused = tool.fails("ls", f"s3://{name}", saying="SignatureDoesNotMatch")
        assert "wrong-secret" not in refused
    finally:
        drop_bucket(raw, name)
