"""``sftp://``: a folder on an SSH server, through paramiko.

URL: ``sftp://[user[:password]@]host[:port]/path[?option=value...]``. As in duplicity, the
path is relative to the login directory (``sftp://host/backups`` is ``~/backups``); a
double slash makes it absolute (``sftp://host//srv/backups`` is ``/srv/backups``).

Security: the server's host key must be in a known_hosts file (``~/.ssh/known_hosts`` by
default); an unknown host or a key that does not match is a permanent error, never a
prompt. Authentication uses a private key file or a password, both best given through the
environment or a file rather than on the command line.

Options (URL query, explicit options, then the environment variable in brackets):

* ``known-hosts`` [``PANNIER_SFTP_KNOWN_HOSTS``]: the known_hosts file to check the host key
  against (default ``~/.ssh/known_hosts``);
* ``key-file`` [``PANNIER_SFTP_KEY_FILE``]: the private key to log in with;
* ``key-passphrase`` [``PANNIER_SFTP_KEY_PASSPHRASE``, or a file named by
  ``PANNIER_SFTP_KEY_PASSPHRASE_FILE``]: the key's passphrase;
* ``password`` [the URL's password, ``PANNIER_SFTP_PASSWORD``, or a file named by
  ``PANNIER_SFTP_PASSWORD_FILE``]: a login password;
* ``timeout`` [``PANNIER_SFTP_TIMEOUT``]: seconds to wait for the network (default 30).

With neither a key file nor a password, the SSH agent and the default keys in ``~/.ssh``
are tried. A put writes a temporary name in the same folder and renames it over the final
name with the ``posix-rename@openssh.com`` extension, so a failed put never leaves a
visible partial object (servers without that extension get a remove-then-rename). A put
killed midway leaves its temporary name behind; ``clean_temporaries(older_than)`` removes
those the server last wrote more than ``older_than`` seconds ago, by the server's clock
(``pannier prune`` calls it).

Speed: the client offers AES-GCM first (``aes128-gcm@openssh.com``, then
``aes256-gcm@openssh.com``), then paramiko's default order (AES-CTR with HMAC-SHA2); the
server's policy still decides, since only algorithms both sides allow can be chosen, and
nothing paramiko disables is enabled. Downloads read ahead over a 16 MiB channel window
whose receive buffer drops consumed bytes in constant time.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import posixpath
import re
import secrets
import socket
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import IO, TYPE_CHECKING, Any, cast

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
)

if TYPE_CHECKING:
    import paramiko
else:
    paramiko = lazy_import(
        "paramiko", "the sftp backend needs paramiko: pip install 'pannier[sftp]'"
    )


# paramiko logs every failed handshake with a traceback from its transport thread; with
# no handler configured Python would print that on stderr under pannier's one-line error.
# A NullHandler is what a library should install (records still reach configured
# handlers through propagation).
if not any(isinstance(h, logging.NullHandler) for h in logging.getLogger("paramiko").handlers):
    logging.getLogger("paramiko").addHandler(logging.NullHandler())

#: Prefix of the temporary names a put writes before renaming; never a valid remote name,
#: so listings skip them and they cannot clash with an object.
TEMP_PREFIX = ".pannier-tmp-"
#: Bytes read from the source or written to the destination per call.
CHUNK_SIZE = 1 << 20
#: SSH channel window: large enough to keep pipelined SFTP requests flowing.
WINDOW_SIZE = 16 << 20
#: Ciphers offered before paramiko's default order: AES-GCM needs no separate MAC and
#: measured 20 to 30 % less client CPU per byte than AES-CTR with HMAC-SHA2.
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
#: Bytes read per call from a prefetching download: paramiko's request size, which
#: measured about twice as fast as larger reads out of its prefetch buffers.
READ_SIZE = 32768

_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
    }
)


class SFTPBackend(Backend):
    """A folder on an SSH server, reached over SFTP with paramiko.

    Put is atomic (temporary name, then posix-rename); get of a missing name raises
    FileMissingError; a missing folder raises FolderMissingError and ``create_folder``
    creates it with its parents (mode 0700); an unknown or mismatching host key, a wrong
    password or key raise PermanentBackendError; a dropped connection raises
    TransientBackendError and is re-opened by ``_retry_cleanup``.
    """

    plugin_api_version = PLUGIN_API_VERSION
    schemes = ("sftp",)
    description = "an SSH server over SFTP (paramiko)"
    # OpenSSH's sftp-server answers a directory read with at most 100 names per page.
    capabilities = BackendCapabilities(
        atomic_put=True,
        ranged_get=True,
        rename=True,
        page_size=100,
        streaming=True,
    )

    def __init__(self, url: BackendURL) -> None:
        self.url = url
        self.host = url.require_host()
        self.port = url.port or 22
        self.user = url.user or os.environ.get("PANNIER_SFTP_USER") or _login_name()
        self.password = url.secret(
            "password", env="PANNIER_SFTP_PASSWORD", file_env="PANNIER_SFTP_PASSWORD_FILE"
        )
        self.key_file = url.option("key-file", env="PANNIER_SFTP_KEY_FILE")
        self.key_passphrase = url.secret(
            "key-passphrase",
            env="PANNIER_SFTP_KEY_PASSPHRASE",
            file_env="PANNIER_SFTP_KEY_PASSPHRASE_FILE",
        )
        self.known_hosts = os.path.expanduser(
            url.option("known-hosts", "~/.ssh/known_hosts", env="PANNIER_SFTP_KNOWN_HOSTS")
            or "~/.ssh/known_hosts"
        )
        self.timeout = url.float_option("timeout", 30.0, env="PANNIER_SFTP_TIMEOUT")
        if self.key_file is not None:
            self.key_file = os.path.expanduser(self.key_file)
            if not os.path.isfile(self.key_file):
                raise ConfigError(f"{url.redacted}: key file {self.key_file!r} does not exist")
        # Relative to the login directory; a double slash makes it absolute.
        path = url.path[1:] if url.path.startswith("/") else url.path
        self.root = path.rstrip("/") or ("/" if path.startswith("/") else ".")
        self._client: paramiko.SSHClient | None = None
        self._sftp: paramiko.SFTPClient | None = None

    # --- required primitives ------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        """Upload a local file to a temporary name, then rename it over the final name."""
        with open(source_path, "rb") as f:
            self._put_stream(f, remote_filename, os.fstat(f.fileno()).st_size)

    def _get(self, remote_filename: str, local_path: str) -> None:
        """Download an object to a local file; FileMissingError when it does not exist (and
        then no local file is created)."""
        with self._errors("get", remote_filename):
            sftp = self._connection()
            try:
                remote = sftp.open(self._path(remote_filename), "rb")
            except FileNotFoundError:
                raise self._missing(remote_filename) from None
            with remote, self._open_local(local_path, remote_filename) as local:
                self._copy_down(remote, local)

    def _list(self) -> Iterator[ListEntry]:
        """Every regular file in the folder with its size, read page by page; temporary
        names of unfinished puts and sub-folders are skipped. FolderMissingError when the
        folder does not exist."""
        with self._errors("list", None):
            sftp = self._connection()
            try:
                entries = sftp.listdir_iter(self.root)
                for attr in entries:
                    name = attr.filename
                    if name.startswith(TEMP_PREFIX) or not stat.S_ISREG(attr.st_mode or 0):
                        continue
                    yield ListEntry(name, int(attr.st_size or 0))
            except FileNotFoundError:
                raise self._folder_missing() from None

    def _delete(self, filename: str) -> None:
        """Remove an object; a missing one is not an error."""
        with self._errors("delete", filename), suppress(FileNotFoundError):
            self._connection().remove(self._path(filename))

    # --- optional primitives ------------------------------------------------------------

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        """Write what ``fileobj`` yields (read once) to a temporary name with pipelined
        writes, then posix-rename it over ``remote_filename``. A source that gives fewer
        or more bytes than ``size`` raises PermanentBackendError, one whose read fails
        TransientBackendError (the connection is kept); on any failure the temporary file
        is removed and the object is left as it was. FolderMissingError when the folder
        does not exist."""
        body = UploadBody(fileobj, size, label=f"put {remote_filename}", backend=self.display_name)
        with self._errors("put", remote_filename):
            sftp = self._connection()
            temp = self._path(TEMP_PREFIX + secrets.token_hex(8))
            try:
                remote = sftp.open(temp, "wb")
            except FileNotFoundError:
                raise self._folder_missing() from None
            try:
                with remote:
                    remote.set_pipelined(True)
                    while chunk := body.read(CHUNK_SIZE):
                        remote.write(chunk)
                self._replace(sftp, temp, self._path(remote_filename))
            except BaseException:
                self._remove_quietly(temp)
                raise

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        """Write an object to ``fileobj`` with read-ahead; FileMissingError when missing."""
        with self._errors("get", remote_filename):
            try:
                remote = self._connection().open(self._path(remote_filename), "rb")
            except FileNotFoundError:
                raise self._missing(remote_filename) from None
            with remote:
                self._copy_down(remote, fileobj)

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        """Read ``length`` bytes at ``offset`` (fewer at the end of the object)."""
        with self._errors("get range of", remote_filename):
            try:
                remote = self._connection().open(self._path(remote_filename), "rb")
            except FileNotFoundError:
                raise self._missing(remote_filename) from None
            with remote:
                size = int(remote.stat().st_size or 0)
                length = max(0, min(length, size - offset))
                if length == 0:
                    return b""
                return b"".join(remote.readv([(offset, length)]))

    def _query(self, filename: str) -> dict[str, int]:
        """``{"size": n}`` from one stat, -1 when the name is missing."""
        with self._errors("query", filename):
            try:
                attr = self._connection().stat(self._path(filename))
            except FileNotFoundError:
                return {"size": -1}
            return {"size": int(attr.st_size or 0)}

    def _query_list(self, filename_list: list[str]) -> dict[str, dict[str, int]]:
        """One stat per name over the open connection."""
        return {name: self._query(name) for name in filename_list}

    def _move(self, source_filename: str, remote_filename: str) -> None:
        """Rename an object, replacing the target; FileMissingError when the source is
        missing."""
        with self._errors("move", source_filename):
            sftp = self._connection()
            try:
                sftp.stat(self._path(source_filename))
            except FileNotFoundError:
                raise self._missing(source_filename) from None
            self._replace(sftp, self._path(source_filename), self._path(remote_filename))

    # --- the folder ---------------------------------------------------------------------

    def _test(self) -> None:
        """Connect, log in and check that the folder exists and is a directory."""
        with self._errors("test", None):
            try:
                attr = self._connection().stat(self.root)
            except FileNotFoundError:
                raise self._folder_missing() from None
            if not stat.S_ISDIR(attr.st_mode or 0):
                raise PermanentBackendError(
                    f"{self.root} is not a directory", backend=self.display_name
                )

    def _create_folder(self) -> None:
        """Create the folder and any missing parent (mode 0700); an existing one is kept."""
        with self._errors("create folder", None):
            sftp = self._connection()
            parts = self.root.split("/")
            for i in range(1, len(parts) + 1):
                path = "/".join(parts[:i])
                if path in ("", ".", ".."):
                    continue
                try:
                    attr = sftp.stat(path)
                except FileNotFoundError:
                    sftp.mkdir(path, 0o700)
                    continue
                if not stat.S_ISDIR(attr.st_mode or 0):
                    raise PermanentBackendError(
                        f"{path} exists and is not a directory", backend=self.display_name
                    )

    # --- errors and clean-up ------------------------------------------------------------

    def _retry_cleanup(self) -> None:
        """Drop the connection; the next operation opens a new one."""
        self._disconnect()

    def _error_code(self, operation: str, e: Exception) -> BackendError | None:
        """Classify a paramiko or socket exception: authentication failures, host-key
        problems and permission errors are permanent; dropped connections, timeouts and
        SSH protocol errors are transient."""
        where = self.display_name
        if isinstance(e, BackendError):
            return e
        if isinstance(e, paramiko.BadHostKeyException):
            return PermanentBackendError(
                f"host key mismatch for {self._host_id()}: the server presented "
                f"{e.key.get_name()} {e.key.fingerprint} but {self.known_hosts} has "
                f"{e.expected_key.fingerprint}; if the server's key really changed, update "
                "known_hosts (possible man-in-the-middle attack)",
                backend=where,
            )
        if isinstance(e, _UnknownHostKey):
            return PermanentBackendError(str(e), backend=where)
        if isinstance(e, paramiko.PasswordRequiredException):
            return PermanentBackendError(
                f"key file {self.key_file} is encrypted: give its passphrase (key-passphrase, "
                "PANNIER_SFTP_KEY_PASSPHRASE or PANNIER_SFTP_KEY_PASSPHRASE_FILE)",
                backend=where,
            )
        if self.key_file and _is_key_load_error(e):
            return PermanentBackendError(
                f"cannot use key file {self.key_file} ({_one_line(e)}): a wrong passphrase, "
                "or not a private key",
                backend=where,
            )
        if isinstance(e, paramiko.AuthenticationException):
            how = (
                f"key file {self.key_file}"
                if self.key_file
                else "password"
                if self.password
                else "SSH agent and default keys"
            )
            return PermanentBackendError(
                f"authentication failed for user {self.user!r} with {how}: {_one_line(e)}",
                backend=where,
            )
        if isinstance(e, paramiko.SSHException) and "no authentication methods" in str(e).lower():
            return PermanentBackendError(
                f"no way to log in as {self.user!r}: give a key file (key-file, "
                "PANNIER_SFTP_KEY_FILE) or a password (PANNIER_SFTP_PASSWORD or "
                "PANNIER_SFTP_PASSWORD_FILE)",
                backend=where,
            )
        if isinstance(e, PermissionError):
            return PermanentBackendError(
                f"{operation}: permission denied: {_one_line(e)}", backend=where
            )
        if isinstance(e, (socket.timeout, TimeoutError)):
            return TransientBackendError(f"{operation}: timed out: {_one_line(e)}", backend=where)
        if isinstance(e, OSError) and (
            e.errno in _NETWORK_ERRNOS
            or isinstance(e, (ConnectionError, socket.gaierror, _no_valid_connections()))
        ):
            detail = _one_line(e).replace("[Errno None] ", "")
            return TransientBackendError(
                f"{operation}: cannot reach {self._host_id()}: {detail}", backend=where
            )
        if isinstance(e, paramiko.SSHException) and _HANDSHAKE_FAILURES.search(str(e)):
            return TransientBackendError(
                f"{operation}: {self._host_id()} did not complete the SSH handshake "
                f"within {self.timeout:g}s ({_one_line(e)})",
                backend=where,
            )
        if isinstance(e, (paramiko.SSHException, EOFError, OSError)):
            return TransientBackendError(f"{operation}: {_one_line(e)}", backend=where)
        return None

    def _close(self) -> None:
        """Close the SFTP session and the SSH connection."""
        self._disconnect()

    def _clean_temporaries(self, older_than: float) -> list[str]:
        """Remove the temporary names of interrupted puts whose last write is more than
        ``older_than`` seconds old, measured by the server's clock (the modification time
        of a probe file made for the purpose), so a skewed local clock cannot make a
        fresh temporary look old; return the names removed. A missing folder has none."""
        with self._errors("clean temporaries", None):
            sftp = self._connection()
            try:
                temporaries = [
                    (a.filename, int(a.st_mtime or 0))
                    for a in sftp.listdir_iter(self.root)
                    if a.filename.startswith(TEMP_PREFIX) and stat.S_ISREG(a.st_mode or 0)
                ]
            except FileNotFoundError:
                return []
            if not temporaries:
                return []
            probe = self._path(TEMP_PREFIX + "clock-" + secrets.token_hex(8))
            try:
                sftp.open(probe, "wb").close()
                now = int(sftp.stat(probe).st_mtime or 0)
            finally:
                self._remove_quietly(probe)
            removed = []
            for name, mtime in temporaries:
                if now - mtime > older_than:
                    with suppress(FileNotFoundError):  # finished or removed meanwhile
                        sftp.remove(self._path(name))
                        removed.append(name)
            return removed

    # --- helpers ------------------------------------------------------------------------

    def _connection(self) -> paramiko.SFTPClient:
        """The open SFTP session, connecting (and checking the host key) when needed."""
        if self._sftp is not None and self._client is not None:
            transport = self._client.get_transport()
            if transport is not None and transport.is_active():
                return self._sftp
            self._disconnect()
        client = paramiko.SSHClient()
        try:
            self._load_known_hosts(client)
            client.set_missing_host_key_policy(
                cast("paramiko.MissingHostKeyPolicy", _RejectUnknown(self))
            )
            use_defaults = self.key_file is None and self.password is None
            client.connect(
                self.host,
                port=self.port,
                username=self.user,
                password=self.password,
                key_filename=self.key_file,
                passphrase=self.key_passphrase,
                timeout=self.timeout,
                banner_timeout=self.timeout,
                auth_timeout=self.timeout,
                channel_timeout=self.timeout,
                allow_agent=use_defaults,
                look_for_keys=use_defaults,
                transport_factory=_transport,
            )
            transport = client.get_transport()
            assert transport is not None
            transport.set_keepalive(30)
            sftp = _open_sftp(transport, self.timeout)
        except BaseException:
            client.close()
            raise
        self._client, self._sftp = client, sftp
        return sftp

    def _load_known_hosts(self, client: paramiko.SSHClient) -> None:
        if not os.path.exists(self.known_hosts):
            raise PermanentBackendError(
                f"known_hosts file {self.known_hosts} does not exist, so the host key of "
                f"{self._host_id()} cannot be checked (add it with: ssh-keyscan "
                f"-p {self.port} {self.host} >> {self.known_hosts})",
                backend=self.display_name,
            )
        try:
            client.load_host_keys(self.known_hosts)
        except (OSError, paramiko.SSHException) as e:
            raise ConfigError(
                f"{self.display_name}: cannot read known_hosts file {self.known_hosts}: "
                f"{_one_line(e)}"
            ) from None

    def _disconnect(self) -> None:
        sftp, client = self._sftp, self._client
        self._sftp = self._client = None
        for thing in (sftp, client):
            if thing is not None:
                with suppress(Exception):  # closing a broken connection may fail
                    thing.close()

    @contextmanager
    def _errors(self, operation: str, name: str | None) -> Iterator[None]:
        """Turn every foreign exception raised inside into a classified BackendError."""
        label = f"{operation} {name}" if name else operation
        try:
            yield
        except BackendError:
            raise
        except ConfigError:
            raise
        except Exception as e:
            mapped = self._error_code(label, e)
            if mapped is None:
                mapped = TransientBackendError(
                    f"{label}: {type(e).__name__}: {_one_line(e)}", backend=self.display_name
                )
            if not mapped.retryable or isinstance(e, (paramiko.SSHException, EOFError, OSError)):
                # A connection that failed this way is not worth reusing.
                self._disconnect()
            raise mapped from e

    def _replace(self, sftp: paramiko.SFTPClient, source: str, target: str) -> None:
        """Rename ``source`` over ``target`` atomically (posix-rename); without the
        extension, remove the target first."""
        try:
            sftp.posix_rename(source, target)
        except OSError as e:
            if isinstance(e, FileNotFoundError) or "unsupported" not in str(e).lower():
                raise
            with suppress(FileNotFoundError):
                sftp.remove(target)
            sftp.rename(source, target)

    def _remove_quietly(self, path: str) -> None:
        if self._sftp is None:
            return
        with suppress(Exception):  # best effort: a leftover temp name is never listed
            self._sftp.remove(path)

    def _copy_down(self, remote: paramiko.SFTPFile, fileobj: IO[bytes]) -> None:
        size = int(remote.stat().st_size or 0)
        remote.prefetch(size)
        while True:
            chunk = remote.read(READ_SIZE)
            if not chunk:
                break
            fileobj.write(chunk)

    def _open_local(self, local_path: str, name: str) -> IO[bytes]:
        try:
            return open(local_path, "wb")
        except OSError as e:
            raise PermanentBackendError(
                f"get {name}: cannot write {local_path}: {e.strerror or e}",
                backend=self.display_name,
            ) from None

    def _path(self, name: str) -> str:
        return posixpath.join(self.root, name)

    def _host_id(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def _missing(self, name: str) -> FileMissingError:
        return FileMissingError(f"{name} does not exist", backend=self.display_name)

    def _folder_missing(self) -> FolderMissingError:
        return FolderMissingError(
            f"folder {self.root} does not exist on {self._host_id()} (create it with "
            "create_folder / `pannier backend mkdir`)",
            backend=self.display_name,
        )


#: paramiko's words for a server that accepted the connection but never spoke SSH.
_HANDSHAKE_FAILURES = re.compile(r"no existing session|protocol banner|negotiation failed", re.I)


def _transport(sock: Any, /, **arguments: Any) -> paramiko.Transport:
    """A paramiko Transport offering :data:`PREFERRED_CIPHERS` first (those it enables),
    then the rest of its own order; nothing else changes (``SSHClient``'s factory, given
    the same arguments as paramiko's own).

    The socket gets ``TCP_NODELAY``: without it, the small SFTP requests that open, stat
    and close each object waited on Nagle's algorithm and the server's delayed ACKs, and a
    1 MiB get on a local server took about 22 ms instead of 5 (measured, 32 objects)."""
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        with suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(sock, **arguments)
    options = transport.get_security_options()
    offered = tuple(options.ciphers)
    first = tuple(c for c in PREFERRED_CIPHERS if c in offered)
    options.ciphers = first + tuple(c for c in offered if c not in first)
    return transport


def _open_sftp(transport: paramiko.Transport, timeout: float) -> paramiko.SFTPClient:
    """An SFTP session on a new channel with a :data:`WINDOW_SIZE` window, whose receive
    buffer is a ``_ReceiveBuffer`` (what ``SFTPClient.from_transport`` does, plus the
    buffer, set before any data can arrive)."""
    channel = transport.open_session(window_size=WINDOW_SIZE)
    try:
        receive_buffer = _receive_buffer_class()
        if receive_buffer is not None:
            channel.in_buffer = receive_buffer()
        channel.invoke_subsystem("sftp")
        channel.settimeout(timeout)
        return paramiko.SFTPClient(channel)
    except BaseException:
        channel.close()
        raise


@functools.cache
def _receive_buffer_class() -> type[Any] | None:
    """:class:`_ReceiveBuffer` (made on first use: it subclasses a paramiko class, and the
    plugin must not import paramiko when it is only listed), or None when the installed
    paramiko's pipe lacks the two hooks it replaces (then paramiko's own buffer is kept:
    slower, never wrong)."""
    base = paramiko.buffered_pipe.BufferedPipe
    if not all(hasattr(base, hook) for hook in ("_buffer_frombytes", "_buffer_tobytes")):
        return None

    class _ReceiveBuffer(base):  # type: ignore[valid-type,misc]
        """paramiko's channel receive buffer over a ``bytearray`` instead of an ``array``.

        The SFTP client reads each reply in small pieces (its length, then its body) from
        the front of this buffer, which holds up to a channel window of data ahead.
        Deleting from the front of an ``array`` moves every byte behind, so a download
        spent most of its time moving memory, more the larger the window; a ``bytearray``
        drops its front in constant time. Only the two storage hooks change."""

        def __init__(self) -> None:
            super().__init__()
            self._buffer = bytearray()

        def _buffer_frombytes(self, data: bytes) -> None:
            self._buffer += data

        def _buffer_tobytes(self, limit: int | None = None) -> bytes:
            with memoryview(self._buffer) as view:
                return bytes(view[:limit])

    return _ReceiveBuffer


def _no_valid_connections() -> type[Exception]:
    """paramiko's error for a host none of whose addresses accepted the connection."""
    return paramiko.ssh_exception.NoValidConnectionsError


