"""Helpers for backends that talk HTTP, through requests or a client built on it.

Every HTTP backend does the same few things around its requests, and can get them wrong
in the same few ways. This module does them once, for the built-in backends (webdav,
swift, swiftkeys, rclone) and for third-party ones:

* :class:`UploadBody` -- the body of an upload, read from a stream once, never past the
  size announced, hashed with MD5 when asked; a source that fails or gives another size
  than announced raises a BackendError naming the operation;
* :func:`receive_body` -- a response body written to a file object or to a local file,
  checked against the server's MD5 ETag when there is one;
* :func:`http_status_error` -- the BackendError an HTTP error status means;
* :func:`http_network_error` and :func:`network_detail` -- the BackendError a failure to
  reach the server means, with the useful part of the HTTP library's message;
* :func:`query_list_by_head` -- ``_query_list`` as a HEAD per name for a few names and
  one listing for many;
* :func:`bucket_and_prefix` -- the bucket (or container) and key prefix an object
  store's URL names.

A backend keeps what only it knows: which answer means a missing object or a missing
folder, and what a refused login should tell the user. Everything else maps the same
way in every backend, so the retry wrapper treats their errors alike.

This module imports nothing but the standard library: requests is an optional
dependency, and is only looked at once it has been imported by the backend using it.
"""

from __future__ import annotations

import hashlib
import re
import sys
import time
from collections.abc import Collection, Iterable, Iterator
from email.utils import parsedate_to_datetime
from typing import IO, TYPE_CHECKING

from .errors import (
    BackendError,
    ConfigError,
    PermanentBackendError,
    RateLimitedError,
    TransientBackendError,
)
from .url import BackendURL

if TYPE_CHECKING:
    from .backend import Backend

__all__ = [
    "CHUNK_SIZE",
    "UploadBody",
    "bucket_and_prefix",
    "http_network_error",
    "http_status_error",
    "network_detail",
    "parse_retry_after",
    "query_list_by_head",
    "receive_body",
]

#: Bytes per read of an upload's source when the HTTP library asks for no size.
CHUNK_SIZE = 1 << 20
#: Up to this many names, :func:`query_list_by_head` asks for each; above, it lists once.
QUERY_BY_LISTING = 16

#: Patterns that pick the useful part out of a requests/urllib3 message, first match wins.
_DETAIL_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"(certificate verify failed: [^'\"()]+)",
        r"\[Errno -?\d+\] ([^'\"()]+)",
        r"(Read timed out)",
        r"(Connection aborted)",
    )
)
_POOL_PREFIX_RE = re.compile(r"^\w+ConnectionPool\([^)]*\): ")


