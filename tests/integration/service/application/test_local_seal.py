"""Without an audit key, snapshots are sealed with the local seal key (a sub-key of the
privacy master key): a fresh application uses a sealed snapshot without replaying its
lead's events, and one resealed under any other secret is refused. On SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from adapters.audit_keys import generate_key_pair
from adapters.audit_settings import AuditSettings
from adapters.settings import Settings
from adapters.store_db import StoreDb
from domain import commands as c
from domain.aggregate import Snapshot
from leadflow.bootstrap import open_application, privacy_master_key
from service.snapshot_proof import ForgedSnapshot
from service.snapshot_seal import LOCAL_SEAL_LABEL, LocalSealKey, sealed

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


def _every_third(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"store": settings.store.model_copy(update={"snapshot_interval": 3})}
    )


def _reseal_with_owner(
    settings: Settings, owner: str, key: LocalSealKey, *, claimed_key_id: str | None = None
) -> None:
    """What an attacker with the database (and ``key``) does: edit, reseal, write back."""
    key_text, version, body = _snapshot_row(settings)
    snapshot = Snapshot.model_validate(
        {**body, "originator_id": UUID(key_text), "originator_version": version}
    )
    unsealed = snapshot.model_copy(
        update={"state": {**snapshot.state, "owner": owner}, "seal": None, "seal_key_id": None}
    )
    resealed = sealed(unsealed, key)
    if claimed_key_id is not None:
        resealed = resealed.model_copy(update={"seal_key_id": claimed_key_id})
    stored = resealed.model_dump(mode="json", exclude={"originator_id", "originator_version"})
    _write_snapshot(settings, version, stored)


def test_with_an_audit_key_a_snapshot_resealed_with_the_local_key_is_refused(
    store_settings: Settings, tmp_path: Path
) -> None:
    """The local key's file sits in the data directory: it must not vouch for a snapshot
    when the audit key is what the store's tamper evidence rests on."""
    audit_key = tmp_path / "audit.pem"
    generate_key_pair(audit_key)
    settings = _every_third(store_settings).model_copy(
        update={"audit": AuditSettings(key_file=audit_key)}
    )
    with open_application(settings) as app:
        app.handle(c.CaptureLead(lead=LEAD, source="web", occurred_at=T0))
        app.handle(c.LogContact(lead=LEAD, channel="call", occurred_at=T0 + timedelta(minutes=1)))
    local = LocalSealKey(privacy_master_key(settings).derive(LOCAL_SEAL_LABEL))
    _reseal_with_owner(settings, "mallory", local)
    with open_application(settings) as fresh, pytest.raises(ForgedSnapshot, match="owner"):
        fresh.get_lead(LEAD)


def test_snapshots_are_sealed_locally_and_a_reseal_under_another_secret_is_refused(
    store_settings: Settings,
) -> None:
    settings = _every_third(store_settings)
    with open_application(settings) as app:
        app.handle(c.CaptureLead(lead=LEAD, source="web", occurred_at=T0))
        for minute in (1, 2):
            app.handle(
                c.LogContact(lead=LEAD, channel="call", occurred_at=T0 + timedelta(minutes=minute))
            )
        owner_before, latest = app.get_lead(LEAD).owner, app.get_lead(LEAD).version
    _, _, body = _snapshot_row(settings)
    assert str(body["seal_key_id"]).startswith("local:")

    with open_application(settings) as fresh:
        assert fresh.get_lead(LEAD).version == latest  # from the sealed snapshot

    guess = LocalSealKey(b"an attacker's guess" * 2)
    _reseal_with_owner(settings, "mallory", guess, claimed_key_id=str(body["seal_key_id"]))
    with open_application(settings) as fresh, pytest.raises(ForgedSnapshot, match="owner"):
        fresh.get_lead(LEAD)
    assert owner_before != "mallory"
