"""Read-model stores: a SQLite file (the embedded default), PostgreSQL, or a scratch
in-memory SQLite database (as-of reports, `leadflow verify`).

Plain SQL through sqlite3 / psycopg. Every write happens in one transaction that also
records the consumed positions; a write that loses a race with another projector process
(PostgreSQL serialization failure, SQLite busy) is retried from the start by ``write``.
Several processes may share one SQLite file: it runs in WAL mode with a busy timeout.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import compress
from pathlib import Path
from typing import Any, Self, TypeVar

import psycopg
import structlog
from psycopg import IsolationLevel, sql
from psycopg.conninfo import conninfo_to_dict

from adapters.driver_failures import driver_failure
from adapters.event_store import DDL_LOCK_KEY, SECURE_DELETE, connect_postgres
from adapters.private_files import private_file
from adapters.settings import StoreSettings
from adapters.storable_text import storable_text
from domain.stage_model import StageModel
from projections.schema import (
    META,
    POSITIONS,
    SCHEMA_VERSION,
    TABLES,
    VERSIONS_META_KEY,
    Table,
)
from projections.sql_dialect import POSTGRESQL, SQLITE, Dialect

log = structlog.get_logger("leadflow.projections.store")

T = TypeVar("T")
Row = tuple[Any, ...]
EMBEDDED_STREAM = "event-store"
"""The stream name under which embedded mode records the last applied notification id."""

_MAX_ATTEMPTS = 12
_COPY_FROM = 64  # rows: below, a COPY's extra round trips cost more than it saves
_COPY_TYPES = {"text": "text", "int": "int8", "real": "float8"}
STAGING_SUFFIX = "_incoming"
_SCHEMA_LOCK = DDL_LOCK_KEY  # shared with the event store: one schema set-up at a time
_INT64 = range(-(2**63), 2**63)


class ReadModelError(Exception):
    """The read model cannot be used as it is (schema from another version, bad location)."""


class UnstorableValue(ValueError):
    """A value that not every read-model database can hold (a NUL character in text, an
    integer beyond 64 bits). Refused the same way by SQLite and PostgreSQL, so both
    stores, and the scratch rebuild of `leadflow verify`, dead-letter the same records."""


def _check_storable(params: Sequence[Any]) -> None:
    """Raise ``UnstorableValue`` naming the first parameter no database can take.

    The common case (nothing wrong) is checked in a few C-level passes; only a failure
    walks the values one by one to name the culprit.
    """
    values = params
    if list in map(type, params):  # PostgreSQL array parameters
        values = [x for v in params for x in (v if isinstance(v, list) else (v,))]
    # isinstance by map: no Python-level loop over the values
    text = "".join(compress(values, map(_IS_TEXT, values)))
    ints = list(compress(values, map(_IS_INT, values)))
    if (
        "\x00" not in text
        and (text.isascii() or _encodable(text))
        and (not ints or (min(ints) in _INT64 and max(ints) in _INT64))
    ):
        return
    _name_unstorable(params)


_IS_TEXT = str.__instancecheck__
_IS_INT = int.__instancecheck__


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _name_unstorable(params: Sequence[Any]) -> None:
    for position, value in enumerate(params, start=1):
        if isinstance(value, list):  # a PostgreSQL array parameter
            _check_values(position, value)
        else:
            _check_values(position, (value,))


def _check_values(position: int, values: Sequence[Any]) -> None:
    for value in values:
        if isinstance(value, str):
            if "\x00" in value:
                shown = storable_text(value)[:200]
                msg = f"parameter {position} contains a NUL character: {shown!r}"
                raise UnstorableValue(msg)
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError as error:
                    msg = f"parameter {position} is not valid Unicode text: {error.reason}"
                    raise UnstorableValue(msg) from error
        elif isinstance(value, int) and value not in _INT64:
            raise UnstorableValue(f"parameter {position} does not fit in 64 bits: {value}")


def staging_ddl(table: Table) -> str:
    """A PostgreSQL session's temporary table shaped like ``table`` (its key columns NOT
    NULL, as in the table), into which ``PostgresStore`` copies rows before moving them."""
    columns = ", ".join(
        f"{name} {POSTGRESQL.column_type(kind)}{' NOT NULL' if name in table.key else ''}"
        for name, kind in table.columns
    )
    return f"CREATE TEMPORARY TABLE IF NOT EXISTS {table.name}{STAGING_SUFFIX} ({columns})"


def utc_text(moment: datetime) -> str:
    """The stored form of a time: ISO 8601 in UTC with microseconds, sortable as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def utc_now_text() -> str:
    return utc_text(datetime.now(UTC))


