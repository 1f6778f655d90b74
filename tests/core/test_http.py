"""pannier.http: upload bodies, response bodies, and what HTTP failures mean, against a
real local HTTP server spoken to through requests."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from pannier.backend import Backend, ListEntry
from pannier.errors import (
    BackendError,
    ConfigError,
    PermanentBackendError,
    RateLimitedError,
    TransientBackendError,
)
from pannier.http import (
    UploadBody,
    bucket_and_prefix,
    http_network_error,
    http_status_error,
    network_detail,
    parse_retry_after,
    query_list_by_head,
    receive_body,
)
from pannier.testing.backend_checks import NonSeekableReader
from pannier.url import parse_url

WHERE = "test://somewhere"


class _Recorder(http.server.BaseHTTPRequestHandler):
    """PUT: keeps the body it received (chunked or not) and its headers, answers 201.
    GET /short: announces 1000 bytes, sends 10 and hangs up. GET: sends ``payload``."""

    protocol_version = "HTTP/1.1"
    received: list[tuple[dict[str, str], bytes]] = []
    payload = b""

    def do_PUT(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self.rfile.readline().strip(), 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
        else:
            body = self.rfile.read(int(headers.get("content-length", "0")))
        type(self).received.append((headers, body))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        if self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"0123456789")
            self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is what some tests do: nothing to print."""


@pytest.fixture
def server() -> Iterator[str]:
    httpd = _QuietServer(("127.0.0.1", 0), _Recorder)
    _Recorder.received = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def body(data: bytes | io.RawIOBase, size: int | None, **kwargs: Any) -> UploadBody:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    return UploadBody(source, size, label="put obj", backend=WHERE, **kwargs)  # type: ignore[arg-type]


# --- UploadBody -----------------------------------------------------------------------


def test_known_size_is_sent_with_its_length_and_hashed(server: str) -> None:
    data = bytes(range(256)) * 5000
    upload = body(data, len(data), md5=True)
    assert requests.put(f"{server}/obj", data=upload, timeout=30).status_code == 201
    headers, received = _Recorder.received[0]
    assert received == data
    assert headers["content-length"] == str(len(data))
    assert upload.hexdigest() == hashlib.md5(data).hexdigest()
    assert upload.read_count == len(data)


def test_unknown_size_is_sent_chunked(server: str) -> None:
    data = b"stream of unknown size " * 100_000
    upload = body(data, None, md5=True)
    requests.put(f"{server}/obj", data=upload, timeout=30)
    headers, received = _Recorder.received[0]
    assert headers.get("transfer-encoding") == "chunked" and "content-length" not in headers
    assert received == data
    assert upload.hexdigest() == hashlib.md5(data).hexdigest()


def test_a_short_source_is_permanent_and_passes_through_requests(server: str) -> None:
    with pytest.raises(PermanentBackendError) as info:
        requests.put(f"{server}/obj", data=body(b"abc", 10), timeout=30)
    assert str(info.value) == f"{WHERE}: put obj: the source gave 3 bytes, not the 10 announced"


def test_a_long_source_is_permanent_unless_the_body_is_a_part(server: str) -> None:
    with pytest.raises(PermanentBackendError, match="more than the 10 bytes announced"):
        requests.put(f"{server}/obj", data=body(b"x" * 20, 10), timeout=30)
    source = io.BytesIO(b"0123456789" + b"rest of a longer source")
    requests.put(
        f"{server}/obj",
        data=UploadBody(source, 10, label="put obj", backend=WHERE, exact=False),
        timeout=30,
    )
    # the first request's server thread may record its (empty) body late: look for ours
    bodies = [b for _, b in _Recorder.received]
    assert b"0123456789" in bodies and all(len(b) <= 10 for b in bodies), bodies
    assert source.tell() == 10  # the rest is left for the next part


def test_a_failing_source_is_transient(server: str) -> None:
    broken = NonSeekableReader(b"abcd" * 4, fail_after=4)
    with pytest.raises(TransientBackendError) as info:
        requests.put(f"{server}/obj", data=body(broken, None), timeout=30)
    assert "put obj: reading the source failed: the source stream broke" in str(info.value)
    assert not isinstance(info.value, PermanentBackendError)


def test_messages_of_a_part_count_from_the_start_of_the_source() -> None:
    part = body(b"ab", 5, offset=100)
    assert part.read(10) == b"ab"
    with pytest.raises(PermanentBackendError, match="gave 102 bytes, not the 105 announced"):
        part.read(10)