class _UnknownHostKey(Exception):
    """The server's host key is not in known_hosts. (Not a paramiko class: defining one
    here would import paramiko whenever the plugin is listed.)"""


class _RejectUnknown:
    """Refuse a host that is not in known_hosts, with a message saying how to add it.

    A paramiko host-key policy (paramiko only calls :meth:`missing_host_key`)."""

    def __init__(self, backend: SFTPBackend) -> None:
        self.backend = backend

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: Any) -> None:
        b = self.backend
        raise _UnknownHostKey(
            f"host key of {hostname} ({key.get_name()} {key.fingerprint}) is not in "
            f"{b.known_hosts}; check it and add it (ssh-keyscan -p {b.port} {b.host} "
            f">> {b.known_hosts}) or name another file with ?known-hosts=FILE"
        )


def _is_key_load_error(e: Exception) -> bool:
    """Whether ``e`` is paramiko or cryptography failing to read a private key file."""
    text = str(e).lower()
    if isinstance(e, ValueError):
        return True
    return isinstance(e, paramiko.SSHException) and any(
        words in text for words in ("invalid key", "not a valid", "unable to", "deserialize")
    )


def _login_name() -> str:
    import getpass

    return getpass.getuser()


def _one_line(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return " ".join(text.split())


def get_plugin_class() -> type[SFTPBackend]:
    """The backend class of this plugin module."""
    return SFTPBackend