def from_utc_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Tx:
    """One open transaction: statements with ``?`` placeholders, rows as tuples."""

    def __init__(self, store: ReadModelStore) -> None:
        self._store = store
        self.dialect = store.dialect

    def execute(self, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        _check_storable(params)
        return self._store._execute(self.dialect.sql(statement), params)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A nested transaction: an exception rolls back only what ran inside it."""
        with self._store._savepoint():
            yield

    def insert(self, table: Table, rows: Sequence[Sequence[Any]], on_conflict: str = "") -> None:
        """Insert rows in as few statements as the dialect allows; ``on_conflict`` is the
        ``ON CONFLICT ...`` clause. The rows' keys must be unique."""
        if rows:
            self._store._insert(self, table, rows, on_conflict)


class ReadModelStore(ABC):
    """Where the read models live. Use ``write``/``read`` for transactions."""

    dialect: Dialect

    def __init__(self, stage_model: StageModel, location: str) -> None:
        self.stage_model = stage_model
        self.location = location
        self._log = log.bind(read_model=location)
        # One connection per store; the Kafka client calls rebalance listeners (which read
        # positions) on its own thread, so every transaction holds this lock.
        self._lock = threading.RLock()

    # --- transactions ---------------------------------------------------------------

    def write(self, work: Callable[[Tx], T]) -> T:
        """Run ``work`` in one write transaction, retried whole when it loses a race."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            try:
                with self._lock, self._transaction(write=True):
                    return work(Tx(self))
            except Exception as error:
                if not self._retryable(error) or attempt == _MAX_ATTEMPTS:
                    raise
                self._log.info("write_retry", attempt=attempt, error=str(error).strip())
                time.sleep(min(0.02 * 2**attempt, 1.0))
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A consistent snapshot for the queries of one report."""
        with self._lock, self._transaction(write=False):
            yield Tx(self)

    def _insert(
        self, tx: Tx, table: Table, rows: Sequence[Sequence[Any]], on_conflict: str
    ) -> None:
        for statement, params in self.dialect.insert_statements(
            table.name, table.columns, rows, on_conflict
        ):
            tx.execute(statement, params)

    # --- errors and connections ----------------------------------------------------

    def is_data_error(self, error: BaseException) -> bool:
        """The database refused a value: the record that carries it cannot be stored."""
        return isinstance(error, UnstorableValue | OverflowError) or self._data_error(error)

    @abstractmethod
    def _data_error(self, error: BaseException) -> bool: ...

    @abstractmethod
    def is_connection_error(self, error: BaseException) -> bool:
        """The database is unreachable or busy: ``reconnect`` and try again later."""

    def reconnect(self) -> None:
        """Drop the connection (whatever state it is in) and open a new one."""
        with self._lock:
            self._disconnect()
            self._connect()
        self._log.info("read_model_reconnected")

    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def _disconnect(self) -> None: ...

    # --- positions ------------------------------------------------------------------

    def positions(self, stream: str) -> dict[int, int]:
        """Partition (0 for the event store) -> next position to consume, as committed."""
        with self.read() as tx:
            rows = tx.execute(
                "SELECT part, next_position FROM rm_positions WHERE stream = ?", (stream,)
            )
        return {int(part): int(position) for part, position in rows}

    def save_positions(self, tx: Tx, stream: str, positions: Mapping[int, int]) -> None:
        """Record consumed positions in the caller's transaction; never moves one back."""
        now = utc_now_text()
        tx.insert(
            POSITIONS,
            [(stream, part, position, now) for part, position in sorted(positions.items())],
            "ON CONFLICT (stream, part) DO UPDATE SET "
            f"next_position = {self.dialect.greatest}"
            "(rm_positions.next_position, excluded.next_position), "
            "updated_at = excluded.updated_at",
        )

    def last_notification_id(self) -> int:
        """Embedded mode: the last event-store notification applied (0 before any)."""
        return self.positions(EMBEDDED_STREAM).get(0, 1) - 1

    # --- schema and content ---------------------------------------------------------

    def ensure_schema(self) -> None:
        def create(tx: Tx) -> None:
            self._lock_schema(tx)
            for table in TABLES:
                for statement in table.ddl(self.dialect):
                    tx.execute(statement)
            found = tx.execute("SELECT value FROM rm_meta WHERE key = ?", ("schema_version",))
            if not found:
                tx.insert(META, [("schema_version", SCHEMA_VERSION), (VERSIONS_META_KEY, "1")])
            elif found[0][0] != SCHEMA_VERSION:
                msg = (
                    f"read model {self.location} has schema version {found[0][0]}, this leadflow "
                    f"uses {SCHEMA_VERSION}: run `leadflow rebuild` to rebuild it"
                )
                raise ReadModelError(msg)

        self.write(create)

    def keeps_versions(self) -> bool:
        """Whether the business-time versions were kept since this read model was created
        (a read model of an older leadflow has them only after ``leadflow rebuild``)."""
        with self.read() as tx:
            found = tx.execute("SELECT value FROM rm_meta WHERE key = ?", (VERSIONS_META_KEY,))
        return bool(found) and found[0][0] == "1"

    def reset(self) -> None:
        """Drop every read-model table (facts, positions, dead letters) and recreate them."""

        def drop(tx: Tx) -> None:
            self._lock_schema(tx)
            for table in TABLES:
                tx.execute(f"DROP TABLE IF EXISTS {table.name}")

        self.write(drop)
        self.ensure_schema()
        self._log.info("read_model_reset")

    def rows(self, table: Table) -> list[Row]:
        """Every row of a table, ordered by its primary key."""
        with self.read() as tx:
            return tx.execute(
                f"SELECT {', '.join(table.column_names)} FROM {table.name} "  # noqa: S608 - schema names
                f"ORDER BY {', '.join(table.key)}"
            )

    # --- lifecycle ------------------------------------------------------------------

    @abstractmethod
    def truncate_log(self) -> None:
        """Empty a write-ahead log that may keep overwritten values (SQLite); PostgreSQL:
        nothing (its WAL is the server's, see the README's privacy section)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- dialect-specific -----------------------------------------------------------

    @abstractmethod
    def _transaction(self, write: bool) -> Any: ...

    @abstractmethod
    def _savepoint(self) -> Any: ...

    @abstractmethod
    def _execute(self, statement: str, params: Sequence[Any]) -> list[Row]: ...

    @abstractmethod
    def _retryable(self, error: Exception) -> bool: ...

    @abstractmethod
    def _lock_schema(self, tx: Tx) -> None:
        """Serialise schema changes between processes."""


class SqliteStore(ReadModelStore):
    dialect = SQLITE

    def __init__(self, path: Path | None, stage_model: StageModel) -> None:
        """``path`` None: a private in-memory database (a scratch store)."""
        super().__init__(stage_model, f"sqlite:{path}" if path else "sqlite::memory:")
        self._path = path
        if path is not None:
            private_file(path)
        self._connect()
        try:
            self.ensure_schema()
        except sqlite3.DatabaseError as error:
            self._conn.close()
            raise ReadModelError(f"read model {self.location} is not usable: {error}") from error
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> None:
        if self._path is None and hasattr(self, "_conn"):
            raise ReadModelError("a scratch (in-memory) read model cannot be reopened")
        self._conn = sqlite3.connect(
            str(self._path) if self._path else ":memory:",
            timeout=30.0,
            isolation_level=None,
            check_same_thread=False,  # guarded by the store's lock
        )
        self._conn.execute(SECURE_DELETE)
        if self._path is not None:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL survives any process crash; a power loss may lose the last
                # transactions, together with their positions, so the model stays consistent.
                self._conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                self._conn.close()
                raise

    def _disconnect(self) -> None:
        if self._path is not None:
            self._conn.close()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self._conn.execute("SAVEPOINT item")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK TO SAVEPOINT item")
            self._conn.execute("RELEASE SAVEPOINT item")
            raise
        self._conn.execute("RELEASE SAVEPOINT item")

    def _execute(self, statement: str, params: Sequence[Any]) -> list[Row]:
        return self._conn.execute(statement, tuple(params)).fetchall()

    def _retryable(self, error: Exception) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)

    def _data_error(self, error: BaseException) -> bool:
        return isinstance(
            error, sqlite3.DataError | sqlite3.IntegrityError | sqlite3.InterfaceError
        )

    def is_connection_error(self, error: BaseException) -> bool:
        # not "no such table", "readonly database": retrying those cannot help
        return isinstance(error, sqlite3.OperationalError) and driver_failure(error) == "transient"

    def _lock_schema(self, tx: Tx) -> None:
        """BEGIN IMMEDIATE already holds the database's write lock."""

    def truncate_log(self) -> None:
        with self._lock:
            busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            log.warning("read_model_wal_not_truncated", path=str(self._path))

    def close(self) -> None:
        self._conn.close()


class PostgresStore(ReadModelStore):
    dialect = POSTGRESQL

    def __init__(self, dsn: str, schema: str, stage_model: StageModel) -> None:
        parts = conninfo_to_dict(dsn)
        where = f"{parts.get('host', '')}:{parts.get('port', '')}/{parts.get('dbname', '')}"
        super().__init__(stage_model, f"postgresql:{where} schema {schema}")
        self._dsn = dsn
        self._schema = schema
        self._conn = psycopg.connect(dsn, autocommit=True)
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                self._conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema))
                )
            self._use_schema()
            self.ensure_schema()
        except BaseException:
            self._conn.close()
            raise

    def _use_schema(self) -> None:
        self._conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self._schema)))
        self._staging = True
        try:
            for table in TABLES:  # this session's own, empty between statements (see _insert)
                self._conn.execute(staging_ddl(table))
        except psycopg.errors.InsufficientPrivilege:
            self._staging = False  # no TEMPORARY privilege on the database: unnest only
            self._log.info("read_model_without_staging_tables")

    def _insert(
        self, tx: Tx, table: Table, rows: Sequence[Sequence[Any]], on_conflict: str
    ) -> None:
        """Many rows: a binary COPY into the table's staging table (rows formatted by
        psycopg in C), then moved into the table, the staging table emptied again; a few
        rows: one ``unnest`` statement (one round trip)."""
        if len(rows) < _COPY_FROM or not self._staging:
            super()._insert(tx, table, rows, on_conflict)
            return
        columns = self.dialect.column_arrays(table.columns, rows)
        _check_storable(columns)
        names = ", ".join(table.column_names)
        staging = f"{table.name}{STAGING_SUFFIX}"
        with self._conn.cursor() as cursor:
            with cursor.copy(f"COPY {staging} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([_COPY_TYPES[kind] for _, kind in table.columns])
                for row in zip(*columns, strict=True):
                    copy.write_row(row)
            # no parameters: both statements go in one round trip. TRUNCATE, not DELETE:
            # nothing vacuums a temporary table, so deleted rows would pile up in it
            cursor.execute(
                f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} "  # noqa: S608
                f"{on_conflict}; TRUNCATE {staging}"
            )

    def _connect(self) -> None:
        self._conn = connect_postgres(self._dsn)
        try:
            self._use_schema()
        except BaseException:
            self._conn.close()
            raise

    def _disconnect(self) -> None:
        self._conn.close()

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[None]:
        self._conn.isolation_level = (
            IsolationLevel.SERIALIZABLE if write else IsolationLevel.REPEATABLE_READ
        )
        self._conn.read_only = not write
        with self._conn.transaction():
            yield

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        with self._conn.transaction():
            yield

    def _execute(self, statement: str, params: Sequence[Any]) -> list[Row]:
        cursor = self._conn.execute(statement, tuple(params))
        return list(cursor.fetchall()) if cursor.description is not None else []

    def _data_error(self, error: BaseException) -> bool:
        return isinstance(error, psycopg.DataError) or (
            isinstance(error, psycopg.IntegrityError) and not self._retryable(error)
        )

    def is_connection_error(self, error: BaseException) -> bool:
        if driver_failure(error) == "transient" and not isinstance(error, psycopg.IntegrityError):
            return True  # the server away or busy; not a refused password, say
        return isinstance(error, psycopg.Error) and (self._conn.closed or self._conn.broken)

    def _retryable(self, error: Exception) -> bool:
        return isinstance(
            error,
            psycopg.errors.SerializationFailure
            | psycopg.errors.DeadlockDetected
            | psycopg.errors.UniqueViolation,
        )

    def _lock_schema(self, tx: Tx) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))

    def truncate_log(self) -> None:
        """The server's WAL: see the README's privacy section."""

    def close(self) -> None:
        self._conn.close()


def open_read_model_store(store: StoreSettings, stage_model: StageModel) -> ReadModelStore:
    """The live read model: PostgreSQL when ``postgres_dsn`` is set, else a SQLite file."""
    if store.dsn is not None:
        return PostgresStore(store.dsn, store.postgres_schema, stage_model)
    return SqliteStore(store.sqlite_read_models, stage_model)


def open_scratch_store(stage_model: StageModel) -> ReadModelStore:
    """A private, empty in-memory read model (SQLite ``:memory:``)."""
    return SqliteStore(None, stage_model)
