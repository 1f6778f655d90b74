"""rclone:// through a real `rclone rcd`: on a local folder (`:local:`) and on the
project's sshd through rclone's own SFTP client (`:sftp,...`, scripts/servers/sshd.sh)."""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from contextlib import suppress
from pathlib import Path
from urllib.parse import quote

import pytest
from pannier import ConfigError, FileMissingError, FolderMissingError, PermanentBackendError
from pannier.backend_registry import get_backend, get_backend_object
from pannier.errors import TransientBackendError
from pannier.testing.backend_suite import BackendConformance

from tests.plugins.backends.shared import (
    BackendTool,
    check_get_to_unwritable_or_missing,
    check_put_from_bad_sources,
    fresh,
)
from tests.servers import require_server, unavailable


@pytest.fixture(scope="module")
def rclone_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty rclone configuration: every remote here is a connection string."""
    if shutil.which("rclone") is None:
        unavailable("rclone is not installed (scripts/install-system-deps.sh)")
    path = tmp_path_factory.mktemp("rclone") / "rclone.conf"
    path.write_text("")
    return str(path)


def local_url(folder: Path, config: str, query: str = "") -> str:
    return f"rclone://:local:{folder}?config={config}" + (f"&{query}" if query else "")


def sftp_url(facts: dict[str, str], folder: str, config: str, port: str | None = None) -> str:
    remote = (
        f":sftp,host={facts['PANNIER_TEST_SFTP_HOST']},"
        f"port={port or facts['PANNIER_TEST_SFTP_PORT']},user={facts['PANNIER_TEST_SFTP_USER']},"
        f"key_file={facts['PANNIER_TEST_SFTP_KEY_FILE']},"
        f"known_hosts_file={facts['PANNIER_TEST_SFTP_KNOWN_HOSTS']}"
    )
    return f"rclone://{remote}:{facts['PANNIER_TEST_SFTP_ROOT']}/{folder}?config={config}"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def wait_stopped(pid: int, seconds: float = 10.0) -> bool:
    """Wait until every thread of the process is stopped (``T`` in /proc): a SIGSTOP
    takes effect a moment after it is sent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        states = set()
        for task in os.listdir(f"/proc/{pid}/task"):
            with suppress(FileNotFoundError), open(f"/proc/{pid}/task/{task}/stat") as f:
                states.add(f.read().split(")")[-1].split()[0])
        if states == {"T"}:
            return True
        time.sleep(0.01)
    return False


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


class TestRcloneLocalConformance(BackendConformance):
    """The kit on an rclone `:local:` remote."""

    @pytest.fixture
    def make_backend(self, tmp_path: Path, rclone_config: str) -> str:
        return fresh(local_url(tmp_path / "store", rclone_config))


class TestRcloneSFTPConformance(BackendConformance):
    """The kit on rclone's SFTP remote against the project's sshd: a network remote."""

    @pytest.fixture
    def make_backend(self, rclone_config: str) -> str:
        facts = require_server("sshd")
        return fresh(sftp_url(facts, f"rclone-{uuid.uuid4().hex[:8]}", rclone_config))


# --- the rclone process -----------------------------------------------------------------


def test_one_process_started_lazily_and_stopped_on_close(tmp_path, rclone_config) -> None:
    backend = get_backend_object(fresh(local_url(tmp_path, rclone_config)))
    assert backend._daemon is None  # type: ignore[attr-defined]
    backend.put_bytes("a", b"1")
    daemon = backend._daemon  # type: ignore[attr-defined]
    pid = daemon.process.pid
    for i in range(5):
        backend.put_bytes(f"n{i}", b"x")
    assert backend._daemon.process.pid == pid  # type: ignore[attr-defined]  # reused
    # The remote-control password is in the environment, never on the command line.
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--rc-pass" not in cmdline and b"--rc-user" not in cmdline
    assert daemon.session.auth[1].encode() not in b" ".join(cmdline)
    assert b"127.0.0.1:0" in cmdline  # bound to the loopback only
    backend.close()
    assert wait_gone(pid)


def test_process_stopped_when_backend_is_dropped(tmp_path, rclone_config) -> None:
    backend = get_backend_object(fresh(local_url(tmp_path, rclone_config)))
    backend.list()
    pid = backend._daemon.process.pid  # type: ignore[attr-defined]
    del backend
    gc.collect()
    assert wait_gone(pid)


