"""container_keys: a Swift proxy filter that grants access to one container by a key.

This re-creates, for pannier's test server, the behaviour of the "swift container keys"
middleware some providers ran (it is not part of upstream Swift), so the ``swiftkeys://``
backend is tested against a real Swift proxy where only the key check is ours:

* A request without ``X-Auth-Token`` that carries ``X-Container-Meta-Full-Key`` is checked
  against the container's metadata ``Full-Key``, ``Full-Key-2`` and ``Full-Key-3`` (set by
  the owner with ``swift post -m Full-Key:SECRET CONTAINER``). A match grants every object
  operation in that container, and GET/HEAD of the container itself (listing, stat).
* ``X-Container-Meta-Read-Key`` is checked the same way against ``Read-Key``,
  ``Read-Key-2`` and ``Read-Key-3`` and grants GET and HEAD only.
* A key that matches none of the container's keys, or a container that does not exist,
  gets ``401 Auth Key invalid``. The comparison is constant-time.
* A request carrying ``X-Auth-Token`` (or ``X-Storage-Token``) goes to the normal auth
  middleware untouched: that is how the owner sets the keys.
* The grant is scoped: sub-requests (server-side copy) outside the container are refused,
  and the key metadata is removed from responses to key-authorized requests, so a read key
  never reveals the full key.

Load it in the proxy pipeline after ``s3api`` and before ``tempauth``::

    [filter:container_keys]
    paste.filter_factory = container_keys:filter_factory

It runs inside Swift's own Python, not pannier's.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable
from typing import Any

from swift.common.swob import HTTPForbidden, HTTPUnauthorized, Request
from swift.common.utils import get_logger, split_path
from swift.proxy.controllers.base import get_container_info

#: WSGI environ keys of the two request headers.
FULL_KEY_ENV = "HTTP_X_CONTAINER_META_FULL_KEY"
READ_KEY_ENV = "HTTP_X_CONTAINER_META_READ_KEY"

#: Container metadata names holding the keys of each kind (lower case, as Swift reports).
FULL_KEY_META = ("full-key", "full-key-2", "full-key-3")
READ_KEY_META = ("read-key", "read-key-2", "read-key-3")

#: Methods a key may use: on objects, and on the container itself.
FULL_OBJECT_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE", "COPY"})
READ_METHODS = frozenset({"GET", "HEAD"})
CONTAINER_METHODS = frozenset({"GET", "HEAD"})

_KEY_HEADER_RE = re.compile(r"^x-container-meta-(full|read)-key(-[23])?$", re.IGNORECASE)

StartResponse = Callable[..., Any]


def _to_bytes(value: str) -> bytes:
    """A WSGI string (or a native one) as bytes, for comparison."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")


def key_matches(given: str, stored: Iterable[str]) -> bool:
    """Whether ``given`` equals one of the non-empty ``stored`` keys; every candidate is
    compared in constant time, whatever matches first."""
    given_b = _to_bytes(given)
    matched = False
    for candidate in stored:
        if candidate:
            matched |= hmac.compare_digest(given_b, _to_bytes(candidate))
    return matched and bool(given_b)


def scoped_authorize(account: str, container: str, methods: frozenset[str]) -> Callable[..., Any]:
    """An authorize callback allowing ``methods`` on objects of one container only, and
    GET/HEAD on the container itself."""

    def authorize(req: Request) -> Any:
        try:
            _ver, acc, con, obj = split_path(req.path, 3, 4, True)
        except ValueError:
            return HTTPUnauthorized(request=req)
        if acc != account or con != container:
            return HTTPUnauthorized(request=req)
        allowed = methods if obj else (CONTAINER_METHODS & methods)
        if req.method not in allowed:
            return HTTPForbidden(request=req)
        return None

    return authorize


class ContainerKeys:
    """The WSGI filter; see the module docstring for its rules."""

    def __init__(self, app: Any, conf: dict[str, str]) -> None:
        self.app = app
        self.logger = get_logger(conf, log_route="container_keys")

    def __call__(self, env: dict[str, Any], start_response: StartResponse) -> Any:
        full_key = env.get(FULL_KEY_ENV)
        read_key = env.get(READ_KEY_ENV)
        if full_key is None and read_key is None:
            return self.app(env, start_response)
        if env.get("HTTP_X_AUTH_TOKEN") or env.get("HTTP_X_STORAGE_TOKEN"):
            return self.app(env, start_response)
        try:
            _ver, account, container, _obj = split_path(env.get("PATH_INFO", ""), 3, 4, True)
        except ValueError:
            return self._invalid(env, start_response)
        meta = get_container_info(env, self.app, swift_source="CK").get("meta", {})
        if full_key is not None and key_matches(full_key, (meta.get(m, "") for m in FULL_KEY_META)):
            methods = FULL_OBJECT_METHODS
        elif read_key is not None and key_matches(
            read_key, (meta.get(m, "") for m in READ_KEY_META)
        ):
            methods = READ_METHODS
        else:
            return self._invalid(env, start_response)
        env.pop(FULL_KEY_ENV, None)
        env.pop(READ_KEY_ENV, None)
        env["swift.authorize"] = scoped_authorize(account, container, methods)
        env["swift.authorize_override"] = True
        env["REMOTE_USER"] = ".wsgi.container_keys"

        def hide_keys(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(h, v) for h, v in headers if not _KEY_HEADER_RE.match(h)]
            return start_response(status, kept, exc_info)

        return self.app(env, hide_keys)

    def _invalid(self, env: dict[str, Any], start_response: StartResponse) -> Any:
        self.logger.info(
            "container key refused for %s %s", env.get("REQUEST_METHOD"), env.get("PATH_INFO")
        )
        env.pop(FULL_KEY_ENV, None)
        env.pop(READ_KEY_ENV, None)
        return HTTPUnauthorized(body=b"Auth Key invalid", request=Request(env))(env, start_response)


def filter_factory(global_conf: dict[str, str], **local_conf: str) -> Callable[[Any], Any]:
    """The paste.deploy entry point named in the proxy's pipeline configuration."""
    conf = dict(global_conf)
    conf.update(local_conf)

    def make_filter(app: Any) -> ContainerKeys:
        return ContainerKeys(app, conf)

    return make_filter
