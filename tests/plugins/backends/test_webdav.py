"""webdav:// against BOTH test servers of scripts/servers/webdav.sh: `rclone serve webdav`
(Basic authentication) and WsgiDAV (Digest authentication, under /dav/). Their quirks
differ, so code that leans on one of them fails on the other."""

from __future__ import annotations

import http.server
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from pannier import (
    ConfigError,
    FileMissingError,
    FolderMissingError,
    PermanentBackendError,
    RateLimitedError,
)
from pannier.backend_registry import get_backend, get_backend_object
from pannier.errors import TransientBackendError
from pannier.testing.backend_suite import BackendConformance
from pannier.url import parse_url
from requests.auth import HTTPBasicAuth, HTTPDigestAuth

from tests.plugins.backends.shared import (
    BackendTool,
    check_get_to_unwritable_or_missing,
    check_put_from_bad_sources,
    fresh,
    unique,
)
from tests.servers import require_server

SERVERS = ("rclone", "wsgidav")


@pytest.fixture(scope="module")
def webdav() -> dict[str, str]:
    return require_server("webdav")


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, webdav: dict[str, str]) -> str:
    """The base URL (http://host:port/path/) of one of the two servers."""
    return webdav[f"PANNIER_TEST_WEBDAV_{request.param.upper()}_URL"]


