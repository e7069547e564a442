"""The command ledger table: one row per command id, written in the transaction of the
command's events (see the recorders of ``adapters.event_store``).

A row holds the id, a 32-byte fingerprint of the command's canonical content, a short
summary naming the command (``open_deal D-9``) and its outcome: the aggregates it
touched (16 bytes each) and how many events it stored, or the reason it was refused.
Rows are kept for ever; a typical row is about 100 to 150 bytes (an id of up to 64
characters, the fingerprint, one or two aggregate ids, a summary of some 30 characters),
so a million commands take some 150 MB.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import structlog
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor
from eventsourcing.utils import get_topic
from psycopg import Cursor, sql
from psycopg.rows import DictRow

from adapters.audit_log import (
    CHAIN_TABLE,
    HEADS_KWARG,
    HEADS_TABLE,
    AuditConfig,
    SignedHead,
    heads_to_witness,
    write_chain,
)
from adapters.audit_log import SQLITE_DDL as CHAIN_SQLITE_DDL
from adapters.audit_log import postgres_ddl as chain_postgres_ddl
from adapters.stale_check import expected_versions, refuse_stale_postgres, refuse_stale_sqlite
from adapters.write_lock import postgres_write_lock

log = structlog.get_logger("leadflow.adapters.command_ledger")

LEDGER_KWARG = "command_ledger"
TABLE = "leadflow_command_ledger"
_SELECT_CHUNK = 500
_SQLITE_INSERT = (
    "INSERT INTO leadflow_command_ledger "
    "(command_id, fingerprint, command, aggregate_ids, events, refusal) "
    "VALUES (?,?,?,?,?,?)"
)
_SQLITE_SELECT = (
    "SELECT command_id, fingerprint, command, aggregate_ids, events, refusal "
    "FROM leadflow_command_ledger WHERE command_id IN (SELECT value FROM json_each(?))"
)
_POSTGRES_INSERT = sql.SQL(
    "INSERT INTO {}.{} "
    "(command_id, fingerprint, command, aggregate_ids, events, refusal) "
    "VALUES (%s,%s,%s,%s,%s,%s)"
)
_POSTGRES_SELECT = sql.SQL(
    "SELECT command_id, fingerprint, command, aggregate_ids, events, refusal "
    "FROM {}.{} WHERE command_id = ANY(%s)"
)

SQLITE_DDL = (
    "CREATE TABLE IF NOT EXISTS leadflow_command_ledger ("
    "command_id TEXT PRIMARY KEY, "
    "fingerprint BLOB NOT NULL, "
    "command TEXT NOT NULL, "
    "aggregate_ids BLOB NOT NULL, "
    "events INTEGER NOT NULL, "
    "refusal TEXT"
    ") WITHOUT ROWID"
)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """What the ledger knows of one command id. ``refusal`` is None when it applied."""

    command_id: str
    fingerprint: bytes
    command: str
    aggregate_ids: tuple[UUID, ...] = ()
    events: int = 0
    refusal: str | None = None

    def as_row(self) -> tuple[str, bytes, str, bytes, int, str | None]:
        ids = b"".join(i.bytes for i in self.aggregate_ids)
        return (self.command_id, self.fingerprint, self.command, ids, self.events, self.refusal)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> LedgerEntry:
        command_id, fingerprint, command, ids, events, refusal = row
        raw = bytes(ids)
        return cls(
            command_id=command_id,
            fingerprint=bytes(fingerprint),
            command=command,
            aggregate_ids=tuple(UUID(bytes=raw[n : n + 16]) for n in range(0, len(raw), 16)),
            events=events,
            refusal=refusal,
        )


# the fingerprint of a row whose command named an erased lead: the content it stood for
# (with the person's email in it) can no longer be confirmed by guessing
ERASED_FINGERPRINT = bytes(32)


@runtime_checkable
class CommandLedger(Protocol):
    """The ledger as the unit of work sees it (implemented by the event store's recorder)."""

    def ledger_entries(self, command_ids: Iterable[str]) -> dict[str, LedgerEntry]: ...


class _Cursor(Protocol):
    def execute(self, query: Any, params: Any = ..., /) -> Any: ...

    def executemany(self, query: Any, params_seq: Any, /) -> Any: ...

    def fetchall(self) -> list[Any]: ...


def entries_to_write(kwargs: dict[str, Any]) -> Sequence[LedgerEntry]:
    entries: Sequence[LedgerEntry] = kwargs.get(LEDGER_KWARG, ())
    return entries


def chunks(command_ids: Iterable[str]) -> Iterable[list[str]]:
    ids = sorted(set(command_ids))
    for start in range(0, len(ids), _SELECT_CHUNK):
        yield ids[start : start + _SELECT_CHUNK]


# --- SQLite -------------------------------------------------------------------------------


def sqlite_insert(cursor: _Cursor, entries: Sequence[LedgerEntry]) -> None:
    if entries:
        cursor.executemany(_SQLITE_INSERT, [e.as_row() for e in entries])


def sqlite_select(cursor: _Cursor, command_ids: list[str]) -> list[LedgerEntry]:
    cursor.execute(_SQLITE_SELECT, (json.dumps(command_ids),))
    return [LedgerEntry.from_row(tuple(row)) for row in cursor.fetchall()]


# --- PostgreSQL ---------------------------------------------------------------------------


def postgres_ddl(schema: str) -> sql.Composed:
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {}.{} ("
        "command_id text PRIMARY KEY, "
        "fingerprint bytea NOT NULL, "
        "command text NOT NULL, "
        "aggregate_ids bytea NOT NULL, "
        "events integer NOT NULL, "
        "refusal text)"
    ).format(sql.Identifier(schema), sql.Identifier(TABLE))


def postgres_insert(cursor: _Cursor, schema: str, entries: Sequence[LedgerEntry]) -> None:
    if entries:
        query = _POSTGRES_INSERT.format(sql.Identifier(schema), sql.Identifier(TABLE))
        cursor.executemany(query, [e.as_row() for e in entries])


def postgres_select(cursor: _Cursor, schema: str, command_ids: list[str]) -> list[LedgerEntry]:
    query = _POSTGRES_SELECT.format(sql.Identifier(schema), sql.Identifier(TABLE))
    cursor.execute(query, (command_ids,))
    rows = cursor.fetchall()
    return [LedgerEntry.from_row(tuple(r.values()) if isinstance(r, dict) else r) for r in rows]


# --- the event store's recorders, with the ledger ------------------------------------------


class _AuditedInserts:
    """The recorders' audit part: ``audit`` is set by the composition root; signed heads
    written in a transaction are appended to the witness once it has committed."""

    audit: AuditConfig = AuditConfig()

    def _insert_then_witness(
        self, insert: Any, stored_events: Sequence[StoredEvent], kwargs: dict[str, Any]
    ) -> Sequence[int] | None:
        heads: list[SignedHead] = []
        notification_ids: Sequence[int] | None = insert(
            stored_events, **kwargs, **{HEADS_KWARG: heads}
        )
        if heads and self.audit.witness is not None:
            try:
                self.audit.witness.append(heads)
            except OSError as error:
                # the events are committed: a failed append only leaves the witness behind
                # until the next append (verify checks the heads it holds)
                log.error("witness_append_failed", position=heads[-1].position, error=str(error))
        return notification_ids


class LedgerSQLiteRecorder(_AuditedInserts, SQLiteApplicationRecorder):
    """SQLite's application recorder that also writes the ledger rows passed to
    ``insert_events`` as ``command_ledger=...`` and the log chain entries of the events
    (``adapters.audit_log``), in the same transaction (the ledger also when there are
    no events)."""

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), SQLITE_DDL, *CHAIN_SQLITE_DDL]

    def convert_originator_id(self, originator_id: str) -> UUID | str:
        """A row whose aggregate id is not a UUID (SQLite keeps whatever a column is
        given) reads back as its text, so decoding names the damaged row
        (``adapters.mapper.stored_row_problem``) instead of the read failing."""
        try:
            return super().convert_originator_id(originator_id)
        except (ValueError, TypeError, AttributeError):
            return originator_id

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert_then_witness(super().insert_events, stored_events, kwargs)

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        sqlite_insert(c, entries_to_write(kwargs))
        refuse_stale_sqlite(c, self.events_table_name, kwargs)
        assert notification_ids is not None
        heads = heads_to_witness(kwargs)
        write_chain(c, None, stored_events, notification_ids, self.audit, heads)
        return notification_ids

    def chain_existing_events(self, refuse: Callable[[], None]) -> int:
        """Chain the events of a store written before the log chain (none chained, none
        signed yet), in pages; the next signed head anchors them. ``refuse`` raises when
        the store was chained before (its chain emptied). How many were chained."""
        chained, after = 0, 0
        with self.datastore.transaction(commit=True) as c:
            if not _unchained(c, _SQLITE_ANY_CHAINED):
                return 0
            while True:
                c.execute(
                    "SELECT rowid, originator_id, originator_version, topic, state FROM "  # noqa: S608
                    f"{self.events_table_name} WHERE rowid > ? ORDER BY rowid LIMIT ?",
                    (after, BACKFILL_PAGE),
                )
                rows = [tuple(row) for row in c.fetchall()]
                if not rows:
                    return chained
                if not chained:
                    refuse()
                _chain_rows(c, None, rows)
                chained, after = chained + len(rows), rows[-1][0]

    def ledger_entries(self, command_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        found: dict[str, LedgerEntry] = {}
        for chunk in chunks(command_ids):
            with self.datastore.transaction(commit=False) as c:
                found.update((e.command_id, e) for e in sqlite_select(c, chunk))
        return found


class LedgerPostgresRecorder(_AuditedInserts, PostgresApplicationRecorder):
    """PostgreSQL's application recorder that also writes the ledger rows passed to
    ``insert_events`` as ``command_ledger=...`` and the log chain entries of the events
    (``adapters.audit_log``: after the insert, under its table lock), in the same
    transaction (the ledger also when there are no events). Its tables are created
    with the event store's (under the DDL lock the application is opened with)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the events go as one binary array of the stored-event composite: the text
        # form hex-escapes and quotes every state with a regular expression in Python
        self.insert_events_statement = sql.SQL(
            "INSERT INTO {schema}.{table} AS t"
            " (originator_id, originator_version, topic, state)"
            " SELECT originator_id, originator_version, topic, state"
            " FROM unnest(%b::{schema}.{stored_event}[]) RETURNING notification_id"
        ).format(
            schema=sql.Identifier(self.datastore.schema),
            table=sql.Identifier(self.events_table_name),
            stored_event=sql.Identifier(self.stored_event_type_name),
        )
        self.sql_create_statements.append(postgres_ddl(self.datastore.schema))
        self.sql_create_statements.extend(chain_postgres_ddl(self.datastore.schema))
        if self.datastore.enable_db_functions:
            # eventsourcing's insert by a database function writes no ledger or chain rows
            log.warning("postgres_db_functions_ignored", setting="POSTGRES_ENABLE_DB_FUNCTIONS")
            self.datastore.enable_db_functions = False
        # created only when missing: CREATE INDEX takes a SHARE lock on the table even when
        # the index exists, which waits for a vacuum and makes every writer wait behind it
        index = self.notification_id_index_name
        self._notification_index = next(
            statement
            for statement in self.sql_create_statements
            if "CREATE UNIQUE INDEX" in statement.as_string() and index in statement.as_string()
        )
        self.sql_create_statements.remove(self._notification_index)
        # in place of eventsourcing's LOCK TABLE ... IN EXCLUSIVE MODE, which vacuum blocks
        self.lock_table_statements = list(
            postgres_write_lock(
                self.datastore.schema, self.events_table_name, self.datastore.lock_timeout
            )
        )

    def _create_table(self, curs: Cursor[DictRow]) -> None:
        super()._create_table(curs)
        index = sql.Identifier(self.datastore.schema, self.notification_id_index_name)
        curs.execute("SELECT to_regclass(%s) AS found", (index.as_string(curs),))
        found = curs.fetchone()
        if found is None or found["found"] is None:
            curs.execute(self._notification_index, prepare=False)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._insert_then_witness(super().insert_events, stored_events, kwargs)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        assert notification_ids is not None
        schema = sql.Identifier(self.datastore.schema)
        write_chain(
            curs, schema, stored_events, notification_ids, self.audit, heads_to_witness(kwargs)
        )
        return notification_ids

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        if stored_events or expected_versions(kwargs):
            # before the stale check and the ledger rows: every writer takes the lock first
            self._lock_table(curs)
        refuse_stale_postgres(self, curs, kwargs)
        postgres_insert(curs, self.datastore.schema, entries_to_write(kwargs))

    def chain_existing_events(self, refuse: Callable[[], None]) -> int:
        """Chain the events of a store written before the log chain (none chained, none
        signed yet), in pages, under the events table's lock; the next signed head
        anchors them. ``refuse`` raises when the store was chained before (its chain
        emptied). How many were chained."""
        schema = sql.Identifier(self.datastore.schema)
        any_chained = [
            sql.SQL("SELECT 1 FROM {}.{} LIMIT 1").format(schema, sql.Identifier(table))
            for table in (CHAIN_TABLE, HEADS_TABLE)
        ]
        events = sql.SQL(".").join([schema, sql.Identifier(self.events_table_name)])
        select = sql.SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(events)
        chained, after = 0, 0
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._lock_table(curs)
            if not _unchained(curs, any_chained):
                return 0
            while True:
                curs.execute(select, (after, BACKFILL_PAGE))
                rows = [tuple(row.values()) for row in curs.fetchall()]
                if not rows:
                    return chained
                if not chained:
                    refuse()
                _chain_rows(curs, schema, rows)
                chained, after = chained + len(rows), rows[-1][0]

    def ledger_entries(self, command_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        found: dict[str, LedgerEntry] = {}
        for chunk in chunks(command_ids):
            with self.datastore.get_connection() as conn, conn.cursor() as curs:
                found.update(
                    (e.command_id, e) for e in postgres_select(curs, self.datastore.schema, chunk)
                )
        return found


BACKFILL_PAGE = 5000


def _unchained(cursor: Any, queries: Sequence[Any]) -> bool:
    """None of ``queries`` (one ``SELECT 1 ... LIMIT 1`` per table) finds a row."""
    for query in queries:
        cursor.execute(query)
        if cursor.fetchone() is not None:
            return False
    return True


_SQLITE_ANY_CHAINED = (
    f"SELECT 1 FROM {CHAIN_TABLE} LIMIT 1",  # noqa: S608 - constant table names
    f"SELECT 1 FROM {HEADS_TABLE} LIMIT 1",  # noqa: S608
)


def _chain_rows(cursor: Any, schema: sql.Composable | None, rows: list[tuple[Any, ...]]) -> None:
    """Chain stored rows (position, originator id, version, topic, state), unsigned."""
    events = [
        StoredEvent(UUID(str(originator)), int(version), str(topic), bytes(state))
        for _, originator, version, topic, state in rows
    ]
    write_chain(cursor, schema, events, [int(r[0]) for r in rows], AuditConfig(), None)


def chain_existing_events(recorder: object, refuse: Callable[[], None]) -> int:
    """Chain the events of a store written before the log chain (see the recorders);
    ``refuse`` is called first, to raise when the store shows it was chained before."""
    if not isinstance(recorder, LedgerSQLiteRecorder | LedgerPostgresRecorder):
        return 0
    return recorder.chain_existing_events(refuse)


def attach_audit(recorder: object, audit: AuditConfig) -> None:
    """Have the event store's recorder sign heads with ``audit``'s key and witness them."""
    if not isinstance(recorder, _AuditedInserts):
        msg = f"the event store's recorder {type(recorder).__name__} does not chain the log"
        raise TypeError(msg)
    recorder.audit = audit


def ledger_recorder_topic(*, postgres: bool) -> str:
    """eventsourcing's APPLICATION_RECORDER_TOPIC for the store in use."""
    return get_topic(LedgerPostgresRecorder if postgres else LedgerSQLiteRecorder)
