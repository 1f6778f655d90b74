"""A pool of backend instances, so one repository can transfer in parallel.

A backend instance is used by one thread at a time (the backend contract). The pool hands
an idle instance to each call and, when it was given a factory, makes more instances on
demand up to the backend's ``connections`` capability; without a factory the calls take
turns on the one backend.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TypeVar

from ..backend import Backend

__all__ = ["BackendPool"]

T = TypeVar("T")


class BackendPool:
    """Instances of one backend for the threads of a repository.

    :param backend: the first instance (closed by whoever made it, not by the pool).
    :param factory: makes another instance of the same backend, or None.
    """

    def __init__(self, backend: Backend, factory: Callable[[], Backend] | None = None) -> None:
        self.backend = backend
        self._factory = factory
        self._idle: queue.LifoQueue[Backend] = queue.LifoQueue()
        self._idle.put(backend)
        self._count = 1
        self._made: list[Backend] = []
        self._lock = threading.Lock()
        self.limit = max(1, backend.get_capabilities().connections or 1) if factory else 1

    @property
    def parallel(self) -> bool:
        """Whether calls can run on several instances at once."""
        return self.limit > 1

    def call(self, fn: Callable[[Backend], T]) -> T:
        """Run ``fn(backend)`` with an instance no other thread uses meanwhile."""
        b = self._take()
        try:
            return fn(b)
        finally:
            self._idle.put(b)

    def _take(self) -> Backend:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        if self._factory is not None:
            with self._lock:
                grow = self._count < self.limit
                if grow:
                    self._count += 1
            if grow:
                try:
                    made = self._factory()
                except BaseException:
                    with self._lock:
                        self._count -= 1
                    raise
                with self._lock:
                    self._made.append(made)
                return made
        return self._idle.get()

    def close(self) -> None:
        """Close the instances the pool made (not the first one)."""
        with self._lock:
            made, self._made = self._made, []
        for b in made:
            b.close()
