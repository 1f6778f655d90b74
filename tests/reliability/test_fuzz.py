"""Fuzzing of everything that parses untrusted bytes or text: the msgpack readers (tree
stream, metadata streams, index, pack header, snapshot, key, config, lock and payload
decoders) and the backend URL parser.

The contract: bad input raises a :class:`~pannier.PannierError` subclass with a message,
never anything else (no TypeError, MemoryError, OverflowError, IndexError...), and never
allocates what the input merely claims.

Every *target* below is a function of one byte string, shared with the long fuzzing run
(``scripts/reliability/fuzz.py``, which drives the same targets with hypothesis at many
more examples and with the coverage-guided fuzzer atheris). Here each target runs under
hypothesis twice: with raw bytes, and with *structured* input -- msgpack documents of
random shape placed inside valid framing (a tree header and trailer, metadata-stream
frames with correct CRCs, a config's magic), which is what reaches the decoders behind
the checksums.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st
from pannier.backend_registry import get_backend
from pannier.engine.tree import iter_tree_bytes
from pannier.errors import PannierError
from pannier.meta_stream import MAGIC, MetaStreamReader
from pannier.repo import config as config_mod, crypto, index as index_mod, locks, pack
from pannier.repo.snapshot import Snapshot
from pannier.url import BackendURL, parse_url

# --------------------------------------------------------------------------- targets


def fuzz_tree(data: bytes) -> None:
    """The tree stream reader over ``data``, every field of every entry touched."""
    for e in iter_tree_bytes(data):
        _ = e.path, e.chunks, e.size + e.mode + e.uid + e.gid + e.mtime_ns + e.ino


def fuzz_meta_stream(data: bytes) -> None:
    """The metadata stream reader over ``data`` (header, then every row)."""
    with MetaStreamReader(io.BytesIO(data), name="fuzz") as r:
        for _ in r.iter_rows():
            pass


def fuzz_index(data: bytes) -> None:
    """An index object's plaintext, its records decoded."""
    index_mod.decode_index_object(data, "index-fuzz")


def fuzz_pack(data: bytes) -> None:
    """A whole pack of an unencrypted repository (trailer, header) and a bare header."""
    pack.parse_pack(data, crypto.Cipher(None), "data-fuzz")
    pack.decode_header(data, "data-fuzz", len(data))


def fuzz_payload(data: bytes) -> None:
    """A payload (flag byte then raw or zstd body)."""
    crypto.decode_payload(data, "fuzz payload")


def fuzz_snapshot(data: bytes) -> None:
    """A snapshot plaintext, then what ``snapshots``/``ls`` read of it."""
    snap = Snapshot.decode(data, "00" * 32)
    _ = snap.datetime, snap.to_json(), snap.short_id


def fuzz_config(data: bytes) -> None:
    """The clear part of a ``config`` object (with and without its magic)."""
    for raw in (data, config_mod.fmt.CONFIG_MAGIC + data):
        with contextlib.suppress(PannierError):
            config_mod.decode_config_public(raw)


#: Key objects asking for more memory than this are not derived (the range check allows
#: up to 4 GiB, legitimately: a fuzzer must not spend it per input).
_KEY_FUZZ_MEMORY = 1 << 12


def fuzz_key(data: bytes) -> None:
    """A key object: its public fields, then an attempt to open it with a password."""
    info = crypto.read_key_info(data, "key-fuzz")
    cost = info.get("memory_cost")
    if isinstance(cost, int) and cost > _KEY_FUZZ_MEMORY:
        return
    crypto.open_key_object(data, "fuzz password", "key-fuzz")


class _LockStore:
    """A real ``file://`` backend in a temporary directory holding one lock object."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pannier-fuzz-lock-"))
        self.backend = get_backend(self.dir.as_uri())
        self.name = "lock-" + "0" * 32


_lock_store: _LockStore | None = None


def fuzz_lock(data: bytes) -> None:
    """A lock object of an unencrypted repository read back through the file backend
    (an unreadable lock is reported as such, not raised)."""
    global _lock_store
    if _lock_store is None:
        _lock_store = _LockStore()
    (_lock_store.dir / _lock_store.name).write_bytes(data)
    info = locks.read_lock(_lock_store.backend, crypto.Cipher(None), _lock_store.name)
    if info is not None:
        _ = info.describe() if hasattr(info, "describe") else str(info), info.to_dict()


def fuzz_url(data: bytes) -> None:
    """The URL parser on ``data`` as UTF-8 text, then the redaction properties."""
    check_url(data.decode("utf-8", "replace"))


def check_url(text: str) -> None:
    """Parse ``text``; a parsed URL's password never shows in its printable forms."""
    url = parse_url(text)
    assert isinstance(url, BackendURL)
    printable = [str(url), repr(url), url.redacted]
    pw = url.password
    if pw and len(pw) >= 4 and pw not in text.replace(f":{pw}@", ":@", 1):
        for form in printable:
            assert pw not in form, (text, form)