class UploadBody:
    """The body of an upload, read from ``fileobj`` once, front to back.

    Give it to requests as ``data=`` or to python-swiftclient as ``contents=``. The
    caller owns ``fileobj``: :meth:`close` leaves it open.

    * With ``size`` known, the body has a ``len`` attribute (requests then sends a
      Content-Length) and no read goes past ``size`` bytes of the source; without it,
      requests sends the body chunked.
    * A source that ends before ``size`` bytes raises PermanentBackendError "LABEL: the
      source gave N bytes, not the SIZE announced".
    * With ``exact`` (the default), a source that holds more than ``size`` bytes raises
      PermanentBackendError "LABEL: the source gave more than the SIZE bytes announced";
      the extra byte is looked for by one more read of the source before the last bytes
      of the body are handed over, so the server never receives a complete body. With
      ``exact=False`` the body is one part of a longer source (a segment of a large
      object), and the rest of the source is left unread.
    * A read of the source that fails (an OSError) raises TransientBackendError "LABEL:
      reading the source failed: REASON".
    * With ``md5``, :meth:`hexdigest` is the MD5 of the bytes read, to compare with the
      ETag the server answers.

    The errors are BackendErrors, not OSErrors, so the HTTP library passes them through
    unchanged instead of taking them for a network failure. ``label`` names the
    operation (``"put NAME"``) and ``backend`` the backend (its ``display_name``), as in
    every BackendError. ``offset`` is how many bytes of the source earlier parts of the
    same upload took, so that messages count from the start of the source.
    """

    def __init__(
        self,
        fileobj: IO[bytes],
        size: int | None,
        *,
        label: str,
        backend: str,
        md5: bool = False,
        exact: bool = True,
        offset: int = 0,
    ) -> None:
        self.size = size
        #: Bytes read from the source so far.
        self.read_count = 0
        self._fileobj = fileobj
        self._label = label
        self._backend = backend
        self._md5 = hashlib.md5() if md5 else None
        self._exact = exact
        self._offset = offset
        self._end_checked = False
        if size is not None:
            self.len = size

    def read(self, n: int | None = -1, /) -> bytes:
        """Up to ``n`` bytes of the source (the rest when ``n`` is negative or None);
        ``b""`` once the body is complete."""
        if n == 0:
            return b""
        if self.size is None:
            data = self._read_source(-1 if n is None else n)
        else:
            remaining = self.size - self.read_count
            if remaining <= 0:
                self._check_end()
                return b""
            data = self._read_source(remaining if n is None or n < 0 else min(n, remaining))
            if not data:
                raise PermanentBackendError(
                    f"{self._label}: the source gave {self._offset + self.read_count} bytes, "
                    f"not the {self._offset + self.size} announced",
                    backend=self._backend,
                )
            if len(data) == remaining:
                self._check_end()  # before the last bytes go: the server never gets it whole
        self.read_count += len(data)
        if self._md5 is not None:
            self._md5.update(data)
        return data

    def __iter__(self) -> Iterator[bytes]:
        """The body in blocks of at most :data:`CHUNK_SIZE` bytes."""
        while chunk := self.read(CHUNK_SIZE):
            yield chunk

    def hexdigest(self) -> str:
        """The MD5 hex digest of the bytes read so far (the body was made with ``md5``)."""
        if self._md5 is None:
            raise ValueError("this UploadBody was made without md5=True")
        return self._md5.hexdigest()

    def close(self) -> None:
        """Nothing to release: the source stays open, its owner closes it."""

    def _read_source(self, n: int) -> bytes:
        try:
            return self._fileobj.read(n)
        except OSError as e:
            raise TransientBackendError(
                f"{self._label}: reading the source failed: {_one_line(e)}",
                backend=self._backend,
            ) from e

    def _check_end(self) -> None:
        """Once, after ``size`` bytes: an ``exact`` body's source must be at its end."""
        if self._end_checked or not self._exact:
            return
        self._end_checked = True
        if self._read_source(1):
            raise PermanentBackendError(
                f"{self._label}: the source gave more than the "
                f"{self._offset + (self.size or 0)} bytes announced",
                backend=self._backend,
            )


def receive_body(
    chunks: Iterable[bytes],
    out: IO[bytes] | str,
    *,
    label: str,
    backend: str,
    expected_md5: str | None = None,
) -> int:
    """Write the chunks of a response body to ``out`` and return how many bytes that was.

    ``out`` is a writable binary file, or the path of a local file to create.

    * A path is opened only now, once the server has answered, so a request for a
      missing object leaves no local file behind; a path that cannot be created raises
      PermanentBackendError "LABEL: cannot write PATH: REASON".
    * A failure while receiving (the connection drops, the server stops sending) raises
      TransientBackendError "LABEL: the download broke off: DETAIL"; a failure to write
      to ``out`` is raised as it is.
    * With ``expected_md5`` (the hex digest a server whose ETags are MD5s announced;
      quotes around it are ignored, an empty one is not checked), a body whose MD5
      differs raises TransientBackendError "LABEL: the data received does not match the
      object's ETag".
    """
    if isinstance(out, str):
        with _open_local(out, label, backend) as f:
            return receive_body(chunks, f, label=label, backend=backend, expected_md5=expected_md5)
    expected = (expected_md5 or "").strip().strip('"').lower()
    md5 = hashlib.md5() if expected else None
    count = 0
    iterator = iter(chunks)
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            break
        except BackendError:
            raise
        except Exception as e:
            raise TransientBackendError(
                f"{label}: the download broke off: {network_detail(e)}", backend=backend
            ) from e
        out.write(chunk)  # a failure to write is the caller's to see, as it is
        count += len(chunk)
        if md5 is not None:
            md5.update(chunk)
    if md5 is not None and md5.hexdigest() != expected:
        raise TransientBackendError(
            f"{label}: the data received does not match the object's ETag", backend=backend
        )
    return count


