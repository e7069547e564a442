"""PostgreSQL: the writers' lock (``adapters.write_lock``) lets a vacuum run beside a
write, and still keeps writers, including an older leadflow's, one at a time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg import sql

from adapters.write_lock import postgres_write_lock
from domain import commands as c
from leadflow.bootstrap import open_application
from service.application import LeadflowApp
from tests.settings_helpers import settings_with

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
VACUUM_LOCK = "SHARE UPDATE EXCLUSIVE"  # what VACUUM and ANALYZE take
OLDER_WRITERS_LOCK = "EXCLUSIVE"  # what eventsourcing's own insert (and older leadflow) takes


@pytest.fixture
def app(postgres_dsn: str, tmp_path: Path) -> Iterator[LeadflowApp]:
    settings = settings_with(
        data_dir=tmp_path, postgres_dsn=postgres_dsn, postgres_schema=f"t_{uuid4().hex[:12]}"
    )
    with open_application(settings) as application:
        yield application


def _events(app: LeadflowApp) -> sql.Composed:
    recorder: Any = app.recorder
    return sql.SQL(".").join(
        [sql.Identifier(recorder.datastore.schema), sql.Identifier(recorder.events_table_name)]
    )


def _writers_lock(app: LeadflowApp, timeout_seconds: int) -> list[sql.Composed]:
    recorder: Any = app.recorder
    return postgres_write_lock(
        recorder.datastore.schema, recorder.events_table_name, timeout_seconds
    )


def _older_writer(app: LeadflowApp) -> list[sql.Composed]:
    timeout = sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal("1s"))
    return [timeout, _table_lock(app, OLDER_WRITERS_LOCK)]


def _table_lock(app: LeadflowApp, mode: str) -> sql.Composed:
    return sql.SQL("LOCK TABLE {} IN {} MODE").format(_events(app), sql.SQL(mode))


def _run(conn: psycopg.Connection[Any], statements: list[sql.Composed]) -> None:
    for statement in statements:
        conn.execute(statement)


def _hold(dsn: str, statements: list[sql.Composed]) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn)  # a transaction stays open until the caller closes it
    _run(conn, statements)
    return conn


def _waiting_on_events(dsn: str, app: LeadflowApp) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
            (_events(app).as_string(conn),),
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_write_goes_through_while_a_vacuum_holds_the_events_table(
    app: LeadflowApp, postgres_dsn: str
) -> None:
    dsn = postgres_dsn
    vacuum = _hold(dsn, [_table_lock(app, VACUUM_LOCK)])
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            write = pool.submit(
                app.handle, c.CaptureLead(lead="v@example.com", source="web", occurred_at=T0)
            )
            waited = 0
            deadline = time.monotonic() + 60  # a guard against hanging, not a timing
            while not write.done() and time.monotonic() < deadline:
                waited = max(waited, _waiting_on_events(dsn, app))
                if waited:
                    break
                time.sleep(0.01)
            if not write.done():
                vacuum.rollback()  # lets a blocked write finish, so the pool can close
    finally:
        vacuum.close()

    assert waited == 0, "the write waited for the vacuum's lock on the events table"
    assert write.result().status == "applied"


@pytest.mark.parametrize("holder", ["writers_lock", "older_writer"])
def test_writers_exclude_each_other(app: LeadflowApp, postgres_dsn: str, holder: str) -> None:
    dsn = postgres_dsn
    first = _writers_lock(app, 0) if holder == "writers_lock" else _older_writer(app)
    held = _hold(dsn, first)
    try:
        for second in (_writers_lock(app, 1), _older_writer(app)):
            with psycopg.connect(dsn) as other, pytest.raises(psycopg.errors.LockNotAvailable):
                _run(other, second)
    finally:
        held.close()

    with psycopg.connect(dsn) as free:  # once released, a writer gets the lock at once
        _run(free, _writers_lock(app, 1))
