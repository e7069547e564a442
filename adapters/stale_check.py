"""A write decided on cached aggregates is refused, in its own transaction, when one of
them has moved on since it was cached.

The unit of work (``service.unit_of_work``) decides a batch on cached aggregates. One it
changed meets the store's unique (id, version) on insert; one it only read (a refusal
or a duplicate was decided on it) is named with its cached version in
``expected_versions=`` of the save, and the recorders check those versions here, after
taking the write lock (PostgreSQL: the writers' lock of ``adapters.write_lock``;
SQLite: checked after the transaction's first write), so that no other writer can slip
in between the check and the commit. A moved aggregate raises ``StaleAggregates`` (an
``IntegrityError``): the transaction rolls back, with its command ledger rows, and the
batch is decided again on fresh state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.postgres import PostgresApplicationRecorder

from adapters.aggregate_versions import postgres_versions, sqlite_versions

EXPECTED_VERSIONS_KWARG = "expected_versions"


class StaleAggregates(IntegrityError):
    def __init__(self, moved: list[UUID]) -> None:
        self.moved = moved
        super().__init__(f"cached aggregates moved on before the write: {moved}")


def expected_versions(kwargs: Mapping[str, Any]) -> Mapping[UUID, int]:
    expected: Mapping[UUID, int] = kwargs.get(EXPECTED_VERSIONS_KWARG) or {}
    return expected


def refuse_stale_sqlite(cursor: Any, events_table: str, kwargs: Mapping[str, Any]) -> None:
    """Call after the transaction's first write (SQLite then holds the write lock)."""
    expected = expected_versions(kwargs)
    if expected:
        _refuse_moved(expected, sqlite_versions(cursor, events_table, list(expected)))


def refuse_stale_postgres(
    recorder: PostgresApplicationRecorder, cursor: Any, kwargs: Mapping[str, Any]
) -> None:
    """Call under the writers' lock (the recorder takes it before any row)."""
    expected = expected_versions(kwargs)
    if expected:
        _refuse_moved(expected, postgres_versions(cursor, recorder, list(expected)))


def _refuse_moved(expected: Mapping[UUID, int], latest: Mapping[UUID, int]) -> None:
    moved = [i for i, version in expected.items() if latest.get(i, 0) > version]
    if moved:
        raise StaleAggregates(moved)
