"""Locks: shared and exclusive, live owners, stale owners (a real dead PID, old refresh)."""

from __future__ import annotations

import signal
import socket
import time

import pytest
from pannier.errors import LockedError
from pannier.repo import Repository, format as fmt
from pannier.repo.locks import LockInfo, _encode, list_locks, remove_locks

from .conftest import FAST_KDF, PASSWORD, DirBackend
from .helpers import spawn, wait_for_line


def test_shared_locks_coexist_exclusive_excludes(repo: Repository) -> None:
    with repo.lock(), repo.lock():
        assert len(list_locks(repo.backend, repo.cipher)) == 2
        with pytest.raises(LockedError, match=r"locked by shared lock by .* PID"):
            repo.lock(exclusive=True).acquire()
    with repo.lock(exclusive=True), pytest.raises(LockedError, match="exclusive lock by"):
        repo.lock().acquire()
    assert list_locks(repo.backend, repo.cipher) == []


def test_failed_attempt_leaves_no_lock(repo: Repository) -> None:
    with repo.lock(exclusive=True):
        with pytest.raises(LockedError):
            repo.lock().acquire()
        assert len(list_locks(repo.backend, repo.cipher)) == 1


def test_refresh_replaces_the_lock_object(repo: Repository) -> None:
    held = repo.lock()
    held.refresh_every = 0.05
    with held:
        first = held.name
        deadline = time.time() + 10
        while held.name == first and time.time() < deadline:
            time.sleep(0.02)
        assert held.name != first
        names = [lk.name for lk in list_locks(repo.backend, repo.cipher)]
        assert len(names) == 1


def _plant(repo: Repository, info: LockInfo) -> None:
    sealed = repo.cipher.seal_object(_encode(info), fmt.AAD_LOCK, 0)
    repo.backend.put_bytes(info.name, sealed)


def test_lock_of_a_live_process_blocks(repo: Repository, backend: DirBackend) -> None:
    child = spawn(
        f"""
        repo = Repository.open(DirBackend(Path({str(backend.directory)!r})), {PASSWORD!r})
        with repo.lock(exclusive=True):
            print("locked", flush=True)
            time.sleep(60)
        """
    )
    try:
        wait_for_line(child, "locked")
        with pytest.raises(LockedError, match=f"PID {child.pid}") as err:
            repo.lock().acquire()
        assert err.value.exit_code == 11
        assert remove_locks(repo.backend, repo.cipher) == []  # not stale: kept
    finally:
        child.kill()
        child.wait()


def test_lock_of_a_killed_process_is_stale(repo: Repository, backend: DirBackend) -> None:
    child = spawn(
        f"""
        repo = Repository.open(DirBackend(Path({str(backend.directory)!r})), {PASSWORD!r})
        repo.lock(exclusive=True).acquire()
        print("locked", flush=True)
        time.sleep(60)
        """
    )
    wait_for_line(child, "locked")
    child.send_signal(signal.SIGKILL)
    child.wait()
    (left,) = list_locks(repo.backend, repo.cipher)
    assert left.pid == child.pid and left.is_stale()
    with repo.lock(exclusive=True):  # the dead owner's lock is ignored
        pass
    removed = remove_locks(repo.backend, repo.cipher)
    assert [lk.pid for lk in removed] == [child.pid]
    assert list_locks(repo.backend, repo.cipher) == []


def test_lock_not_refreshed_is_stale(repo: Repository) -> None:
    old = LockInfo("lock-" + "a" * 32, "elsewhere", 1, "u", time.time() - 3600, True)
    fresh = LockInfo("lock-" + "b" * 32, "elsewhere", 1, "u", time.time(), False)
    _plant(repo, old)
    assert old.is_stale()
    with repo.lock(exclusive=True):
        pass
    _plant(repo, fresh)
    assert not fresh.is_stale()  # another host: its PID cannot be checked from here
    with pytest.raises(LockedError, match="u@elsewhere"):
        repo.lock(exclusive=True).acquire()
    assert {lk.name for lk in remove_locks(repo.backend, repo.cipher)} == {old.name}
    assert {lk.name for lk in remove_locks(repo.backend, repo.cipher, remove_all=True)} == {
        fresh.name
    }


def test_unreadable_lock_blocks_until_removed(repo: Repository) -> None:
    repo.backend.put_bytes("lock-" + "c" * 32, b"garbage")
    with pytest.raises(LockedError, match="unreadable"):
        repo.lock().acquire()
    remove_locks(repo.backend, repo.cipher, remove_all=True)
    with repo.lock():
        pass


def test_same_host_live_pid_is_not_stale() -> None:
    import os

    me = LockInfo("lock-x", socket.gethostname(), os.getpid(), "u", time.time(), False)
    assert not me.is_stale()


class FailingPuts(DirBackend):
    """A backend whose puts start failing (a network gone), for lock refresh tests."""

    fail = False

    def _write(self, name: str, data: bytes) -> None:
        if type(self).fail:
            from pannier.errors import TransientBackendError

            raise TransientBackendError("connection refused")
        super()._write(name, data)


def test_lock_that_cannot_be_refreshed_stops_writes(backend: DirBackend) -> None:
    from pannier.repo import Snapshot

    flaky = FailingPuts(backend.directory)
    repo = Repository.init(flaky, PASSWORD, kdf=FAST_KDF)
    held = repo.lock()
    held.refresh_every, held.stale_after = 0.05, 0.3
    with held:
        FailingPuts.fail = True
        try:
            time.sleep(0.5)
            assert held.lost
            with pytest.raises(LockedError, match="could not be refreshed"):
                repo.save_snapshot(Snapshot())
        finally:
            FailingPuts.fail = False
