"""A long-running application holding a lead in its cache while an attacker edits that
lead's stored snapshot: reads refuse the snapshot, the next snapshot is taken from the
cached state its events gave, not built from the forged one (its command's events are
stored, nothing is raised after the commit), and the forged one stays reported. On SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from adapters.settings import Settings
from adapters.store_db import StoreDb
from domain import commands as c
from leadflow.bootstrap import open_application
from service.application import LeadflowApp
from service.snapshot_proof import ForgedSnapshot

T0 = datetime(2026, 4, 6, 9, 0, tzinfo=UTC)
LEAD = "cached@example.com"


def _forge_latest_snapshot(settings: Settings, lead_id: UUID) -> int:
    """Edit the owner in the lead's latest stored snapshot; its version."""
    with StoreDb(settings.store) as db:
        sqlite = db.dialect == "sqlite"
        table = "stored_snapshots" if sqlite else "leadflow_snapshots"
        key = lead_id.hex if sqlite else lead_id
        [(version, state)] = db.execute(
            "SELECT originator_version, state FROM {t} WHERE originator_id = ? "
            "ORDER BY originator_version DESC LIMIT 1",
            (key,),
            t=table,
        )
        snapshot = json.loads(bytes(state))
        snapshot["state"]["owner"] = "mallory"
        db.execute(
            "UPDATE {t} SET state = ? WHERE originator_id = ? AND originator_version = ?",
            (json.dumps(snapshot).encode(), key, version),
            t=table,
        )
    return int(version)


def _stored_snapshots(app: LeadflowApp, lead_id: UUID) -> list[StoredEvent]:
    assert app.snapshots is not None
    return list(app.snapshots.recorder.select_events(lead_id))


def test_a_cached_lead_never_builds_a_snapshot_on_a_forged_one(store_settings: Settings) -> None:
    settings = store_settings.model_copy(
        update={"store": store_settings.store.model_copy(update={"snapshot_interval": 2})}
    )
    at = [T0 + timedelta(minutes=m) for m in range(5)]
    with open_application(settings) as app:
        app.handle(c.CaptureLead(lead=LEAD, source="web", occurred_at=at[0]))
        app.handle(c.MarkMql(lead=LEAD, occurred_at=at[1]))
        app.handle(c.AcceptLead(lead=LEAD, owner="ae-1", occurred_at=at[1]))
        lead_id = app.resolve_lead(LEAD)
        versions = app.get_lead(LEAD).version
        snapshot_at = _forge_latest_snapshot(settings, lead_id)

        with pytest.raises(ForgedSnapshot, match="differs from its events in owner"):
            app.get_lead(LEAD)
        for minute in (2, 3):  # from the cache: the forged snapshot is not read
            app.handle(c.LogContact(lead=LEAD, channel="call", occurred_at=at[minute]))

        assert app.events_of(lead_id)[-1].originator_version == versions + 2
        assert app.verify_chain(lead_id).ok
        assert [s.originator_version for s in _stored_snapshots(app, lead_id)] == list(
            range(2, versions + 3, 2)
        )
        [problem] = app.snapshot_problems(lead_id)  # the newer snapshot is genuine
        assert f"stored snapshot {snapshot_at} of aggregate {lead_id} differs" in problem
    with open_application(settings) as fresh:  # loads from the newer, genuine snapshot
        assert fresh.get_lead(LEAD).owner == "ae-1"
