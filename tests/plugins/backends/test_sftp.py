"""sftp:// against the project's own sshd (key login) and `rclone serve sftp` (password
login), both started by scripts/servers/sshd.sh."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import uuid
from urllib.parse import quote, unquote

import pytest
from pannier import FileMissingError, FolderMissingError, PermanentBackendError
from pannier.backend_registry import get_backend, get_backend_object
from pannier.errors import TransientBackendError
from pannier.testing.backend_suite import BackendConformance
from pannier.url import parse_url

from tests.plugins.backends.shared import (
    BackendTool,
    check_get_to_unwritable_or_missing,
    check_put_from_bad_sources,
    fresh,
    unique,
)
from tests.servers import require_server


@pytest.fixture(scope="module")
def sshd() -> dict[str, str]:
    return require_server("sshd")


def key_url(facts: dict[str, str], folder: str, **options: str) -> str:
    """A key-login URL for ``folder`` under the server's test root (absolute path)."""
    opts = {
        "key-file": facts["PANNIER_TEST_SFTP_KEY_FILE"],
        "known-hosts": facts["PANNIER_TEST_SFTP_KNOWN_HOSTS"],
        **options,
    }
    query = "&".join(f"{k}={v}" for k, v in opts.items())
    root = facts["PANNIER_TEST_SFTP_ROOT"]
    return (
        f"sftp://{facts['PANNIER_TEST_SFTP_USER']}@{facts['PANNIER_TEST_SFTP_HOST']}:"
        f"{facts['PANNIER_TEST_SFTP_PORT']}/{root}/{folder}?{query}"
    )


def password_url(facts: dict[str, str], folder: str, password: str | None = None) -> str:
    """A password-login URL (rclone serve sftp), password in the URL only when given."""
    user = facts["PANNIER_TEST_SFTP_PASSWORD_USER"]
    userinfo = f"{user}:{password}" if password is not None else user
    return (
        f"sftp://{userinfo}@{facts['PANNIER_TEST_SFTP_HOST']}:"
        f"{facts['PANNIER_TEST_SFTP_PASSWORD_PORT']}/{folder}"
        f"?known-hosts={facts['PANNIER_TEST_SFTP_KNOWN_HOSTS']}"
    )


class TestSFTPConformance(BackendConformance):
    """The whole conformance kit over OpenSSH with key login."""

    @pytest.fixture
    def make_backend(self, sshd: dict[str, str]) -> str:
        return fresh(key_url(sshd, f"kit-{uuid.uuid4().hex[:8]}"))


