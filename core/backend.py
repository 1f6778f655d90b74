"""The storage backend contract: a deliberately primitive GET/PUT/LIST/DELETE store.

A backend stores flat *remote names* (letters, digits, ``-`` and ``.``; see
:func:`check_name`) in one folder, bucket or container. Authors subclass :class:`Backend`
and implement the methods that start with one underscore; pannier calls only the public
methods, which the base class implements on top of them, and wraps every backend in its
own retry, limit, validation and logging wrappers (see ``pannier.wrappers``).

Guarantees a backend gives, and the conformance kit (``pannier.testing``) checks:

* ``_put`` of a name that exists replaces it; a put that fails leaves no visible partial
  object when the ``atomic_put`` capability is declared.
* ``_get`` of a missing name raises :class:`~pannier.FileMissingError`.
* ``_list`` returns every name exactly once, with its size, across every server page.
* ``_delete`` of a missing name is tolerated (no error).
* After a put returns, a get or list sees the new object (read-after-write).
* A missing folder/bucket/container raises :class:`~pannier.FolderMissingError`;
  ``_create_folder`` creates it, and changes nothing when it exists.
* Names outside the flat alphabet, or longer than ``max_name_length``, are refused with
  :class:`~pannier.InvalidNameError` before reaching the backend.

One backend instance is used by one thread at a time; a backend keeps no shared static
state, so several instances can run at once (``capabilities.connections``).

Errors: a backend raises the subclasses of :class:`~pannier.BackendError` that describe
what happened (transient, rate-limited, permanent, missing); the retry wrapper decides by
class alone. ``_error_code`` may map a foreign exception to one of them.
"""

from __future__ import annotations

import builtins
import io
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any, ClassVar

import attrs

from .errors import BackendError, FileMissingError, InvalidNameError, TransientBackendError

__all__ = [
    "Backend",
    "BackendCapabilities",
    "ListEntry",
    "check_name",
]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")

#: Size of the buffers used to copy streams.
COPY_BUFFER_SIZE = 1 << 20


def check_name(name: str, max_length: int = 255) -> str:
    """Return ``name`` if it is a valid flat remote name, else raise InvalidNameError.

    A remote name is made of ASCII letters, digits, ``-`` and ``.``, starts with a letter
    or digit, and is at most ``max_length`` characters long.
    """
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        shown = repr(name) if len(repr(name)) <= 60 else repr(name)[:57] + "..."
        raise InvalidNameError(
            f"remote name {shown} is not flat: only letters, digits, '-' and '.' are allowed, "
            "starting with a letter or digit"
        )
    if len(name) > max_length:
        raise InvalidNameError(
            f"remote name of {len(name)} characters is longer than the {max_length} allowed"
        )
    return name


@attrs.frozen
class ListEntry:
    """One remote object as a listing reports it: its name and its size in bytes
    (-1 when the backend's listing gives no size)."""

    name: str
    size: int = -1


@attrs.frozen
class BackendCapabilities:
    """What a backend can do, declared by its class, never sniffed.

    :ivar atomic_put: a put that fails or is interrupted leaves no visible object.
    :ivar ranged_get: ``_get_range`` reads part of an object.
    :ivar rename: ``_move``/``_rename`` rename an object on the server.
    :ivar max_name_length: the longest remote name accepted.
    :ivar page_size: objects per listing page on the server (None when unpaged).
    :ivar connections: how many instances may run at once against one location.
    :ivar streaming: ``_put_stream``/``_get_stream`` are implemented natively.
    :ivar multipart_threshold: objects above this many bytes are uploaded in parts
        (None when the backend never splits); the kit puts one object above it.
    :ivar local: the objects are on a local disk, so a request costs no more than the
        bytes it reads; otherwise restores read larger spans of a pack per request.
    """

    atomic_put: bool = False
    ranged_get: bool = False
    rename: bool = False
    max_name_length: int = 255
    page_size: int | None = None
    connections: int = 4
    streaming: bool = False
    multipart_threshold: int | None = None
    local: bool = False

    def as_dict(self) -> dict[str, object]:
        """The capabilities as a plain dict, for reports and ``--json``."""
        return attrs.asdict(self)


