"""Read the stored records of many aggregates in one query instead of one query each.

``snapshots_and_events`` gives each aggregate's latest snapshot and its events from the
snapshot's version on: one statement on PostgreSQL (both tables in one schema), else
``latest_records`` (each aggregate's last record) then ``events_after`` (each
aggregate's records after a version of its own). SQLite and PostgreSQL recorders get one
statement per chunk of ids; any other recorder is asked aggregate by aggregate, as
eventsourcing's repository would.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    InterfaceError,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from adapters.aggregate_versions import chunks, postgres_ids

_Read = TypeVar("_Read", bound=Callable[..., Any])

CHUNK = 400  # ids per statement: two bound parameters each, under SQLite's limit


# As eventsourcing's own PostgreSQL reads: a pooled connection broken by a server restart
# is discarded when it fails, and the read is tried again on another one.
def _reconnecting(read: _Read) -> _Read:
    return cast("_Read", retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)(read))


def reads_at_once(recorder: AggregateRecorder) -> bool:
    """Whether this recorder answers for many aggregates in one statement."""
    return isinstance(recorder, SQLiteAggregateRecorder | PostgresAggregateRecorder)


def snapshots_and_events(
    events: AggregateRecorder, snapshots: AggregateRecorder | None, ids: Collection[UUID]
) -> tuple[dict[UUID, StoredEvent], dict[UUID, list[StoredEvent]]]:
    """Each aggregate's latest stored snapshot (absent: none), and its stored events from
    that snapshot's version on, or all of them without one, in version order (absent:
    none)."""
    wanted = list(dict.fromkeys(ids))
    if snapshots is None:
        return {}, events_after(events, dict.fromkeys(wanted, 0))
    if (
        isinstance(events, PostgresAggregateRecorder)
        and isinstance(snapshots, PostgresAggregateRecorder)
        and events.datastore is snapshots.datastore
    ):
        found: tuple[dict[UUID, StoredEvent], dict[UUID, list[StoredEvent]]] = ({}, {})
        for chunk in chunks(wanted, CHUNK):
            _postgres_both(events, snapshots.events_table_name, chunk, *found)
        return found
    latest = latest_records(snapshots, wanted)
    after = {i: latest[i].originator_version - 1 if i in latest else 0 for i in wanted}
    return latest, events_after(events, after)


def events_after(
    recorder: AggregateRecorder, after: Mapping[UUID, int]
) -> dict[UUID, list[StoredEvent]]:
    """Each aggregate's stored records with a version above ``after[id]``, in version
    order (an aggregate with none is absent)."""
    found: dict[UUID, list[StoredEvent]] = {}
    for chunk in chunks(list(after), CHUNK):
        bounds = {i: after[i] for i in chunk}
        if isinstance(recorder, SQLiteAggregateRecorder):
            rows = _sqlite_after(recorder, bounds)
        elif isinstance(recorder, PostgresAggregateRecorder):
            rows = _postgres_after(recorder, bounds)
        else:
            rows = [e for i, v in bounds.items() for e in recorder.select_events(i, gt=v)]
        for event in rows:
            found.setdefault(_uuid(event.originator_id), []).append(event)
    return found


def latest_records(recorder: AggregateRecorder, ids: Collection[UUID]) -> dict[UUID, StoredEvent]:
    """Each aggregate's stored record of the highest version (absent: none stored)."""
    found: dict[UUID, StoredEvent] = {}
    for chunk in chunks(list(dict.fromkeys(ids)), CHUNK):
        if isinstance(recorder, SQLiteAggregateRecorder):
            rows = _sqlite_latest(recorder, chunk)
        elif isinstance(recorder, PostgresAggregateRecorder):
            rows = _postgres_latest(recorder, chunk)
        else:
            rows = [e for i in chunk for e in recorder.select_events(i, desc=True, limit=1)]
        found.update((_uuid(event.originator_id), event) for event in rows)
    return found


def _sqlite_after(
    recorder: SQLiteAggregateRecorder, after: Mapping[UUID, int]
) -> list[StoredEvent]:
    values = ",".join("(?,?)" for _ in after)
    statement = (
        f"WITH wanted(id, gt) AS (VALUES {values}) "  # noqa: S608 - no input in the text
        f"SELECT e.* FROM wanted JOIN {recorder.events_table_name} AS e "
        "ON e.originator_id = wanted.id AND e.originator_version > wanted.gt "
        "ORDER BY e.originator_id, e.originator_version"
    )
    params = [p for i, v in after.items() for p in (i.hex, v)]
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, params)
        return [_sqlite_row(recorder, row) for row in cursor.fetchall()]