def test_reads_stop_at_the_size_and_the_end_is_checked_once() -> None:
    upload = body(b"0123456789", 10)
    assert upload.read(0) == b""
    assert upload.read(4) == b"0123"
    assert upload.read() == b"456789"  # the rest
    assert upload.read(4) == b"" and upload.read() == b""
    assert upload.len == 10
    assert not hasattr(body(b"", None), "len")  # no length: requests sends it chunked
    with pytest.raises(ValueError, match="md5=True"):
        upload.hexdigest()
    source = io.BytesIO(b"abc")
    kept = UploadBody(source, 3, label="put obj", backend=WHERE)
    assert list(kept) == [b"abc"]
    kept.close()
    assert not source.closed  # the caller owns the source


# --- receive_body ---------------------------------------------------------------------


def test_a_body_is_written_and_checked_against_its_md5(server: str) -> None:
    _Recorder.payload = b"payload " * 50_000
    digest = hashlib.md5(_Recorder.payload).hexdigest()
    for expected in (None, "", digest, f'"{digest.upper()}"'):
        out = io.BytesIO()
        with requests.get(f"{server}/obj", stream=True, timeout=30) as resp:
            count = receive_body(
                resp.iter_content(65536), out, label="get obj", backend=WHERE,
                expected_md5=expected,
            )  # fmt: skip
        assert out.getvalue() == _Recorder.payload and count == len(_Recorder.payload)
    with (
        requests.get(f"{server}/obj", stream=True, timeout=30) as resp,
        pytest.raises(TransientBackendError, match="does not match the object's ETag"),
    ):
        receive_body(
            resp.iter_content(65536), io.BytesIO(), label="get obj", backend=WHERE,
            expected_md5="0" * 32,
        )  # fmt: skip


def test_a_body_that_breaks_off_is_transient(server: str) -> None:
    out = io.BytesIO()
    with (
        requests.get(f"{server}/short", stream=True, timeout=30) as resp,
        pytest.raises(TransientBackendError) as info,
    ):
        receive_body(resp.iter_content(100), out, label="get obj", backend=WHERE)
    message = str(info.value)
    assert message.startswith(f"{WHERE}: get obj: the download broke off: ")
    assert "\n" not in message and " at 0x" not in message


def test_a_local_file_is_made_only_when_the_body_comes(server: str, tmp_path: Path) -> None:
    target = tmp_path / "local"

    def refused() -> Iterator[bytes]:
        raise PermanentBackendError("no such object", backend=WHERE)
        yield b""  # pragma: no cover

    with pytest.raises(PermanentBackendError, match="no such object"):
        receive_body(refused(), str(target), label="get obj", backend=WHERE)
    _Recorder.payload = b"saved"
    with requests.get(f"{server}/obj", stream=True, timeout=30) as resp:
        assert receive_body(resp.iter_content(), str(target), label="g", backend=WHERE) == 5
    assert target.read_bytes() == b"saved"
    with pytest.raises(PermanentBackendError, match=r"get obj: cannot write .*/no/dir: "):
        receive_body([b"x"], str(tmp_path / "no" / "dir"), label="get obj", backend=WHERE)


def test_a_failure_to_write_is_the_callers() -> None:
    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b: Any) -> int:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left") as info:
        receive_body([b"data"], Full(), label="get obj", backend=WHERE)  # type: ignore[arg-type]
    assert not isinstance(info.value, BackendError)


# --- what a status means --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retry_after", "options", "expected", "delay"),
    [
        (429, None, {}, RateLimitedError, None),
        (429, "7", {}, RateLimitedError, 7.0),
        (498, None, {}, RateLimitedError, None),
        (503, "3", {}, RateLimitedError, 3.0),
        (503, None, {}, TransientBackendError, None),
        (500, None, {}, TransientBackendError, None),
        (408, None, {}, TransientBackendError, None),
        (507, None, {}, TransientBackendError, None),
        (507, None, {"permanent": (507,)}, PermanentBackendError, None),
        (409, None, {}, PermanentBackendError, None),
        (409, None, {"transient": (409, 422)}, TransientBackendError, None),
        (400, None, {}, PermanentBackendError, None),
        (413, None, {}, PermanentBackendError, None),
    ],
)
def test_statuses_map_to_their_class(
    status: int,
    retry_after: str | None,
    options: dict[str, Any],
    expected: type[BackendError],
    delay: float | None,
) -> None:
    error = http_status_error(
        "put obj", status, "Reason", backend=WHERE, retry_after=retry_after, **options
    )
    assert type(error) is expected
    assert str(error) == f"{WHERE}: put obj: the server answered {status} Reason"
    if isinstance(error, RateLimitedError):
        assert error.retry_after == delay


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 2.5 ") == 2.5
    assert parse_retry_after("-3") == 0.0
    soon = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=120), usegmt=True)
    assert 100 < (parse_retry_after(soon) or 0) <= 120
    past = format_datetime(datetime.now(timezone.utc) - timedelta(hours=1), usegmt=True)
    assert parse_retry_after(past) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None and parse_retry_after(None) is None


