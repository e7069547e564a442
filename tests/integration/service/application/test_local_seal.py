"""Without an audit key, snapshots are sealed with the local seal key (a sub-key of the
privacy master key): a fresh application uses a sealed snapshot without replaying its
lead's events, and one resealed under any other secret is refused. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from adapters.settings import Settings
from adapters.store_db import StoreDb
from domain import commands as c
from domain.aggregate import Snapshot
from leadflow.bootstrap import open_application
from service.snapshot_proof import ForgedSnapshot
from service.snapshot_seal import LocalSealKey, sealed

T0 = datetime(2026, 4, 6, 9, 0, tzinfo=UTC)
LEAD = "sealed-locally@example.com"


def _snapshot_row(settings: Settings) -> tuple[str, int, dict[str, object]]:
    with StoreDb(settings.store) as db:
        table = "stored_snapshots" if db.dialect == "sqlite" else "leadflow_snapshots"
        [(key, version, state)] = db.execute(
            "SELECT originator_id, originator_version, state FROM {t} "
            "ORDER BY originator_version DESC LIMIT 1",
            t=table,
        )
    return str(key), int(version), json.loads(bytes(state))


def _write_snapshot(settings: Settings, version: int, body: dict[str, object]) -> None:
    with StoreDb(settings.store) as db:
        table = "stored_snapshots" if db.dialect == "sqlite" else "leadflow_snapshots"
        db.execute(
            "UPDATE {t} SET state = ? WHERE originator_version = ?",
            (json.dumps(body).encode(), version),
            t=table,
        )


def test_snapshots_are_sealed_locally_and_a_reseal_under_another_secret_is_refused(
    store_settings: Settings,
) -> None:
    settings = store_settings.model_copy(
        update={"store": store_settings.store.model_copy(update={"snapshot_interval": 3})}
    )
    with open_application(settings) as app:
        app.handle(c.CaptureLead(lead=LEAD, source="web", occurred_at=T0))
        for minute in (1, 2):
            app.handle(
                c.LogContact(lead=LEAD, channel="call", occurred_at=T0 + timedelta(minutes=minute))
            )
        owner_before, latest = app.get_lead(LEAD).owner, app.get_lead(LEAD).version
    key, version, body = _snapshot_row(settings)
    assert str(body["seal_key_id"]).startswith("local:")

    with open_application(settings) as fresh:
        assert fresh.get_lead(LEAD).version == latest  # from the sealed snapshot

    snapshot = Snapshot.model_validate(
        {**body, "originator_id": UUID(key), "originator_version": version}
    )
    forged_state = {**snapshot.state, "owner": "mallory"}
    resealed = sealed(
        snapshot.model_copy(update={"state": forged_state, "seal": None, "seal_key_id": None}),
        [LocalSealKey(b"an attacker's guess" * 2)],
    ).model_copy(update={"seal_key_id": body["seal_key_id"]})  # claims the real key's id
    stored = resealed.model_dump(mode="json", exclude={"originator_id", "originator_version"})
    _write_snapshot(settings, version, stored)
    with open_application(settings) as fresh, pytest.raises(ForgedSnapshot, match="owner"):
        fresh.get_lead(LEAD)
    assert owner_before != "mallory"
