"""Every PostgreSQL connection leadflow opens honours the whole DSN, not only its host,
port, database, user and password: the server reports back the DSN's
``application_name`` for the event store's pool, the stream's side tables and the read
model alike."""

from __future__ import annotations

import threading
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from adapters.settings import Settings
from leadflow import bootstrap
from tests.settings_helpers import settings_with

pytestmark = pytest.mark.postgres


def _settings(postgres_dsn: str, tmp_path: Path, application_name: str) -> Settings:
    return settings_with(
        data_dir=tmp_path,
        postgres_dsn=make_conninfo(postgres_dsn, application_name=application_name),
        postgres_schema=f"t_{uuid4().hex[:12]}",
    )


def _sessions_named(postgres_dsn: str, application_name: str) -> int:
    with psycopg.connect(postgres_dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_event_store_connects_with_the_whole_dsn(postgres_dsn: str, tmp_path: Path) -> None:
    name = f"leadflow-dsn-test-{uuid4().hex[:8]}"
    with bootstrap.open_application(_settings(postgres_dsn, tmp_path, name)) as app:
        assert app.recorder.max_notification_id() is None
        assert _sessions_named(postgres_dsn, name) >= 1


def test_the_side_tables_connect_with_the_whole_dsn(postgres_dsn: str, tmp_path: Path) -> None:
    name = f"leadflow-dsn-test-{uuid4().hex[:8]}"
    with bootstrap.open_store_db(_settings(postgres_dsn, tmp_path, name)) as db:
        assert db.execute("SELECT current_setting('application_name')") == [(name,)]


def test_the_read_model_connects_with_the_whole_dsn(postgres_dsn: str, tmp_path: Path) -> None:
    name = f"leadflow-dsn-test-{uuid4().hex[:8]}"
    with bootstrap.open_read_model(_settings(postgres_dsn, tmp_path, name)):
        assert _sessions_named(postgres_dsn, name) == 1


def test_the_relay_lock_and_wake_up_connect_with_the_whole_dsn(
    postgres_dsn: str, tmp_path: Path
) -> None:
    name = f"leadflow-dsn-test-{uuid4().hex[:8]}"
    settings = _settings(postgres_dsn, tmp_path, name)
    lock = bootstrap.relay_lock(settings)
    assert lock.try_acquire(), lock.problem
    try:
        assert _sessions_named(postgres_dsn, name) == 1
    finally:
        lock.release()
    with bootstrap.open_application(settings) as app:
        signal = bootstrap.new_events_signal(settings, app, poll_interval=0.05)
        stop = threading.Event()
        stop.set()
        try:
            signal.wait(stop)
            assert _sessions_named(postgres_dsn, name) >= 2  # the pool and the listener
        finally:
            signal.close()