def test_process_stopped_at_interpreter_exit(tmp_path, rclone_config) -> None:
    script = textwrap.dedent(
        f"""
        from pannier.backend_registry import get_backend_object
        b = get_backend_object({fresh(local_url(tmp_path, rclone_config))!r})
        b.put_bytes("x", b"1")
        print(b._daemon.process.pid, flush=True)
        globals()["keep"] = b  # never closed
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert wait_gone(int(out.stdout.strip()))


def test_killed_process_is_restarted_by_the_retry_wrapper(tmp_path, rclone_config) -> None:
    url = fresh(local_url(tmp_path, rclone_config, "retries=4&retry-delay=0.01"))
    backend = get_backend(url)
    try:
        backend.put_bytes("a", b"survives")
        daemon = backend.unwrap()._daemon  # type: ignore[attr-defined]
        os.kill(daemon.process.pid, signal.SIGKILL)
        daemon.process.wait()
        assert backend.get_bytes("a") == b"survives"
        assert backend.unwrap()._daemon.process.pid != daemon.process.pid  # type: ignore[attr-defined]
    finally:
        backend.close()


# --- bad input and failures -------------------------------------------------------------


def test_unknown_remote_is_permanent_and_names_it(rclone_config) -> None:
    backend = get_backend(f"rclone://nosuchremote:x?config={rclone_config}&retry-delay=0.01")
    with pytest.raises(PermanentBackendError, match="no remote named 'nosuchremote'") as err:
        backend.test()
    assert "gave up after" not in str(err.value) and "\n" not in str(err.value)
    backend.close()


def test_url_without_remote_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="name an rclone remote"):
        get_backend_object("rclone://just-a-name")


def test_missing_rclone_program_is_a_config_error(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"rclone program .* was not found"):
        get_backend_object(f"rclone://:local:{tmp_path}?rclone={tmp_path}/no-rclone")


def test_missing_folder_is_not_created_by_a_put(tmp_path, rclone_config) -> None:
    folder = tmp_path / "not" / "yet"
    backend = get_backend_object(local_url(folder, rclone_config))
    with backend:
        with pytest.raises(FolderMissingError, match="does not exist"):
            backend.test()
        with pytest.raises(FolderMissingError):
            backend.list()
        with pytest.raises(FolderMissingError):
            backend.put_bytes("x", b"x")
        assert not folder.exists()
        backend.create_folder()
        backend.create_folder()
        backend.put_bytes("x", b"x")
        assert [(e.name, e.size) for e in backend.list()] == [("x", 1)]
        with pytest.raises(FileMissingError):
            backend.get_bytes("y")


def test_temp_names_and_folders_are_not_listed(tmp_path, rclone_config) -> None:
    backend = get_backend_object(fresh(local_url(tmp_path, rclone_config)))
    with backend:
        (tmp_path / ".pannier-tmp-leftover").write_bytes(b"half")
        (tmp_path / "sub").mkdir()
        backend.put_bytes("real", b"12")
        assert [(e.name, e.size) for e in backend.list()] == [("real", 2)]


def test_unreachable_sftp_server_is_transient_after_bounded_retries(rclone_config) -> None:
    facts = require_server("sshd")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    url = sftp_url(facts, "x", rclone_config, port=port) + "&retries=2&retry-delay=0.01"
    backend = get_backend(url)
    with pytest.raises(TransientBackendError) as err:
        backend.test()
    message = str(err.value)
    assert "connection refused" in message and "gave up after 2 attempts" in message
    assert "\n" not in message
    backend.close()


def test_wrong_key_through_rclone_is_permanent(rclone_config) -> None:
    facts = dict(require_server("sshd"))
    facts["PANNIER_TEST_SFTP_KEY_FILE"] = facts["PANNIER_TEST_SFTP_WRONG_KEY_FILE"]
    backend = get_backend(sftp_url(facts, "", rclone_config) + "&retry-delay=0.01")
    with pytest.raises(PermanentBackendError, match="unable to authenticate") as err:
        backend.test()
    assert "gave up after" not in str(err.value)
    backend.close()


def test_get_to_unwritable_or_of_missing_object(tmp_path, rclone_config) -> None:
    with get_backend_object(fresh(local_url(tmp_path / "store", rclone_config))) as backend:
        check_get_to_unwritable_or_missing(backend, tmp_path)


def test_source_of_wrong_size_or_broken_leaves_nothing(tmp_path, rclone_config) -> None:
    with get_backend_object(fresh(local_url(tmp_path / "store", rclone_config))) as backend:
        check_put_from_bad_sources(backend, broken="reading the source failed")


def test_hung_process_is_replaced_by_the_retry_wrapper(tmp_path, rclone_config) -> None:
    url = fresh(local_url(tmp_path, rclone_config, "timeout=4&retries=5&retry-delay=0.01"))
    backend = get_backend(url)
    try:
        backend.put_bytes("a", b"still here")
        pid = backend.unwrap()._daemon.process.pid  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing...
        assert wait_stopped(pid)  # ...once every thread has stopped (not at once)
        try:
            assert backend.get_bytes("a") == b"still here"
        finally:
            if alive(pid):
                os.kill(pid, signal.SIGCONT)
        assert backend.unwrap()._daemon.process.pid != pid  # type: ignore[attr-defined]
        assert wait_gone(pid)
    finally:
        backend.close()


def test_rclone_process_refuses_requests_without_its_password(tmp_path, rclone_config) -> None:
    import requests

    backend = get_backend_object(fresh(local_url(tmp_path, rclone_config)))
    with backend:
        backend.put_bytes("secret", b"top secret")
        daemon = backend._daemon  # type: ignore[attr-defined]
        assert daemon.address.startswith("http://127.0.0.1:")
        served = f"{daemon.address}/[:local:{tmp_path}]/secret"
        assert requests.get(served, timeout=10).status_code == 401
        listing = requests.post(
            f"{daemon.address}/operations/list",
            json={"fs": f":local:{tmp_path}", "remote": ""},
            timeout=10,
        )
        assert listing.status_code == 401
        assert daemon.session.get(served, timeout=10).content == b"top secret"


def test_pannier_backend_test_passes(tmp_path, rclone_config) -> None:
    """The user-runnable kit, `pannier backend test URL`, in a real process; the rclone
    configuration comes from the environment."""
    url = fresh(local_url(tmp_path / "cli", rclone_config)).partition("?")[0]
    BackendTool(PANNIER_RCLONE_CONFIG=rclone_config).kit_passes(url)


def test_folder_path_with_spaces_and_non_ascii(tmp_path, rclone_config) -> None:
    folder = tmp_path / "dir with space" / "ünïcode ✓"
    backend = get_backend_object(fresh(local_url(Path(quote(str(folder))), rclone_config)))
    with backend:
        backend.put_bytes("inside", b"ok")
        assert [(e.name, e.size) for e in backend.list()] == [("inside", 2)]
        assert backend.get_bytes("inside") == b"ok"
        assert backend.get_range("inside", 1, 1) == b"k"
    assert (folder / "inside").read_bytes() == b"ok"
