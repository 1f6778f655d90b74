"""``rclone://``: any of rclone's storage providers, through one long-running rclone.

URL: ``rclone://REMOTE:PATH``, where ``REMOTE:PATH`` is anything rclone accepts: a remote
from rclone's configuration (``rclone://mydrive:backups``), or a connection string that
needs no configuration at all (``rclone://:local:/srv/backups``,
``rclone://:sftp,host=example.com:backups``). Options of the remote itself go in the
connection string or in rclone's own ``RCLONE_CONFIG_<NAME>_<OPTION>`` variables.

The backend starts one ``rclone rcd`` (rclone's remote-control server) on 127.0.0.1 at a
free port on first use, with a random user and password of its own, passed through the
environment rather than ``argv``, and talks to it over its JSON API; objects are read with
plain HTTP GETs (ranges included) through ``--rc-serve``. The process is stopped when the
backend is closed, and at interpreter exit at the latest. One process per backend avoids
the cost of starting rclone for every operation (see docs/backends/rclone.md).

Options (URL query, explicit options, then the environment variable in brackets):

* ``rclone`` [``PANNIER_RCLONE``]: the rclone program (default ``rclone`` on ``PATH``);
* ``config`` [``PANNIER_RCLONE_CONFIG``]: rclone's configuration file (default: rclone's
  own, that is ``RCLONE_CONFIG`` or ``~/.config/rclone/rclone.conf``);
* ``timeout`` [``PANNIER_RCLONE_TIMEOUT``]: seconds to wait for one request (default 300);
* ``low-level-retries`` [``PANNIER_RCLONE_LOW_LEVEL_RETRIES``]: rclone's own retries of
  one low-level request (default 1: pannier's retry wrapper retries whole operations with
  backoff, and rclone's default of 10 under it would multiply every retry by ten).

A put uploads to a temporary name in the same folder and moves it over the final name on
the remote (a rename where the remote can, a server-side copy elsewhere), so a failed put
never leaves a visible partial object.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import suppress
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote, unquote

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
    lazy_import,
    network_detail,
    receive_body,
)

if TYPE_CHECKING:
    import requests
else:
    requests = lazy_import(
        "requests", "the rclone backend needs requests: pip install 'pannier[webdav]'"
    )

#: Prefix of the temporary names a put writes before moving; never a valid remote name,
#: so listings skip them.
TEMP_PREFIX = ".pannier-tmp-"
#: Bytes per read of an upload's source or a download.
CHUNK_SIZE = 1 << 20
#: Seconds to wait for ``rclone rcd`` to start serving.
START_TIMEOUT = 30.0

_SERVING_RE = re.compile(r"Serving remote control on (http://127\.0\.0\.1:\d+)/")
#: Words of rclone errors that a later attempt may not see again (checked first).
_TRANSIENT_WORDS = (
    "connection refused",
    "connection reset",
    "i/o timeout",
    "timed out",
    "timeout",
    "no route to host",
    "network is unreachable",
    "broken pipe",
    "unexpected eof",
    "temporarily",
    "too many requests",
    "rate limit",
)
#: Words of rclone errors that retrying cannot fix.
_PERMANENT_WORDS = (
    "unable to authenticate",
    "knownhosts",
    "key mismatch",
    "didn't find section in config",
    "failed to make fs",
    "failed to create file system",
    "couldn't find",
    "permission denied",
    "access denied",
    "forbidden",
    "unauthorized",
    "invalid",
    "not supported",
    "unknown",
)


class RcloneBackend(Backend):
    """Any rclone remote, through one ``rclone rcd`` process per backend instance.

    Put is atomic (temporary name, then a server-side move); get of a missing name raises
    FileMissingError; a missing folder raises FolderMissingError and ``create_folder``
    creates it; an unknown remote or a refused login raises PermanentBackendError; a
    failure of the rclone process or of the remote's network raises
    TransientBackendError, and ``_retry_cleanup`` restarts the process.
    """

    plugin_api_version = PLUGIN_API_VERSION
    schemes = ("rclone",)
    description = "any rclone remote, through one rclone rcd process"
    capabilities = BackendCapabilities(
        atomic_put=True, ranged_get=True, rename=True, streaming=True
    )

    def __init__(self, url: BackendURL) -> None:
        self.url = url
        self.remote = _remote_spec(url)
        self.program = url.option("rclone", "rclone", env="PANNIER_RCLONE") or "rclone"
        self.config = url.option("config", env="PANNIER_RCLONE_CONFIG")
        self.timeout = url.float_option("timeout", 300.0, env="PANNIER_RCLONE_TIMEOUT")
        self.low_level_retries = url.int_option(
            "low-level-retries", 1, env="PANNIER_RCLONE_LOW_LEVEL_RETRIES"
        )
        if shutil.which(self.program) is None:
            raise ConfigError(
                f"{url.redacted}: the rclone program {self.program!r} was not found "
                "(install rclone or name it with ?rclone=PATH / PANNIER_RCLONE)"
            )
        if self.config is not None and not os.path.isfile(os.path.expanduser(self.config)):
            raise ConfigError(f"{url.redacted}: rclone config file {self.config!r} does not exist")
        self._daemon: _Daemon | None = None
        self._folder_checked = False
        self._unresponsive = False

    # --- required primitives ------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        """Upload a local file (to a temporary name, then moved over the final name)."""
        with open(source_path, "rb") as f:
            self._put_stream(f, remote_filename, os.fstat(f.fileno()).st_size)

    def _get(self, remote_filename: str, local_path: str) -> None:
        """Download to a local file; FileMissingError (and no local file) when missing."""
        self._download(remote_filename, local_path)

    def _list(self) -> Iterator[ListEntry]:
        """Every object in the folder with its size (``operations/list``, files only);
        temporary names are skipped. FolderMissingError when the folder is missing."""
        answer = self._call(
            "operations/list",
            "list",
            None,
            {
                "fs": self.remote,
                "remote": "",
                "opt": {"filesOnly": True, "noModTime": True, "noMimeType": True},
            },
        )
        for item in answer.get("list") or []:
            name = str(item.get("Name", ""))
            if not name or name.startswith(TEMP_PREFIX) or item.get("IsDir"):
                continue
            yield ListEntry(name, int(item.get("Size", -1)))

    def _delete(self, filename: str) -> None:
        """Delete an object (``operations/deletefile``); a missing one is not an error."""
        with suppress(FileMissingError):
            self._call("operations/deletefile", "delete", filename, self._file(filename))

    # --- optional primitives ------------------------------------------------------------

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        """Stream ``fileobj`` (read once) into ``operations/uploadfile`` as a multipart
        body, to a temporary name, then ``operations/movefile`` it over the final name."""
        self._check_folder()
        temp = TEMP_PREFIX + secrets.token_hex(8)
        source = UploadBody(
            fileobj, size, label=f"put {remote_filename}", backend=self.display_name
        )
        body = _Multipart(source, temp)
        try:
            self._call(
                "operations/uploadfile",
                "put",
                remote_filename,
                None,
                params={"fs": self.remote, "remote": ""},
                data=body,
                headers={"Content-Type": body.content_type},
            )
            self._call(
                "operations/movefile",
                "put",
                remote_filename,
                {
                    "srcFs": self.remote,
                    "srcRemote": temp,
                    "dstFs": self.remote,
                    "dstRemote": remote_filename,
                },
            )
        except BaseException:
            with suppress(BackendError):  # a leftover temporary name is never listed
                self._call("operations/deletefile", "clean up", temp, self._file(temp))
            raise

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        """GET the object through ``--rc-serve`` into ``fileobj``."""
        self._download(remote_filename, fileobj)

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        """GET with a Range header (served by rclone for every remote)."""
        if length <= 0:
            if self._query(remote_filename)["size"] < 0:
                raise self._missing(remote_filename)
            return b""
        headers = {"Range": f"bytes={offset}-{offset + length - 1}"}
        with self._fetch(remote_filename, "get range of", headers) as resp:
            if resp.status_code == 416:
                return b""
            data = resp.content
            return data if resp.status_code == 206 else data[offset : offset + length]

    def _query(self, filename: str) -> dict[str, int]:
        """``{"size": n}`` from ``operations/stat``, -1 when the name is missing."""
        try:
            answer = self._call("operations/stat", "query", filename, self._file(filename))
        except FileMissingError:
            return {"size": -1}
        item = answer.get("item")
        if not item or item.get("IsDir"):
            return {"size": -1}
        return {"size": int(item.get("Size", -1))}

    def _move(self, source_filename: str, remote_filename: str) -> None:
        """Move on the remote (``operations/movefile``), replacing the target;
        FileMissingError when the source is missing."""
        self._call(
            "operations/movefile",
            "move",
            source_filename,
            {
                "srcFs": self.remote,
                "srcRemote": source_filename,
                "dstFs": self.remote,
                "dstRemote": remote_filename,
            },
        )

    # --- the folder ---------------------------------------------------------------------

    def _test(self) -> None:
        """Start rclone, reach the remote and check the folder exists."""
        self._folder_checked = False
        self._check_folder()

    def _create_folder(self) -> None:
        """``operations/mkdir`` on the folder (with its parents; no-op when it exists)."""
        self._call("operations/mkdir", "create folder", None, {"fs": self.remote, "remote": ""})
        self._folder_checked = True

    # --- errors and clean-up ------------------------------------------------------------

    def _retry_cleanup(self) -> None:
        """Stop the rclone process if it died or did not answer; the next call starts a
        new one."""
        if self._daemon is not None and (self._unresponsive or not self._daemon.alive()):
            self._stop_daemon()
        self._unresponsive = False

    def _error_code(self, operation: str, e: Exception) -> BackendError | None:
        """Classify a requests exception talking to the local rclone: transient."""
        if isinstance(e, BackendError):
            return e
        if isinstance(e, requests.RequestException):
            return TransientBackendError(
                f"{operation}: rclone did not answer: {network_detail(e)}",
                backend=self.display_name,
            )
        return None

    def _close(self) -> None:
        """Stop the rclone process (by its PID)."""
        self._stop_daemon()

    # --- helpers ------------------------------------------------------------------------

    def _daemon_(self) -> _Daemon:
        if self._daemon is not None and not self._daemon.alive():
            self._stop_daemon()
        if self._daemon is None:
            self._daemon = _Daemon.start(self)
        return self._daemon

    def _stop_daemon(self) -> None:
        daemon, self._daemon = self._daemon, None
        if daemon is not None:
            daemon.stop()

    def _download(self, name: str, out: IO[bytes] | str) -> None:
        """GET ``name`` into a file object or a local file (made once rclone answered)."""
        with self._fetch(name, "get") as resp:
            receive_body(
                resp.iter_content(CHUNK_SIZE), out, label=f"get {name}", backend=self.display_name
            )

    def _file(self, name: str) -> dict[str, Any]:
        return {"fs": self.remote, "remote": name}

    def _check_folder(self) -> None:
        """Once per instance: FolderMissingError when the folder does not exist (rclone
        would otherwise create it on upload)."""
        if self._folder_checked:
            return
        answer = self._call("operations/stat", "test", None, {"fs": self.remote, "remote": ""})
        item = answer.get("item")
        if not item:
            raise self._folder_missing()
        if not item.get("IsDir"):
            raise PermanentBackendError(
                f"{self.remote} is a file, not a folder", backend=self.display_name
            )
        self._folder_checked = True

    def _call(
        self,
        method: str,
        operation: str,
        name: str | None,
        payload: dict[str, Any] | None,
        *,
        params: dict[str, str] | None = None,
        data: Any = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST one remote-control call and return its JSON answer; an error answer
        raises a classified BackendError."""
        daemon = self._daemon_()
        label = f"{operation} {name}" if name else operation
        try:
            resp = daemon.session.post(
                f"{daemon.address}/{method}",
                json=payload,
                params=params,
                data=data,
                headers=headers,
                timeout=self.timeout,
            )
            answer = resp.json() if resp.content else {}
        except requests.RequestException as e:
            raise self._rclone_failed(label, daemon, e) from e
        except ValueError:
            raise TransientBackendError(
                f"{label}: rclone answered {resp.status_code} with a body that is not JSON",
                backend=self.display_name,
            ) from None
        if resp.status_code == 200:
            return answer if isinstance(answer, dict) else {}
        raise self._answer_error(label, name, resp.status_code, str(answer.get("error", "")))

    def _fetch(
        self, name: str, operation: str, headers: dict[str, str] | None = None
    ) -> requests.Response:
        daemon = self._daemon_()
        url = f"{daemon.address}/{quote('[' + self.remote + ']', safe='')}/{quote(name)}"
        try:
            resp = daemon.session.get(url, headers=headers, stream=True, timeout=self.timeout)
        except requests.RequestException as e:
            raise self._rclone_failed(f"{operation} {name}", daemon, e) from e
        if resp.status_code in (200, 206, 416):
            return resp
        body = resp.text[:200] if not resp.ok else ""
        resp.close()
        if resp.status_code == 404 and self._query(name)["size"] < 0:
            raise self._missing(name)
        raise self._answer_error(f"{operation} {name}", name, resp.status_code, body)

    def _answer_error(self, label: str, name: str | None, status: int, error: str) -> BackendError:
        text = _one_line(error) or f"status {status}"
        low = text.lower()
        where = self.display_name
        if status == 404 or "not found" in low:
            if "directory not found" in low or name is None:
                return self._folder_missing()
            return self._missing(name)
        if "didn't find section in config" in low:
            remote = self.remote.partition(":")[0]
            return PermanentBackendError(
                f"{label}: rclone has no remote named {remote!r} in its configuration "
                "(see `rclone listremotes`, or use a connection string like :local:/path)",
                backend=where,
            )
        if any(word in low for word in _TRANSIENT_WORDS):
            return TransientBackendError(f"{label}: {text}", backend=where)
        if any(word in low for word in _PERMANENT_WORDS) or status in (400, 401, 403):
            return PermanentBackendError(f"{label}: {text}", backend=where)
        return TransientBackendError(f"{label}: {text}", backend=where)

    def _rclone_failed(self, label: str, daemon: _Daemon, e: Exception) -> BackendError:
        self._unresponsive = True
        if not daemon.alive():
            return TransientBackendError(
                f"{label}: the rclone process exited ({daemon.last_words()})",
                backend=self.display_name,
            )
        return TransientBackendError(
            f"{label}: rclone did not answer: {network_detail(e)}", backend=self.display_name
        )

    def _missing(self, name: str) -> FileMissingError:
        return FileMissingError(f"{name} does not exist", backend=self.display_name)

    def _folder_missing(self) -> FolderMissingError:
        return FolderMissingError(
            f"folder {self.remote} does not exist (create it with create_folder / "
            "`pannier backend mkdir`)",
            backend=self.display_name,
        )


