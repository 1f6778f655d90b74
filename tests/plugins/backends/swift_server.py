"""Helpers for the tests that use the local Swift server (scripts/servers/swift.sh): the
admin token, raw S3 and Swift clients to inspect what a backend did, unique names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from pannier import BackendError, RateLimitedError
from pannier.backend_registry import get_backend_object

from tests.plugins.backends.shared import unique as unique


def admin_session(facts: dict[str, str], user: str = "", key: str = "") -> tuple[str, str]:
    """``(storage_url, token)`` of the tempauth user (the admin ``test:tester`` by
    default)."""
    response = requests.get(
        facts["PANNIER_TEST_SWIFT_AUTH_URL"],
        headers={
            "X-Auth-User": user or facts["PANNIER_TEST_SWIFT_USER"],
            "X-Auth-Key": key or facts["PANNIER_TEST_SWIFT_KEY"],
        },
        timeout=30,
    )
    response.raise_for_status()
    return response.headers["X-Storage-Url"], response.headers["X-Auth-Token"]


class SwiftAdmin:
    """Raw Swift requests with the admin token, to set up and inspect containers."""

    def __init__(self, facts: dict[str, str]) -> None:
        self.storage_url, self.token = admin_session(facts)
        self.session = requests.Session()
        self.session.headers["X-Auth-Token"] = self.token

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """``method`` on ``storage_url/path``."""
        return self.session.request(method, f"{self.storage_url}/{path}", timeout=60, **kwargs)

    def create_container(self, name: str, **headers: str) -> None:
        """Create a container, with metadata headers given as keyword arguments."""
        self.request("PUT", name, headers=headers).raise_for_status()

    def listing(self, container: str, **params: str) -> list[dict[str, Any]]:
        """One raw listing page (the server's page size unless ``limit`` is given)."""
        response = self.request("GET", container, params={"format": "json", **params})
        if response.status_code == 404:
            return []
        response.raise_for_status()
        page: list[dict[str, Any]] = response.json()
        return page

    def delete_container(self, name: str) -> None:
        """Delete a container and everything in it (best effort)."""
        while page := self.listing(name):
            for item in page:
                self.request("DELETE", f"{name}/{item['name']}")
        self.request("DELETE", name)

    def close(self) -> None:
        """Release the HTTP session."""
        self.session.close()

    def __enter__(self) -> SwiftAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def s3_client(facts: dict[str, str], secret: str | None = None) -> Any:
    """A raw boto3 client for the server's s3api (path style, retries off)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=facts["PANNIER_TEST_S3_ENDPOINT"],
        aws_access_key_id=facts["PANNIER_TEST_S3_ACCESS_KEY"],
        aws_secret_access_key=secret or facts["PANNIER_TEST_S3_SECRET_KEY"],
        region_name=facts["PANNIER_TEST_S3_REGION"],
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            request_checksum_calculation="when_required",
        ),
    )


class CannedServer:
    """A local HTTP server that answers every request with one fixed response, to see how
    a backend classifies answers the real server cannot be made to give (429, 503 SlowDown
    with Retry-After, 500). Use as a context manager; ``url`` is its base URL and
    ``requests`` counts what it received."""

    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        import http.server
        import threading

        canned = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                canned.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.requests = 0
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> CannedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def classified(
    status: int,
    body: bytes,
    headers: dict[str, str],
    url_of: Callable[[str], str],
    expected: type[BackendError],
    retry_after: float | None,
) -> BackendError:
    """The error of a put through the backend whose URL is ``url_of(server_url)``, when a
    CannedServer answers ``status`` with ``body`` and ``headers`` to everything. It must
    be an ``expected``, come after one request (the SDK's own retries are off: the host's
    wrapper decides), and have ``retry_after`` if it is a RateLimitedError."""
    with CannedServer(status, body, headers) as server:
        backend = get_backend_object(url_of(server.url))
        with pytest.raises(expected) as info:
            backend.put_bytes("obj", b"data")
        assert server.requests == 1
    error = info.value
    if isinstance(error, RateLimitedError):
        assert error.retry_after == retry_after
    assert isinstance(error, RateLimitedError) == (expected is RateLimitedError)
    return error
