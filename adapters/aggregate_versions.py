"""Ask the event store about many aggregates in one query instead of one query each.

``latest_versions`` answers both "which of these exist?" and "has anyone written to
these since I read them?". SQLite and PostgreSQL recorders get one statement per chunk
of ids; any other recorder is asked aggregate by aggregate.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from itertools import islice
from typing import Any
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

CHUNK = 500  # ids per statement: well under SQLite's limit on bound parameters


def latest_versions(recorder: AggregateRecorder, ids: Collection[UUID]) -> dict[UUID, int]:
    """The highest stored version of each of ``ids`` that has events (absent: no events)."""
    found: dict[UUID, int] = {}
    for chunk in chunks(list(dict.fromkeys(ids)), CHUNK):
        if isinstance(recorder, SQLiteAggregateRecorder):
            found.update(_sqlite(recorder, chunk))
        elif isinstance(recorder, PostgresAggregateRecorder):
            found.update(_postgres(recorder, chunk))
        else:
            found.update(_one_by_one(recorder, chunk))
    return found


def _sqlite(recorder: SQLiteAggregateRecorder, ids: Sequence[UUID]) -> dict[UUID, int]:
    with recorder.datastore.transaction(commit=False) as cursor:
        return sqlite_versions(cursor, recorder.events_table_name, ids)


def sqlite_versions(cursor: Any, table: str, ids: Sequence[UUID]) -> dict[UUID, int]:
    """``latest_versions`` on an open SQLite cursor (e.g. in a write's transaction)."""
    found: dict[UUID, int] = {}
    for chunk in chunks(list(ids), CHUNK):
        marks = ",".join("?" * len(chunk))
        statement = (
            f"SELECT originator_id, MAX(originator_version) AS version "  # noqa: S608 - no input
            f"FROM {table} WHERE originator_id IN ({marks}) "
            f"GROUP BY originator_id"
        )
        cursor.execute(statement, [i.hex for i in chunk])
        found.update(
            (UUID(str(row["originator_id"])), int(row["version"])) for row in cursor.fetchall()
        )
    return found


def _postgres(recorder: PostgresAggregateRecorder, ids: Sequence[UUID]) -> dict[UUID, int]:
    with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
        return postgres_versions(cursor, recorder, ids)


def postgres_versions(
    cursor: Any, recorder: PostgresAggregateRecorder, ids: Sequence[UUID]
) -> dict[UUID, int]:
    """``latest_versions`` on an open PostgreSQL cursor (e.g. in a write's transaction)."""
    statement = SQL(
        "SELECT originator_id, MAX(originator_version) AS version FROM {schema}.{table} "
        "WHERE originator_id = ANY(%s) GROUP BY originator_id"
    ).format(
        schema=Identifier(recorder.datastore.schema),
        table=Identifier(recorder.events_table_name),
    )
    cursor.execute(statement, (postgres_ids(recorder, ids),), prepare=True)
    return {UUID(str(row["originator_id"])): int(row["version"]) for row in cursor.fetchall()}


def postgres_ids(recorder: PostgresAggregateRecorder, ids: Sequence[UUID]) -> list[Any]:
    """``ids`` as a parameter for the recorder's ``originator_id`` column."""
    return [str(i) for i in ids] if recorder.datastore.originator_id_type == "text" else list(ids)


def _one_by_one(recorder: AggregateRecorder, ids: Sequence[UUID]) -> dict[UUID, int]:
    found: dict[UUID, int] = {}
    for aggregate_id in ids:
        latest = recorder.select_events(aggregate_id, desc=True, limit=1)
        if latest:
            found[aggregate_id] = latest[0].originator_version
    return found


def chunks(ids: list[UUID], size: int) -> Iterator[list[UUID]]:
    """``ids`` in consecutive lists of at most ``size``."""
    it = iter(ids)
    while chunk := list(islice(it, size)):
        yield chunk
