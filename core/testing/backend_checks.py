"""The checks of the backend conformance kit, one function each.

Each check gets a :class:`Kit` (the backend under test, a factory for more instances,
helpers that remember what was written) and raises :class:`KitFailure` when the backend
breaks the contract, or :class:`KitSkip` when the check does not apply. They are run by
:mod:`pannier.testing.backend_suite` (from pytest or ``pannier backend test``).

The checks (each a sentence of the contract in :mod:`pannier.backend`):

names
    every allowed character round-trips; a name of exactly ``max_name_length`` works;
    invalid names (``a/b``, ``.x``, ``a b``, non-ASCII, one character too long) raise
    InvalidNameError before reaching the backend.
sizes
    0 B, 1 B, 3 MiB + 1 and, when ``multipart_threshold`` is declared, an object above it
    round-trip byte for byte through put, put_stream, get, get_stream and get_bytes;
    query reports each size.
overwrite
    a put over an existing name replaces it (a shorter object leaves no old tail).
list
    each name exactly once with its size (-1 is tolerated and reported); when
    ``page_size`` is declared and at most 1000, ``page_size + 1`` objects are listed.
validate
    ``validate(name, size)`` accepts the size sent, refuses another size with a reason,
    and refuses a deleted object.
missing
    get, get_stream, get_range of a missing name raise FileMissingError; query gives -1.
delete
    delete of a missing name is tolerated; delete_list and query_list of present and
    missing names work.
range
    (``ranged_get``) the start, middle, end and beyond-the-end ranges are exact.
rename
    (``rename``) move renames and replaces an existing target.
stream
    a non-seekable stream is put without being rewound; a get writes to a
    non-seekable stream.
failed-put
    a put whose stream raises midway raises, and (``atomic_put``) leaves neither a
    partial new object nor a damaged old one.
connections
    ``min(connections, 4)`` threads, each with its own instance, work at once.
temporaries
    (a backend that implements ``_clean_temporaries``) ``clean_temporaries(0)`` removes
    no listed object, not even one written a moment before, and returns no listed name.
folder
    ``test`` passes on the location; ``create_folder`` on it changes nothing (a backend
    that cannot create folders raises NotImplementedError or PermanentBackendError).
wrappers
    the host wrapper stack passes through the capabilities and every operation, and
    unwraps to the backend; with a URL, ``faulty+`` and ``multi+`` prefixes pass the
    capabilities through too.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import attrs

from ..backend import Backend
from ..errors import (
    FileMissingError,
    InvalidNameError,
    PannierError,
    PermanentBackendError,
    PluginNotFoundError,
)
from ..url import BackendURL, redact

__all__ = [
    "CHECKS",
    "Check",
    "Kit",
    "KitFailure",
    "KitSkip",
    "NonSeekableReader",
    "NonSeekableWriter",
]

MiB = 1 << 20
PREFIX = "kit-"
ALLOWED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-."
BackendFactory = Callable[[], Backend]


class KitFailure(AssertionError):
    """Raised by a check when the backend breaks the contract; the message says how."""


class KitSkip(Exception):
    """Raised by a check that does not apply (a capability not declared)."""


def _data(size: int, seed: str) -> bytes:
    """Deterministic, incompressible test content."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:size])


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise KitFailure(message)


class NonSeekableReader(io.RawIOBase):
    """A stream that can be read once, front to back; seeking or telling raises, and so
    does reading again after the end was reported. Optionally raises after ``fail_after``
    bytes, to simulate a source that breaks midway."""

    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self._buf = io.BytesIO(data)
        self._fail_after = fail_after
        self._read = 0
        self._eof = False

    def readable(self) -> bool:
        """True: the stream is read."""
        return True

    def seekable(self) -> bool:
        """False: the stream cannot seek."""
        return False

    def seek(self, *args: Any) -> int:
        """Fails the check: a backend must not seek this stream."""
        raise KitFailure("the backend tried to seek a non-seekable stream")

    def tell(self) -> int:
        """Raises OSError, as a pipe does."""
        raise OSError("stream is not seekable")

    def readinto(self, b: Any) -> int:
        """Fill ``b`` with the next bytes; fail when read again after the end."""
        if self._eof:
            raise KitFailure("the backend read a stream again after its end")
        if self._fail_after is not None and self._read >= self._fail_after:
            raise OSError("the source stream broke (simulated by the kit)")
        limit = len(b)
        if self._fail_after is not None:
            limit = min(limit, self._fail_after - self._read)
        chunk = self._buf.read(limit)
        if not chunk:
            self._eof = True
            return 0
        b[: len(chunk)] = chunk
        self._read += len(chunk)
        return len(chunk)


