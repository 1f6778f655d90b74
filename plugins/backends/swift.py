"""swift:// -- OpenStack Swift object storage, via python-swiftclient.

URL: ``swift://CONTAINER/PREFIX`` (the prefix is optional; objects are stored as
``PREFIX/NAME``). Authentication follows duplicity's Swift backend and its ``SWIFT_*``
environment variables; each also has a URL query option (which wins over the variable):

==========================  ==========================  ===================================
option                      environment                 meaning
==========================  ==========================  ===================================
``auth-url``                ``SWIFT_AUTHURL``           the auth endpoint (v1 ``/auth/v1.0``
                                                        or Keystone ``/v3``)
``user``                    ``SWIFT_USERNAME``          the user (or the URL's user part)
``password``                ``SWIFT_PASSWORD``          the password or key (or a file named
                                                        by ``SWIFT_PASSWORD_FILE``)
``auth-version``            ``SWIFT_AUTHVERSION``       1 (default), 2 or 3
``tenant-name``             ``SWIFT_TENANTNAME``        v2 tenant
``user-domain-name``        ``SWIFT_USER_DOMAIN_NAME``  v3 user domain (also ``-id``)
``project-name``            ``SWIFT_PROJECT_NAME``      v3 project (also ``-id``)
``project-domain-name``     ``SWIFT_PROJECT_DOMAIN_NAME``  v3 project domain (also ``-id``)
``region``                  ``SWIFT_REGIONNAME``        the region of the storage endpoint
``endpoint-type``           ``SWIFT_ENDPOINT_TYPE``     publicURL (default), internalURL...
``preauth-url``             ``SWIFT_PREAUTHURL``        a storage URL already authenticated
``preauth-token``           ``SWIFT_PREAUTHTOKEN``      its token (no auth request is made)
==========================  ==========================  ===================================

Other options: ``segment-threshold`` (size, default 1G): larger objects are uploaded as a
Static Large Object of ``segment-size`` (size, default 256M) segments kept in the
container ``segment-container`` (default ``CONTAINER_segments``); ``storage-policy`` (the
policy of a container made by ``create_folder``); ``page-size`` (names per listing
request; default: the server's limit, 10,000 unless configured otherwise; every page is
followed either way); ``timeout`` (seconds, default 60).

Guarantees: a put is atomic (a plain PUT, or segments first and the manifest last, with the
segments removed when the upload fails); each upload is checked against the MD5 ETag the
server returns, and each full download against the object's ETag. Listings follow every
page with ``marker``, so nothing is lost past the server's page limit. Deleting or
replacing a segmented object deletes its segments. A missing container raises
FolderMissingError; it is created only by ``create_folder``. swiftclient's own retries are
off (the host's retry wrapper decides), except the one re-authentication on an expired
token.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import IO, Any, TypeVar
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

_T = TypeVar("_T")
MIB = 1 << 20
#: A delete_list of at least this many names uses bulk deletes (one request a batch).
BULK_DELETE_MIN = 20
#: Names per bulk-delete request (Swift's default limit is 10,000).
BULK_DELETE_BATCH = 1000
_BUFFER = 1 << 20
#: Swift's 4xx answers that a later attempt may not get (a conflict of timestamps, a body
#: that arrived damaged, a client the proxy saw leave), beside the generic ones.
SWIFT_TRANSIENT_4XX = (409, 422, 499)
#: Auth versions accepted by ``auth-version`` (swiftclient's spellings).
AUTH_VERSIONS = ("1", "1.0", "2", "2.0", "3")
#: Environment variables that fill the v2/v3 ``os_options`` of swiftclient.
_OS_OPTIONS = {
    "tenant-name": ("tenant_name", "SWIFT_TENANTNAME"),
    "tenant-id": ("tenant_id", "SWIFT_TENANTID"),
    "user-id": ("user_id", "SWIFT_USERID"),
    "user-domain-name": ("user_domain_name", "SWIFT_USER_DOMAIN_NAME"),
    "user-domain-id": ("user_domain_id", "SWIFT_USER_DOMAIN_ID"),
    "project-name": ("project_name", "SWIFT_PROJECT_NAME"),
    "project-id": ("project_id", "SWIFT_PROJECT_ID"),
    "project-domain-name": ("project_domain_name", "SWIFT_PROJECT_DOMAIN_NAME"),
    "project-domain-id": ("project_domain_id", "SWIFT_PROJECT_DOMAIN_ID"),
    "region": ("region_name", "SWIFT_REGIONNAME"),
    "endpoint-type": ("endpoint_type", "SWIFT_ENDPOINT_TYPE"),
}


class SwiftBackend(Backend):
    """Objects in a Swift container under an optional prefix; SLO above a threshold."""

    plugin_api_version = PLUGIN_API_VERSION
    schemes = ("swift",)
    description = "OpenStack Swift (python-swiftclient), v1/v2/v3 auth or a pre-authenticated URL"
    capabilities = BackendCapabilities(
        atomic_put=True,
        ranged_get=True,
        rename=True,
        page_size=10000,
        connections=8,
        streaming=True,
        multipart_threshold=1 << 30,
    )

    def __init__(self, url: BackendURL) -> None:
        self.url = url
        self.container, self.prefix = bucket_and_prefix(url, "container")
        self.preauth_url = url.option("preauth-url", env="SWIFT_PREAUTHURL")
        self.preauth_token = url.secret("preauth-token", env="SWIFT_PREAUTHTOKEN")
        self.auth_url = url.option("auth-url", env="SWIFT_AUTHURL")
        self.user = url.option("user", env="SWIFT_USERNAME") or url.user
        self.password = url.secret("password", env="SWIFT_PASSWORD", file_env="SWIFT_PASSWORD_FILE")
        self.auth_version = url.enum_option(
            "auth-version", AUTH_VERSIONS, "1", env="SWIFT_AUTHVERSION"
        )
        self.os_options = {
            key: value
            for option, (key, env) in _OS_OPTIONS.items()
            if (value := url.option(option, env=env))
        }
        if self.preauth_url or self.preauth_token:
            if not (self.preauth_url and self.preauth_token):
                raise ConfigError(
                    f"{url.redacted}: a pre-authenticated connection needs both "
                    "SWIFT_PREAUTHURL and SWIFT_PREAUTHTOKEN"
                )
        else:
            missing = [
                env
                for env, value in (
                    ("SWIFT_AUTHURL", self.auth_url),
                    ("SWIFT_USERNAME", self.user),
                    ("SWIFT_PASSWORD", self.password),
                )
                if not value
            ]
            if missing:
                raise ConfigError(
                    f"{url.redacted}: missing Swift credentials: set {', '.join(missing)} "
                    "(or SWIFT_PREAUTHURL and SWIFT_PREAUTHTOKEN)"
                )
        self.segment_size = url.size_option("segment-size", 256 * MIB)
        self.segment_threshold = url.size_option("segment-threshold", 1 << 30)
        if self.segment_size < 1 or self.segment_threshold < 1:
            raise ConfigError(f"{url.redacted}: segment-size and segment-threshold must be > 0")
        self.segment_container = url.option("segment-container") or f"{self.container}_segments"
        self.storage_policy = url.option("storage-policy")
        self.page_size = url.int_option("page-size", 0)
        if self.page_size < 0:
            raise ConfigError(f"{url.redacted}: option page-size must be positive")
        self.timeout = url.float_option("timeout", 60.0)
        self._conn: Any = None

    def get_capabilities(self) -> BackendCapabilities:
        """The class capabilities with this instance's segment threshold and page size."""
        return attrs.evolve(
            self.capabilities,
            multipart_threshold=self.segment_threshold,
            page_size=self.page_size or self.capabilities.page_size,
        )

    # --- required primitives ------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        """Upload a local file: one PUT, or segments and a manifest above the threshold."""
        with open(source_path, "rb") as source:
            size = source.seek(0, 2)
            source.seek(0)
            self._put_stream(source, remote_filename, size)

    def _get(self, remote_filename: str, local_path: str) -> None:
        """Download to a local file, made only once the server has the object."""
        self._download(remote_filename, local_path)

    def _list(self) -> Iterator[ListEntry]:
        """Every object under the prefix with its size, across every listing page."""
        for item in self._raw_listing():
            yield ListEntry(item["name"], int(item["bytes"]))

    def _delete(self, filename: str) -> None:
        key = self._key(filename)
        headers = self._head(filename)
        if headers is None:
            return
        segments = self._segments(filename) if _is_slo(headers) else []
        with contextlib.suppress(FileMissingError):
            self._call("delete", filename, lambda c: c.delete_object(self.container, key))
        self._delete_segments(segments)

    # --- optional primitives ------------------------------------------------------------

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        if size is None:
            with tempfile.SpooledTemporaryFile(max_size=8 * MIB, prefix="pannier-swift-") as spool:
                while chunk := fileobj.read(_BUFFER):
                    spool.write(chunk)
                size = spool.tell()
                spool.seek(0)
                self._put_sized(spool, remote_filename, size)
        else:
            self._put_sized(fileobj, remote_filename, size)

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        """GET the object into ``fileobj``, checked against its ETag."""
        self._download(remote_filename, fileobj)

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        if length <= 0:
            if self._head(remote_filename) is None:
                raise self._missing(remote_filename)
            return b""
        key = self._key(remote_filename)
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        try:
            _, body = self._call(
                "get", remote_filename, lambda c: c.get_object(self.container, key, headers=headers)
            )
        except PermanentBackendError as e:
            if getattr(e.__cause__, "http_status", None) == 416:  # offset past the end
                return b""
            raise
        return bytes(body)

    def _query(self, filename: str) -> dict[str, int]:
        headers = self._head(filename)
        return {"size": -1 if headers is None else int(headers.get("content-length", 0))}

    def _query_list(self, filename_list: list[str]) -> dict[str, dict[str, int]]:
        """A HEAD per object for a few names, one listing for many."""
        return query_list_by_head(self, filename_list)

    def _delete_list(self, filename_list: list[str]) -> None:
        if len(filename_list) < BULK_DELETE_MIN:
            for name in filename_list:
                self._delete(name)
            return
        # Many names: one listing tells the segmented objects apart (they need their
        # segments deleted too); the others go in bulk deletes, when the server has them.
        wanted = set(filename_list)
        segmented = {e["name"] for e in self._raw_listing() if "slo_etag" in e} & wanted
        plain = [name for name in filename_list if name not in segmented]
        for start in range(0, len(plain), BULK_DELETE_BATCH):
            batch = plain[start : start + BULK_DELETE_BATCH]
            if not self._bulk_delete(batch):
                for name in batch:
                    self._delete(name)
        for name in segmented:
            self._delete(name)

    def _move(self, source_filename: str, remote_filename: str) -> None:
        source = f"/{self.container}/{self._key(source_filename)}"
        key = self._key(remote_filename)
        # Server-side copy; for a segmented object the manifest is copied and the segments
        # are shared, so only the source's manifest is deleted afterwards.
        self._call(
            "move",
            source_filename,
            lambda c: c.put_object(
                self.container,
                key,
                contents=b"",
                content_length=0,
                headers={"X-Copy-From": source},
                query_string="multipart-manifest=get",
            ),
        )
        source_key = self._key(source_filename)
        with contextlib.suppress(FileMissingError):
            self._call(
                "move", source_filename, lambda c: c.delete_object(self.container, source_key)
            )

    # --- the folder ---------------------------------------------------------------------

    def _test(self) -> None:
        self._call("test", None, lambda c: c.head_container(self.container))

    def _create_folder(self) -> None:
        headers = {"X-Storage-Policy": self.storage_policy} if self.storage_policy else {}
        self._call(
            "create container", None, lambda c: c.put_container(self.container, headers=headers)
        )

    # --- errors and clean-up ------------------------------------------------------------

    @property
    def connection(self) -> Any:
        """The swiftclient Connection, made on first use (authenticates lazily)."""
        if self._conn is None:
            from swiftclient.client import Connection

            if not (self.preauth_url and self.preauth_token) and self.auth_version[0] in "23":
                import importlib.util

                if importlib.util.find_spec("keystoneclient") is None:
                    raise ConfigError(
                        f"{self.display_name}: auth version {self.auth_version} (Keystone) "
                        "needs python-keystoneclient: pip install python-keystoneclient"
                    )
            if self.preauth_url and self.preauth_token:
                self._conn = Connection(
                    preauthurl=self.preauth_url,
                    preauthtoken=self.preauth_token,
                    retries=0,
                    retry_on_ratelimit=False,
                    timeout=self.timeout,
                )
            else:
                self._conn = Connection(
                    authurl=self.auth_url,
                    user=self.user,
                    key=self.password,
                    auth_version=self.auth_version,
                    tenant_name=self.os_options.get("tenant_name"),
                    os_options=dict(self.os_options),
                    retries=0,
                    starting_backoff=0.1,
                    retry_on_ratelimit=False,
                    timeout=self.timeout,
                )
        return self._conn

    def _call(self, operation: str, name: str | None, fn: Callable[[Any], _T]) -> _T:
        """Run ``fn(connection)`` and turn whatever it raises into a BackendError."""
        connection = self.connection  # a ConfigError here is not the server's doing
        try:
            return fn(connection)
        except BackendError:
            raise
        except Exception as e:
            if getattr(e, "http_status", None) is None:
                self._retry_cleanup()  # the HTTP connection may be mid-request
            raise self._error(operation, name, e) from e

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _head(self, name: str) -> dict[str, str] | None:
        """The object's headers, or None when it does not exist."""
        key = self._key(name)
        try:
            headers: dict[str, str] = self._call(
                "query", name, lambda c: c.head_object(self.container, key)
            )
        except FileMissingError:
            return None
        return headers

    def _put_sized(self, fileobj: IO[bytes], remote_filename: str, size: int) -> None:
        old_segments: list[str] = []
        if size > self.segment_threshold:
            old = self._head(remote_filename)
            if old is not None and _is_slo(old):
                old_segments = self._segments(remote_filename)
            self._put_segmented(fileobj, remote_filename, size)
            self._delete_segments(old_segments)
            return
        self._put_object(self.container, self._key(remote_filename), fileobj, size, remote_filename)

    def _download(self, name: str, out: IO[bytes] | str) -> None:
        """GET ``name`` into a file object or a local file; a whole object's body is
        checked against its MD5 ETag (a segmented object's ETag is not its content's)."""
        key = self._key(name)
        headers, body = self._call(
            "get", name, lambda c: c.get_object(self.container, key, resp_chunk_size=_BUFFER)
        )
        receive_body(
            body,
            out,
            label=f"get {name}",
            backend=self.display_name,
            expected_md5=None if _is_slo(headers) else headers.get("etag"),
        )

    def _put_object(
        self, container: str, key: str, fileobj: IO[bytes], size: int, name: str, offset: int = 0
    ) -> str:
        """PUT the next ``size`` bytes of ``fileobj`` (which starts ``offset`` bytes into
        the object's data); check and return their MD5. When the token had expired
        (swiftclient then authenticates again but cannot resend a stream), a seekable
        source is rewound and sent once more."""
        start = _position(fileobj)

        def body() -> UploadBody:
            return UploadBody(
                fileobj,
                size,
                label=f"put {name}",
                backend=self.display_name,
                md5=True,
                exact=False,
                offset=offset,
            )

        reader = body()

        def rewind() -> bool:
            nonlocal reader
            if start is None:
                return False
            fileobj.seek(start)
            reader = body()
            return True

        etag = self._call_renewing(
            "put",
            name,
            lambda c: c.put_object(container, key, contents=reader, content_length=size),
            rewind,
        )
        digest = reader.hexdigest()
        if (etag or "").strip('"') != digest:
            raise TransientBackendError(
                f"put {name}: the server's ETag does not match the data sent",
                backend=self.display_name,
            )
        return digest

    def _call_renewing(
        self, operation: str, name: str | None, fn: Callable[[Any], _T], rewind: Callable[[], bool]
    ) -> _T:
        """:meth:`_call` for an upload: when it failed because the token had expired,
        ``rewind()`` the data (False when it cannot) and send it once more."""
        try:
            return self._call(operation, name, fn)
        except TransientBackendError:
            if not self._token_was_renewed() or not rewind():
                raise
        return self._call(operation, name, fn)

    def _token_was_renewed(self) -> bool:
        """Whether the last request failed on an expired token that swiftclient dropped
        (it authenticates again on the next request)."""
        return (
            self._conn is not None
            and self._conn.token is None
            and not self.preauth_token
            and bool(self.auth_url)
        )

    def _put_segmented(self, fileobj: IO[bytes], remote_filename: str, size: int) -> None:
        self._call(
            "create segment container",
            None,
            lambda c: c.put_container(self.segment_container),
        )
        base = f"{self._key(remote_filename)}/slo/{time.time():.6f}/{size}/{self.segment_size}/"
        manifest: list[dict[str, Any]] = []
        done: list[str] = []
        try:
            offset = 0
            while offset < size:
                length = min(self.segment_size, size - offset)
                seg_key = f"{base}{len(manifest):08d}"
                digest = self._put_object(
                    self.segment_container, seg_key, fileobj, length, remote_filename, offset
                )
                done.append(seg_key)
                manifest.append(
                    {
                        "path": f"/{self.segment_container}/{seg_key}",
                        "etag": digest,
                        "size_bytes": length,
                    }
                )
                offset += length
            body = json.dumps(manifest).encode("utf-8")
            key = self._key(remote_filename)
            self._call_renewing(
                "put",
                remote_filename,
                lambda c: c.put_object(
                    self.container, key, contents=body, query_string="multipart-manifest=put"
                ),
                lambda: True,
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self._delete_segments(done)
            raise

    def _segments(self, name: str) -> list[str]:
        """The segment keys (in the segment container) of a segmented object."""
        key = self._key(name)
        try:
            _, body = self._call(
                "query",
                name,
                lambda c: c.get_object(self.container, key, query_string="multipart-manifest=get"),
            )
        except FileMissingError:
            return []
        prefix = f"/{self.segment_container}/"
        return [
            seg["name"][len(prefix) :]
            for seg in json.loads(body)
            if str(seg.get("name", "")).startswith(prefix)
        ]

    def _raw_listing(self) -> Iterator[dict[str, Any]]:
        """Every listing entry under the prefix (names relative to it), across pages."""
        marker = ""
        while page := self._list_page(marker):
            for item in page:
                if "name" in item:
                    yield {**item, "name": item["name"][len(self.prefix) :]}
            marker = page[-1].get("name") or page[-1].get("subdir") or ""

    def _bulk_delete(self, names: list[str]) -> bool:
        """Delete ``names`` with one bulk-delete request; False when the server has no
        bulk middleware (or refuses it), so the caller deletes one by one."""
        body = "".join(
            f"/{quote(self.container, safe='')}/{quote(self._key(n), safe='')}\n" for n in names
        ).encode("utf-8")
        headers = {"Content-Type": "text/plain", "Accept": "application/json"}
        try:
            _, answer = self._call(
                "delete",
                f"{len(names)} objects",
                lambda c: c.post_account(headers, query_string="bulk-delete", data=body),
            )
            result = json.loads(answer)
        except (PermanentBackendError, ValueError):
            return False
        if not isinstance(result, dict) or "Number Deleted" not in result:
            return False
        errors = [e for e in result.get("Errors", []) if not str(e[1]).startswith("404")]
        status = str(result.get("Response Status", ""))
        if errors or not status.startswith(("2", "404")):
            detail = f"{errors[0][0]}: {errors[0][1]}" if errors else status
            raise TransientBackendError(
                f"delete: bulk delete failed for {len(errors) or len(names)} of {len(names)} "
                f"objects ({detail})",
                backend=self.display_name,
            )
        return True

    def _list_page(self, marker: str) -> list[dict[str, Any]]:
        """One page of the container listing after ``marker`` (the server's page size)."""
        _, page = self._call(
            "list",
            None,
            lambda c: c.get_container(
                self.container,
                marker=marker,
                prefix=self.prefix,
                delimiter="/",
                limit=self.page_size or None,
            ),
        )
        return list(page)

    def _delete_segments(self, segment_keys: list[str]) -> None:
        for seg_key in segment_keys:
            self._delete_segment(seg_key)

    def _delete_segment(self, seg_key: str) -> None:
        with contextlib.suppress(FileMissingError):
            self._call(
                "delete segment",
                seg_key,
                lambda c: c.delete_object(self.segment_container, seg_key),
            )

    def _missing(self, name: str) -> FileMissingError:
        return FileMissingError(f"{name} does not exist", backend=self.display_name)

    def _error(self, operation: str, name: str | None, e: Exception) -> BackendError:
        """Classify a swiftclient or requests exception into the BackendError it means."""
        if isinstance(e, BackendError):
            return e
        what = f"{operation} {name}" if name else operation
        error = self._error_code(operation, e)
        if error is not None:
            return error
        status = getattr(e, "http_status", None)
        reason = getattr(e, "http_reason", "") or ""
        if status is None:
            return TransientBackendError(f"{what}: {_one_line(str(e))}", backend=self.display_name)
        detail = f"{what}: {status} {reason}".rstrip()
        if status == 404:
            if name is not None and operation in (
                "get",
                "query",
                "delete",
                "delete segment",
                "move",
            ):
                return self._missing(name)
            return FolderMissingError(
                f"container {self.container} does not exist", backend=self.display_name
            )
        if status in (401, 403):
            if str(e).startswith("Auth"):
                hint = "authentication refused: check SWIFT_USERNAME and SWIFT_PASSWORD"
            elif self.preauth_token:
                hint = "access refused: check SWIFT_PREAUTHTOKEN and the container's ACL"
            else:
                hint = "access refused: check the user's rights on the container"
            return PermanentBackendError(f"{detail} ({hint})", backend=self.display_name)
        headers = getattr(e, "http_response_headers", None) or {}
        return http_status_error(
            what,
            status,
            reason,
            backend=self.display_name,
            retry_after=headers.get("Retry-After") or headers.get("retry-after"),
            transient=SWIFT_TRANSIENT_4XX,
        )

    def _error_code(self, operation: str, e: Exception) -> BackendError | None:
        """Classify a requests exception (TLS failures are permanent, the others
        transient); None for anything else."""
        import requests

        if isinstance(e, requests.RequestException):
            where = self.preauth_url or self.auth_url or "the Swift endpoint"
            return http_network_error(operation, e, backend=self.display_name, server=where)
        return None

    def _retry_cleanup(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn.http_conn = None

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def _position(fileobj: IO[bytes]) -> int | None:
    """Where a seekable stream stands (to send it again), or None when it cannot seek."""
    try:
        return fileobj.tell() if fileobj.seekable() else None
    except (AttributeError, OSError, ValueError):
        return None


def _is_slo(headers: dict[str, str]) -> bool:
    return str(headers.get("x-static-large-object", "")).lower() == "true"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def get_plugin_class() -> type[SwiftBackend]:
    """The backend class of this plugin module."""
    return SwiftBackend