def _sqlite_latest(recorder: SQLiteAggregateRecorder, ids: Sequence[UUID]) -> list[StoredEvent]:
    marks = ",".join("?" * len(ids))
    table = recorder.events_table_name
    statement = (
        f"SELECT e.* FROM {table} AS e WHERE e.originator_id IN ({marks}) "  # noqa: S608
        f"AND e.originator_version = (SELECT MAX(m.originator_version) FROM {table} AS m "
        "WHERE m.originator_id = e.originator_id)"
    )
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, [i.hex for i in ids])
        return [_sqlite_row(recorder, row) for row in cursor.fetchall()]


def _sqlite_row(recorder: SQLiteAggregateRecorder, row: Any) -> StoredEvent:
    return StoredEvent(
        originator_id=recorder.convert_originator_id(row["originator_id"]),
        originator_version=row["originator_version"],
        topic=row["topic"],
        state=row["state"],
    )


def _postgres_after(
    recorder: PostgresAggregateRecorder, after: Mapping[UUID, int]
) -> list[StoredEvent]:
    id_type = "text" if recorder.datastore.originator_id_type == "text" else "uuid"
    statement = SQL(
        "SELECT e.* FROM unnest(%s::{id_type}[], %s::bigint[]) AS w(id, gt) "
        "JOIN {schema}.{table} AS e "
        "ON e.originator_id = w.id AND e.originator_version > w.gt "
        "ORDER BY e.originator_id, e.originator_version"
    ).format(
        id_type=SQL(id_type),
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    params = (postgres_ids(recorder, list(after)), list(after.values()))
    return _postgres_rows(recorder, statement, params)


def _postgres_latest(recorder: PostgresAggregateRecorder, ids: Sequence[UUID]) -> list[StoredEvent]:
    statement = SQL(
        "SELECT DISTINCT ON (originator_id) * FROM {schema}.{table} "
        "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version DESC"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    return _postgres_rows(recorder, statement, (postgres_ids(recorder, ids),))


@_reconnecting
def _postgres_both(
    events: PostgresAggregateRecorder,
    snapshots_table: str,
    ids: Sequence[UUID],
    latest: dict[UUID, StoredEvent],
    after: dict[UUID, list[StoredEvent]],
) -> None:
    statement = SQL(
        "WITH s AS (SELECT DISTINCT ON (originator_id) originator_id, originator_version,"
        " topic, state FROM {schema}.{snapshots} WHERE originator_id = ANY(%s)"
        " ORDER BY originator_id, originator_version DESC) "
        "SELECT true AS snapshot, originator_id, originator_version, topic, state FROM s "
        "UNION ALL "
        "SELECT false, e.originator_id, e.originator_version, e.topic, e.state"
        " FROM unnest(%s::{id_type}[]) AS w(id) LEFT JOIN s ON s.originator_id = w.id"
        " JOIN {schema}.{events} AS e ON e.originator_id = w.id"
        " AND e.originator_version >= COALESCE(s.originator_version, 0) "
        "ORDER BY 2, 3"
    ).format(
        id_type=SQL("text" if events.datastore.originator_id_type == "text" else "uuid"),
        schema=Identifier(events.datastore.schema),
        snapshots=Identifier(snapshots_table),
        events=Identifier(events.events_table_name),
    )
    params = postgres_ids(events, ids)
    with events.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, (params, params), prepare=True)
        for row in cursor.fetchall():
            record = StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            aggregate_id = _uuid(record.originator_id)
            if row["snapshot"]:
                latest[aggregate_id] = record
            else:
                after.setdefault(aggregate_id, []).append(record)


@_reconnecting
def _postgres_rows(
    recorder: PostgresAggregateRecorder, statement: Any, params: Sequence[Any]
) -> list[StoredEvent]:
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        cursor.execute(statement, params, prepare=True)
        return [
            StoredEvent(
                originator_id=row["originator_id"],
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
            for row in cursor.fetchall()
        ]


def _uuid(originator_id: UUID | str) -> UUID:
    return originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))