class TestSFTPPasswordConformance(BackendConformance):
    """The kit again over a second SFTP server (rclone's), logging in by password taken
    from the environment."""

    @pytest.fixture
    def make_backend(self, sshd: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
        monkeypatch.setenv("PANNIER_SFTP_PASSWORD", sshd["PANNIER_TEST_SFTP_PASSWORD"])
        return fresh(password_url(sshd, f"kit-{uuid.uuid4().hex[:8]}"))


# --- security: host keys and credentials -----------------------------------------------


def test_host_key_mismatch_is_permanent_and_not_retried(sshd: dict[str, str]) -> None:
    url = key_url(sshd, "", **{"known-hosts": sshd["PANNIER_TEST_SFTP_KNOWN_HOSTS_WRONG"]})
    backend = get_backend(url + "&retries=4&retry-delay=0.01")
    with pytest.raises(PermanentBackendError) as err:
        backend.test()
    message = str(err.value)
    assert "host key mismatch" in message
    assert "gave up after" not in message  # a permanent error is not retried
    assert "\n" not in message


def test_unknown_host_is_refused_with_how_to_add_it(sshd: dict[str, str], tmp_path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    backend = get_backend_object(key_url(sshd, "", **{"known-hosts": str(empty)}))
    with pytest.raises(PermanentBackendError, match=r"is not in .*ssh-keyscan"):
        backend.test()


def test_missing_known_hosts_file_is_refused(sshd: dict[str, str], tmp_path) -> None:
    url = key_url(sshd, "", **{"known-hosts": str(tmp_path / "nope")})
    with pytest.raises(PermanentBackendError, match=r"known_hosts file .* does not exist"):
        get_backend_object(url).test()


def test_key_not_accepted_by_server(sshd: dict[str, str]) -> None:
    url = key_url(sshd, "", **{"key-file": sshd["PANNIER_TEST_SFTP_WRONG_KEY_FILE"]})
    with pytest.raises(PermanentBackendError, match=r"authentication failed .* key file"):
        get_backend(url + "&retries=3&retry-delay=0.01").test()


def test_missing_key_file_is_a_config_error(sshd: dict[str, str], tmp_path) -> None:
    from pannier import ConfigError

    with pytest.raises(ConfigError, match=r"key file .* does not exist"):
        get_backend_object(key_url(sshd, "", **{"key-file": str(tmp_path / "none")}))


def test_password_from_file(sshd: dict[str, str], tmp_path, monkeypatch) -> None:
    secret = tmp_path / "pw"
    secret.write_text(sshd["PANNIER_TEST_SFTP_PASSWORD"] + "\n")
    monkeypatch.delenv("PANNIER_SFTP_PASSWORD", raising=False)
    monkeypatch.setenv("PANNIER_SFTP_PASSWORD_FILE", str(secret))
    backend = get_backend_object(fresh(password_url(sshd, f"pwf-{uuid.uuid4().hex[:8]}")))
    with backend:
        backend.put_bytes("hello", b"by password file")
        assert backend.get_bytes("hello") == b"by password file"
        backend.delete("hello")


def test_wrong_password_is_permanent_and_redacted(sshd: dict[str, str], monkeypatch) -> None:
    monkeypatch.delenv("PANNIER_SFTP_PASSWORD", raising=False)
    url = password_url(sshd, "", password="not-the-Secret-123")
    with pytest.raises(PermanentBackendError) as err:
        get_backend(url + "&retries=3&retry-delay=0.01").test()
    message = str(err.value)
    assert "authentication failed" in message and "password" in message
    assert "not-the-Secret-123" not in message
    assert "gave up after" not in message


def test_no_credentials_at_all(sshd: dict[str, str], monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("PANNIER_SFTP_PASSWORD", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no default keys
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(PermanentBackendError, match=r"(no way to log in|authentication failed)"):
        get_backend_object(password_url(sshd, "")).test()


# --- folders, network, connection loss -------------------------------------------------


def test_missing_folder_then_create_folder(sshd: dict[str, str]) -> None:
    folder = f"missing-{uuid.uuid4().hex[:8]}/deeper"
    backend = get_backend_object(key_url(sshd, folder))
    with backend:
        with pytest.raises(FolderMissingError, match=r"does not exist"):
            backend.test()
        with pytest.raises(FolderMissingError):
            backend.list()
        with pytest.raises(FolderMissingError):
            backend.put_bytes("x", b"x")
        backend.create_folder()
        backend.create_folder()  # an existing folder is kept
        backend.test()
        backend.put_bytes("x", b"x")
        assert [e.name for e in backend.list()] == ["x"]
    made = os.path.join(sshd["PANNIER_TEST_SFTP_ROOT"], folder)
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700


def test_server_unreachable_gives_one_line_after_bounded_retries(sshd: dict[str, str]) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = key_url(sshd, "x").replace(f":{sshd['PANNIER_TEST_SFTP_PORT']}/", f":{port}/")
    backend = get_backend(url + "&retries=3&retry-delay=0.01&timeout=5")
    with pytest.raises(TransientBackendError) as err:
        backend.test()
    message = str(err.value)
    assert "cannot reach" in message and f"127.0.0.1]:{port}" in message
    assert "gave up after 3 attempts" in message
    assert "\n" not in message


def test_dropped_connection_is_reopened(sshd: dict[str, str]) -> None:
    backend = get_backend_object(fresh(key_url(sshd, f"drop-{uuid.uuid4().hex[:8]}")))
    with backend:
        backend.put_bytes("a", b"before")
        transport = backend._client.get_transport()  # type: ignore[attr-defined]
        transport.close()  # the server side goes away
        assert backend.get_bytes("a") == b"before"
        backend._retry_cleanup()
        assert backend.query("a") == 6


def test_relative_and_absolute_paths(sshd: dict[str, str]) -> None:
    b = get_backend_object(parse_url("sftp://me@example.org/backups/x"))
    assert b.root == "backups/x"  # type: ignore[attr-defined]
    b = get_backend_object(parse_url("sftp://me@example.org//srv/backups/"))
    assert b.root == "/srv/backups"  # type: ignore[attr-defined]
    b = get_backend_object(parse_url("sftp://me@example.org"))
    assert b.root == "."  # type: ignore[attr-defined]


def test_temp_names_of_unfinished_puts_are_not_listed(sshd: dict[str, str]) -> None:
    folder = f"tmp-{uuid.uuid4().hex[:8]}"
    backend = get_backend_object(fresh(key_url(sshd, folder)))
    with backend:
        path = os.path.join(sshd["PANNIER_TEST_SFTP_ROOT"], folder)
        with open(os.path.join(path, ".pannier-tmp-leftover"), "wb") as f:
            f.write(b"half")
        os.mkdir(os.path.join(path, "subdir"))
        backend.put_bytes("real", b"1")
        assert [(e.name, e.size) for e in backend.list()] == [("real", 1)]
        with pytest.raises(FileMissingError):
            backend.get_bytes("missing")


def test_clean_temporaries_removes_old_ones_by_the_servers_clock(sshd: dict[str, str]) -> None:
    folder = f"tmp-{uuid.uuid4().hex[:8]}"
    backend = get_backend(fresh(key_url(sshd, folder)))
    with backend:
        path = os.path.join(sshd["PANNIER_TEST_SFTP_ROOT"], folder)
        for name in (".pannier-tmp-old", ".pannier-tmp-fresh"):
            with open(os.path.join(path, name), "wb") as f:
                f.write(b"half")
        os.mkdir(os.path.join(path, ".pannier-tmp-dir"))
        backend.put_bytes("real", b"1")
        hour_ago = os.stat(os.path.join(path, "real")).st_mtime - 3600
        for name in (".pannier-tmp-old", "real"):
            os.utime(os.path.join(path, name), (hour_ago, hour_ago))
        assert backend.clean_temporaries(1800) == [".pannier-tmp-old"]
        # The clock probe is gone too.
        assert sorted(os.listdir(path)) == [".pannier-tmp-dir", ".pannier-tmp-fresh", "real"]
        assert backend.clean_temporaries(1800) == []
        assert [(e.name, e.size) for e in backend.list()] == [("real", 1)]
    missing = get_backend(key_url(sshd, f"absent-{uuid.uuid4().hex[:8]}"))
    with missing:
        assert missing.clean_temporaries(0) == []


def test_unwritable_local_target_is_a_permanent_error(sshd: dict[str, str], tmp_path) -> None:
    backend = get_backend_object(fresh(key_url(sshd, unique("local"))))
    with backend:
        check_get_to_unwritable_or_missing(backend, tmp_path)


def test_encrypted_key_needs_its_passphrase(sshd: dict[str, str], tmp_path, monkeypatch) -> None:
    key = tmp_path / "encrypted"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "sesame", "-f", str(key)], check=True
    )
    url = key_url(sshd, "", **{"key-file": str(key)}) + "&retry-delay=0.01"
    monkeypatch.delenv("PANNIER_SFTP_KEY_PASSPHRASE", raising=False)
    with pytest.raises(PermanentBackendError, match="is encrypted: give its passphrase"):
        get_backend(url).test()
    monkeypatch.setenv("PANNIER_SFTP_KEY_PASSPHRASE", "wrong")
    with pytest.raises(PermanentBackendError, match="cannot use key file"):
        get_backend(url).test()
    # The right passphrase opens the key; the server then refuses it (not authorized).
    monkeypatch.setenv("PANNIER_SFTP_KEY_PASSPHRASE", "sesame")
    with pytest.raises(PermanentBackendError, match="authentication failed") as err:
        get_backend(url).test()
    assert "sesame" not in str(err.value)


def test_source_of_wrong_size_or_broken_leaves_nothing(sshd: dict[str, str]) -> None:
    backend = get_backend_object(fresh(key_url(sshd, unique("src"))))
    with backend:
        check_put_from_bad_sources(backend, broken="reading the source failed")
        client = backend._client  # type: ignore[attr-defined]
    # A source that breaks is not the connection's fault: it is kept.
    assert client is not None


def test_server_that_never_answers_times_out(sshd: dict[str, str]) -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = key_url(sshd, "x").replace(f":{sshd['PANNIER_TEST_SFTP_PORT']}/", f":{port}/")
        backend = get_backend(url + "&timeout=1&retries=2&retry-delay=0.01")
        with pytest.raises(TransientBackendError, match="did not complete the SSH") as err:
            backend.test()
    assert "gave up after 2 attempts" in str(err.value) and "\n" not in str(err.value)


def test_pannier_backend_test_passes(sshd: dict[str, str]) -> None:
    """The user-runnable kit, `pannier backend test URL`, in a real process; the key file
    and known_hosts come from the environment."""
    tool = BackendTool(
        PANNIER_SFTP_KEY_FILE=sshd["PANNIER_TEST_SFTP_KEY_FILE"],
        PANNIER_SFTP_KNOWN_HOSTS=sshd["PANNIER_TEST_SFTP_KNOWN_HOSTS"],
    )
    tool.kit_passes(fresh(key_url(sshd, unique("cli"))).partition("?")[0])


def test_folder_path_with_spaces_and_non_ascii(sshd: dict[str, str]) -> None:
    folder = quote(f"dir with space-{uuid.uuid4().hex[:8]}/ünïcode ✓")
    backend = get_backend_object(fresh(key_url(sshd, folder)))
    with backend:
        backend.put_bytes("inside", b"ok")
        assert [(e.name, e.size) for e in backend.list()] == [("inside", 2)]
    assert os.path.isfile(os.path.join(sshd["PANNIER_TEST_SFTP_ROOT"], unquote(folder), "inside"))


def test_gcm_is_offered_first_and_nothing_disabled_is_enabled() -> None:
    import paramiko
    from pannier.plugins.backends import sftp

    a, b = socket.socketpair()
    with a, b:
        default = paramiko.Transport(a).get_security_options().ciphers
        offered = sftp._transport(a).get_security_options().ciphers
        assert offered[:2] == ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
        assert sorted(offered) == sorted(default)
        no_gcm = {"ciphers": ["aes128-gcm@openssh.com"]}
        # What the transport really offers in its KEXINIT: paramiko's filter still applies.
        offered = sftp._transport(a, disabled_algorithms=no_gcm).preferred_ciphers
        assert offered[0] == "aes256-gcm@openssh.com"
        assert "aes128-gcm@openssh.com" not in offered


def test_a_session_negotiates_gcm_and_reads_through_the_fast_buffer(sshd: dict[str, str]) -> None:
    backend = get_backend_object(fresh(key_url(sshd, f"gcm-{uuid.uuid4().hex[:8]}")))
    with backend:
        data = os.urandom(5 << 20)
        backend.put_bytes("big", data)
        assert backend.get_bytes("big") == data
        client = backend._client  # type: ignore[attr-defined]
        assert client.get_transport().remote_cipher == "aes128-gcm@openssh.com"
        channel = backend._sftp.get_channel()  # type: ignore[attr-defined]
        assert isinstance(channel.in_buffer._buffer, bytearray)
        # small requests are not held back by Nagle's algorithm (about 4x on 1 MiB gets)
        sock = client.get_transport().sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_the_receive_buffer_returns_what_it_was_fed_in_any_pieces() -> None:
    from pannier.plugins.backends import sftp

    pipe_class = sftp._receive_buffer_class()
    assert pipe_class is not None
    pipe = pipe_class()
    data = os.urandom(200_000)
    for start in range(0, len(data), 32_781):
        pipe.feed(data[start : start + 32_781])
    out = b""
    for size in (4, 1, 65_536, 3, 100_000, 1 << 20):
        out += pipe.read(size, timeout=0.1)
    assert out == data and len(pipe) == 0
    pipe.feed(b"tail")
    assert pipe.empty() == b"tail"
    pipe.close()
    assert pipe.read(10) == b""