class NonSeekableWriter(io.RawIOBase):
    """A write-only stream that refuses seek and tell and collects what it got."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def writable(self) -> bool:
        """True: the stream is written."""
        return True

    def seekable(self) -> bool:
        """False: the stream cannot seek."""
        return False

    def seek(self, *args: Any) -> int:
        """Fails the check: a backend must not seek this stream."""
        raise KitFailure("the backend tried to seek the stream it writes to")

    def tell(self) -> int:
        """Raises OSError, as a pipe does."""
        raise OSError("stream is not seekable")

    def write(self, b: Any) -> int:
        """Collect ``b``."""
        return self.buffer.write(bytes(b))


class Kit:
    """What a check gets: the backend under test, a factory for more instances, and
    helpers that remember the names written so they can be removed.

    :ivar url: the URL under test when the kit runs from a URL, else None.
    :ivar notes: facts for the capability report (``"list sizes": "yes"``).
    """

    def __init__(self, factory: BackendFactory, url: BackendURL | None = None) -> None:
        self.factory = factory
        self.url = url
        self.backend = factory()
        self.caps = self.backend.get_capabilities()
        self.notes: dict[str, str] = {}
        self.written: set[str] = set()
        self._tmp = tempfile.TemporaryDirectory(prefix="pannier-kit-")

    def name(self, label: str) -> str:
        """A kit object name for ``label``, remembered for clean-up."""
        name = f"{PREFIX}{label}"
        self.written.add(name)
        return name

    def local(self, label: str, data: bytes | None = None) -> str:
        """A local scratch path, holding ``data`` when given."""
        path = os.path.join(self._tmp.name, label)
        if data is not None:
            with open(path, "wb") as f:
                f.write(data)
        return path

    def put(self, name: str, data: bytes) -> None:
        """Put ``data`` under ``name`` through a local file."""
        self.written.add(name)
        self.backend.put(self.local("put-source", data), name)

    def get(self, name: str) -> bytes:
        """Get ``name`` through a local file."""
        path = self.local("get-target")
        self.backend.get(name, path)
        with open(path, "rb") as f:
            return f.read()

    def listing(self) -> dict[str, int]:
        """``{name: size}`` of the kit's objects, failing on a name listed twice."""
        seen: dict[str, int] = {}
        for entry in self.backend.iter_list():
            _expect(entry.name not in seen, f"list returned {entry.name} twice")
            seen[entry.name] = entry.size
        return {n: s for n, s in seen.items() if n.startswith(PREFIX)}

    def cleanup(self) -> None:
        """Delete every kit object still present and release the scratch directory."""
        try:
            present = [e.name for e in self.backend.iter_list() if e.name.startswith(PREFIX)]
            for name in present:
                with contextlib.suppress(PannierError):
                    self.backend.delete(name)
        finally:
            self.backend.close()
            self._tmp.cleanup()


# --- the checks ----------------------------------------------------------------------


def check_names(kit: Kit) -> None:
    """Every allowed character round-trips; the longest name works; invalid names are
    refused with InvalidNameError."""
    b = kit.backend
    every = kit.name("names-" + ALLOWED)
    if len(every) <= kit.caps.max_name_length:
        kit.put(every, b"every allowed character")
        _expect(
            kit.get(every) == b"every allowed character",
            "get of the name with every allowed character returned other bytes",
        )
    longest = PREFIX + "L" * (kit.caps.max_name_length - len(PREFIX))
    kit.written.add(longest)
    b.put_bytes(longest, b"longest")
    _expect(b.get_bytes(longest) == b"longest", f"a name of {len(longest)} characters")
    _expect(longest in kit.listing(), f"the {len(longest)}-character name is not listed")
    b.delete(longest)
    for bad in ("kit-a/b", ".kit", "kit a", "kit-\u00e9", "", longest + "x", "kit-a\\b", "kit-a\n"):
        try:
            b.put_bytes(bad, b"x")
        except InvalidNameError:
            continue
        raise KitFailure(f"the invalid name {bad[:40]!r} was accepted")
    kit.notes["max name length"] = str(kit.caps.max_name_length)


def _round_trip(kit: Kit, label: str, size: int) -> None:
    b = kit.backend
    data = _data(size, label)
    name = kit.name(f"size-{label}")
    kit.put(name, data)
    _expect(b.query(name) == size, f"query of a {size}-byte object gave {b.query(name)}")
    got = kit.get(name)
    _expect(got == data, f"get of a {size}-byte object returned {len(got)} different bytes")
    out = io.BytesIO()
    b.get_stream(name, out)
    _expect(out.getvalue() == data, f"get_stream of a {size}-byte object differs")
    stream_name = kit.name(f"size-{label}-stream")
    b.put_stream(io.BytesIO(data), stream_name, size)
    _expect(b.get_bytes(stream_name) == data, f"put_stream of {size} bytes does not round-trip")
    b.delete_list([name, stream_name])