class _Daemon:
    """One ``rclone rcd`` child process, its address and an HTTP session to it."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        address: str,
        credentials: tuple[str, str],
        log: deque[str],
    ) -> None:
        self.process = process
        self.address = address
        self.session = requests.Session()
        self.session.auth = credentials
        self._log = log
        # Stop the process when the daemon object is collected or at interpreter exit.
        self._finalizer = weakref.finalize(self, _terminate, process)

    @classmethod
    def start(cls, backend: RcloneBackend) -> _Daemon:
        """Start ``rclone rcd`` on a free port of 127.0.0.1 and wait until it serves."""
        user, password = "pannier", secrets.token_urlsafe(24)
        env = dict(os.environ, RCLONE_RC_USER=user, RCLONE_RC_PASS=password)
        if backend.config is not None:
            env["RCLONE_CONFIG"] = os.path.expanduser(backend.config)
        argv = [
            backend.program,
            "rcd",
            "--rc-addr",
            "127.0.0.1:0",
            "--rc-serve",
            "--log-level",
            "NOTICE",
            "--low-level-retries",
            str(max(1, backend.low_level_retries)),
        ]
        where = backend.display_name
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                start_new_session=True,
            )
        except OSError as e:
            raise PermanentBackendError(
                f"cannot start {backend.program}: {e.strerror or e}", backend=where
            ) from None
        lines: queue.Queue[str | None] = queue.Queue()
        log: deque[str] = deque(maxlen=20)
        threading.Thread(
            target=_drain, args=(process, lines, log), name="rclone-rcd-log", daemon=True
        ).start()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                _terminate(process)
                raise TransientBackendError(
                    f"rclone rcd did not start serving within {START_TIMEOUT:.0f}s",
                    backend=where,
                ) from None
            if line is None:
                process.wait()
                raise TransientBackendError(
                    f"rclone rcd exited with status {process.returncode}: "
                    f"{' / '.join(log) or 'no output'}",
                    backend=where,
                )
            m = _SERVING_RE.search(line)
            if m:
                return cls(process, m.group(1), (user, password), log)

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def last_words(self) -> str:
        """The last lines rclone logged, for an error message."""
        status = self.process.poll()
        lines = " / ".join(self._log)
        return f"status {status}" + (f": {lines}" if lines else "")

    def stop(self) -> None:
        """Close the session and stop the process (TERM, then KILL after 5 s)."""
        self.session.close()
        self._finalizer()


def _drain(
    process: subprocess.Popen[bytes], lines: queue.Queue[str | None], log: deque[str]
) -> None:
    """Read rclone's log lines (so its pipe never fills), keeping the last ones."""
    assert process.stderr is not None
    for raw in process.stderr:
        line = raw.decode("utf-8", "replace").rstrip()
        log.append(line)
        lines.put(line)
    lines.put(None)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    with suppress(OSError):  # a stopped process handles TERM only once continued
        process.send_signal(signal.SIGCONT)
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class _Multipart:
    """A streaming ``multipart/form-data`` body whose one file part is ``source``, read
    once. With a known size it has a length (sent with Content-Length), else it is sent
    chunked."""

    def __init__(self, source: UploadBody, filename: str) -> None:
        boundary = "pannier-" + secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={boundary}"
        self._head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode("ascii")
        self._tail = f"\r\n--{boundary}--\r\n".encode("ascii")
        self._source = source
        self._pieces: Iterator[bytes] | None = None
        self._piece = b""
        self._pos = 0
        if source.size is not None:
            self.len = len(self._head) + source.size + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        yield from self._source
        yield self._tail

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes of head, file and tail in turn (how http.client sends)."""
        if self._pieces is None:
            self._pieces = iter(self)
        want = CHUNK_SIZE if n is None or n < 0 else n
        while True:
            if self._pos < len(self._piece):
                out = self._piece[self._pos : self._pos + want]
                self._pos += len(out)
                return out
            piece = next(self._pieces, None)
            if piece is None:
                return b""
            self._piece, self._pos = piece, 0


def _remote_spec(url: BackendURL) -> str:
    """``REMOTE:PATH`` from ``rclone://REMOTE:PATH?...`` (taken from the raw URL, since a
    remote is not a host name)."""
    raw = url.raw
    start = raw.lower().find("rclone://")
    spec = unquote(raw[start + len("rclone://") :].partition("?")[0]) if start >= 0 else ""
    if ":" not in spec:
        raise ConfigError(
            f"{url.redacted}: name an rclone remote and path, e.g. rclone://myremote:backups "
            "or rclone://:local:/srv/backups"
        )
    return spec


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def get_plugin_class() -> type[RcloneBackend]:
    """The backend class of this plugin module."""
    return RcloneBackend