# --- what a network failure means -----------------------------------------------------


def _failure(url: str, **kwargs: Any) -> requests.RequestException:
    try:
        requests.get(url, **kwargs)
    except requests.RequestException as e:
        return e
    raise AssertionError(f"{url} answered")


def test_a_refused_connection_is_transient_and_names_the_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = f"http://127.0.0.1:{port}"
    e = _failure(f"{server}/x", timeout=5)
    error = http_network_error("list", e, backend=WHERE, server=server)
    assert type(error) is TransientBackendError
    assert str(error) == f"{WHERE}: list: cannot reach {server}: Connection refused"
    assert network_detail(e) == "Connection refused"


def test_a_silent_server_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        e = _failure(f"http://127.0.0.1:{port}/x", timeout=0.5)
    error = http_network_error("get obj", e, backend=WHERE, server="s")
    assert type(error) is TransientBackendError
    assert "get obj: timed out: Read timed out" in str(error)


def test_tls_failures_and_invalid_urls_are_permanent(server: str) -> None:
    e = _failure(server.replace("http://", "https://") + "/x", timeout=5)  # no TLS there
    error = http_network_error("test", e, backend=WHERE, server=server)
    assert type(error) is PermanentBackendError and "test: TLS failure: " in str(error)
    error = http_network_error("test", _failure("http://"), backend=WHERE, server=server)
    assert type(error) is PermanentBackendError and "test: invalid URL: " in str(error)


def test_network_detail_is_one_line_without_addresses() -> None:
    assert network_detail(ValueError()) == "ValueError"
    assert network_detail(ValueError("two\nlines")) == "two lines"
    text = (
        "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: /x "
        "(Caused by NewConnectionError('<urllib3.connection.HTTPConnection object at "
        "0x7f00>: Failed to establish a new connection: [Errno 111] Connection refused'))"
    )
    assert network_detail(ConnectionError(text)) == "Connection refused"
    pool = "HTTPSConnectionPool(host='h', port=1): something else went wrong"
    assert network_detail(ConnectionError(pool)) == "something else went wrong"


class _Shelf(Backend):
    """A backend in a dict that counts the queries and listings it is asked for."""

    plugin_api_version = 1

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.calls: list[str] = []

    def _query(self, filename: str) -> dict[str, int]:
        self.calls.append("query")
        return {"size": len(self.objects[filename]) if filename in self.objects else -1}

    def _list(self) -> Iterator[ListEntry]:
        self.calls.append("list")
        return iter([ListEntry(name, len(data)) for name, data in self.objects.items()])


def test_query_list_asks_for_a_few_names_and_lists_for_many() -> None:
    shelf = _Shelf({f"n{i}": b"x" * i for i in range(40)})
    few = [f"n{i}" for i in range(16)] + ["absent"]
    assert query_list_by_head(shelf, few[:16]) == {n: {"size": int(n[1:])} for n in few[:16]}
    assert shelf.calls == ["query"] * 16
    shelf.calls.clear()
    answer = query_list_by_head(shelf, few)
    assert shelf.calls == ["list"]
    assert answer["absent"] == {"size": -1} and answer["n7"] == {"size": 7}
    shelf.calls.clear()
    assert query_list_by_head(shelf, ["n3", "n4"], listing_above=1) == {
        "n3": {"size": 3},
        "n4": {"size": 4},
    }
    assert shelf.calls == ["list"]


def test_an_object_store_url_names_a_bucket_and_a_prefix() -> None:
    assert bucket_and_prefix(parse_url("s3://bk")) == ("bk", "")
    assert bucket_and_prefix(parse_url("s3://bk/a/b/?region=x")) == ("bk", "a/b/")
    assert bucket_and_prefix(parse_url("swift://c//deep//"), "container") == ("c", "deep/")
    with pytest.raises(ConfigError) as info:
        bucket_and_prefix(parse_url("swift://u:secret@/x"), "container")
    assert str(info.value) == (
        "swift://u:***@/x: the URL names no container (swift://CONTAINER/PREFIX)"
    )


def test_importing_the_module_does_not_import_requests() -> None:
    code = "import sys, pannier.http; print('requests' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