@pytest.fixture
def password_env(webdav: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PANNIER_WEBDAV_PASSWORD", webdav["PANNIER_TEST_WEBDAV_PASS"])


def dav_url(base: str, user: str | None, folder: str, query: str = "") -> str:
    """``webdav://user@host:port/base/folder/`` from a server's http:// base URL
    (``webdavs://`` from an https:// one)."""
    scheme, _, rest = base.partition("://")
    userinfo = f"{user}@" if user else ""
    dav = "webdavs" if scheme == "https" else "webdav"
    path = f"{rest}{folder}/" if folder else rest
    return f"{dav}://{userinfo}{path}" + (f"?{query}" if query else "")


class TestWebDAVConformance(BackendConformance):
    """The whole conformance kit, once per server; the password comes from the
    environment, the user from the URL."""

    @pytest.fixture
    def make_backend(self, server: str, webdav: dict[str, str], password_env: None) -> str:
        return fresh(dav_url(server, webdav["PANNIER_TEST_WEBDAV_USER"], unique("kit")))


class TestWebDAVSConformance(BackendConformance):
    """The kit over HTTPS (webdavs://), trusting the test server's own certificate."""

    @pytest.fixture
    def make_backend(self, webdav: dict[str, str], password_env: None) -> str:
        query = f"ca-file={webdav['PANNIER_TEST_WEBDAV_TLS_CA_FILE']}"
        base = webdav["PANNIER_TEST_WEBDAV_TLS_URL"]
        return fresh(dav_url(base, webdav["PANNIER_TEST_WEBDAV_USER"], unique("kit"), query))


def test_untrusted_certificate_is_permanent_and_not_retried(
    webdav: dict[str, str], password_env: None
) -> None:
    base = webdav["PANNIER_TEST_WEBDAV_TLS_URL"]
    url = dav_url(base, webdav["PANNIER_TEST_WEBDAV_USER"], "", "retries=3&retry-delay=0.01")
    assert url.startswith("webdavs://")
    with pytest.raises(PermanentBackendError, match="TLS failure") as err:
        get_backend(url).test()
    assert "gave up after" not in str(err.value) and "\n" not in str(err.value)
    # verify=false accepts any certificate (for a trusted network only), with a warning.
    insecure = dav_url(base, webdav["PANNIER_TEST_WEBDAV_USER"], "", "verify=false")
    with pytest.warns(Warning, match="Unverified HTTPS request"):
        get_backend_object(insecure).test()


# --- authentication ---------------------------------------------------------------------


def test_wrong_password_is_permanent_redacted_and_not_retried(
    server: str, webdav: dict[str, str]
) -> None:
    user = webdav["PANNIER_TEST_WEBDAV_USER"]
    url = dav_url(f"{server}", None, "").replace("webdav://", f"webdav://{user}:Wr0ng-Secret@")
    with pytest.raises(PermanentBackendError) as err:
        get_backend(url + "?retries=3&retry-delay=0.01").test()
    message = str(err.value)
    assert "authentication failed" in message
    assert "Wr0ng-Secret" not in message
    assert "gave up after" not in message and "\n" not in message


def test_no_credentials_names_what_is_missing(server: str, monkeypatch) -> None:
    monkeypatch.delenv("PANNIER_WEBDAV_USER", raising=False)
    with pytest.raises(PermanentBackendError, match="asks for a user and password"):
        get_backend_object(dav_url(server, None, "")).test()


def test_password_without_user_is_a_config_error(server: str, password_env: None) -> None:
    with pytest.raises(ConfigError, match="no user"):
        get_backend_object(dav_url(server, None, ""))


def test_password_from_file_and_forced_scheme(webdav: dict[str, str], tmp_path, monkeypatch):
    secret = tmp_path / "pw"
    secret.write_text(webdav["PANNIER_TEST_WEBDAV_PASS"] + "\n")
    monkeypatch.delenv("PANNIER_WEBDAV_PASSWORD", raising=False)
    monkeypatch.setenv("PANNIER_WEBDAV_PASSWORD_FILE", str(secret))
    user = webdav["PANNIER_TEST_WEBDAV_USER"]
    rclone, wsgidav = (webdav[f"PANNIER_TEST_WEBDAV_{s.upper()}_URL"] for s in SERVERS)
    # Each server speaks one scheme: forcing it works, forcing the other one fails.
    for base, good, bad in ((rclone, "basic", "digest"), (wsgidav, "digest", "basic")):
        backend = get_backend_object(fresh(dav_url(base, user, unique("auth"), f"auth={good}")))
        with backend:
            backend.put_bytes("a", b"authenticated")
            assert backend.get_bytes("a") == b"authenticated"
        with pytest.raises(PermanentBackendError):
            get_backend_object(dav_url(base, user, "", f"auth={bad}")).test()


# --- collections ------------------------------------------------------------------------


def test_missing_collection_then_create_folder(
    server: str, webdav: dict[str, str], password_env: None
) -> None:
    folder = f"{unique('missing')}/deeper/still"
    backend = get_backend_object(dav_url(server, webdav["PANNIER_TEST_WEBDAV_USER"], folder))
    with backend:
        with pytest.raises(FolderMissingError, match="does not exist"):
            backend.test()
        with pytest.raises(FolderMissingError):
            backend.list()
        with pytest.raises(FolderMissingError):  # PUT without parent: 404 or 409
            backend.put_bytes("x", b"x")
        backend.create_folder()  # parents too
        backend.create_folder()  # existing: 201 on one server, 405 on the other
        backend.test()
        backend.put_bytes("x", b"x")
        assert [(e.name, e.size) for e in backend.list()] == [("x", 1)]


@pytest.mark.parametrize("name", SERVERS)
def test_listing_skips_collections_and_temp_names(
    name: str, webdav: dict[str, str], password_env: None
) -> None:
    base = webdav[f"PANNIER_TEST_WEBDAV_{name.upper()}_URL"]
    user, password = webdav["PANNIER_TEST_WEBDAV_USER"], webdav["PANNIER_TEST_WEBDAV_PASS"]
    folder = unique("skip")
    backend = get_backend_object(fresh(dav_url(base, user, folder)))
    # What an interrupted put leaves behind, and a sub-collection, made through the server
    # (rclone serves from a directory cache, so files made on its disk may not show).
    auth = (HTTPBasicAuth if name == "rclone" else HTTPDigestAuth)(user, password)
    made = [
        requests.put(f"{base}{folder}/.pannier-tmp-leftover", data=b"half", auth=auth),
        requests.request("MKCOL", f"{base}{folder}/sub/", auth=auth),
        requests.put(f"{base}{folder}/sub/inside", data=b"deeper", auth=auth),
    ]
    assert [r.status_code for r in made] == [201, 201, 201]
    with backend:
        backend.put_bytes("real", b"12")
        assert [(e.name, e.size) for e in backend.list()] == [("real", 2)]


def test_in_place_put_when_atomic_put_is_off(
    server: str, webdav: dict[str, str], password_env: None
) -> None:
    url = dav_url(server, webdav["PANNIER_TEST_WEBDAV_USER"], unique("inplace"), "atomic-put=0")
    backend = get_backend_object(fresh(url))
    with backend:
        backend.put_bytes("a", b"first")
        backend.put_bytes("a", b"2nd")
        assert backend.get_bytes("a") == b"2nd"
        assert backend.get_range("a", 1, 10) == b"nd"
        with pytest.raises(FileMissingError):
            backend.move("nope", "b")


# --- network and server answers -----------------------------------------------------------


def test_server_unreachable_gives_one_line_after_bounded_retries() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    backend = get_backend(f"webdav://127.0.0.1:{port}/x/?retries=3&retry-delay=0.01&timeout=5")
    with pytest.raises(TransientBackendError) as err:
        backend.test()
    message = str(err.value)
    assert f"cannot reach http://127.0.0.1:{port}" in message
    assert "gave up after 3 attempts" in message and "\n" not in message


class _Busy(http.server.BaseHTTPRequestHandler):
    """A server that is always too busy: 503 with Retry-After (no WebDAV server here can
    be made to answer that on demand)."""

    def do_PROPFIND(self) -> None:
        self.send_response(503)
        self.send_header("Retry-After", "7")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def busy_server() -> Iterator[int]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def test_busy_server_is_rate_limited_with_its_retry_after(busy_server: int) -> None:
    backend = get_backend_object(parse_url(f"webdav://127.0.0.1:{busy_server}/x/"))
    with pytest.raises(RateLimitedError) as err:
        backend.test()
    assert err.value.retry_after == 7.0


def test_get_to_unwritable_or_of_missing_object(
    server: str, webdav: dict[str, str], password_env: None, tmp_path: Path
) -> None:
    url = dav_url(server, webdav["PANNIER_TEST_WEBDAV_USER"], unique("local"))
    with get_backend_object(fresh(url)) as backend:
        check_get_to_unwritable_or_missing(backend, tmp_path)


def test_listing_under_concurrent_deletes_is_complete_or_an_error(
    server: str, webdav: dict[str, str], password_env: None
) -> None:
    """A server that breaks a listing off when an object vanishes mid-walk (rclone's
    appends an error after a short document) must never yield a listing with names
    missing: it is read again, or it fails."""
    url = fresh(dav_url(server, webdav["PANNIER_TEST_WEBDAV_USER"], unique("churn")))
    stable = [f"stable-{i:02d}" for i in range(30)]
    lister = get_backend_object(url)
    for name in stable:
        lister.put_bytes(name, b"s")
    stop = threading.Event()

    def churn(k: int) -> None:
        backend = get_backend_object(url)
        with backend:
            i = 0
            while not stop.is_set():
                name = f"churn-{k}-{i % 5}"
                backend.put_bytes(name, b"c")
                backend.delete(name)
                i += 1

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    complete = failed = 0
    try:
        for _ in range(25):
            try:
                names = {e.name for e in lister.list()}
            except TransientBackendError:
                failed += 1
                continue
            assert set(stable) <= names, f"{len(set(stable) - names)} stable names missing"
            complete += 1
    finally:
        stop.set()
        for t in threads:
            t.join()
        lister.close()
    assert complete > 0, f"every listing failed ({failed})"


def test_source_of_wrong_size_or_broken_leaves_nothing(
    server: str, webdav: dict[str, str], password_env: None
) -> None:
    url = dav_url(server, webdav["PANNIER_TEST_WEBDAV_USER"], unique("src"))
    with get_backend_object(fresh(url)) as backend:
        check_put_from_bad_sources(backend, broken="reading the source failed")


def test_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        backend = get_backend(f"webdav://127.0.0.1:{port}/x/?timeout=1&retries=2&retry-delay=0")
        with pytest.raises(TransientBackendError, match="timed out") as err:
            backend.test()
    assert "gave up after 2 attempts" in str(err.value) and "\n" not in str(err.value)


class _Failing(http.server.BaseHTTPRequestHandler):
    """A server whose listings always fail with 500; notes when each PROPFIND came."""

    propfinds: list[float] = []

    def do_PROPFIND(self) -> None:
        type(self).propfinds.append(time.monotonic())
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_listing_that_keeps_failing_is_read_again_after_doubling_pauses_then_transient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Failing.propfinds = []
    try:
        backend = get_backend_object(f"webdav://127.0.0.1:{httpd.server_address[1]}/x/")
        module = sys.modules[type(backend).__module__]
        pause = 0.02
        monkeypatch.setattr(module, "LIST_RETRY_PAUSE", pause)
        attempts = module.LIST_ATTEMPTS
        with pytest.raises(TransientBackendError, match=f"complete listing {attempts} times"):
            backend.list()
        assert len(_Failing.propfinds) == attempts
        times = _Failing.propfinds
        gaps = [times[i + 1] - times[i] for i in range(len(times) - 1)]
        for k, gap in enumerate(gaps):
            assert gap >= pause * 2**k, f"pause {k + 1} was {gap:.3f} s"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_pannier_backend_test_passes(webdav: dict[str, str]) -> None:
    """The user-runnable kit, `pannier backend test URL`, in a real process, on the
    Digest server; the password comes from the environment."""
    url = dav_url(
        webdav["PANNIER_TEST_WEBDAV_WSGIDAV_URL"], webdav["PANNIER_TEST_WEBDAV_USER"], unique("cli")
    )
    tool = BackendTool(PANNIER_WEBDAV_PASSWORD=webdav["PANNIER_TEST_WEBDAV_PASS"])
    assert tool("mkdir", url).returncode == 0
    tool.kit_passes(url)


def test_collection_path_with_spaces_and_non_ascii(
    server: str, webdav: dict[str, str], password_env: None
) -> None:
    """The collection's path is percent-encoded on the wire and the listing's hrefs are
    decoded before they are compared with it."""
    folder = quote(f"{unique('dir with space')}/ünïcode ✓")
    url = dav_url(server, webdav["PANNIER_TEST_WEBDAV_USER"], folder)
    backend = get_backend_object(fresh(url))
    with backend:
        backend.put_bytes("inside", b"ok")
        assert [(e.name, e.size) for e in backend.list()] == [("inside", 2)]
        assert backend.get_bytes("inside") == b"ok"


class _Redirecting(http.server.BaseHTTPRequestHandler):
    """A server that sends every request to an HTTPS address."""

    def do_PROPFIND(self) -> None:
        self.send_response(301)
        self.send_header("Location", "https://dav.example.org/x/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_redirect_is_a_permanent_error_naming_the_new_address() -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Redirecting)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        backend = get_backend(f"webdav://127.0.0.1:{httpd.server_address[1]}/x/?retry-delay=0")
        with pytest.raises(
            PermanentBackendError, match=r"redirects to https://dav\.example\.org/x/"
        ):
            backend.test()
    finally:
        httpd.shutdown()
        httpd.server_close()
