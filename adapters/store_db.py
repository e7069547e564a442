"""A plain connection to the event store's own database, for the stream's small side tables.

The relay's position and the ingest ledger live next to the events (the SQLite file or
the PostgreSQL schema), so they are backed up, moved and thrown away together.
A PostgreSQL connection that fails (the server restarted, the network dropped) is
dropped, and the next statement opens a new one; the caller retries what failed.
Statements use ``?`` placeholders and ``{name}`` for table names; both are rewritten
for the dialect.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Literal

import psycopg
from psycopg import sql

from adapters.event_store import SECURE_DELETE, connect_postgres, postgres_ddl_lock
from adapters.private_files import private_file
from adapters.settings import StoreSettings

Dialect = Literal["sqlite", "postgres"]


def psycopg_placeholders(statement: str) -> str:
    """A statement written with ``?`` placeholders (sqlite3's) in psycopg's ``%s`` style;
    the SQL holds no literal ``?``."""
    return statement.replace("?", "%s")


class StoreDb:
    def __init__(self, store: StoreSettings) -> None:
        self.dialect: Dialect = "sqlite" if store.dsn is None else "postgres"
        self._schema = store.postgres_schema
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[tuple[Any, ...]] | None = None
        self._dsn = ""
        if store.dsn is None:
            self._sqlite = sqlite3.connect(
                private_file(store.sqlite_event_store), timeout=30, isolation_level=None
            )
            self._sqlite.execute(SECURE_DELETE)
            self.location = str(store.sqlite_event_store)
        else:
            self._dsn = store.dsn
            self.location = f"postgresql schema {self._schema}"

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return connect_postgres(self._dsn)

    @contextmanager
    def _postgres(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """The live connection; one that fails at the connection level is dropped."""
        if self._pg is None or self._pg.closed:
            self._pg = self._connect()
        try:
            yield self._pg
        except psycopg.OperationalError:
            self._pg.close()
            raise

    def table(self, name: str) -> str:
        if self.dialect == "sqlite":
            return name
        return sql.Identifier(self._schema, name).as_string()

    def _statement(self, statement: str, tables: dict[str, str]) -> str:
        text = statement.format(**{k: self.table(v) for k, v in tables.items()})
        return text if self.dialect == "sqlite" else psycopg_placeholders(text)

    def execute(
        self, statement: str, params: Sequence[Any] = (), **tables: str
    ) -> list[tuple[Any, ...]]:
        text = self._statement(statement, tables)
        if self._sqlite is not None:
            return self._sqlite.execute(text, tuple(params)).fetchall()
        with self._postgres() as connection, connection.cursor() as cursor:
            cursor.execute(text.encode(), tuple(params))
            return cursor.fetchall() if cursor.description else []

    def has_table(self, name: str) -> bool:
        if self.dialect == "sqlite":
            query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
            return bool(self.execute(query, (name,)))
        return self.execute("SELECT to_regclass(?) IS NOT NULL", (self.table(name),))[0][0] is True

    def create_table(self, statement: str, **tables: str) -> None:
        """``CREATE TABLE IF NOT EXISTS`` (PostgreSQL: the schema too, one process at a time)."""
        if self.dialect == "sqlite":
            self.execute(statement, **tables)
            return
        with postgres_ddl_lock(self._dsn, self._schema):
            self.execute(statement, **tables)

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]], **tables: str) -> None:
        text = self._statement(statement, tables)
        if self._sqlite is not None:
            self._sqlite.executemany(text, [tuple(r) for r in rows])
            return
        with self._postgres() as connection, connection.cursor() as cursor:
            cursor.executemany(text.encode(), [tuple(r) for r in rows])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.dialect == "postgres":
            with self._postgres() as connection, connection.transaction():
                yield
            return
        assert self._sqlite is not None
        self._sqlite.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._sqlite.execute("ROLLBACK")
            raise
        self._sqlite.execute("COMMIT")

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()

    def __enter__(self) -> StoreDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ThreadDbs:
    """One ``StoreDb`` per thread on one store (SQLite connections stay in their thread);
    ``close`` closes every one it can, so an application's side tables do not keep
    PostgreSQL connections open after it is closed."""

    def __init__(self, store: StoreSettings) -> None:
        self._store = store
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[StoreDb] = []

    def get(self) -> StoreDb:
        db: StoreDb | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = StoreDb(self._store)
            with self._lock:
                self._opened.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            opened, self._opened = self._opened, []
            self._local = threading.local()
        for db in opened:
            with suppress(sqlite3.ProgrammingError):  # another thread's SQLite connection
                db.close()
