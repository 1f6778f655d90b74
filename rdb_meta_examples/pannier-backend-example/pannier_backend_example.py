"""shelf:// -- a complete third-party pannier backend: objects in fan-out directories.

``shelf:///srv/shelf`` stores ``abc123`` as ``/srv/shelf/ab/abc123``; a put writes a
temporary file and renames it, so it is atomic."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from pannier import Backend, BackendCapabilities, FileMissingError, FolderMissingError, ListEntry


class ShelfBackend(Backend):
    """Objects in two-character fan-out directories under one root."""

    plugin_api_version = 1
    schemes = ("shelf",)
    description = "a local directory with fan-out sub-directories (example plugin)"
    capabilities = BackendCapabilities(atomic_put=True, connections=4)

    def __init__(self, url) -> None:  # url: pannier.BackendURL
        self.url = url
        self.root = url.path

    def _path(self, name: str) -> str:
        return os.path.join(self.root, name[:2], name)

    def _put(self, source_path: str, remote_filename: str) -> None:
        self._test()
        shard = os.path.dirname(self._path(remote_filename))
        os.makedirs(shard, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=shard)
        os.close(fd)
        try:
            shutil.copyfile(source_path, tmp)
            os.replace(tmp, self._path(remote_filename))
        except BaseException:
            os.unlink(tmp)
            raise

    def _get(self, remote_filename: str, local_path: str) -> None:
        try:
            shutil.copyfile(self._path(remote_filename), local_path)
        except FileNotFoundError:
            message = f"{remote_filename} does not exist"
            raise FileMissingError(message, backend=self.display_name) from None

    def _list(self) -> Iterator[ListEntry]:
        self._test()
        for shard in sorted(os.listdir(self.root)):
            for entry in os.scandir(os.path.join(self.root, shard)):
                with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                    if not entry.name.startswith("."):
                        yield ListEntry(entry.name, entry.stat().st_size)

    def _delete(self, filename: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(filename))

    def _query(self, filename: str) -> dict[str, int]:
        path = self._path(filename)
        return {"size": os.path.getsize(path) if os.path.isfile(path) else -1}

    def _test(self) -> None:
        if not os.path.isdir(self.root):
            raise FolderMissingError(f"{self.root} does not exist", backend=self.display_name)

    def _create_folder(self) -> None:
        os.makedirs(self.root, mode=0o700, exist_ok=True)


def get_plugin_class() -> type[ShelfBackend]:
    """The backend class of this plugin."""
    return ShelfBackend