def check_sizes(kit: Kit) -> None:
    """0 B, 1 B, 3 MiB + 1, and above the multipart threshold round-trip exactly."""
    for label, size in (("0", 0), ("1", 1), ("3M", 3 * MiB + 1)):
        _round_trip(kit, label, size)
    threshold = kit.caps.multipart_threshold
    if threshold is not None:
        _round_trip(kit, "multipart", threshold + MiB + 123)
        kit.notes["multipart"] = f"above {threshold} bytes, checked"


def check_overwrite(kit: Kit) -> None:
    """A put over an existing name replaces it entirely."""
    name = kit.name("overwrite")
    kit.put(name, _data(5000, "long"))
    kit.put(name, b"short")
    _expect(
        kit.get(name) == b"short",
        "get after an overwrite with a shorter object returned other bytes (old bytes kept?)",
    )
    _expect(kit.backend.query(name) == 5, "query after overwrite reports the old size")
    kit.backend.delete(name)


def check_list(kit: Kit) -> None:
    """Each name exactly once with its size, across more than one server page."""
    page = kit.caps.page_size
    count = page + 1 if page is not None and page <= 1000 else 25
    names = [kit.name(f"list-{i:05d}") for i in range(count)]
    for i, name in enumerate(names):
        kit.backend.put_bytes(name, b"x" * (i % 7))
    listed = kit.listing()
    missing = [n for n in names if n not in listed]
    _expect(not missing, f"list missed {len(missing)} of {count} names, e.g. {missing[:3]}")
    unsized = [n for n in names if listed[n] == -1]
    wrong = [n for i, n in enumerate(names) if listed[n] not in (-1, i % 7)]
    _expect(not wrong, f"list reported wrong sizes for {wrong[:3]}")
    kit.notes["list sizes"] = "no" if unsized else "yes"
    kit.notes["list pages"] = f"{count} names over pages of {page}" if page else "unpaged"
    kit.backend.delete_list(names)
    left = [n for n in kit.listing() if n.startswith(f"{PREFIX}list-")]
    _expect(not left, f"delete_list left {len(left)} names")


def check_validate(kit: Kit) -> None:
    """validate accepts an object of the size sent and refuses another size, with a
    reason, and a missing object."""
    b = kit.backend
    name = kit.name("validate")
    kit.put(name, b"12345")
    ok, reason = b.validate(name, 5)
    _expect(ok, f"validate of a correct 5-byte object failed: {reason}")
    ok, reason = b.validate(name, 6)
    _expect(not ok and bool(reason), "validate accepted a wrong size, or gave no reason")
    b.delete(name)
    ok, reason = b.validate(name, 5)
    _expect(not ok, "validate accepted a deleted object")


def check_missing(kit: Kit) -> None:
    """get, get_stream and get_range of a missing name raise FileMissingError; query
    gives -1 and exists False."""
    b = kit.backend
    name = f"{PREFIX}missing"
    attempts: list[tuple[str, Callable[[], object]]] = [
        ("get", lambda: b.get(name, kit.local("missing"))),
        ("get_stream", lambda: b.get_stream(name, io.BytesIO())),
        ("get_range", lambda: b.get_range(name, 0, 1)),
    ]
    for label, call in attempts:
        try:
            call()
        except FileMissingError:
            continue
        except Exception as e:
            raise KitFailure(
                f"{label} of a missing name raised {type(e).__name__}, not FileMissingError: {e}"
            ) from e
        raise KitFailure(f"{label} of a missing name did not raise")
    _expect(b.query(name) == -1, "query of a missing name is not -1")
    _expect(not b.exists(name), "exists of a missing name is true")


def check_delete(kit: Kit) -> None:
    """delete of a missing name is tolerated; delete_list and query_list handle present
    and missing names."""
    b = kit.backend
    b.delete(f"{PREFIX}never-there")
    present = [kit.name(f"del-{i}") for i in range(3)]
    for name in present:
        b.put_bytes(name, b"abc")
    absent = f"{PREFIX}del-absent"
    sizes = b.query_list([*present, absent])
    _expect(sizes == {**dict.fromkeys(present, 3), absent: -1}, f"query_list gave {sizes}")
    b.delete(present[0])
    _expect(b.query(present[0]) == -1, "an object is still there after delete")
    b.delete_list([*present[1:], absent])
    _expect(not any(n in kit.listing() for n in present), "delete_list left objects")


