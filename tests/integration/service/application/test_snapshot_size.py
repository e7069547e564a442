"""Snapshots stay small however many commands a lead got, with ids or without.

A command without ``command_id`` gets a generated causation id that nobody can send
again, and is not recorded. Explicit command ids are kept by the command ledger, not by
the aggregate: a resent one is still a duplicate after the lead was loaded from a
snapshot by a fresh application, and the snapshot does not grow with them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from pydantic import ValidationError

from adapters.settings import Settings
from domain import commands as c
from domain.aggregate import GENERATED_CAUSATION_PREFIX, EventContext
from domain.errors import DomainError
from domain.lead import Lead
from leadflow.bootstrap import open_application
from service.application import LeadflowApp
from tests.settings_helpers import settings_with

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LEAD = "long@example.com"
INTERVAL = 50
ANONYMOUS_CONTACTS = 400
MAX_SNAPSHOT_BYTES = 1024


def contact(n: int, command_id: str | None = None) -> c.LogContact:
    return c.LogContact(
        lead=LEAD,
        channel="email",
        outcome=f"sent {n}",
        occurred_at=T0 + timedelta(minutes=n),
        command_id=command_id,
    )


def latest_snapshot(app: LeadflowApp, lead_id: UUID) -> tuple[int, bytes]:
    assert app.snapshots is not None
    stored = app.snapshots.recorder.select_events(lead_id, desc=True, limit=1)
    assert stored, "no snapshot was taken"
    return stored[0].originator_version, stored[0].state


def test_snapshot_of_a_lead_with_many_anonymous_commands_stays_small(
    store_settings: Settings,
) -> None:
    settings = store_settings.with_store(snapshot_interval=INTERVAL)
    with open_application(settings) as app:
        app.handle(c.CaptureLead(lead=LEAD, source="web", occurred_at=T0))
        app.handle_many([contact(n) for n in range(ANONYMOUS_CONTACTS)])
        lead_id = app.ids.lead(LEAD)
        version, state = latest_snapshot(app, lead_id)
        lead = app.get_lead(LEAD)
        causations = {e.causation_id for e in app.events_of(lead_id)}

    assert version >= ANONYMOUS_CONTACTS
    assert len(state) < MAX_SNAPSHOT_BYTES, f"snapshot of {len(state)} bytes"
    assert "causations" not in lead.model_dump()
    assert all(cause.startswith(GENERATED_CAUSATION_PREFIX) for cause in causations)


def test_command_ids_stay_idempotent_after_a_snapshot(store_settings: Settings) -> None:
    settings = store_settings.with_store(snapshot_interval=INTERVAL)
    with open_application(settings) as app:
        app.handle(c.CaptureLead(lead=LEAD, source="web", occurred_at=T0, command_id="cap-1"))
        app.handle(contact(0, command_id="crm-call-1"))
        app.handle_many([contact(n) for n in range(1, 2 * INTERVAL)])
        version_before, _ = latest_snapshot(app, app.ids.lead(LEAD))
        stored_version = app.get_lead(LEAD).version

    assert version_before > 2
    with open_application(settings) as fresh:
        resent = fresh.handle_many(
            [
                contact(0, command_id="crm-call-1"),
                c.CaptureLead(lead=LEAD, source="web", occurred_at=T0, command_id="cap-1"),
            ]
        )
        lead = fresh.get_lead(LEAD)
        recorded = fresh.ledger_entries(["cap-1", "crm-call-1", "unknown"])

    assert [r.status for r in resent if not isinstance(r, DomainError)] == ["duplicate"] * 2
    assert lead.version == stored_version
    assert recorded.keys() == {"cap-1", "crm-call-1"}


def test_a_command_id_in_the_generated_namespace_is_refused() -> None:
    with pytest.raises(ValidationError, match="reserves for commands sent without an id"):
        contact(1, command_id=f"{GENERATED_CAUSATION_PREFIX}mine")


def test_a_batch_asks_once_which_leads_exist_and_still_decides_right(
    store_settings: Settings,
) -> None:
    with open_application(store_settings) as first:
        first.handle(c.CaptureLead(lead="known@example.com", source="web", occurred_at=T0))
        known_id = first.resolve_lead("known@example.com")
    with open_application(store_settings) as app:
        results = app.handle_many(
            [
                c.CaptureLead(
                    lead="known@example.com",
                    source="web",
                    attributes={"industry": "saas"},
                    occurred_at=T0,
                ),
                c.CaptureLead(lead="new@example.com", source="web", occurred_at=T0),
                c.LogContact(lead=str(known_id), channel="call", occurred_at=T0),
                c.MarkMql(lead="new@example.com", occurred_at=T0),
            ]
        )
        known = app.get_lead("known@example.com")
        new = app.get_lead("new@example.com")

    assert [getattr(r, "status", r) for r in results] == ["applied"] * 4
    assert known.attributes == {"industry": "saas"} and known.version > 1
    assert new.stage == "mql"


def test_command_ids_do_not_grow_the_snapshot(store_settings: Settings) -> None:
    """Each command carries its own id, as the ingest's do: the ledger keeps them, the
    lead does not, so its snapshot is as small as without ids."""
    settings = store_settings.with_store(snapshot_interval=INTERVAL)
    with open_application(settings) as app:
        app.handle(c.CaptureLead(lead=LEAD, source="web", occurred_at=T0, command_id="cap"))
        app.handle_many(
            [contact(n, command_id=f"kafka:engagement/0/{n}/crm-{n}") for n in range(400)]
        )
        _, with_ids = latest_snapshot(app, app.ids.lead(LEAD))
        recorded = app.ledger_entries([f"kafka:engagement/0/{n}/crm-{n}" for n in range(400)])
    with open_application(store_settings.with_store(snapshot_interval=INTERVAL)) as app:
        other = "other@example.com"
        app.handle(c.CaptureLead(lead=other, source="web", occurred_at=T0))
        app.handle_many([contact(n).model_copy(update={"lead": other}) for n in range(400)])
        _, without_ids = latest_snapshot(app, app.ids.lead(other))

    assert len(recorded) == 400
    assert len(with_ids) < 4096, f"snapshot of {len(with_ids)} bytes"
    assert abs(len(with_ids) - len(without_ids)) < 64


BUSY_ENGAGEMENTS = 100_000


def test_a_lead_with_100000_engagements_has_a_snapshot_under_4_kb(tmp_path: Path) -> None:
    """Each engagement has its own id (as the ingest's do); the lead keeps them folded.
    (Built in the domain and saved at once: through commands it takes minutes. How fast
    it loads is the ``growth`` benchmark's business.)"""
    settings = settings_with(data_dir=tmp_path).with_store(snapshot_interval=10**9)
    kinds = ("page_view", "email_open", "email_click", "webinar_attended", "demo_request")
    with open_application(settings) as app:
        rules = app.scoring_rules
        lead = Lead.capture(
            app.ids.lead("busy@example.com"),
            "busy@example.com",
            "web",
            None,
            {},
            rules,
            _ingest_context(-1),
            T0,
        )
        for n in range(BUSY_ENGAGEMENTS):
            lead.record_engagement(
                f"crm-{n}",
                kinds[n % len(kinds)],
                {},
                None,
                None,
                rules,
                _ingest_context(n),
                T0 + timedelta(minutes=n),
            )
        app.save(lead)
        app.take_snapshot(lead.id)
        version, state = latest_snapshot(app, lead.id)
        loaded = app.get_lead("busy@example.com")

    assert version == lead.version and loaded.engagements.count == BUSY_ENGAGEMENTS
    assert loaded.score == lead.score
    assert len(state) < 4096, f"snapshot of {len(state)} bytes"
    assert b"crm-" not in state


def _ingest_context(n: int) -> EventContext:
    return EventContext(causation_id=f"kafka:engagement/0/{n}/crm-{n}", correlation_id=f"crm-{n}")
