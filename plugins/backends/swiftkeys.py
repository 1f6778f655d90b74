"""swiftkeys:// -- a Swift container reached with a container key instead of a token.

Some Swift providers run a "container keys" middleware: the container's owner sets a key
as container metadata (``swift post -m Full-Key:SECRET CONTAINER``), and anyone holding it
may use that one container, without an account and without a token, by sending the key in
the ``X-Container-Meta-Full-Key`` header. duplicity needed a fork of itself
(duplicity-swiftkeys) to do this; here it is an ordinary backend, and unlike that fork it
follows every page of a listing.

URL: ``swiftkeys://CONTAINER/PREFIX`` (the prefix is optional). Options (URL query,
command line, environment):

* ``storage-url`` (env ``SWIFT_STORAGE_URL``, required): the account's storage URL, e.g.
  ``https://swift.example.com/v1/AUTH_abc``;
* ``full-token`` (env ``SWIFT_CONTAINER_FULL_TOKEN``, or a file named by
  ``SWIFT_CONTAINER_FULL_TOKEN_FILE``): the full key, sent as ``X-Container-Meta-Full-Key``;
* ``read-token`` (env ``SWIFT_CONTAINER_READ_TOKEN``): a read key, used when no full key is
  given; it allows listing and reading only (enough to restore);
* ``page-size``: names per listing request (default: the server's limit, 10,000 unless
  configured otherwise); every page is followed either way;
* ``timeout`` (seconds, default 60).

No ``X-Auth-Token`` is ever sent, and no library global is patched: every request carries
the key header explicitly. Guarantees: a put is a single PUT (atomic), checked against the
MD5 ETag the server returns; a full download is checked against the object's ETag;
listings follow every page with ``marker``. Objects are not segmented, so each is at most
the server's object size limit (5 GiB by default). A key cannot create a container:
``create_folder`` fails with a message saying so. A wrong key (or a container that does not
exist, which the middleware does not tell apart) is a PermanentBackendError.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import quote

import attrs
from pannier import (
    PLUGIN_API_VERSION,
    Backend,
    BackendCapabilities,
    BackendError,
    BackendURL,
    ConfigError,
    FileMissingError,
    FolderMissingError,
    ListEntry,
    PermanentBackendError,
    TransientBackendError,
    UploadBody,
    bucket_and_prefix,
    http_network_error,
    http_status_error,
    query_list_by_head,
    receive_body,
)

#: Request headers carrying the keys (as the container-keys middleware expects them).
FULL_KEY_HEADER = "X-Container-Meta-Full-Key"
READ_KEY_HEADER = "X-Container-Meta-Read-Key"
#: Swift's default largest object; a larger put of known size is refused before sending
#: anything.
MAX_OBJECT_SIZE = 5 * (1 << 30) + 2
#: Bytes per read of a download.
_BUFFER = 1 << 20
#: Swift's 4xx answers that a later attempt may not get (a conflict of timestamps, a body
#: that arrived damaged, a client the proxy saw leave), beside the generic ones.
SWIFT_TRANSIENT_4XX = (409, 422, 499)


class SwiftKeysBackend(Backend):
    """Objects in one Swift container, authorized by a container key header."""

    plugin_api_version = PLUGIN_API_VERSION
    schemes = ("swiftkeys",)
    description = "a Swift container through a container key (SWIFT_CONTAINER_FULL_TOKEN)"
    capabilities = BackendCapabilities(
        atomic_put=True,
        ranged_get=True,
        rename=True,
        page_size=10000,
        connections=8,
        streaming=True,
    )

    def __init__(self, url: BackendURL) -> None:
        self.url = url
        self.container, self.prefix = bucket_and_prefix(url, "container")
        storage_url = url.option("storage-url", env="SWIFT_STORAGE_URL")
        if not storage_url:
            raise ConfigError(f"{url.redacted}: set SWIFT_STORAGE_URL (the account's storage URL)")
        if not storage_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"{url.redacted}: SWIFT_STORAGE_URL {storage_url!r} is not an http(s) URL"
            )
        self.storage_url = storage_url.rstrip("/")
        full = url.secret(
            "full-token",
            env="SWIFT_CONTAINER_FULL_TOKEN",
            file_env="SWIFT_CONTAINER_FULL_TOKEN_FILE",
        )
        read = url.secret("read-token", env="SWIFT_CONTAINER_READ_TOKEN")
        if full:
            self._key_header = {FULL_KEY_HEADER: full}
            self.read_only = False
        elif read:
            self._key_header = {READ_KEY_HEADER: read}
            self.read_only = True
        else:
            raise ConfigError(
                f"{url.redacted}: set SWIFT_CONTAINER_FULL_TOKEN (or SWIFT_CONTAINER_READ_TOKEN "
                "for read-only access) to the container's key"
            )
        self.page_size = url.int_option("page-size", 0)
        if self.page_size < 0:
            raise ConfigError(f"{url.redacted}: option page-size must be positive")
        self.timeout = url.float_option("timeout", 60.0)
        self.container_url = f"{self.storage_url}/{quote(self.container, safe='')}"
        self._session: Any = None

    def get_capabilities(self) -> BackendCapabilities:
        """The class capabilities with this instance's listing page size."""
        if not self.page_size:
            return self.capabilities
        return attrs.evolve(self.capabilities, page_size=self.page_size)

    # --- required primitives ------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        """One PUT of a local file, with its size as Content-Length."""
        with open(source_path, "rb") as source:
            self._put_stream(source, remote_filename, os.fstat(source.fileno()).st_size)

    def _get(self, remote_filename: str, local_path: str) -> None:
        """Download to a local file, made only once the server has the object."""
        self._download(remote_filename, local_path)

    def _list(self) -> Iterator[ListEntry]:
        marker = ""
        while True:
            params = {"format": "json", "marker": marker, "prefix": self.prefix, "delimiter": "/"}
            if self.page_size:
                params["limit"] = str(self.page_size)
            response = self._request("GET", self.container_url, "list", None, params=params)
            try:
                page = response.json()
            except ValueError as e:
                raise TransientBackendError(
                    "list: the server's listing is not JSON", backend=self.display_name
                ) from e
            if not page:
                return
            for item in page:
                if "name" in item:
                    yield ListEntry(item["name"][len(self.prefix) :], int(item["bytes"]))
            last = page[-1]
            marker = last.get("name") or last.get("subdir") or ""

    def _delete(self, filename: str) -> None:
        with contextlib.suppress(FileMissingError):
            self._request("DELETE", self._url(filename), "delete", filename)

    # --- optional primitives ------------------------------------------------------------

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        """One PUT of what ``fileobj`` yields (chunked when ``size`` is unknown), checked
        against the MD5 ETag the server answers; the key header authorizes it."""
        if size is not None and size > MAX_OBJECT_SIZE:
            raise PermanentBackendError(
                f"put {remote_filename}: {size} bytes is above Swift's object size limit "
                "(swiftkeys does not segment objects)",
                backend=self.display_name,
            )
        body = UploadBody(
            fileobj, size, label=f"put {remote_filename}", backend=self.display_name, md5=True
        )
        headers = {"Content-Type": "application/octet-stream"}
        response = self._request(
            "PUT", self._url(remote_filename), "put", remote_filename, data=body, headers=headers
        )
        if response.headers.get("Etag", "").strip('"') != body.hexdigest():
            raise TransientBackendError(
                f"put {remote_filename}: the server's ETag does not match the data sent",
                backend=self.display_name,
            )

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        """GET the object into ``fileobj``, checked against its ETag."""
        self._download(remote_filename, fileobj)

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        if length <= 0:
            if self._query(remote_filename)["size"] < 0:
                raise FileMissingError(
                    f"{remote_filename} does not exist", backend=self.display_name
                )
            return b""
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        response = self._request(
            "GET", self._url(remote_filename), "get", remote_filename, headers=headers, ok=(416,)
        )
        if response.status_code == 416:  # offset at or past the end
            return b""
        data: bytes = response.content
        return data

    def _query(self, filename: str) -> dict[str, int]:
        try:
            response = self._request("HEAD", self._url(filename), "query", filename)
        except FileMissingError:
            return {"size": -1}
        return {"size": int(response.headers.get("Content-Length", 0))}

    def _query_list(self, filename_list: list[str]) -> dict[str, dict[str, int]]:
        """A HEAD per object for a few names, one listing for many."""
        return query_list_by_head(self, filename_list)

    def _move(self, source_filename: str, remote_filename: str) -> None:
        source = f"/{quote(self.container, safe='')}/{quote(self._key(source_filename), safe='')}"
        headers = {"X-Copy-From": source, "Content-Length": "0"}
        self._request("PUT", self._url(remote_filename), "move", source_filename, headers=headers)
        self._delete(source_filename)

    # --- the folder ---------------------------------------------------------------------

    def _test(self) -> None:
        self._request("HEAD", self.container_url, "test", None)

    def _create_folder(self) -> None:
        raise PermanentBackendError(
            f"a container key cannot create container {self.container}: its owner creates it "
            "and sets the key (swift post -m Full-Key:KEY CONTAINER)",
            backend=self.display_name,
        )

    # --- errors and clean-up ------------------------------------------------------------

    @property
    def session(self) -> Any:
        """The requests Session, made on first use."""
        if self._session is None:
            import requests

            session = requests.Session()
            # An explicit no-op auth keeps requests from adding credentials from ~/.netrc:
            # the key header is the only credential sent.
            session.auth = _no_auth
            self._session = session
        return self._session

    def _url(self, name: str) -> str:
        return f"{self.container_url}/{quote(self._key(name), safe='')}"

    def _download(self, name: str, out: IO[bytes] | str) -> None:
        """GET ``name`` into a file object or a local file; a whole object's body is
        checked against its MD5 ETag (a large object's ETag is not its content's MD5)."""
        with self._request("GET", self._url(name), "get", name) as response:
            large = response.headers.get("X-Static-Large-Object") or response.headers.get(
                "X-Object-Manifest"
            )
            receive_body(
                response.iter_content(_BUFFER),
                out,
                label=f"get {name}",
                backend=self.display_name,
                expected_md5=None if large else response.headers.get("Etag"),
            )

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _request(
        self,
        method: str,
        url: str,
        operation: str,
        name: str | None,
        *,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> Any:
        """Send one request with the key header; return the response when it succeeded
        (2xx or a status in ``ok``), else raise the BackendError it means."""
        all_headers = dict(headers or {})
        all_headers.update(self._key_header)
        try:
            response = self.session.request(
                method,
                url,
                headers=all_headers,
                timeout=self.timeout,
                stream=method == "GET" and operation == "get",
                allow_redirects=False,
                **kwargs,
            )
        except Exception as e:
            self._retry_cleanup()
            raise self._error(operation, name, e) from e
        if 200 <= response.status_code < 300 or response.status_code in ok:
            return response
        response.close()
        raise self._status_error(operation, name, response)

    def _status_error(self, operation: str, name: str | None, response: Any) -> BackendError:
        """The BackendError an HTTP error status means."""
        status = int(response.status_code)
        what = f"{operation} {name}" if name else operation
        detail = f"{what}: {status} {response.reason or ''}".rstrip()
        if status == 404:
            if name is not None and operation in ("get", "query", "delete", "move"):
                return FileMissingError(f"{name} does not exist", backend=self.display_name)
            return FolderMissingError(
                f"container {self.container} does not exist", backend=self.display_name
            )
        if status == 401:
            return PermanentBackendError(
                f"{detail} (the container key was refused: check SWIFT_CONTAINER_FULL_TOKEN "
                "and that the container exists)",
                backend=self.display_name,
            )
        if status == 403:
            hint = "a read key cannot write" if self.read_only else "the key does not allow it"
            return PermanentBackendError(f"{detail} ({hint})", backend=self.display_name)
        return http_status_error(
            what,
            status,
            response.reason,
            backend=self.display_name,
            retry_after=response.headers.get("Retry-After"),
            transient=SWIFT_TRANSIENT_4XX,
        )

    def _error(self, operation: str, name: str | None, e: Exception) -> BackendError:
        """Classify an exception raised while talking to the server."""
        if isinstance(e, BackendError):
            return e
        error = self._error_code(operation, e)
        if error is not None:
            return error
        what = f"{operation} {name}" if name else operation
        return TransientBackendError(f"{what}: {type(e).__name__}", backend=self.display_name)

    def _error_code(self, operation: str, e: Exception) -> BackendError | None:
        """Classify a requests exception (TLS failures are permanent, the others
        transient); None for anything else."""
        import requests

        if isinstance(e, requests.RequestException):
            return http_network_error(
                operation, e, backend=self.display_name, server=self.storage_url
            )
        return None

    def _missing(self, name: str) -> FileMissingError:
        return FileMissingError(f"{name} does not exist", backend=self.display_name)

    def _retry_cleanup(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _close(self) -> None:
        self._retry_cleanup()


def _no_auth(request: Any) -> Any:
    return request


def get_plugin_class() -> type[SwiftKeysBackend]:
    """The backend class of this plugin module."""
    return SwiftKeysBackend
