"""Repository locks: shared for backups, exclusive for prune.

A lock is an object ``lock-<32 hex>`` (random id), sealed like any object (associated data
``pannier:lock``), holding the msgpack map ``{"version": 1, "hostname", "pid", "username",
"time" (ISO 8601 UTC of the last refresh), "exclusive"}``.

Rules:

* Any number of shared locks may coexist; an exclusive lock excludes every other lock.
* To lock, a process writes its lock object, then lists the locks; if a live lock of
  another process conflicts, it deletes its own and raises :class:`~pannier.LockedError`
  naming the owner (host, PID, user, time). Writing first and checking after makes two
  racing processes both back off rather than both proceed.
* A lock is *stale* when its owner ran on this host and its PID is gone, or when it has not
  been refreshed for :data:`STALE_AFTER` seconds. Stale locks are ignored when locking and
  removed by ``pannier unlock``.
* While held, a lock is refreshed every :data:`REFRESH_EVERY` seconds by a daemon thread:
  a new lock object with the new time is written, then the old one deleted (objects are
  never modified in place).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import attrs
import msgpack

from ..backend import Backend
from ..errors import CorruptObjectError, FileMissingError, LockedError, PannierError
from . import format as fmt
from .crypto import Cipher, _username

__all__ = [
    "REFRESH_EVERY",
    "STALE_AFTER",
    "LockInfo",
    "RepositoryLock",
    "list_locks",
    "remove_locks",
]

#: Seconds after its last refresh when a lock is stale.
STALE_AFTER = 30 * 60.0
#: Seconds between refreshes of a held lock.
REFRESH_EVERY = 5 * 60.0

LOCK_VERSION = 1


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@attrs.frozen
class LockInfo:
    """A lock as read from the repository (``unreadable`` when it could not be opened)."""

    name: str
    hostname: str = "?"
    pid: int = 0
    username: str = "?"
    time: float = 0.0
    exclusive: bool = False
    unreadable: bool = False

    def is_stale(self, *, now: float | None = None, stale_after: float = STALE_AFTER) -> bool:
        """Whether the lock is stale: its owner on this host is gone, or its last refresh
        is older than ``stale_after`` seconds. An unreadable lock is never stale."""
        if self.unreadable:
            return False
        now = time.time() if now is None else now
        if now - self.time > stale_after:
            return True
        return self.hostname == socket.gethostname() and not _pid_alive(self.pid)

    def describe(self) -> str:
        """One line naming the owner, e.g. ``exclusive lock by root@host PID 42 since ...``."""
        if self.unreadable:
            return (
                f"lock {self.name} (unreadable: if no pannier process uses the repository, "
                "remove it with 'pannier unlock --remove-all')"
            )
        when = datetime.fromtimestamp(self.time, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        kind = "exclusive" if self.exclusive else "shared"
        return f"{kind} lock by {self.username}@{self.hostname} PID {self.pid} (refreshed {when})"

    def to_dict(self) -> dict[str, Any]:
        """The lock as a JSON-friendly dict."""
        return attrs.asdict(self)


def _encode(info: LockInfo) -> bytes:
    iso = datetime.fromtimestamp(info.time, timezone.utc).isoformat().replace("+00:00", "Z")
    return bytes(
        msgpack.packb(
            {
                "version": LOCK_VERSION,
                "hostname": info.hostname,
                "pid": info.pid,
                "username": info.username,
                "time": iso,
                "exclusive": info.exclusive,
            },
            use_bin_type=True,
        )
    )


def read_lock(backend: Backend, cipher: Cipher, name: str) -> LockInfo | None:
    """The lock ``name``; None when it vanished; ``unreadable`` when it does not open."""
    try:
        sealed = backend.get_bytes(name)
    except FileMissingError:
        return None
    try:
        body = msgpack.unpackb(cipher.open_object(sealed, fmt.AAD_LOCK, name), raw=False)
        stamp = datetime.fromisoformat(str(body["time"]).replace("Z", "+00:00")).timestamp()
        return LockInfo(
            name,
            str(body["hostname"]),
            int(body["pid"]),
            str(body["username"]),
            stamp,
            bool(body["exclusive"]),
        )
    except (
        CorruptObjectError,
        KeyError,
        TypeError,
        ValueError,
        OverflowError,
        msgpack.UnpackException,
    ):
        return LockInfo(name, unreadable=True)


def list_locks(backend: Backend, cipher: Cipher) -> list[LockInfo]:
    """Every lock in the repository."""
    out = []
    for entry in backend.iter_list():
        if entry.name.startswith("lock-"):
            info = read_lock(backend, cipher, entry.name)
            if info is not None:
                out.append(info)
    return out


def remove_locks(backend: Backend, cipher: Cipher, *, remove_all: bool = False) -> list[LockInfo]:
    """Delete the stale locks (every lock with ``remove_all``); return those deleted."""
    removed = [lk for lk in list_locks(backend, cipher) if remove_all or lk.is_stale()]
    backend.delete_list([lk.name for lk in removed])
    return removed


class RepositoryLock:
    """A lock held by this process; a context manager. Use :meth:`Repository.lock`.

    :param run_locked: a callable that runs ``fn(backend)`` with a backend instance no
        other thread uses meanwhile (:meth:`Repository.call_backend`).
    """

    def __init__(
        self,
        backend: Backend,
        cipher: Cipher,
        *,
        exclusive: bool,
        run_locked: Callable[[Callable[[Backend], Any]], Any] | None = None,
        stale_after: float = STALE_AFTER,
        refresh_every: float = REFRESH_EVERY,
    ) -> None:
        self.backend = backend
        self.cipher = cipher
        self.exclusive = exclusive
        self.stale_after = stale_after
        self.refresh_every = refresh_every
        self._run = run_locked or (lambda fn: fn(backend))
        self.name: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refreshed: float | None = None

    def _write(self) -> str:
        info = LockInfo(
            fmt.object_name(fmt.ObjectType.LOCK, os.urandom(16)),
            socket.gethostname(),
            os.getpid(),
            _username(),
            time.time(),
            self.exclusive,
        )
        sealed = self.cipher.seal_object(_encode(info), fmt.AAD_LOCK, 0)
        self._run(lambda b: b.put_bytes(info.name, sealed))
        return info.name

    def _conflicts(self) -> list[LockInfo]:
        others = [
            lk for lk in self._run(lambda b: list_locks(b, self.cipher)) if lk.name != self.name
        ]
        live = [lk for lk in others if not lk.is_stale(stale_after=self.stale_after)]
        if self.exclusive:
            return live
        return [lk for lk in live if lk.exclusive or lk.unreadable]

    def acquire(self) -> RepositoryLock:
        """Take the lock or raise LockedError naming the owner of the conflicting one."""
        self.name = self._write()
        self._refreshed = time.monotonic()
        conflicts = self._conflicts()
        if conflicts:
            name, self.name = self.name, None
            self._run(lambda b: b.delete(name))
            what = "an exclusive" if self.exclusive else "a shared"
            raise LockedError(
                f"cannot take {what} lock: repository is locked by "
                + "; ".join(lk.describe() for lk in conflicts)
                + " (if that process is gone, run 'pannier unlock')"
            )
        self._thread = threading.Thread(target=self._refresher, name="pannier-lock", daemon=True)
        self._thread.start()
        return self

    def refresh(self) -> None:
        """Write a new lock object with the current time and delete the old one."""
        old = self.name
        self.name = self._write()
        self._refreshed = time.monotonic()
        if old:
            self._run(lambda b: b.delete(old))

    @property
    def lost(self) -> bool:
        """Whether the lock went unrefreshed so long that others may take it as stale
        (the backend failed every refresh): work under it must stop."""
        if self.name is None or self._refreshed is None:
            return False
        return time.monotonic() - self._refreshed > self.stale_after - self.refresh_every

    def check(self) -> None:
        """Raise LockedError when the lock is :attr:`lost`."""
        if self.lost:
            raise LockedError(
                "the repository lock could not be refreshed in time and may have been "
                "taken by another process; stopping before writing more"
            )

    def _refresher(self) -> None:
        while not self._stop.wait(self.refresh_every):
            try:
                self.refresh()
            except PannierError:  # the next refresh tries again; see ``lost``
                continue

    def release(self) -> None:
        """Stop refreshing and delete the lock object."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.name:
            name, self.name = self.name, None
            self._run(lambda b: b.delete(name))

    def __enter__(self) -> RepositoryLock:
        if self.name is None:
            self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