def http_status_error(
    label: str,
    status: int,
    reason: str = "",
    *,
    backend: str,
    retry_after: str | None = None,
    transient: Collection[int] = (),
    permanent: Collection[int] = (),
) -> BackendError:
    """The BackendError an HTTP error status means, for the statuses a backend has no
    word of its own for (it handles its missing object, missing folder and refused
    credentials first, since only it knows what they mean there).

    * 429, 498 (Swift's rate limit) and a 503 with a Retry-After header:
      RateLimitedError, whose ``retry_after`` is the delay the header asks for (seconds or
      an HTTP date; None without a header);
    * 408 (the server gave up waiting for the request), a status in ``transient``, and
      any 5xx not in ``permanent``: TransientBackendError;
    * anything else: PermanentBackendError.

    The message is "LABEL: the server answered STATUS REASON".
    """
    message = f"{label}: the server answered {status} {reason or ''}".rstrip()
    if status in (429, 498) or (status == 503 and retry_after):
        return RateLimitedError(
            message, backend=backend, retry_after=parse_retry_after(retry_after)
        )
    if status == 408 or status in transient or (status >= 500 and status not in permanent):
        return TransientBackendError(message, backend=backend)
    return PermanentBackendError(message, backend=backend)


def http_network_error(label: str, e: BaseException, *, backend: str, server: str) -> BackendError:
    """The BackendError a failure to exchange a request with ``server`` means (``e`` is
    what requests raised):

    * a TLS failure (an untrusted certificate) or an invalid URL: PermanentBackendError
      "LABEL: TLS failure: DETAIL" or "LABEL: invalid URL: DETAIL", since trying again
      cannot help;
    * a timeout: TransientBackendError "LABEL: timed out: DETAIL";
    * anything else (refused, reset, unknown host): TransientBackendError "LABEL: cannot
      reach SERVER: DETAIL".

    ``server`` is the address to name, without credentials; DETAIL is
    :func:`network_detail`.
    """
    detail = network_detail(e)
    requests = sys.modules.get("requests")  # an exception of requests means it is loaded
    if requests is not None:
        if isinstance(e, requests.exceptions.SSLError):
            return PermanentBackendError(f"{label}: TLS failure: {detail}", backend=backend)
        if isinstance(e, requests.exceptions.InvalidURL):
            return PermanentBackendError(f"{label}: invalid URL: {detail}", backend=backend)
        if isinstance(e, requests.exceptions.Timeout):
            return TransientBackendError(f"{label}: timed out: {detail}", backend=backend)
    return TransientBackendError(f"{label}: cannot reach {server}: {detail}", backend=backend)


def network_detail(e: BaseException) -> str:
    """The useful part of a requests or urllib3 error, on one line: ``Connection
    refused``, ``certificate verify failed: ...``, ``Read timed out``; never an object
    address. Falls back to the whole message, or the exception's class name."""
    text = " ".join(str(e).split())
    for pattern in _DETAIL_PATTERNS:
        m = pattern.search(text)
        if m:
            return m.group(1).strip(" .")
    return _POOL_PREFIX_RE.sub("", text) or type(e).__name__


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date
    (a date in the past is 0); None for no header or one that is neither."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def query_list_by_head(
    backend: Backend, names: list[str], *, listing_above: int = QUERY_BY_LISTING
) -> dict[str, dict[str, int]]:
    """What ``backend._query_list(names)`` answers, for a backend whose ``_query`` asks
    the server about one object (a HEAD) and whose ``_list`` gives sizes: the ``_query``
    of each name for up to ``listing_above`` names, one listing for more, since one
    listing then costs less than many requests. ``{name: {"size": n}}``, -1 for a missing
    name."""
    if len(names) <= listing_above:
        return {name: backend._query(name) for name in names}
    sizes = {entry.name: entry.size for entry in backend.iter_list()}
    return {name: {"size": sizes.get(name, -1)} for name in names}


def bucket_and_prefix(url: BackendURL, noun: str = "bucket") -> tuple[str, str]:
    """The bucket (or container: ``noun``) and the key prefix an object store's URL
    names: ``s3://BUCKET/a/b`` gives ``("BUCKET", "a/b/")`` and ``s3://BUCKET`` gives
    ``("BUCKET", "")``, so that an object's key is the prefix followed by its name. A URL
    that names no bucket raises ConfigError "URL: the URL names no NOUN
    (SCHEME://NOUN/PREFIX)"."""
    if not url.host:
        raise ConfigError(
            f"{url.redacted}: the URL names no {noun} ({url.scheme}://{noun.upper()}/PREFIX)"
        )
    prefix = url.path.strip("/")
    return url.host, f"{prefix}/" if prefix else ""


def _open_local(path: str, label: str, backend: str) -> IO[bytes]:
    try:
        return open(path, "wb")
    except OSError as e:
        raise PermanentBackendError(
            f"{label}: cannot write {path}: {e.strerror or e}", backend=backend
        ) from None


def _one_line(e: BaseException) -> str:
    return " ".join((str(e) or type(e).__name__).split())
