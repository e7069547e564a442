"""Erasing a lead's personal columns in a SQLite read model leaves no copy of the old
values in its write-ahead log while the model stays open (a running projector's)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from domain import commands as c
from projections.catch_up import catch_up
from projections.erased_facts import erase_personal_facts
from projections.store import SqliteStore
from tests.integration.projections.helpers import event_store

AT = datetime(2026, 3, 1, tzinfo=UTC)
EMAIL = "wal-probe-lf13@privacy-probe.example"


def test_erasure_empties_the_read_models_write_ahead_log(tmp_path: Path) -> None:
    capture = c.CaptureLead(lead=EMAIL, source="web", occurred_at=AT)
    _, app = event_store(tmp_path / "data", [capture])
    lead_id = app.get_lead(EMAIL).id
    path = tmp_path / "rm.sqlite3"
    store = SqliteStore(path, app.stage_model)
    try:
        catch_up(app, store)
        wal = path.with_name(path.name + "-wal")
        files = (path, wal)
        assert any(EMAIL.encode() in f.read_bytes() for f in files if f.exists())

        erase_personal_facts(store, lead_id, [])

        assert wal.stat().st_size == 0
        assert [f.name for f in files if EMAIL.encode() in f.read_bytes()] == []
    finally:
        store.close()
        app.close()
