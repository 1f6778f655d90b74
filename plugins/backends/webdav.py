"""``webdav://`` and ``webdavs://``: a collection on a WebDAV server, through requests.

URL: ``webdav://[user[:password]@]host[:port]/path/`` (plain HTTP) or ``webdavs://...``
(HTTPS). The path is the collection that holds the objects.

Options (URL query, explicit options, then the environment variable in brackets):

* ``user`` [the URL's user, ``PANNIER_WEBDAV_USER``];
* ``password`` [the URL's password, ``PANNIER_WEBDAV_PASSWORD``, or a file named by
  ``PANNIER_WEBDAV_PASSWORD_FILE``];
* ``auth`` [``PANNIER_WEBDAV_AUTH``]: ``auto`` (default: whatever the server's challenge
  asks for), ``basic`` or ``digest``;
* ``atomic-put`` [``PANNIER_WEBDAV_ATOMIC_PUT``]: true (default) uploads to a temporary
  name and MOVEs it over the final name with ``Overwrite: T``; false PUTs in place, for
  servers that cannot MOVE;
* ``verify`` [``PANNIER_WEBDAV_VERIFY``]: check the server's TLS certificate (default
  true); ``ca-file`` [``PANNIER_WEBDAV_CA_FILE``]: a CA bundle to check it against;
* ``timeout`` [``PANNIER_WEBDAV_TIMEOUT``]: seconds to wait for the network (default 60).

Servers differ, and this backend leans on none of their quirks: MKCOL of an existing
collection (201 or 405), PUT without a parent collection (404 or 409), MOVE onto an
existing object (needs ``Overwrite: T`` on some). Listing is one ``PROPFIND`` of depth 1,
parsed as it streams in; objects are fetched with ``GET`` (with ``Range`` for a part).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import IO, TYPE_CHECKING, Protocol
from urllib.parse import quote, unquote, urlsplit

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
    http_network_error,
    http_status_error,
    lazy_import,
    query_list_by_head,
    receive_body,
)

if TYPE_CHECKING:
    import requests
else:
    requests = lazy_import(
        "requests", "the webdav backend needs requests: pip install 'pannier[webdav]'"
    )

#: Prefix of the temporary names an atomic put writes before its MOVE; never a valid
#: remote name, so listings skip them.
TEMP_PREFIX = ".pannier-tmp-"
#: Bytes per read of a download.
CHUNK_SIZE = 1 << 20
#: Reads of a listing whose answer is broken off by the server before giving up.
LIST_ATTEMPTS = 8
#: Pause before the second read of a broken listing, doubled before each further one
#: (0.05 s, 0.1 s, ... 3.2 s: about 6 s in all), so that the uploads and deletions that
#: broke it have time to finish.
LIST_RETRY_PAUSE = 0.05

_PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<D:propfind xmlns:D="DAV:"><D:prop>'
    b"<D:resourcetype/><D:getcontentlength/>"
    b"</D:prop></D:propfind>"
)
_DAV = "{DAV:}"

_CHALLENGE_PARAM_RE = re.compile(r'([A-Za-z][\w-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')


class _Body(Protocol):
    """What requests reads an upload from."""

    def read(self, n: int = -1, /) -> bytes: ...
    def close(self) -> None: ...


#: Makes the body of a request; called again to resend it after an authentication
#: challenge (a body that can be sent only once raises instead).
BodyFactory = Callable[[], _Body]


class WebDAVBackend(Backend):
    """A collection on a WebDAV server (HTTP or HTTPS), Basic or Digest authentication.

    Put is atomic (PUT to a temporary name, then MOVE with ``Overwrite: T``) unless
    ``atomic-put=false``; get of a missing name raises FileMissingError; a missing
    collection raises FolderMissingError and ``create_folder`` creates it with its
    parents; 401 and 403 answers raise PermanentBackendError, 429 and 503 with
    Retry-After RateLimitedError, other 5xx answers and network failures
    TransientBackendError.
    """

    plugin_api_version = PLUGIN_API_VERSION
    schemes = ("webdav", "webdavs")
    description = "a WebDAV server over HTTP or HTTPS"
    capabilities = BackendCapabilities(
        atomic_put=True, ranged_get=True, rename=True, streaming=True
    )

    def __init__(self, url: BackendURL) -> None:
        self.url = url
        url.require_host()
        proto = "https" if url.scheme == "webdavs" else "http"
        path = url.path if url.path.endswith("/") else url.path + "/"
        self.base_path = path if path.startswith("/") else "/" + path
        self.base_url = f"{proto}://{url.netloc}{quote(self.base_path)}"
        self.server = f"{proto}://{url.netloc}"
        user = url.user or url.option("user", env="PANNIER_WEBDAV_USER")
        password = url.secret(
            "password", env="PANNIER_WEBDAV_PASSWORD", file_env="PANNIER_WEBDAV_PASSWORD_FILE"
        )
        mode = url.enum_option(
            "auth", ("auto", "basic", "digest"), "auto", env="PANNIER_WEBDAV_AUTH"
        )
        if password is not None and not user:
            raise ConfigError(f"{url.redacted}: a password is given but no user")
        self.auth = _Auth(user, password or "", mode) if user else None
        self.atomic_put = url.bool_option("atomic-put", True, env="PANNIER_WEBDAV_ATOMIC_PUT")
        self.timeout = url.float_option("timeout", 60.0, env="PANNIER_WEBDAV_TIMEOUT")
        ca_file = url.option("ca-file", env="PANNIER_WEBDAV_CA_FILE")
        self.verify: bool | str = (
            ca_file if ca_file else url.bool_option("verify", True, env="PANNIER_WEBDAV_VERIFY")
        )
        self._session: requests.Session | None = None
        self._primed = False

    # --- required primitives ------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        """Upload a local file (sent again if the server asks to authenticate)."""

        def body() -> _Body:
            return open(source_path, "rb")

        self._upload(body, remote_filename)

    def _get(self, remote_filename: str, local_path: str) -> None:
        """Download to a local file; FileMissingError (and no local file) when missing."""
        self._download(remote_filename, local_path)

    def _list(self) -> Iterator[ListEntry]:
        """Every object in the collection with its size, from one PROPFIND of depth 1
        parsed as it arrives; sub-collections and temporary names are skipped.

        A listing is delivered only once the whole answer parsed. When an object vanishes
        while the server walks the collection, some servers end the document early and
        append an error (rclone's), others answer 500 (WsgiDAV's): such a listing is read
        again after a pause that doubles each time, up to ``LIST_ATTEMPTS`` times, then
        raises TransientBackendError."""
        for attempt in range(1, LIST_ATTEMPTS + 1):
            if attempt > 1:
                time.sleep(LIST_RETRY_PAUSE * 2 ** (attempt - 2))
            try:
                return iter(self._propfind_listing())
            except _BrokenListing as e:
                if attempt == LIST_ATTEMPTS:
                    raise TransientBackendError(
                        f"list: the server could not give a complete listing "
                        f"{LIST_ATTEMPTS} times in a row (last: {e})",
                        backend=self.display_name,
                    ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _propfind_listing(self) -> list[ListEntry]:
        with self._request(
            "PROPFIND",
            None,
            "list",
            headers={"Depth": "1", "Content-Type": "application/xml"},
            data=_PROPFIND_BODY,
            stream=True,
            ok=(207, 500),
        ) as resp:
            if resp.status_code == 500:
                raise _BrokenListing(f"the server answered 500 {resp.reason}")
            parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("end",))
            entries: list[ListEntry] = []
            try:
                for chunk in resp.iter_content(64 << 10):
                    parser.feed(chunk)
                    entries.extend(self._entries(parser))
                parser.close()
                entries.extend(self._entries(parser))
            except ET.ParseError as e:
                raise _BrokenListing(f"its PROPFIND answer is not valid XML: {e}") from None
            except requests.RequestException as e:
                raise self._network_error("list", e) from e
        return entries

    def _delete(self, filename: str) -> None:
        """DELETE an object; a missing one is not an error."""
        self._request("DELETE", filename, "delete", ok=(200, 202, 204, 404)).close()

    # --- optional primitives ------------------------------------------------------------

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        """Upload what ``fileobj`` yields (read once): with Content-Length when ``size`` is
        known, else chunked."""
        used = False

        def body() -> _Body:
            nonlocal used
            if used:
                raise TransientBackendError(
                    f"put {remote_filename}: the server asked to authenticate again during "
                    "an upload from a stream, which cannot be sent twice",
                    backend=self.display_name,
                )
            used = True
            return UploadBody(
                fileobj, size, label=f"put {remote_filename}", backend=self.display_name
            )

        self._upload(body, remote_filename)

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        """GET an object into ``fileobj``; FileMissingError when missing."""
        self._download(remote_filename, fileobj)

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        """GET with a Range header; a server that ignores it is handled by slicing."""
        if length <= 0:
            if self._query(remote_filename)["size"] < 0:
                raise self._missing(remote_filename)
            return b""
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        with self._request(
            "GET", remote_filename, "get range of", headers=headers, ok=(200, 206, 416)
        ) as resp:
            if resp.status_code == 416:  # the range starts at or after the end
                return b""
            data = resp.content
            return data if resp.status_code == 206 else data[offset : offset + length]

    def _query(self, filename: str) -> dict[str, int]:
        """``{"size": n}`` from a HEAD, -1 when the name is missing."""
        with self._request("HEAD", filename, "query", ok=(200, 204, 404)) as resp:
            if resp.status_code == 404:
                return {"size": -1}
            return {"size": int(resp.headers.get("Content-Length", -1))}

    def _query_list(self, filename_list: list[str]) -> dict[str, dict[str, int]]:
        """A HEAD per name for a few names, one PROPFIND listing for many."""
        return query_list_by_head(self, filename_list)

    def _move(self, source_filename: str, remote_filename: str) -> None:
        """MOVE with ``Overwrite: T``; FileMissingError when the source is missing."""
        self._move_url(source_filename, remote_filename, remote_filename)

    # --- the folder ---------------------------------------------------------------------

    def _test(self) -> None:
        """PROPFIND of depth 0 on the collection: it must exist and be a collection."""
        self._primed = True
        with self._request(
            "PROPFIND",
            None,
            "test",
            headers={"Depth": "0", "Content-Type": "application/xml"},
            data=_PROPFIND_BODY,
            ok=(207,),
        ) as resp:
            try:
                root = ET.fromstring(resp.content)
            except ET.ParseError as e:
                raise PermanentBackendError(
                    f"test: the server's PROPFIND answer is not valid XML: {e}",
                    backend=self.display_name,
                ) from None
        for elem in root.iter(_DAV + "resourcetype"):
            if elem.find(_DAV + "collection") is not None:
                return
        raise PermanentBackendError(
            f"{self.base_path} is not a collection (a folder)", backend=self.display_name
        )

    def _create_folder(self) -> None:
        """MKCOL the collection, creating missing parents first; an existing collection is
        kept (servers answer 201 or 405 for it)."""
        self._mkcol(self.base_path)

    # --- errors and clean-up ------------------------------------------------------------

    def _retry_cleanup(self) -> None:
        """Drop the HTTP connections; the next request opens new ones."""
        if self._session is not None:
            self._session.close()
            self._session = None

    def _error_code(self, operation: str, e: Exception) -> BackendError | None:
        """Classify a requests exception: TLS failures are permanent, other network
        failures transient."""
        if isinstance(e, BackendError):
            return e
        if isinstance(e, requests.RequestException):
            return self._network_error(operation, e)
        return None

    def _close(self) -> None:
        """Close the HTTP session."""
        self._retry_cleanup()

    # --- helpers ------------------------------------------------------------------------

    def _download(self, name: str, out: IO[bytes] | str) -> None:
        """GET ``name`` into a file object or a local file (made once the server answered)."""
        with self._request("GET", name, "get", stream=True) as resp:
            receive_body(
                resp.iter_content(CHUNK_SIZE), out, label=f"get {name}", backend=self.display_name
            )

    def _url(self, name: str | None) -> str:
        return self.base_url if name is None else self.base_url + quote(name)

    def _session_(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            session.headers["User-Agent"] = "pannier-webdav"
            self._session = session
        return self._session

    def _request(
        self,
        method: str,
        name: str | None,
        operation: str,
        *,
        ok: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
        data: bytes | BodyFactory | None = None,
        stream: bool = False,
        url: str | None = None,
    ) -> requests.Response:
        """Send one request and return a response whose status is in ``ok``; anything
        else raises a classified BackendError. ``data`` may be a factory, called again
        when the server answers 401 with a challenge this client can now answer."""
        target = url or self._url(name)
        label = f"{operation} {name}" if name else operation
        for attempt in (1, 2):
            body = data() if callable(data) else data
            try:
                resp = self._session_().request(
                    method,
                    target,
                    headers=headers,
                    data=body,
                    auth=self.auth,
                    stream=stream,
                    timeout=self.timeout,
                    verify=self.verify,
                    allow_redirects=method in ("GET", "HEAD"),
                )
            except requests.RequestException as e:
                raise self._network_error(label, e) from e
            finally:
                if body is not None and not isinstance(body, bytes):
                    body.close()
            if resp.status_code in ok:
                return resp
            resp.close()
            if (
                resp.status_code == 401
                and attempt == 1
                and self.auth is not None
                and self.auth.learn(resp.headers.get("WWW-Authenticate", ""))
            ):
                continue
            raise self._status_error(label, name, resp)
        raise AssertionError("unreachable")  # pragma: no cover

    def _prime_auth(self) -> None:
        """Learn the server's authentication scheme with a small request before the first
        upload, so an upload from a stream is sent once, already authenticated."""
        if self._primed or self.auth is None:
            return
        self._primed = True
        self._test()

    def _upload(self, body: BodyFactory, remote_filename: str) -> None:
        self._prime_auth()
        if not self.atomic_put:
            self._put_to(body, remote_filename, remote_filename)
            return
        temp = TEMP_PREFIX + secrets.token_hex(8)
        try:
            self._put_to(body, temp, remote_filename)
            self._move_url(temp, remote_filename, remote_filename, after_put=True)
        except BaseException:
            with suppress(BackendError):  # a leftover temporary name is never listed
                self._request("DELETE", temp, "clean up", ok=(200, 202, 204, 404)).close()
            raise

    def _put_to(self, body: BodyFactory, target: str, remote_filename: str) -> None:
        resp = self._request(
            "PUT",
            remote_filename,
            "put",
            url=self._url(target),
            data=body,
            headers={"Content-Type": "application/octet-stream"},
            ok=(200, 201, 204, 404, 409),
        )
        resp.close()
        if resp.status_code in (404, 409):
            # No parent collection: 404 on some servers, 409 on others.
            if not self._folder_exists():
                raise self._folder_missing()
            raise PermanentBackendError(
                f"put {remote_filename}: the server answered {resp.status_code} {resp.reason}",
                backend=self.display_name,
            )

    def _move_url(self, source: str, target: str, label: str, after_put: bool = False) -> None:
        headers = {"Destination": self._url(target), "Overwrite": "T"}
        resp = self._request(
            "MOVE", source, "move", headers=headers, ok=(200, 201, 204, 403, 404, 405, 501)
        )
        resp.close()
        if resp.status_code in (200, 201, 204):
            return
        if not after_put and resp.status_code in (403, 404) and self._query(source)["size"] < 0:
            raise self._missing(source)  # some servers answer 403 for a missing source
        if after_put and resp.status_code in (403, 405, 501):
            raise PermanentBackendError(
                f"put {label}: the server refused to MOVE the uploaded temporary object "
                f"({resp.status_code} {resp.reason}); use ?atomic-put=false for a server "
                "that cannot MOVE",
                backend=self.display_name,
            )
        raise self._status_error(f"move {source} to", target, resp)

    def _mkcol(self, path: str) -> None:
        url = self.server + quote(path)
        resp = self._request("MKCOL", None, "create folder", url=url, ok=(200, 201, 404, 405, 409))
        resp.close()
        if resp.status_code == 405 and self._is_collection(url):
            return  # it exists already
        if resp.status_code in (404, 409):  # a parent is missing
            parent = path.rstrip("/").rpartition("/")[0] + "/"
            if parent != path and parent != "/":
                self._mkcol(parent)
                self._request("MKCOL", None, "create folder", url=url, ok=(200, 201)).close()
                return
        if resp.status_code not in (200, 201):
            raise PermanentBackendError(
                f"create folder {path}: the server answered {resp.status_code} {resp.reason}",
                backend=self.display_name,
            )

    def _is_collection(self, url: str) -> bool:
        try:
            self._request(
                "PROPFIND", None, "create folder", url=url, headers={"Depth": "0"}, ok=(207,)
            ).close()
        except BackendError:
            return False
        return True

    def _folder_exists(self) -> bool:
        return self._is_collection(self.base_url)

    def _entries(self, parser: ET.XMLPullParser[ET.Element]) -> Iterator[ListEntry]:
        for event in parser.read_events():
            elem = event[-1] if isinstance(event, tuple) else None
            if isinstance(elem, ET.Element) and elem.tag == _DAV + "response":
                entry = self._entry(elem)
                elem.clear()
                if entry is not None:
                    yield entry

    def _entry(self, response: ET.Element) -> ListEntry | None:
        """The ListEntry of one ``<D:response>`` of a listing, or None for the collection
        itself, a sub-collection, or a temporary name."""
        href = response.findtext(_DAV + "href") or ""
        path = unquote(urlsplit(href.strip()).path)
        if not path.startswith(self.base_path):
            return None
        name = path[len(self.base_path) :]
        if not name or "/" in name.rstrip("/") or name.endswith("/"):
            return None
        if name.startswith(TEMP_PREFIX):
            return None
        size = -1
        for propstat in response.iter(_DAV + "propstat"):
            status = propstat.findtext(_DAV + "status") or ""
            if " 200 " not in status + " ":
                continue
            prop = propstat.find(_DAV + "prop")
            if prop is None:
                continue
            rtype = prop.find(_DAV + "resourcetype")
            if rtype is not None and rtype.find(_DAV + "collection") is not None:
                return None
            length = prop.findtext(_DAV + "getcontentlength")
            if length and length.strip().isdigit():
                size = int(length)
        return ListEntry(name, size)

    def _status_error(self, label: str, name: str | None, resp: requests.Response) -> BackendError:
        status = f"{resp.status_code} {resp.reason or ''}".strip()
        where = self.display_name
        code = resp.status_code
        if code == 401:
            if self.auth is None:
                return PermanentBackendError(
                    f"{label}: the server asks for a user and password ({status}); give them "
                    "in the URL or PANNIER_WEBDAV_USER / PANNIER_WEBDAV_PASSWORD",
                    backend=where,
                )
            return PermanentBackendError(
                f"{label}: authentication failed for user {self.auth.user!r} ({status}): "
                "wrong user or password",
                backend=where,
            )
        if code == 403:
            return PermanentBackendError(f"{label}: permission denied ({status})", backend=where)
        if 300 <= code < 400:
            location = resp.headers.get("Location", "elsewhere")
            return PermanentBackendError(
                f"{label}: the server redirects to {location} ({status}); use that URL "
                "(webdavs:// for https)",
                backend=where,
            )
        if code == 404:
            if name is None:
                return self._folder_missing()
            return self._missing(name)
        # 507 Insufficient Storage: a quota, which waiting does not lift.
        return http_status_error(
            label,
            code,
            resp.reason,
            backend=where,
            retry_after=resp.headers.get("Retry-After"),
            permanent=(507,),
        )

    def _network_error(self, label: str, e: requests.RequestException) -> BackendError:
        return http_network_error(label, e, backend=self.display_name, server=self.server)

    def _missing(self, name: str) -> FileMissingError:
        return FileMissingError(f"{name} does not exist", backend=self.display_name)

    def _folder_missing(self) -> FolderMissingError:
        return FolderMissingError(
            f"collection {self.base_path} does not exist (create it with create_folder / "
            "`pannier backend mkdir`)",
            backend=self.display_name,
        )


class _BrokenListing(Exception):
    """A PROPFIND answer that is not one well-formed XML document."""


class _Auth:
    """A requests authentication callable: HTTP Basic or Digest (RFC 7616: MD5,
    SHA-256, their -sess forms, qop=auth), chosen from the server's challenge in
    ``auto`` mode.

    Basic is sent up front when chosen; Digest needs a challenge first, which
    :meth:`learn` takes from a 401 answer.
    """

    def __init__(self, user: str, password: str, mode: str) -> None:
        self.user = user
        self.password = password
        self.mode = mode
        self.scheme: str | None = "basic" if mode == "basic" else None
        self._challenge: dict[str, str] = {}
        self._count = 0

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.scheme == "basic":
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode("ascii")
            r.headers["Authorization"] = f"Basic {token}"
        elif self.scheme == "digest":
            r.headers["Authorization"] = self._digest(r.method or "GET", r.url or "/")
        return r

    def learn(self, header: str) -> bool:
        """Adopt the challenge of a 401 answer; False when it cannot help (the same
        credentials were already refused, or no scheme this client speaks is offered)."""
        m = re.search(r"\bdigest\s+(.*)$", header, re.I | re.S)
        if m and self.mode in ("auto", "digest"):
            challenge = {
                k.lower(): v[1:-1].replace('\\"', '"') if v.startswith('"') else v
                for k, v in _CHALLENGE_PARAM_RE.findall(m.group(1))
            }
            stale = challenge.get("stale", "").lower() == "true"
            if self.scheme == "digest" and not stale:
                return False
            self.scheme, self._challenge, self._count = "digest", challenge, 0
            return True
        if re.search(r"\bbasic\b", header, re.I) and self.mode in ("auto", "basic"):
            if self.scheme == "basic":
                return False
            self.scheme = "basic"
            return True
        return False

    def _digest(self, method: str, url: str) -> str:
        c = self._challenge
        algorithm = c.get("algorithm", "MD5")
        base = algorithm.upper().removesuffix("-SESS")
        hash_name = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}.get(base)
        if hash_name is None:
            raise PermanentBackendError(f"the server's digest algorithm {algorithm} is unknown")

        def h(text: str) -> str:
            return hashlib.new(hash_name, text.encode("utf-8")).hexdigest()

        parts = urlsplit(url)
        uri = parts.path + (f"?{parts.query}" if parts.query else "")
        realm, nonce = c.get("realm", ""), c.get("nonce", "")
        cnonce = secrets.token_hex(8)
        ha1 = h(f"{self.user}:{realm}:{self.password}")
        if algorithm.upper().endswith("-SESS"):
            ha1 = h(f"{ha1}:{nonce}:{cnonce}")
        ha2 = h(f"{method}:{uri}")
        qops = [q.strip() for q in c.get("qop", "").split(",") if q.strip()]
        fields = {
            "username": self.user,
            "realm": realm,
            "nonce": nonce,
            "uri": uri,
            "algorithm": algorithm,
        }
        if "auth" in qops:
            self._count += 1
            nc = f"{self._count:08x}"
            fields["response"] = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
            fields.update(qop="auth", nc=nc, cnonce=cnonce)
        else:
            fields["response"] = h(f"{ha1}:{nonce}:{ha2}")
        if "opaque" in c:
            fields["opaque"] = c["opaque"]
        unquoted = {"qop", "nc", "algorithm"}
        return "Digest " + ", ".join(
            f"{k}={v}" if k in unquoted else f'{k}="{v}"' for k, v in fields.items()
        )


def get_plugin_class() -> type[WebDAVBackend]:
    """The backend class of this plugin module."""
    return WebDAVBackend
