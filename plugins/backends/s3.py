"""s3:// -- Amazon S3 and S3-compatible servers (MinIO, Ceph RGW, Swift's s3api), via boto3.

URL: ``s3://BUCKET/PREFIX`` (the prefix is optional; objects are stored as
``PREFIX/NAME``). The access key and secret may also be given as
``s3://ACCESS_KEY:SECRET@BUCKET/PREFIX`` (percent-encode a ``:`` in the key), though the
environment keeps them out of ``argv``. Options (URL query, command line, environment):

* ``endpoint`` (env ``AWS_ENDPOINT_URL``): the server's URL, for anything but AWS, e.g.
  ``http://127.0.0.1:8080``;
* ``region`` (env ``AWS_REGION``, ``AWS_DEFAULT_REGION``; default ``us-east-1``);
* ``path-style`` (bool; default true when an endpoint is given, else false): address the
  bucket in the path (``endpoint/BUCKET/KEY``) instead of the host name;
* ``access-key`` (env ``AWS_ACCESS_KEY_ID``) and ``secret-key`` (env
  ``AWS_SECRET_ACCESS_KEY``, or a file named by ``secret-key-file`` or
  ``AWS_SECRET_ACCESS_KEY_FILE``); without them boto3's own chain (profiles, instance
  roles) is used;
* ``storage-class`` (default ``STANDARD``): one of :data:`STORAGE_CLASSES`, any case;
* ``multipart-threshold`` (size, default 16M): objects larger than this are uploaded in
  parts; ``part-size`` (size, default 16M, at least 5M, the S3 minimum);
* ``page-size`` (1 to 1000, default 1000): keys asked for per listing request (a server
  may return fewer; every page is followed either way);
* ``timeout`` (seconds, default 60): connect and read timeout of each request.

Guarantees: an object appears only when its upload completes (a single PUT, or a multipart
upload that is aborted on any failure), so a failed put leaves no visible object. Every
body is sent with its ``Content-MD5``, which the server checks. Listings follow every page.
A missing bucket raises FolderMissingError; it is created only by ``create_folder``.
boto3's own retries are off: the host's retry wrapper decides, by the class of error
(missing key: FileMissingError; missing bucket: FolderMissingError; refused credentials or
access: PermanentBackendError; SlowDown/503: RateLimitedError; connection trouble and
other 5xx: TransientBackendError).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator
from typing import IO, Any

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
    RateLimitedError,
    TransientBackendError,
    bucket_and_prefix,
    parse_retry_after,
    query_list_by_head,
)

#: Storage classes accepted by the ``storage-class`` option.
STORAGE_CLASSES = (
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER",
    "GLACIER_IR",
    "DEEP_ARCHIVE",
    "EXPRESS_ONEZONE",
)
MIB = 1 << 20
#: The smallest part S3 accepts in a multipart upload (all parts but the last).
MIN_PART_SIZE = 5 * MIB
#: Keys per DeleteObjects request (the S3 maximum).
DELETE_BATCH = 1000
_BUFFER = 1 << 20
_MISSING_KEY = frozenset({"NoSuchKey", "404", "NotFound"})
_RATE_LIMITED = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
     "503", "RequestThrottled"}
)  # fmt: skip
_DENIED = frozenset(
    {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccountProblem",
     "AllAccessDisabled", "InvalidToken", "ExpiredToken", "InvalidSecurity", "401", "403"}
)  # fmt: skip
_TRANSIENT_CODES = frozenset(
    {"InternalError", "RequestTimeout", "ServiceUnavailable", "BadDigest", "IncompleteBody",
     "RequestTimeTooSkewed"}
)  # fmt: skip


class S3Backend(Backend):
    """Objects in an S3 bucket under an optional prefix; multipart above a threshold."""

    plugin_api_version = PLUGIN_API_VERSION
    schemes = ("s3",)
    description = "Amazon S3 or an S3-compatible server (boto3)"
    capabilities = BackendCapabilities(
        atomic_put=True,
        ranged_get=True,
        rename=True,
        page_size=1000,
        connections=8,
        streaming=True,
        multipart_threshold=16 * MIB,
    )

    def __init__(self, url: BackendURL) -> None:
        self.url = url
        self.bucket, self.prefix = bucket_and_prefix(url, "bucket")
        self.endpoint = url.option("endpoint", env="AWS_ENDPOINT_URL")
        region = url.option("region", env="AWS_REGION") or url.option(
            "region", env="AWS_DEFAULT_REGION"
        )
        self.region = region or "us-east-1"
        self.path_style = url.bool_option("path-style", self.endpoint is not None)
        self.access_key = url.option("access-key", env="AWS_ACCESS_KEY_ID") or url.user
        self.secret_key = url.password or url.secret(
            "secret-key", env="AWS_SECRET_ACCESS_KEY", file_env="AWS_SECRET_ACCESS_KEY_FILE"
        )
        if bool(self.access_key) != bool(self.secret_key):
            given, missing = (
                ("an access key", "secret key") if self.access_key else ("a secret", "access key")
            )
            raise ConfigError(
                f"{url.redacted}: {given} is given but no {missing} "
                "(set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            )
        self.storage_class = url.enum_option("storage-class", STORAGE_CLASSES, "STANDARD")
        self.part_size = url.size_option("part-size", 16 * MIB)
        if self.part_size < MIN_PART_SIZE:
            raise ConfigError(
                f"{url.redacted}: option part-size: {self.part_size} bytes is below the "
                f"S3 minimum of {MIN_PART_SIZE} (5M)"
            )
        self.multipart_threshold = url.size_option("multipart-threshold", 16 * MIB)
        self.page_size = url.int_option("page-size", 1000)
        if not 1 <= self.page_size <= 1000:
            raise ConfigError(f"{url.redacted}: option page-size must be between 1 and 1000")
        self.timeout = url.float_option("timeout", 60.0)
        self._client: Any = None

    def get_capabilities(self) -> BackendCapabilities:
        """The class capabilities with this instance's multipart threshold and page size."""
        return attrs.evolve(
            self.capabilities,
            multipart_threshold=self.multipart_threshold,
            page_size=self.page_size,
        )

    # --- required primitives ------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        with open(source_path, "rb") as source:
            self._put_stream(source, remote_filename, None)

    def _get(self, remote_filename: str, local_path: str) -> None:
        with open(local_path, "wb") as out:
            self._get_stream(remote_filename, out)

    def _list(self) -> Iterator[ListEntry]:
        paginator = self.client.get_paginator("list_objects_v2")
        # No Delimiter: the servers answer a plain prefix listing faster, and keys nested
        # deeper under the prefix (never pannier's) are skipped here instead.
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self.prefix,
            PaginationConfig={"PageSize": self.page_size},
        )
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    name = item["Key"][len(self.prefix) :]
                    if name and "/" not in name:
                        yield ListEntry(name, int(item["Size"]))
        except Exception as e:
            raise self._error("list", None, e) from e

    def _delete(self, filename: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(filename))
        except Exception as e:
            error = self._error("delete", filename, e)
            if not isinstance(error, FileMissingError):
                raise error from e

    # --- optional primitives ------------------------------------------------------------

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        stream = _Stream(fileobj)
        first = stream.read_full(self.multipart_threshold + 1)
        if len(first) <= self.multipart_threshold:
            self._put_single(remote_filename, first)
        else:
            self._put_multipart(remote_filename, first, stream)

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(remote_filename))
            body = response["Body"]
            try:
                for chunk in body.iter_chunks(_BUFFER):
                    fileobj.write(chunk)
            finally:
                body.close()
        except Exception as e:
            raise self._error("get", remote_filename, e) from e

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        if length <= 0:
            if self._query(remote_filename)["size"] < 0:
                raise self._missing(remote_filename)
            return b""
        try:
            response = self.client.get_object(
                Bucket=self.bucket,
                Key=self._key(remote_filename),
                Range=f"bytes={offset}-{offset + length - 1}",
            )
            data: bytes = response["Body"].read()
            return data
        except Exception as e:
            if _code(e) == "InvalidRange":  # offset at or past the end
                return b""
            raise self._error("get", remote_filename, e) from e

    def _query(self, filename: str) -> dict[str, int]:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._key(filename))
        except Exception as e:
            error = self._error("query", filename, e)
            if isinstance(error, FileMissingError):
                return {"size": -1}
            raise error from e
        return {"size": int(response["ContentLength"])}

    def _query_list(self, filename_list: list[str]) -> dict[str, dict[str, int]]:
        """A HEAD per key for a few names, one listing of the prefix for many."""
        return query_list_by_head(self, filename_list)

    def _delete_list(self, filename_list: list[str]) -> None:
        for start in range(0, len(filename_list), DELETE_BATCH):
            batch = filename_list[start : start + DELETE_BATCH]
            try:
                response = self.client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self._key(n)} for n in batch], "Quiet": True},
                )
            except Exception as e:
                raise self._error("delete", f"{len(batch)} objects", e) from e
            failed = [err for err in response.get("Errors", ()) if err.get("Code") != "NoSuchKey"]
            if failed:
                first = failed[0]
                raise TransientBackendError(
                    f"delete {first.get('Key', '?')[len(self.prefix) :]}: {first.get('Code')} "
                    f"{first.get('Message', '')} ({len(failed)} of {len(batch)} failed)",
                    backend=self.display_name,
                )

    def _move(self, source_filename: str, remote_filename: str) -> None:
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=self._key(remote_filename),
                CopySource={"Bucket": self.bucket, "Key": self._key(source_filename)},
                StorageClass=self.storage_class,
            )
        except Exception as e:
            raise self._error("move", source_filename, e) from e
        self._delete(source_filename)

    # --- the folder ---------------------------------------------------------------------

    def _test(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as e:
            if _code(e) in _MISSING_KEY:
                raise self._no_bucket() from e
            raise self._error("test", None, e) from e

    def _create_folder(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**kwargs)
        except Exception as e:
            if _code(e) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                try:
                    self._test()
                    return
                except BackendError:
                    pass
            raise self._error("create bucket", None, e) from e

    # --- errors and clean-up ------------------------------------------------------------

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        import boto3
        import botocore.session
        from botocore.config import Config
        from botocore.parsers import ResponseParserFactory

        config = Config(
            region_name=self.region,
            s3={"addressing_style": "path" if self.path_style else "auto"},
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=self.timeout,
            read_timeout=self.timeout,
            max_pool_connections=4,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # This client's own botocore session leaves timestamps as text: nothing here reads
        # them, and parsing them was most of the cost of a listing page (no global state
        # is touched; other boto3 users keep the defaults).
        core = botocore.session.get_session()
        parsers = ResponseParserFactory()
        parsers.set_parser_defaults(timestamp_parser=str)
        core.register_component("response_parser_factory", parsers)
        session = boto3.session.Session(botocore_session=core)
        client = session.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key or None,
            aws_secret_access_key=self.secret_key or None,
            config=config,
        )
        client.meta.events.register("before-sign.s3.DeleteObjects", _add_content_md5)
        return client

    def _key(self, name: str) -> str:
        return self.prefix + name

    def _put_single(self, remote_filename: str, data: bytes) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._key(remote_filename),
                Body=data,
                ContentMD5=_md5_b64(data),
                StorageClass=self.storage_class,
            )
        except Exception as e:
            raise self._error("put", remote_filename, e) from e

    def _put_multipart(self, remote_filename: str, first: bytes, stream: _Stream) -> None:
        key = self._key(remote_filename)
        try:
            upload = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, StorageClass=self.storage_class
            )
        except Exception as e:
            raise self._error("put", remote_filename, e) from e
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, data in enumerate(stream.parts(first, self.part_size), start=1):
                response = self.client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data,
                    ContentMD5=_md5_b64(data),
                )
                parts.append({"PartNumber": number, "ETag": response["ETag"]})
            self.client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException as e:
            # The original error is the one to report; an abort that fails leaves only an
            # invisible incomplete upload, which a bucket lifecycle rule removes.
            with contextlib.suppress(Exception):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            if isinstance(e, Exception) and _is_sdk_error(e):  # not the source stream's error
                raise self._error("put", remote_filename, e) from e
            raise

    def _missing(self, name: str) -> FileMissingError:
        return FileMissingError(f"{name} does not exist", backend=self.display_name)

    def _no_bucket(self) -> FolderMissingError:
        return FolderMissingError(f"bucket {self.bucket} does not exist", backend=self.display_name)

    def _error(self, operation: str, name: str | None, e: Exception) -> BackendError:
        """Classify a boto3/botocore exception into the BackendError it means."""
        if isinstance(e, BackendError):
            return e
        what = f"{operation} {name}" if name else operation
        error = self._error_code(operation, e)
        if error is not None:
            return error
        code = _code(e)
        message = _message(e)
        if code is None:
            return TransientBackendError(f"{what}: {message}", backend=self.display_name)
        status = _status(e)
        detail = f"{what}: {code}: {message}" if message and message != code else f"{what}: {code}"
        if code == "NoSuchBucket":
            return self._no_bucket()
        if code in _MISSING_KEY and name is not None and operation != "list":
            return self._missing(name)
        if code in _RATE_LIMITED or status in (429, 503):
            return RateLimitedError(detail, backend=self.display_name, retry_after=_retry_after(e))
        if code in _DENIED or status in (401, 403):
            return PermanentBackendError(
                f"{detail} (check the access key, the secret and the bucket's permissions)",
                backend=self.display_name,
            )
        if code in _TRANSIENT_CODES or (status is not None and status >= 500):
            return TransientBackendError(detail, backend=self.display_name)
        return PermanentBackendError(detail, backend=self.display_name)

    def _error_code(self, operation: str, e: Exception) -> BackendError | None:
        from botocore import exceptions as bex

        if isinstance(e, bex.NoCredentialsError | bex.PartialCredentialsError):
            return PermanentBackendError(
                f"{operation}: no S3 credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or a boto3 profile",
                backend=self.display_name,
            )
        if isinstance(e, bex.ParamValidationError):
            return PermanentBackendError(
                f"{operation}: {_one_line(str(e))}", backend=self.display_name
            )
        if isinstance(e, bex.EndpointConnectionError | bex.ConnectionClosedError):
            return TransientBackendError(
                f"{operation}: cannot reach {self.endpoint or 'the S3 endpoint'}: "
                f"{_one_line(str(e))}",
                backend=self.display_name,
            )
        if isinstance(e, bex.BotoCoreError | OSError):
            return TransientBackendError(
                f"{operation}: {_one_line(str(e))}", backend=self.display_name
            )
        return None

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


