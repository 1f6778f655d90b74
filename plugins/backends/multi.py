"""multi+ -- write to several backends, read from the first that has the object.

URL: ``multi+PRIMARY?mirror=MIRROR`` where PRIMARY and each MIRROR are backend URLs, e.g.
``multi+file:///srv/a?mirror=sftp://host/b``. Give several mirrors by repeating
``mirror=`` or separating them with commas (a comma inside a mirror URL must then be
written ``%252C``). A mirror URL with its own query must be percent-encoded
(``mirror=file%3A%2F%2F%2Fb%3Ffsync%3Dtrue``).

Behaviour:

* put, delete and move go to the primary, then to every mirror, in order; a failure
  stops and is raised (the object may then exist on some of them);
* get, ranged get and query ask the primary first, then each mirror, and answer from the
  first that has the object; FileMissingError only when none has it;
* list returns the union of the names, each once, with the size from the first backend
  that lists it;
* test and create_folder act on all of them.

Capabilities: those every member has (atomic put, rename, ranged get only when all have
them; local only when all are local; the shortest name limit; the fewest
connections).
"""

from __future__ import annotations

import builtins
import re
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, TypeVar

from pannier import (
    PLUGIN_API_VERSION,
    Backend,
    BackendCapabilities,
    BackendURL,
    ConfigError,
    FileMissingError,
    ListEntry,
    get_backend_object,
)

_T = TypeVar("_T")
_SPLIT = re.compile(r",(?=[A-Za-z][A-Za-z0-9+.\-]*://)")


class MultiBackend(Backend):
    """Mirrors every write over several backends; reads from the first that answers."""

    plugin_api_version = PLUGIN_API_VERSION
    schemes = ("multi",)
    is_prefix = True
    description = "mirror writes over several backends (prefix)"

    def __init__(self, url: BackendURL) -> None:
        if url.inner is None:
            raise ConfigError(f"{url.redacted}: multi+ needs an inner URL, e.g. multi+file:///a")
        self.url = url
        mirrors = [m for value in url.all_options("mirror") for m in _SPLIT.split(value) if m]
        if not mirrors:
            raise ConfigError(
                f"{url.redacted}: multi+ needs at least one mirror, e.g. ?mirror=file:///b"
            )
        self.members: list[Backend] = [get_backend_object(url.inner)]
        try:
            for mirror in mirrors:
                self.members.append(get_backend_object(mirror))
        except BaseException:
            self._close()
            raise

    def get_capabilities(self) -> BackendCapabilities:
        """What every member can do."""
        caps = [m.get_capabilities() for m in self.members]
        first = caps[0]
        return BackendCapabilities(
            atomic_put=all(c.atomic_put for c in caps),
            ranged_get=all(c.ranged_get for c in caps),
            rename=all(c.rename for c in caps),
            max_name_length=min(c.max_name_length for c in caps),
            page_size=first.page_size,
            connections=min(c.connections for c in caps),
            streaming=first.streaming,
            multipart_threshold=first.multipart_threshold,
            local=all(c.local for c in caps),
        )

    # --- helpers ------------------------------------------------------------------------

    def _first(self, name: str, read: Callable[[Backend], _T]) -> _T:
        """``read`` on the first member that has ``name``."""
        last: FileMissingError | None = None
        for member in self.members:
            try:
                return read(member)
            except FileMissingError as e:
                last = e
        assert last is not None
        raise FileMissingError(
            f"{name} does not exist on any of {len(self.members)} backends",
            backend=self.display_name,
        ) from last

    # --- required primitives ------------------------------------------------------------

    def _put(self, source_path: str, remote_filename: str) -> None:
        for member in self.members:
            member._put(source_path, remote_filename)

    def _get(self, remote_filename: str, local_path: str) -> None:
        self._first(remote_filename, lambda m: m._get(remote_filename, local_path))

    def _list(self) -> Iterator[ListEntry]:
        seen: set[str] = set()
        for member in self.members:
            for item in member._list():
                entry = item if isinstance(item, ListEntry) else ListEntry(item)
                if entry.name not in seen:
                    seen.add(entry.name)
                    yield entry

    def _delete(self, filename: str) -> None:
        for member in self.members:
            member._delete(filename)

    # --- optional primitives ------------------------------------------------------------

    def _put_stream(self, fileobj: IO[bytes], remote_filename: str, size: int | None) -> None:
        # The stream can be read once: the primary stores it, the mirrors copy from there.
        primary = self.members[0]
        primary._put_stream(fileobj, remote_filename, size)
        if len(self.members) > 1:
            with tempfile.NamedTemporaryFile(prefix="pannier-multi-") as tmp:
                primary._get(remote_filename, tmp.name)
                for member in self.members[1:]:
                    member._put(tmp.name, remote_filename)

    def _get_stream(self, remote_filename: str, fileobj: IO[bytes]) -> None:
        # Ask before reading: a stream written to cannot be taken back.
        for member in self.members:
            if member._query(remote_filename)["size"] >= 0:
                member._get_stream(remote_filename, fileobj)
                return
        raise FileMissingError(
            f"{remote_filename} does not exist on any of {len(self.members)} backends",
            backend=self.display_name,
        )

    def _get_range(self, remote_filename: str, offset: int, length: int) -> bytes:
        data: bytes = self._first(
            remote_filename, lambda m: m._get_range(remote_filename, offset, length)
        )
        return data

    def _query(self, filename: str) -> dict[str, int]:
        for member in self.members:
            info: dict[str, int] = member._query(filename)
            if info["size"] >= 0:
                return info
        return {"size": -1}

    def _query_list(self, filename_list: builtins.list[str]) -> dict[str, dict[str, int]]:
        result = {name: {"size": -1} for name in filename_list}
        for member in self.members:
            missing = [name for name, info in result.items() if info["size"] < 0]
            if not missing:
                break
            result.update({n: i for n, i in member._query_list(missing).items() if i["size"] >= 0})
        return result

    def _delete_list(self, filename_list: builtins.list[str]) -> None:
        for member in self.members:
            member._delete_list(filename_list)

    def _move(self, source_filename: str, remote_filename: str) -> None:
        for member in self.members:
            member._move(source_filename, remote_filename)

    # --- the folder ---------------------------------------------------------------------

    def _test(self) -> None:
        for member in self.members:
            member._test()

    def _create_folder(self) -> None:
        for member in self.members:
            member._create_folder()

    # --- errors and clean-up ------------------------------------------------------------

    def _retry_cleanup(self) -> None:
        for member in self.members:
            member._retry_cleanup()

    def _close(self) -> None:
        for member in getattr(self, "members", []):
            member._close()

    def _clean_temporaries(self, older_than: float) -> builtins.list[str]:
        removed: builtins.list[str] = []
        for member in self.members:
            removed += member._clean_temporaries(older_than)
        return removed


def get_plugin_class() -> type[MultiBackend]:
    """The backend class of this plugin module."""
    return MultiBackend
