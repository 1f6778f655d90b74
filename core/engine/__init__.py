"""The backup engine: sources in, snapshots out, and back.

* :mod:`pannier.engine.tree` -- the snapshot tree stream (entries, content chunk ids);
* :mod:`pannier.engine.backup` -- :func:`run_backup`;
* :mod:`pannier.engine.entries` -- merging sources into snapshot indexes, tree records;
* :mod:`pannier.engine.content` -- reading a file and storing its content;
* :mod:`pannier.engine.restore` -- :func:`run_restore`;
* :mod:`pannier.engine.target` -- walking a restore target safely, atomic file writes;
* :mod:`pannier.engine.diff` -- comparing two snapshot trees;
* :mod:`pannier.engine.verify` -- :func:`verify_snapshot` (a snapshot against a live source);
* :mod:`pannier.engine.forget` -- retention policies;
* :mod:`pannier.engine.snapshots` -- choosing snapshots and reading their streams;
* :mod:`pannier.engine.meta` -- recording and applying metadata plugins' streams;
* :mod:`pannier.engine.progress` -- progress lines, JSON status lines and hooks.

The engine uses a repository (``pannier.repo.Repository``) only through its public
methods: ``add_blob``, ``store_stream``, ``has_blob``, ``iter_blobs``, ``blob_id``,
``chunk_file``, ``flush``, ``save_snapshot``, ``list_snapshots``, ``load_snapshot``.
"""

from __future__ import annotations

__all__: list[str] = []


def _register_tree_walker() -> None:
    """Tell the repository which content blobs a snapshot's tree references (for check
    and prune), and which files a damaged blob belongs to (for check)."""
    from ..repo import register_referenced_blobs
    from ..repo.check import register_affected_files
    from .snapshots import affected_files, content_blobs

    register_referenced_blobs(content_blobs)
    register_affected_files(affected_files)


_register_tree_walker()