def check_range(kit: Kit) -> None:
    """Ranged gets return exactly the bytes asked for."""
    if not kit.caps.ranged_get:
        raise KitSkip("ranged_get not declared")
    data = _data(100_000, "range")
    name = kit.name("range")
    kit.put(name, data)
    b = kit.backend
    for offset, length in ((0, 10), (5000, 12345), (99_990, 10), (99_990, 100), (0, 100_000)):
        got = b.get_range(name, offset, length)
        _expect(
            got == data[offset : offset + length],
            f"get_range({offset}, {length}) returned {len(got)} wrong bytes",
        )
    b.delete(name)


def check_rename(kit: Kit) -> None:
    """move renames an object and replaces an existing target."""
    if not kit.caps.rename:
        raise KitSkip("rename not declared")
    b = kit.backend
    source, target = kit.name("move-a"), kit.name("move-b")
    b.put_bytes(source, b"moved")
    b.put_bytes(target, b"old target")
    b.move(source, target)
    _expect(b.query(source) == -1, "the source still exists after move")
    _expect(b.get_bytes(target) == b"moved", "the target does not hold the moved object")
    b.delete(target)


def check_stream(kit: Kit) -> None:
    """A non-seekable stream is put without rewinding; get writes to a non-seekable one."""
    b = kit.backend
    data = _data(2 * MiB + 17, "stream")
    name = kit.name("stream")
    b.put_stream(NonSeekableReader(data), name)  # type: ignore[arg-type]
    out = NonSeekableWriter()
    b.get_stream(name, out)  # type: ignore[arg-type]
    _expect(out.buffer.getvalue() == data, "a non-seekable stream did not round-trip")
    b.delete(name)


def check_failed_put(kit: Kit) -> None:
    """A put whose source breaks midway raises and leaves no visible partial object."""
    b = kit.backend
    name = kit.name("failed-put")
    fresh = kit.name("failed-put-new")
    old = b"the old, complete object"
    b.put_bytes(name, old)
    for target in (name, fresh):
        try:
            b.put_stream(NonSeekableReader(_data(2 * MiB, "fail"), fail_after=MiB), target)  # type: ignore[arg-type]
        except KitFailure:
            raise
        except Exception:
            pass
        else:
            raise KitFailure("a put whose source stream broke did not raise")
    partial = b.query(fresh) != -1
    damaged = b.get_bytes(name) != old
    if kit.caps.atomic_put:
        _expect(not partial, "a failed put left a partial object (atomic_put is declared)")
        _expect(not damaged, "a failed put over an object damaged it (atomic_put is declared)")
        kit.notes["failed put"] = "leaves nothing"
    else:
        kit.notes["failed put"] = "leaves a partial object" if partial or damaged else "clean"
    b.delete_list([name, fresh])


def check_connections(kit: Kit) -> None:
    """Several instances, one per thread, work at once."""
    threads_n = max(1, min(kit.caps.connections, 4))
    errors: list[str] = []

    def work(i: int) -> None:
        try:
            backend = kit.factory()
            try:
                for j in range(3):
                    name = f"{PREFIX}conn-{i}-{j}"
                    data = _data(20_000 + i, name)
                    backend.put_bytes(name, data)
                    if backend.get_bytes(name) != data:
                        errors.append(f"thread {i}: {name} did not round-trip")
                backend.list()
                backend.delete_list([f"{PREFIX}conn-{i}-{j}" for j in range(3)])
            finally:
                backend.close()
        except Exception as e:
            errors.append(f"thread {i}: {type(e).__name__}: {redact(str(e))}")

    for i in range(threads_n):
        kit.written.update(f"{PREFIX}conn-{i}-{j}" for j in range(3))
    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _expect(not errors, "; ".join(errors))
    kit.notes["connections"] = f"{threads_n} at once"


