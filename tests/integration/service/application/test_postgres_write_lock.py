"""PostgreSQL: the writers' lock (``adapters.write_lock``) lets a vacuum run beside a
write, and still keeps writers, including an older leadflow's, one at a time, whatever the
server's default isolation; and no write takes eventsourcing's database-function insert,
which bypasses the recorder."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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
from leadflow.bootstrap import open_application, verify_signed_log
from service.application import LeadflowApp
from tests.integration.service.application.test_signed_log_writers import (
    PER_WRITER,
    _signed,
    _write,
)
from tests.settings_helpers import settings_with

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
ROUNDS = 4  # writers per thread, for contention
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


_WAITING_ON_EVENTS = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass"
_WAITING_ON_ADVISORY = "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'advisory'"


def _waiting(dsn: str, query: str, app: LeadflowApp) -> bool:
    with psycopg.connect(dsn) as conn:
        params = (_events(app).as_string(conn),) if "%s" in query else ()
        row = conn.execute(query, params).fetchone()
    return bool(row and row[0])


def _capture(app: LeadflowApp) -> Callable[[], None]:
    def write() -> None:
        command = c.CaptureLead(lead="w@example.com", source="web", occurred_at=T0)
        assert app.handle(command).status == "applied"

    return write


def _beside(
    dsn: str, app: LeadflowApp, held: list[sql.Composed], waits: str, action: Callable[[], None]
) -> bool:
    """Run ``action`` while another transaction holds ``held``: whether it was seen
    waiting for a lock (``waits``: a pg_locks query) before it ended."""
    holder = _hold(dsn, held)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            done = pool.submit(action)
            waited = False
            deadline = time.monotonic() + 60  # a guard against hanging, not a timing
            while not (waited or done.done()) and time.monotonic() < deadline:
                waited = _waiting(dsn, waits, app)
                time.sleep(0.01)
            holder.rollback()  # lets a waiting action finish
            done.result()
    finally:
        holder.close()
    return waited


def test_a_write_goes_through_while_a_vacuum_holds_the_events_table(
    app: LeadflowApp, postgres_dsn: str
) -> None:
    vacuum = [_table_lock(app, VACUUM_LOCK)]
    assert not _beside(postgres_dsn, app, vacuum, _WAITING_ON_EVENTS, _capture(app))


def test_a_process_starts_on_the_store_while_a_vacuum_holds_the_events_table(
    app: LeadflowApp, postgres_dsn: str, tmp_path: Path
) -> None:
    recorder: Any = app.recorder
    settings = settings_with(
        data_dir=tmp_path, postgres_dsn=postgres_dsn, postgres_schema=recorder.datastore.schema
    )

    def start_and_write() -> None:
        with open_application(settings) as second:
            _capture(second)()

    vacuum = [_table_lock(app, VACUUM_LOCK)]
    assert not _beside(postgres_dsn, app, vacuum, _WAITING_ON_EVENTS, start_and_write)


def test_a_write_waits_for_a_writer_holding_the_lock(app: LeadflowApp, postgres_dsn: str) -> None:
    assert _beside(postgres_dsn, app, _writers_lock(app, 5), _WAITING_ON_ADVISORY, _capture(app))


@pytest.mark.parametrize("holder", ["writers_lock", "older_writer"])
def test_writers_exclude_each_other(app: LeadflowApp, postgres_dsn: str, holder: str) -> None:
    dsn = postgres_dsn
    first = _writers_lock(app, 5) if holder == "writers_lock" else _older_writer(app)
    held = _hold(dsn, first)
    try:
        for second in (_writers_lock(app, 1), _older_writer(app)):
            with psycopg.connect(dsn) as other, pytest.raises(psycopg.errors.LockNotAvailable):
                _run(other, second)
    finally:
        held.close()

    with psycopg.connect(dsn) as free:  # once released, a writer gets the lock at once
        _run(free, _writers_lock(app, 1))


def test_eventsourcing_database_function_insert_is_not_used(
    postgres_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """That insert writes no ledger row and no chain entry; the environment may ask for it."""
    monkeypatch.setenv("POSTGRES_ENABLE_DB_FUNCTIONS", "y")
    settings = settings_with(
        data_dir=tmp_path, postgres_dsn=postgres_dsn, postgres_schema=f"t_{uuid4().hex[:12]}"
    )
    with open_application(settings) as app:
        app.handle(
            c.CaptureLead(lead="f@example.com", source="web", occurred_at=T0, command_id="f-1")
        )
        assert "f-1" in app.ledger_entries(["f-1"])
        with psycopg.connect(postgres_dsn) as conn:
            chain = sql.Identifier(settings.store.postgres_schema, "leadflow_log_chain")
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(chain)).fetchone()
        assert row is not None and row[0] == app.recorder.max_notification_id()


def test_concurrent_writers_keep_one_chain_when_the_server_defaults_to_repeatable_read(
    postgres_dsn: str, tmp_path: Path
) -> None:
    """A role or DSN may make transactions repeatable read by default: a writer's snapshot
    would then be taken before it waits for the lock, and it would chain its events after
    a stale head (every verification after that reports the log as altered)."""
    repeatable_read = (
        f"{postgres_dsn}?options=-c%20default_transaction_isolation%3Drepeatable%5C%20read"
    )
    store = settings_with(
        data_dir=tmp_path / "data",
        postgres_dsn=repeatable_read,
        postgres_schema=f"t_{uuid4().hex[:12]}",
    )
    signed = _signed(store, tmp_path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(_write, [signed] * 4 * ROUNDS, range(4 * ROUNDS)))

    with open_application(signed) as app:
        result = verify_signed_log(signed, app)
    assert result.ok, result.problems
    assert result.events_checked == 4 * ROUNDS * PER_WRITER * 2