class Backend:
    """Base class of every storage backend plugin.

    Subclasses set the class attributes, implement ``__init__(self, url)`` taking a
    :class:`~pannier.BackendURL`, and the underscore methods. A backend module exposes
    ``get_plugin_class()`` returning the class.

    :cvar plugin_api_version: the plugin API version the backend was written for.
    :cvar schemes: URL schemes served, e.g. ``("webdav", "webdavs")``.
    :cvar is_prefix: True for a prefix backend (``prefix+inner://``) that wraps an inner
        backend got with :func:`~pannier.get_backend_object`.
    :cvar capabilities: what the backend can do.
    """

    plugin_api_version: ClassVar[int]
    schemes: ClassVar[tuple[str, ...]] = ()
    is_prefix: ClassVar[bool] = False
    capabilities: ClassVar[BackendCapabilities] = BackendCapabilities()
    description: ClassVar[str] = ""

    #: The URL this instance was made for (a BackendURL); set by ``__init__``.
    url: Any = None

    # --- identity ---------------------------------------------------------------------

    @property
    def display_name(self) -> str:
        """The backend's URL with any password redacted, for messages."""
        redacted = getattr(self.url, "redacted", None)
        return str(redacted) if redacted is not None else type(self).__name__

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display_name})"

    def get_capabilities(self) -> BackendCapabilities:
        """The capabilities of this instance (a prefix backend reports its inner one's)."""
        return self.capabilities

    def unwrap(self) -> Backend:
        """The backend under any wrappers; a plain backend returns itself."""
        return self

    # --- required primitives (override) -----------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        """Store the local file ``source_path`` under ``remote_filename``, replacing it."""
        raise NotImplementedError

    def _get(self, remote_filename: str, local_path: str) -> None:
        """Write the object ``remote_filename`` to ``local_path``; raise FileMissingError
        when it does not exist."""
        raise NotImplementedError

    def _list(self) -> Iterable[ListEntry | str]:
        """Every object in the folder, each exactly once, across all server pages. Yield
        :class:`ListEntry` (with sizes) or plain names."""
        raise NotImplementedError

    def _delete(self, filename: str) -> None:
        """Delete ``filename``; a missing name is not an error."""
        raise NotImplementedError

    # --- optional primitives (override where the server can do better) ------------------

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        """Store what ``fileobj`` yields, read once and never rewound. The default spools
        to a temporary file and calls ``_put``."""
        with tempfile.NamedTemporaryFile(prefix="pannier-put-", delete=False) as tmp:
            try:
                shutil.copyfileobj(fileobj, tmp, COPY_BUFFER_SIZE)
                tmp.close()
                self._put(tmp.name, remote_filename)
            finally:
                os.unlink(tmp.name)

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        """Write the object to ``fileobj``. The default goes through a temporary file."""
        fd, path = tempfile.mkstemp(prefix="pannier-get-")
        os.close(fd)
        try:
            self._get(remote_filename, path)
            with open(path, "rb") as f:
                shutil.copyfileobj(f, fileobj, COPY_BUFFER_SIZE)
        finally:
            os.unlink(path)

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` (capability ``ranged_get``). The default
        reads the whole object."""
        buf = io.BytesIO()
        self._get_stream(remote_filename, buf)
        return buf.getvalue()[offset : offset + length]

    def _query(self, filename: str) -> dict[str, int]:
        """``{"size": n}``, with -1 when the name is missing. The default lists."""
        return self._query_list([filename])[filename]

    def _query_list(self, filename_list: builtins.list[str]) -> dict[str, dict[str, int]]:
        """``{name: {"size": n}}`` for each name, -1 for a missing one. The default lists;
        a name the listing gives without a size is measured by reading it."""
        sizes = {e.name: e.size for e in self.list()}
        result = {}
        for name in filename_list:
            size = sizes.get(name, -1)
            if name in sizes and size < 0:
                counter = _CountingSink()
                self._get_stream(name, counter)  # type: ignore[arg-type]
                size = counter.count
            result[name] = {"size": size}
        return result

    def _delete_list(self, filename_list: builtins.list[str]) -> None:
        """Delete several names; missing ones are tolerated."""
        for name in filename_list:
            self._delete(name)

    def _move(self, source_filename: str, remote_filename: str) -> None:
        """Rename an object on the server (capability ``rename``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot rename objects")

    def _rename(self, source_filename: str, remote_filename: str) -> None:
        """Duplicati's name for :meth:`_move`; the default calls ``_move``."""
        self._move(source_filename, remote_filename)

    def _validate(self, remote_filename: str, size: int, **kwargs: Any) -> tuple[bool, str]:
        """Check a just-uploaded object: ``(True, "")`` or ``(False, reason)``. The default
        compares the size the server reports."""
        found = self._query(remote_filename)["size"]
        if found == size:
            return True, ""
        return False, f"{remote_filename}: size on server is {found}, expected {size}"

    def _test(self) -> None:
        """Check the location is reachable and usable; raise FolderMissingError when the
        folder does not exist. The default lists."""
        for _ in self._list():
            break

    def _create_folder(self) -> None:
        """Create the folder, bucket or container."""
        raise NotImplementedError(f"{type(self).__name__} cannot create its folder")

    def _retry_cleanup(self) -> None:
        """Called by the retry wrapper between attempts: reset a broken connection."""

    def _error_code(self, operation: str, e: Exception) -> BackendError | None:
        """Map a foreign exception raised by an operation to a BackendError, or None to
        let the wrapper treat it as transient."""
        return None

    def _close(self) -> None:
        """Release connections and processes."""

    def _clean_temporaries(self, older_than: float) -> builtins.list[str]:
        """Remove the backend's own temporaries that an interrupted put left behind (they
        are never listed, so nothing else would) and that nobody has written to for more
        than ``older_than`` seconds; return the names removed. A temporary written to more
        recently is kept, whatever its name. The default removes nothing: a backend whose
        interrupted puts leave nothing behind (an object store's upload that never
        completed) need not override it."""
        return []

    # --- public API (called by pannier; do not override) --------------------------------

    def put(self, source_path: str, remote_filename: str) -> None:
        """Store a local file under a remote name."""
        self._put(source_path, self._name(remote_filename))

    def put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None = None) -> None:
        """Store what a file object yields (read once) under a remote name."""
        self._put_stream(fileobj, self._name(remote_filename), size)

    def put_bytes(self, remote_filename: str, data: bytes) -> None:
        """Store ``data`` under a remote name."""
        self.put_stream(io.BytesIO(data), remote_filename, len(data))

    def get(self, remote_filename: str, local_path: str) -> None:
        """Fetch a remote object to a local path."""
        self._get(self._name(remote_filename), local_path)

    def get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        """Write a remote object to a file object."""
        self._get_stream(self._name(remote_filename), fileobj)

    def get_bytes(self, remote_filename: str) -> bytes:
        """Return a remote object's content."""
        buf = io.BytesIO()
        self.get_stream(remote_filename, buf)
        return buf.getvalue()

    def get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        """Return ``length`` bytes of a remote object from ``offset``."""
        return self._get_range(self._name(remote_filename), offset, length)

    def list(self) -> builtins.list[ListEntry]:
        """Every remote object, each exactly once, as ListEntry."""
        return list(self.iter_list())

    def iter_list(self) -> Iterator[ListEntry]:
        """Every remote object, each exactly once, as ListEntry, page by page."""
        for item in self._list():
            yield item if isinstance(item, ListEntry) else ListEntry(item)

    def delete(self, filename: str) -> None:
        """Delete a remote object; a missing one is tolerated."""
        self._delete(self._name(filename))

    def delete_list(self, filename_list: builtins.list[str]) -> None:
        """Delete several remote objects."""
        if filename_list:
            self._delete_list([self._name(n) for n in filename_list])

    def query(self, filename: str) -> int:
        """The size of a remote object, or -1 when it is missing."""
        return int(self._query(self._name(filename))["size"])

    def query_list(self, filename_list: builtins.list[str]) -> dict[str, int]:
        """``{name: size}``, -1 for each missing name."""
        if not filename_list:
            return {}
        found = self._query_list([self._name(n) for n in filename_list])
        return {name: int(info["size"]) for name, info in found.items()}

    def exists(self, filename: str) -> bool:
        """Whether a remote object exists."""
        return self.query(filename) >= 0

    def move(self, source_filename: str, remote_filename: str) -> None:
        """Rename a remote object on the server."""
        self._move(self._name(source_filename), self._name(remote_filename))

    def validate(self, remote_filename: str, size: int, **kwargs: Any) -> tuple[bool, str]:
        """Check an uploaded object against its expected size."""
        return self._validate(self._name(remote_filename), size, **kwargs)

    def test(self) -> None:
        """Check the location is usable."""
        self._test()

    def create_folder(self) -> None:
        """Create the backend's folder, bucket or container."""
        self._create_folder()

    def close(self) -> None:
        """Release the backend's resources; the instance is unusable afterwards."""
        self._close()

    def clean_temporaries(self, older_than: float) -> builtins.list[str]:
        """Remove the temporaries of interrupted puts left unchanged for more than
        ``older_than`` seconds (at least 0) and return their names. Only safe when no
        other writer can be putting to the location (pannier calls it from ``prune``,
        under the exclusive lock)."""
        if older_than < 0:
            raise ValueError(f"older_than must be at least 0, not {older_than}")
        return builtins.list(self._clean_temporaries(older_than))

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _name(self, name: str) -> str:
        try:
            return check_name(name, self.get_capabilities().max_name_length)
        except InvalidNameError as e:
            raise InvalidNameError(str(e), backend=self.display_name) from None


class _CountingSink:
    """A write-only stream that only counts bytes."""

    def __init__(self) -> None:
        self.count = 0

    def write(self, data: bytes) -> int:
        self.count += len(data)
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass


def missing(name: str, backend: Backend | None = None) -> FileMissingError:
    """A FileMissingError for ``name`` naming the backend; for backend authors."""
    return FileMissingError(
        f"{name} does not exist", backend=backend.display_name if backend else None
    )


def transient(message: str, backend: Backend | None = None) -> TransientBackendError:
    """A TransientBackendError naming the backend; for backend authors."""
    return TransientBackendError(message, backend=backend.display_name if backend else None)