#: name -> target; every target raises only PannierError on bad input.
TARGETS: dict[str, Callable[[bytes], None]] = {
    "tree": fuzz_tree,
    "meta-stream": fuzz_meta_stream,
    "index": fuzz_index,
    "pack": fuzz_pack,
    "payload": fuzz_payload,
    "snapshot": fuzz_snapshot,
    "config": fuzz_config,
    "key": fuzz_key,
    "lock": fuzz_lock,
    "url": fuzz_url,
}


def run_target(name: str, data: bytes) -> None:
    """Run target ``name`` on ``data``; a PannierError is the clean outcome of bad
    input and is swallowed, anything else propagates (a finding)."""
    try:
        TARGETS[name](data)
    except PannierError as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"


# --------------------------------------------------------------------------- structure


def _frame(payload: bytes, count: int) -> bytes:
    return (
        len(payload).to_bytes(4, "big")
        + count.to_bytes(4, "big")
        + zlib.crc32(payload).to_bytes(4, "big")
        + payload
    )


META_HEADER = msgpack.packb(
    {"format": 1, "plugin": "fuzz", "plugin_version": "1", "prefix": "fz", "fields": ["index"]}
)


def frame_tree(body: bytes, count: int) -> bytes:
    """``body`` (packed records) between a valid tree header and a trailer of ``count``."""
    return (
        msgpack.packb({"format": "pannier-tree", "version": 1})
        + body
        + msgpack.packb({"end": count})
    )


def frame_meta(body: bytes, count: int, header: bytes = META_HEADER) -> bytes:
    """``body`` as the one data frame (valid CRC, ``count`` records) of a metadata
    stream with a valid header and end frame."""
    return (
        MAGIC
        + _frame(header, 0)
        + _frame(body, count)
        + _frame(msgpack.packb({"records": count}), 0)
    )


#: Which structured wrapper suits each target (the URL has its own strategy).
WRAPPERS: dict[str, Callable[[bytes, int], bytes]] = {
    "tree": frame_tree,
    "meta-stream": frame_meta,
    "index": lambda b, n: b,
    "snapshot": lambda b, n: b,
    "config": lambda b, n: b,
    "key": lambda b, n: b,
    "lock": lambda b, n: b"\x00" + b,
    "payload": lambda b, n: b"\x00" + b,
    "pack": lambda b, n: b,
}

_ints = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([0, 1, -1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 10**12]),
)
_leaves = st.one_of(
    st.none(),
    st.booleans(),
    _ints,
    st.floats(allow_nan=True),
    st.binary(max_size=40),
    st.text(max_size=20),
    st.sampled_from(
        [b"", b".", b"..", b"/", b"a/b", b"\0", os.urandom(32), "f", "d", "l", "h", "c", "z"]
    ),
)
#: Any msgpack document of modest size.
documents = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=12),
        st.dictionaries(
            st.one_of(
                st.text(max_size=12),
                st.sampled_from(
                    _KEYS := [
                        "version",
                        "packs",
                        "supersedes",
                        "time",
                        "hostname",
                        "paths",
                        "streams",
                        "tags",
                        "parent",
                        "summary",
                        "kdf",
                        "memory_cost",
                        "iterations",
                        "lanes",
                        "salt",
                        "nonce",
                        "data",
                        "id",
                        "encryption",
                        "settings",
                        "pid",
                        "username",
                        "exclusive",
                        "end",
                        "format",
                        "records",
                        "fields",
                        "plugin",
                        "prefix",
                    ]
                ),
            ),
            children,
            max_size=8,
        ),
    ),
    max_leaves=30,
)


@st.composite
def tree_records(draw: st.DrawFn) -> list[Any]:
    """An 11-field tree record whose fields are sometimes right, sometimes anything."""
    index = draw(st.lists(st.binary(min_size=0, max_size=6), max_size=3))
    kind = draw(st.sampled_from(list("fdlhpcbz")))
    ints = [draw(_ints) for _ in range(7)]  # mode uid gid size mtime ctime inode
    record: list[Any] = [index, kind, *ints, draw(documents), draw(_ints)]
    if draw(st.booleans()):
        i = draw(st.integers(0, 10))
        record[i] = draw(documents)
    return record


@st.composite
def structured(draw: st.DrawFn, target: str) -> bytes:
    """A packed sequence of msgpack documents inside the target's valid framing."""
    if target == "tree" and draw(st.booleans()):
        docs: list[Any] = draw(st.lists(tree_records(), max_size=5))
    elif target == "meta-stream" and draw(st.booleans()):
        docs = draw(
            st.lists(
                st.tuples(st.lists(st.binary(max_size=4), max_size=3).map(tuple), documents),
                max_size=5,
            )
        )
    else:
        docs = [draw(documents)]
    body = b"".join(msgpack.packb(d, use_bin_type=draw(st.booleans())) for d in docs)
    count = len(docs) if draw(st.integers(0, 9)) else draw(st.integers(0, 2**32 - 1))
    return WRAPPERS[target](body, count)