class _Stream:
    """Reads a stream once, front to back, in full blocks; never reads past its end."""

    def __init__(self, fileobj: IO[bytes]) -> None:
        self.fileobj = fileobj
        self.eof = False

    def read_full(self, size: int) -> bytes:
        """Up to ``size`` bytes, looping over short reads; fewer only at the end."""
        chunks = []
        remaining = size
        while remaining > 0 and not self.eof:
            chunk = self.fileobj.read(remaining)  # one read, no join, for a buffered file
            if not chunk:
                self.eof = True
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def parts(self, first: bytes, part_size: int) -> Iterator[bytes]:
        """``first`` followed by the rest of the stream, cut into parts of ``part_size``
        bytes (the last one shorter), read one part at a time."""
        buffer = first
        while True:
            while len(buffer) >= part_size:
                yield buffer[:part_size]
                buffer = buffer[part_size:]
            more = self.read_full(part_size - len(buffer))
            if not more:
                break
            buffer += more
        if buffer:
            yield buffer


def _is_sdk_error(e: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(e, BotoCoreError | ClientError)


def _md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def _add_content_md5(request: Any, **_: Any) -> None:
    """botocore event hook: DeleteObjects with a Content-MD5 header (some S3 servers,
    Swift's s3api among them, refuse the newer CRC32 checksum for it)."""
    body = request.body
    if isinstance(body, str):
        body = body.encode("utf-8")
    if isinstance(body, bytes) and "Content-MD5" not in request.headers:
        request.headers["Content-MD5"] = _md5_b64(body)


def _code(e: Exception) -> str | None:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _status(e: Exception) -> int | None:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status is not None else None
    return None


def _message(e: Exception) -> str:
    response = getattr(e, "response", None)
    if isinstance(response, dict):
        return _one_line(str(response.get("Error", {}).get("Message", "")))
    return _one_line(str(e))


def _retry_after(e: Exception) -> float | None:
    response = getattr(e, "response", None)
    if not isinstance(response, dict):
        return None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    return parse_retry_after(headers.get("retry-after"))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def get_plugin_class() -> type[S3Backend]:
    """The backend class of this plugin module."""
    return S3Backend
