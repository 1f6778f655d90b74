"""The sqlite source: a consistent copy through SQLite's online backup API."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pannier.errors import SourceError
from pannier.plugin import PluginKind
from pannier.registry import get_plugin_manager


def source(spec: str, **options: object):  # type: ignore[no-untyped-def]
    return get_plugin_manager().get(PluginKind.SOURCE, "sqlite")(spec, options)


def test_copy_holds_committed_data_only(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    con = sqlite3.connect(db)
    con.execute("pragma journal_mode=wal")
    con.execute("create table t (n integer)")
    con.executemany("insert into t values (?)", [(i,) for i in range(100)])
    con.commit()
    con.execute("begin")
    con.execute("insert into t values (-1)")  # not committed during the backup
    src = source(str(db))
    try:
        entries = list(src.scan())
        assert [e.index for e in entries] == [(), (b"app.db",)]
        copy = entries[1].path
        assert copy is not None and copy != str(db).encode()
        check = sqlite3.connect(copy.decode())
        assert check.execute("select count(*), min(n) from t").fetchone() == (100, 0)
        check.close()
    finally:
        src.close()
        con.rollback()
        con.close()
    assert not Path(copy.decode()).exists()  # the temporary copy is gone


def test_filename_option(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite"
    sqlite3.connect(db).close()
    src = source(str(db), filename="renamed.db")
    try:
        assert [e.index for e in src.scan()][-1] == (b"renamed.db",)
    finally:
        src.close()


@pytest.mark.parametrize("content", [None, b"this is not a database at all" * 100])
def test_bad_database_is_a_source_error(tmp_path: Path, content: bytes | None) -> None:
    db = tmp_path / "bad.db"
    if content is not None:
        db.write_bytes(content)
    src = source(str(db))
    try:
        with pytest.raises(SourceError, match=r"bad\.db"):
            list(src.scan())
    finally:
        src.close()