_url_part = st.lists(
    st.sampled_from([*"abc:/@?&=#%[]+.-_ 0123456789²٣\x00\x1fé", "%40", "%3A", "%"]),
    max_size=12,
).map("".join)


@st.composite
def urls(draw: st.DrawFn) -> str:
    """Text shaped like a backend URL: prefixes, a scheme, user, password, host, port,
    path, query, each sometimes malformed."""
    scheme = draw(st.sampled_from(["file", "sftp", "s3", "faulty+file", "a+b+c", "rclone", ""]))
    user = draw(_url_part)
    password = draw(st.one_of(st.none(), _url_part))
    host = draw(st.one_of(_url_part, st.sampled_from(["[::1]", "[::1", "h"])))
    port = draw(st.one_of(st.none(), st.integers(0, 99999).map(str), _url_part))
    auth = user + (f":{password}" if password is not None else "") + "@" if user else ""
    url = f"{scheme}://{auth}{host}" + (f":{port}" if port is not None else "")
    return url + draw(_url_part) + draw(st.one_of(st.just(""), _url_part.map(lambda q: "?" + q)))


# --------------------------------------------------------------------------- the tests

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)

BYTE_TARGETS = [t for t in TARGETS if t != "url"]


@pytest.mark.parametrize("target", BYTE_TARGETS)
@FUZZ
@given(data=st.binary(max_size=512))
def test_raw_bytes(target: str, data: bytes) -> None:
    """Arbitrary bytes: a clean PannierError or success."""
    run_target(target, data)


@pytest.mark.parametrize("target", BYTE_TARGETS)
@FUZZ
@given(data=st.data())
def test_structured(target: str, data: st.DataObject) -> None:
    """Well-framed msgpack documents of arbitrary shape: a clean PannierError or success."""
    run_target(target, data.draw(structured(target)))


@FUZZ
@given(text=st.one_of(urls(), st.text(max_size=80)))
@example("file://h:²/x")
@example("sftp://[::1]:99999/x")
@example("sftp://user:s3cretpw@host/x")
def test_url_parser(text: str) -> None:
    """Any text: a BackendURL or a ConfigError; a password never in the printable forms."""
    try:
        check_url(text)
    except PannierError as e:
        assert str(e).strip()
        _, _, rest = text.partition("://")
        userinfo = rest.split("/")[0].rpartition("@")[0]
        secret = userinfo.partition(":")[2]
        if len(secret) >= 6 and secret not in text.replace(f":{secret}@", ":@", 1):
            assert secret not in str(e), (text, str(e))


KNOWN_FINDINGS: list[tuple[str, bytes]] = [
    # a key object whose salt is a huge int: bytes(n) allocated n zero bytes
    (
        "key",
        msgpack.packb(
            {
                "version": 1,
                "kdf": "argon2id",
                "memory_cost": 1024,
                "iterations": 1,
                "lanes": 1,
                "salt": 2**40,
                "nonce": b"n" * 12,
                "data": b"d" * 32,
            }
        ),
    ),
    # a key object whose memory cost is infinite: int(inf) raised OverflowError
    (
        "key",
        msgpack.packb(
            {
                "version": 1,
                "kdf": "argon2id",
                "memory_cost": float("inf"),
                "iterations": 1,
                "lanes": 1,
                "salt": b"s" * 16,
                "nonce": b"n" * 12,
                "data": b"d" * 32,
            }
        ),
    ),
    # a lock whose pid is infinite
    (
        "lock",
        b"\x00"
        + msgpack.packb(
            {
                "version": 1,
                "hostname": "h",
                "pid": float("inf"),
                "username": "u",
                "time": "2020-01-01T00:00:00Z",
                "exclusive": False,
            }
        ),
    ),
    # a snapshot whose time is not a string
    ("snapshot", msgpack.packb({"version": 1, "time": 5, "streams": {}})),
    # a snapshot whose stream ids are not byte strings
    (
        "snapshot",
        msgpack.packb({"version": 1, "time": "2020-01-01T00:00:00Z", "streams": {"tree": [5]}}),
    ),
    # a tree record whose kind is a map (found by atheris: the kind check hashed it)
    ("tree", frame_tree(msgpack.packb([[b"x"], {"a": 1}, 0, 0, 0, 0, 0, 0, 0, None, 0]), 1)),
    # a URL whose port is a Unicode digit (str.isdigit accepts it, int() does not)
    ("url", "file://h:²/x".encode()),
    ("url", "sftp://[::1]:²/x".encode()),
]


@pytest.mark.parametrize(("target", "data"), KNOWN_FINDINGS)
def test_known_findings(target: str, data: bytes) -> None:
    """Inputs the fuzzers found (each crashed once): now a clean PannierError or success."""
    run_target(target, data)
