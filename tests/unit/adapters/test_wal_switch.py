"""The first connection of a new SQLite store switches it to WAL, which SQLite refuses at
once, without a busy wait, while another connection writes to the file: the pool tries
again instead of failing (seen in CI as "database is locked" when four writers opened a
new store together)."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from adapters.event_store import _SecureDeletePool


def test_a_new_store_switches_to_wal_once_another_writer_is_done(tmp_path: Path) -> None:
    path = tmp_path / "events.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE t (x INTEGER)")
    writer.execute("BEGIN IMMEDIATE")  # another writer's transaction, in rollback-journal mode
    writer.execute("INSERT INTO t VALUES (1)")
    done = threading.Timer(0.3, lambda: writer.execute("COMMIT"))
    done.start()
    pool = _SecureDeletePool(db_name=str(path), lock_timeout=5)
    try:
        connection = pool._create_connection()
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode")
        mode = cursor.fetchone()[0]
        assert mode.lower() == "wal"
        connection.close()
    finally:
        done.join()
        writer.close()
        pool.close()