def check_temporaries(kit: Kit) -> None:
    """clean_temporaries(0) removes no listed object, only temporaries."""
    b = kit.backend
    if type(b.unwrap())._clean_temporaries is Backend._clean_temporaries:
        raise KitSkip("the backend leaves no temporaries (it keeps the default clean-up)")
    objects = {kit.name(f"temporaries-{i}"): _data(1000 * i, f"temporaries-{i}") for i in range(3)}
    for name, data in objects.items():
        b.put_bytes(name, data)
    # A failed put may leave a temporary behind (or, without atomic_put, a partial object,
    # which is listed and must stay).
    with contextlib.suppress(PannierError, OSError):
        b.put_stream(NonSeekableReader(_data(MiB, "cut"), fail_after=MiB // 2), kit.name("cut"))  # type: ignore[arg-type]
    listed = {e.name: e.size for e in b.iter_list()}
    removed = b.clean_temporaries(0)
    after = {e.name: e.size for e in b.iter_list()}
    named = sorted(set(removed) & set(listed))
    _expect(not named, f"clean_temporaries(0) returned listed names as removed: {named[:3]}")
    gone = sorted(set(listed) - set(after))
    _expect(not gone, f"clean_temporaries(0) removed {len(gone)} listed objects, e.g. {gone[:3]}")
    for name, data in objects.items():
        _expect(b.get_bytes(name) == data, f"{name} changed after clean_temporaries(0)")
    _expect(b.clean_temporaries(0) == [], "a second clean_temporaries(0) still removed names")
    kit.notes["clean temporaries"] = f"removes only temporaries ({len(removed)} after a failed put)"
    b.delete_list([*objects, kit.name("cut")])


def check_folder(kit: Kit) -> None:
    """test passes on the location; create_folder on an existing folder is harmless."""
    kit.backend.test()
    try:
        kit.backend.create_folder()
    except (NotImplementedError, PermanentBackendError) as e:
        # The backend cannot create folders at all (a key scoped to one container).
        kit.notes["create folder"] = f"not supported: {redact(str(e))}"
        return
    kit.backend.test()
    kit.notes["create folder"] = "yes, idempotent"


def check_wrappers(kit: Kit) -> None:
    """The wrapper stack and the faulty+/multi+ prefixes pass capabilities and
    operations through."""
    from ..backend_registry import get_backend_object
    from ..wrappers import wrap_backend

    inner = kit.factory()
    wrapped = wrap_backend(inner, kit.url)
    try:
        _expect(wrapped.unwrap() is inner.unwrap(), "unwrap() does not return the backend")
        _expect(
            wrapped.get_capabilities() == inner.get_capabilities(),
            "the wrapper stack changed the capabilities",
        )
        name = kit.name("wrapped")
        wrapped.put_bytes(name, b"through the wrappers")
        _expect(wrapped.get_bytes(name) == b"through the wrappers", "get through wrappers")
        _expect(wrapped.query(name) == 20, "query through wrappers")
        wrapped.delete(name)
    finally:
        wrapped.close()
    if kit.url is None or kit.url.prefixes:
        return
    with tempfile.TemporaryDirectory(prefix="pannier-kit-mirror-") as mirror:
        for prefixed in (f"faulty+{kit.url.raw}", f"multi+{kit.url.raw}"):
            url = prefixed + ("&" if "?" in prefixed else "?") + f"mirror=file://{mirror}"
            try:
                prefix_backend = get_backend_object(url)
            except PluginNotFoundError:  # the prefix plugin is disabled here
                kit.notes[prefixed.split("+", 1)[0] + "+"] = "not available"
                continue
            try:
                caps = prefix_backend.get_capabilities()
                expected = inner.get_capabilities()
                if prefixed.startswith("faulty"):
                    _expect(caps == expected, "faulty+ does not pass the capabilities through")
                else:
                    _expect(
                        caps.max_name_length <= expected.max_name_length,
                        "multi+ claims a longer name limit than its member",
                    )
                name = kit.name("prefix")
                prefix_backend.put_bytes(name, b"prefix")
                _expect(prefix_backend.get_bytes(name) == b"prefix", f"{prefixed} round-trip")
                prefix_backend.delete(name)
            finally:
                prefix_backend.close()
    if not any(k.endswith("+") for k in kit.notes):
        kit.notes["prefixes"] = "faulty+, multi+ pass through"


@attrs.frozen
class Check:
    """One named check of the kit."""

    name: str
    run: Callable[[Kit], None]

    @property
    def description(self) -> str:
        """The first line of the check's docstring."""
        return (self.run.__doc__ or "").strip().splitlines()[0]


#: Every check, in the order they run.
CHECKS: tuple[Check, ...] = (
    Check("folder", check_folder),
    Check("names", check_names),
    Check("sizes", check_sizes),
    Check("overwrite", check_overwrite),
    Check("list", check_list),
    Check("validate", check_validate),
    Check("missing", check_missing),
    Check("delete", check_delete),
    Check("range", check_range),
    Check("rename", check_rename),
    Check("stream", check_stream),
    Check("failed-put", check_failed_put),
    Check("connections", check_connections),
    Check("temporaries", check_temporaries),
    Check("wrappers", check_wrappers),
)
