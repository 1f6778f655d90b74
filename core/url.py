"""Backend URLs: ``scheme://user:pass@host:port/path?option=value``, parsed once.

A backend receives a :class:`BackendURL` and reads its settings through it, so every
backend resolves options the same way:

* an option given in the URL query wins over one given explicitly (on the command line,
  or as a keyword of :func:`~pannier.get_backend`), which wins over an environment
  variable, which wins over the default;
* option names are case-insensitive and ``_`` equals ``-`` (``bwlimit_up`` is
  ``bwlimit-up``);
* enum values are case-insensitive, and there is one bool parser (:func:`parse_bool`);
* secrets come from the URL, an environment variable, or a file named by an environment
  variable (:meth:`BackendURL.secret`), so they need not appear in ``argv``;
* every message shows :attr:`BackendURL.redacted`, never the password.

Prefix URLs such as ``faulty+multi+file:///x`` keep the innermost scheme in
:attr:`~BackendURL.scheme`, the prefixes in :attr:`~BackendURL.prefixes`, and the URL after
the first ``prefix+`` in :attr:`~BackendURL.inner`. The query belongs to the whole URL, so
every level sees it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TypeVar
from urllib.parse import parse_qsl, unquote

import attrs

from .errors import ConfigError

__all__ = [
    "BackendURL",
    "is_secret_option",
    "parse_bool",
    "parse_size",
    "parse_url",
    "redact",
]

_T = TypeVar("_T")

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9.\-]*(?:\+[A-Za-z][A-Za-z0-9.\-]*)*)://(.*)$", re.S)
_TRUE = frozenset({"1", "on", "true", "yes"})
_FALSE = frozenset({"0", "off", "false", "no"})
_SECRET_WORDS = ("pass", "secret", "token", "signature", "credential")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.I)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
#: Placeholder that replaces every secret in printed text.
REDACTED = "***"


def normalize_option_name(name: str) -> str:
    """An option name in its canonical form: lower case, ``-`` for ``_``."""
    return name.strip().lower().replace("_", "-")


def is_secret_option(name: str) -> bool:
    """Whether the value of query option ``name`` is a secret that messages must hide
    (names containing pass, secret, token, signature or credential, and ``key`` or names
    ending in ``-key``)."""
    n = normalize_option_name(name)
    if n.endswith("-file"):
        return False
    return any(word in n for word in _SECRET_WORDS) or n == "key" or n.endswith("-key")


def parse_bool(value: str) -> bool:
    """``True`` for 1/on/true/yes, ``False`` for 0/off/false/no (any case); anything else
    raises ConfigError."""
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ConfigError(f"{value!r} is not a boolean: use one of 1/on/true/yes or 0/off/false/no")


def parse_size(value: str) -> int:
    """A byte count from ``"512"``, ``"64k"``, ``"1M"``, ``"1.5MiB"``, ``"2G"`` (binary
    units, any case); anything else raises ConfigError."""
    m = _SIZE_RE.match(value)
    if not m:
        raise ConfigError(f"{value!r} is not a size: use a number with an optional K, M, G or T")
    return int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])


# The password runs to the last '@' before the path (parse_url reads the userinfo up to
# the last '@' too), so one holding a space or an '@' is redacted whole.
_USERINFO_RE = re.compile(r"(?P<pre>[A-Za-z][A-Za-z0-9+.\-]*://[^/:\n]*:)(?P<pw>[^/\n]*)@")
_QUERY_SECRET_RE = re.compile(r"(?P<pre>[?&;](?P<name>[A-Za-z0-9_.\-]+)=)(?P<value>[^&\s#]*)")


def redact(text: str) -> str:
    """``text`` with the password of every URL in it, and the value of every secret query
    option, replaced by ``***``. Safe on any text: a message, a log line, a URL."""
    text = _USERINFO_RE.sub(lambda m: f"{m.group('pre')}{REDACTED}@", text)
    return _QUERY_SECRET_RE.sub(
        lambda m: (
            f"{m.group('pre')}{REDACTED}" if is_secret_option(m.group("name")) else m.group(0)
        ),
        text,
    )


def _freeze(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@attrs.frozen(repr=False, hash=False)
class BackendURL:
    """A parsed backend URL; immutable. Build one with :func:`parse_url`.

    :ivar scheme: the innermost scheme, lower case (``file`` in ``faulty+file:///x``).
    :ivar prefixes: the prefix schemes in order (``("faulty", "multi")`` for
        ``faulty+multi+file://``); empty for a plain URL.
    :ivar user: the user name, percent-decoded, or None.
    :ivar password: the password, percent-decoded, or None. Never print it.
    :ivar host: the host name, or None.
    :ivar port: the port number, or None.
    :ivar netloc: everything between ``//`` and the path, without user and password (for
        schemes such as ``rclone://remote:path`` whose "host" is not a host).
    :ivar path: the path, percent-decoded (``/srv/backup`` in ``file:///srv/backup``).
    :ivar query: the query options, names normalized (see :func:`normalize_option_name`);
        a repeated name keeps its last value (all values: :meth:`all_options`).
    :ivar raw: the URL exactly as given. Never print it; print :attr:`redacted`.
    :ivar inner: for a prefix URL, the URL after the first ``prefix+``; else None.
    :ivar redacted: the URL with the password and secret query values replaced by ``***``.
    :ivar explicit: options given outside the URL (command line, keywords), which the
        query overrides; set with :meth:`with_options`.
    """

    scheme: str
    prefixes: tuple[str, ...]
    user: str | None
    password: str | None = attrs.field(repr=False)
    host: str | None
    port: int | None
    path: str
    query: Mapping[str, str] = attrs.field(converter=_freeze)
    raw: str = attrs.field(repr=False)
    inner: BackendURL | None = attrs.field(repr=False)
    redacted: str
    netloc: str = ""
    query_items: tuple[tuple[str, str], ...] = attrs.field(default=(), repr=False)
    explicit: Mapping[str, str] = attrs.field(factory=dict, converter=_freeze, repr=False)

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"BackendURL({self.redacted!r})"

    def __hash__(self) -> int:
        return hash((self.raw, tuple(sorted(self.explicit.items()))))

    # --- derived URLs -------------------------------------------------------------------

    @property
    def full_scheme(self) -> str:
        """The scheme with its prefixes, as written: ``faulty+file``."""
        return "+".join((*self.prefixes, self.scheme))

    def with_options(self, options: Mapping[str, object]) -> BackendURL:
        """A copy whose explicit options are ``options`` (merged over the existing ones);
        the query still wins over them. Values are converted with ``str`` (bools as
        ``true``/``false``); None values are dropped. The inner URL gets them too."""
        merged = dict(self.explicit)
        for name, value in options.items():
            if value is None:
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            merged[normalize_option_name(name)] = text
        inner = self.inner.with_options(options) if self.inner is not None else None
        return attrs.evolve(self, explicit=merged, inner=inner)

    # --- options ------------------------------------------------------------------------

    def option(
        self, name: str, default: str | None = None, *, env: str | None = None
    ) -> str | None:
        """The value of option ``name``: from the URL query, else the explicit options,
        else the environment variable ``env`` when given and set, else ``default``."""
        key = normalize_option_name(name)
        if key in self.query:
            return self.query[key]
        if key in self.explicit:
            return self.explicit[key]
        if env is not None and os.environ.get(env) not in (None, ""):
            return os.environ[env]
        return default

    def all_options(self, name: str) -> list[str]:
        """Every value of a query option given more than once (``?mirror=a&mirror=b``),
        in order; the explicit value or an empty list when the query has none."""
        key = normalize_option_name(name)
        values = [v for k, v in self.query_items if k == key]
        if not values and key in self.explicit:
            values = [self.explicit[key]]
        return values

    def _typed(self, name: str, env: str | None, parse: Callable[[str], _T]) -> _T | None:
        value = self.option(name, env=env)
        if value is None:
            return None
        try:
            return parse(value)
        except (ValueError, ConfigError) as e:
            detail = str(e) if isinstance(e, ConfigError) else f"{value!r} is not valid"
            raise ConfigError(f"{self.redacted}: option {name}: {detail}") from None

    def bool_option(self, name: str, default: bool, *, env: str | None = None) -> bool:
        """Option ``name`` as a bool (see :func:`parse_bool`); ConfigError naming the URL
        and the option when it is not one."""
        value = self._typed(name, env, parse_bool)
        return default if value is None else value

    def int_option(self, name: str, default: int, *, env: str | None = None) -> int:
        """Option ``name`` as an integer; ConfigError naming the option otherwise."""
        value = self._typed(name, env, int)
        return default if value is None else value

    def float_option(self, name: str, default: float, *, env: str | None = None) -> float:
        """Option ``name`` as a number (seconds, a rate); ConfigError otherwise."""
        value = self._typed(name, env, float)
        return default if value is None else value

    def size_option(self, name: str, default: int, *, env: str | None = None) -> int:
        """Option ``name`` as a byte count (``64k``, ``1M``; see :func:`parse_size`)."""
        value = self._typed(name, env, parse_size)
        return default if value is None else value

    def enum_option(
        self, name: str, choices: Iterable[str], default: str, *, env: str | None = None
    ) -> str:
        """Option ``name`` as one of ``choices``, matched case-insensitively and returned
        as spelled in ``choices``; ConfigError listing the choices otherwise."""
        options = list(choices)
        value = self.option(name, env=env)
        if value is None:
            return default
        for choice in options:
            if choice.lower() == value.strip().lower():
                return choice
        raise ConfigError(
            f"{self.redacted}: option {name}: {value!r} is not one of {', '.join(options)}"
        )

    def secret(
        self, name: str, *, env: str | None = None, file_env: str | None = None
    ) -> str | None:
        """A secret, from the first place that has it: the query option ``name``; for
        ``name == "password"`` the password in the URL; the explicit options; the
        environment variable ``env``; the file named by the query option ``<name>-file``
        or by the environment variable ``file_env`` (its content, trailing newline
        stripped). None when no place has it. A named file that cannot be read raises
        ConfigError naming the file, never its content."""
        key = normalize_option_name(name)
        if key in self.query:
            return self.query[key]
        if key == "password" and self.password is not None:
            return self.password
        if key in self.explicit:
            return self.explicit[key]
        if env is not None and os.environ.get(env):
            return os.environ[env]
        path, origin = self.option(f"{key}-file"), f"option {key}-file"
        if path is None and file_env is not None and os.environ.get(file_env):
            path, origin = os.environ[file_env], f"environment variable {file_env}"
        if path is None:
            return None
        try:
            with open(os.path.expanduser(path), encoding="utf-8") as f:
                return f.read().rstrip("\r\n")
        except OSError as e:
            raise ConfigError(
                f"{self.redacted}: cannot read the {key} file {path!r} named by {origin}: "
                f"{e.strerror or e}"
            ) from None

    def require_host(self) -> str:
        """The host name; ConfigError naming the URL when it has none or its port is not a
        number. For backends that talk to a server."""
        if not self.host:
            raise ConfigError(f"{self.redacted}: the URL names no host")
        _, _, port = self.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")
        if port and not port.isdigit():
            raise ConfigError(f"{self.redacted}: port {port!r} is not a number")
        return self.host


def _split_netloc(
    netloc: str, redacted: str
) -> tuple[str | None, str | None, str | None, int | None, str]:
    userinfo, at, hostport = netloc.rpartition("@")
    user = password = None
    if at:
        u, colon, p = userinfo.partition(":")
        user = unquote(u)
        password = unquote(p) if colon else None
    host: str | None
    port: int | None = None
    if hostport.startswith("["):  # [::1]:22
        end = hostport.find("]")
        if end < 0:
            raise ConfigError(f"malformed URL {redacted}: unclosed '[' in the host")
        host, rest = hostport[1:end], hostport[end + 1 :]
        if rest.startswith(":") and _is_port(rest[1:]):
            port = int(rest[1:])
            if port > 65535:
                raise ConfigError(f"malformed URL {redacted}: port {port} is out of range")
    else:
        h, colon, p = hostport.partition(":")
        host = h
        if colon and _is_port(p):
            port = int(p)
            if port > 65535:
                raise ConfigError(f"malformed URL {redacted}: port {port} is out of range")
        elif colon:
            # Not a port: a scheme like rclone://remote:path keeps it in netloc only.
            host = h
    return user, password, unquote(host) if host else None, port, hostport


def _is_port(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` accepts ``²``, which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def parse_url(url: str) -> BackendURL:
    """Parse a backend URL. Malformed input (no ``scheme://``, a bad port, a control
    character) raises ConfigError whose message shows the URL redacted."""
    if not isinstance(url, str):
        raise ConfigError(f"a backend URL must be a string, not {type(url).__name__}")
    redacted = redact(url)
    if any(ord(c) < 32 or c == "\x7f" for c in url):
        raise ConfigError(f"malformed URL {redacted!r}: it contains a control character")
    m = _SCHEME_RE.match(url)
    if not m:
        raise ConfigError(
            f"malformed URL {redacted!r}: expected scheme://location, e.g. file:///srv/backup"
        )
    schemes = m.group(1).lower().split("+")
    rest = m.group(2)
    inner: BackendURL | None = None
    if len(schemes) > 1:
        inner = parse_url(url[len(schemes[0]) + 1 :])
    location, _, fragment = rest.partition("#")
    location, _, query_string = location.partition("?")
    if fragment:
        raise ConfigError(f"malformed URL {redacted!r}: a '#' fragment is not allowed")
    netloc, slash, path = location.partition("/")
    path = slash + path
    user, password, host, port, hostport = _split_netloc(netloc, redacted)
    try:
        items = tuple(
            (normalize_option_name(k), v)
            for k, v in parse_qsl(query_string, keep_blank_values=True, strict_parsing=False)
        )
    except ValueError as e:  # pragma: no cover - parse_qsl is lenient without strict
        raise ConfigError(f"malformed URL {redacted!r}: {e}") from None
    return BackendURL(
        scheme=schemes[-1],
        prefixes=tuple(schemes[:-1]),
        user=user,
        password=password,
        host=host,
        port=port,
        path=unquote(path),
        query=dict(items),
        raw=url,
        inner=inner,
        redacted=redacted,
        netloc=hostport,
        query_items=items,
    )
