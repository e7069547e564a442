"""The command side end to end, on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.cryptography import AESCipher
from pydantic import SecretStr, ValidationError

from domain import commands as c
from domain.errors import AlreadyExists, DomainError, IllegalTransition, UnknownAggregate
from domain.events import LeadConverted, LeadQualifiedAsMQL, LeadScored
from leadflow.bootstrap import open_application
from service.application import LeadflowApp

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
BANT = {"budget": "40k", "authority": "CFO signs", "need": "forecasting", "timeline": "Q3"}


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def run(app: LeadflowApp, *lines: dict[str, Any]) -> list[str]:
    return [app.handle(c.COMMAND_ADAPTER.validate_python(line)).status for line in lines]


def test_full_lifecycle_from_capture_to_won_deal(app: LeadflowApp) -> None:
    statuses = run(
        app,
        {
            "command": "capture_lead",
            "lead": "Ada@Example.com",
            "source": "webinar",
            "campaign": "q1-launch",
            "occurred_at": at(0),
            "attributes": {"industry": "saas"},
        },
        {
            "command": "record_engagement",
            "lead": "ada@example.com",
            "event_id": "mautic-1",
            "kind": "demo_request",
            "occurred_at": at(1),
        },
        {
            "command": "log_contact",
            "lead": "ada@example.com",
            "channel": "call",
            "outcome": "connected",
            "actor": "sdr-joe",
            "occurred_at": at(2),
        },
        {"command": "mark_mql", "lead": "ada@example.com", "occurred_at": at(3)},
        {
            "command": "accept_lead",
            "lead": "ada@example.com",
            "actor": "ae-sam",
            "occurred_at": at(4),
        },
        {"command": "qualify_lead", "lead": "ada@example.com", "bant": BANT, "occurred_at": at(5)},
        {
            "command": "open_deal",
            "deal": "CRM-42",
            "lead": "ada@example.com",
            "amount": 30000,
            "occurred_at": at(6),
        },
        {"command": "move_deal", "deal": "CRM-42", "stage": "proposal_sent", "occurred_at": at(7)},
        {
            "command": "update_deal",
            "deal": "CRM-42",
            "amount": 32000,
            "expected_close_date": "2026-04-30",
            "occurred_at": at(8),
        },
        {"command": "win_deal", "deal": "CRM-42", "occurred_at": at(9)},
    )
    assert statuses == ["applied"] * 10
    lead = app.get_lead("ADA@example.com ")
    deal = app.get_deal("CRM-42")
    assert lead.stage == "converted"
    assert lead.owner == "ae-sam"
    assert lead.id == app.ids.lead("ada@example.com")
    assert (deal.status, deal.amount, deal.lead_id, deal.owner) == (
        "won",
        Decimal("32000"),
        lead.id,
        "ae-sam",
    )
    assert app.get_lead(str(lead.id)).external_id == "ada@example.com"
    events = app.events_of(lead.id)
    assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    assert any(isinstance(e, LeadScored) for e in events)
    assert isinstance(events[-1], LeadConverted)
    contact = next(e for e in events if e.event_type == "ContactLogged")
    assert contact.actor == "sdr-joe"
    assert contact.occurred_at == at(2)
    assert contact.recorded_at > contact.occurred_at
    assert app.verify_chain(lead.id).ok
    assert app.verify_chain(deal.id).ok


def test_commands_with_the_same_command_id_apply_once(app: LeadflowApp) -> None:
    capture = {
        "command": "capture_lead",
        "lead": "bo@example.com",
        "source": "web",
        "occurred_at": at(0),
        "command_id": "cap-1",
    }
    mql = {
        "command": "mark_mql",
        "lead": "bo@example.com",
        "occurred_at": at(1),
        "command_id": "mql-1",
    }
    assert run(app, capture, mql) == ["applied", "applied"]
    version = app.get_lead("bo@example.com").version
    assert run(app, capture, mql) == ["duplicate", "duplicate"]
    assert app.get_lead("bo@example.com").version == version


def test_engagement_is_idempotent_on_event_id(app: LeadflowApp) -> None:
    run(
        app,
        {
            "command": "capture_lead",
            "lead": "cy@example.com",
            "source": "web",
            "occurred_at": at(0),
        },
    )
    engagement = {
        "command": "record_engagement",
        "lead": "cy@example.com",
        "event_id": "hubspot-77",
        "kind": "email_click",
        "occurred_at": at(1),
    }
    assert run(app, engagement, engagement) == ["applied", "duplicate"]


def test_score_crossing_threshold_reaches_mql_with_rule_version(app: LeadflowApp) -> None:
    run(
        app,
        {
            "command": "capture_lead",
            "lead": "di@example.com",
            "source": "web",
            "occurred_at": at(0),
            "attributes": {"industry": "fintech", "employees": 400},
        },
    )
    for n, kind in enumerate(["demo_request", "webinar_attended", "pricing_page_view"]):
        run(
            app,
            {
                "command": "record_engagement",
                "lead": "di@example.com",
                "event_id": f"x{n}",
                "kind": kind,
                "occurred_at": at(1 + n),
            },
        )
    lead = app.get_lead("di@example.com")
    assert lead.stage == "mql"
    mql = [e for e in app.events_of(lead.id) if isinstance(e, LeadQualifiedAsMQL)]
    assert mql[0].via == "score"
    scored = [e for e in app.events_of(lead.id) if isinstance(e, LeadScored)]
    assert all(e.rule_version == app.scoring_rules.version for e in scored)
    assert all(e.reasons for e in scored)


def test_illegal_command_names_lead_stage_and_attempt_and_stores_nothing(
    app: LeadflowApp,
) -> None:
    run(
        app,
        {
            "command": "capture_lead",
            "lead": "ed@example.com",
            "source": "web",
            "occurred_at": at(0),
        },
    )
    version = app.get_lead("ed@example.com").version
    with pytest.raises(IllegalTransition) as info:
        run(
            app,
            {
                "command": "qualify_lead",
                "lead": "ed@example.com",
                "bant": BANT,
                "occurred_at": at(1),
            },
        )
    assert "lead 'ed@example.com'" in str(info.value)
    assert "stage 'new'" in str(info.value)
    assert "qualify as SQL" in str(info.value)
    assert app.get_lead("ed@example.com").version == version


def test_unknown_lead_deal_and_pipeline_are_clear_errors(app: LeadflowApp) -> None:
    with pytest.raises(UnknownAggregate, match=r"lead 'ghost@example\.com' does not exist"):
        run(app, {"command": "mark_mql", "lead": "ghost@example.com", "occurred_at": at(0)})
    with pytest.raises(UnknownAggregate, match="deal 'D-404' does not exist"):
        run(app, {"command": "win_deal", "deal": "D-404", "occurred_at": at(0)})
    with pytest.raises(DomainError, match=r"unknown pipeline 'nope'"):
        run(
            app,
            {
                "command": "open_deal",
                "deal": "D-1",
                "amount": 1,
                "pipeline": "nope",
                "occurred_at": at(0),
            },
        )


def test_open_deal_requires_sql_lead_unless_fast_tracked(app: LeadflowApp) -> None:
    run(
        app,
        {
            "command": "capture_lead",
            "lead": "fa@example.com",
            "source": "event",
            "occurred_at": at(0),
        },
    )
    with pytest.raises(IllegalTransition, match="must be an SQL"):
        run(
            app,
            {
                "command": "open_deal",
                "deal": "D-7",
                "lead": "fa@example.com",
                "amount": 5000,
                "occurred_at": at(1),
            },
        )
    assert not app.exists(app.resolve_deal("D-7"))
    assert run(
        app,
        {
            "command": "open_deal",
            "deal": "D-7",
            "lead": "fa@example.com",
            "amount": 5000,
            "fast_track": True,
            "occurred_at": at(1),
        },
    ) == ["applied"]
    assert app.get_lead("fa@example.com").stage == "converted"
    with pytest.raises(AlreadyExists, match="deal 'D-7' already exists"):
        run(app, {"command": "open_deal", "deal": "D-7", "amount": 1, "occurred_at": at(2)})


def test_direct_deal_and_second_pipeline(app: LeadflowApp) -> None:
    assert run(
        app,
        {
            "command": "open_deal",
            "deal": "R-1",
            "amount": 900,
            "currency": "USD",
            "pipeline": "renewal",
            "occurred_at": at(0),
        },
    ) == ["applied"]
    deal = app.get_deal("R-1")
    assert (deal.pipeline, deal.stage, deal.lead_id) == ("renewal", "renewal_review", None)


def test_history_as_of_version_and_snapshots(store_settings: Any) -> None:
    app = open_application(store_settings.with_store(snapshot_interval=5))
    try:
        run(
            app,
            {
                "command": "capture_lead",
                "lead": "gi@example.com",
                "source": "web",
                "occurred_at": at(0),
            },
        )
        for n in range(12):
            run(
                app,
                {
                    "command": "log_contact",
                    "lead": "gi@example.com",
                    "channel": "email",
                    "occurred_at": at(1 + n),
                },
            )
        lead = app.get_lead("gi@example.com")
        assert app.snapshots is not None
        assert list(app.snapshots.get(lead.id))  # snapshots were taken
        assert app.get_lead("gi@example.com", version=3).version == 3
        fresh = open_application(store_settings.with_store(snapshot_interval=5))
        assert fresh.get_lead("gi@example.com").model_dump() == lead.model_dump()
        fresh.close()
    finally:
        app.close()


def test_encryption_and_compression_at_rest(store_settings: Any) -> None:
    secure = store_settings.with_store(
        cipher_key=SecretStr(AESCipher.create_key(16)), compress_events=True
    )
    app = open_application(secure)
    try:
        run(
            app,
            {
                "command": "capture_lead",
                "lead": "secret@example.com",
                "source": "web",
                "occurred_at": at(0),
            },
        )
        lead = app.get_lead("secret@example.com")
        raw = next(iter(app.recorder.select_events(lead.id)))
        assert b"secret@example.com" not in raw.state
        assert app.verify_chain(lead.id).ok
    finally:
        app.close()


def test_handle_many_applies_in_order_in_one_transaction(app: LeadflowApp) -> None:
    lines = [
        {
            "command": "capture_lead",
            "lead": "hy@example.com",
            "source": "web",
            "occurred_at": at(0),
        },
        {"command": "mark_mql", "lead": "hy@example.com", "occurred_at": at(1), "command_id": "m1"},
        {"command": "qualify_lead", "lead": "hy@example.com", "bant": BANT, "occurred_at": at(2)},
        {"command": "accept_lead", "lead": "hy@example.com", "occurred_at": at(3)},
        {"command": "mark_mql", "lead": "hy@example.com", "occurred_at": at(1), "command_id": "m1"},
        {"command": "win_deal", "deal": "nowhere", "occurred_at": at(4)},
    ]
    before = app.recorder.max_notification_id() or 0
    results = app.handle_many([c.COMMAND_ADAPTER.validate_python(line) for line in lines])
    kinds = [r.status if not isinstance(r, DomainError) else type(r).__name__ for r in results]
    assert kinds == [
        "applied",
        "applied",
        "IllegalTransition",
        "applied",
        "duplicate",
        "UnknownAggregate",
    ]
    lead = app.get_lead("hy@example.com")
    assert lead.stage == "sal"
    assert (app.recorder.max_notification_id() or 0) - before == lead.version


def test_handle_many_can_stop_at_the_first_refusal(app: LeadflowApp) -> None:
    lines = [
        {
            "command": "capture_lead",
            "lead": "iv@example.com",
            "source": "web",
            "occurred_at": at(0),
        },
        {"command": "accept_lead", "lead": "iv@example.com", "occurred_at": at(1)},
        {"command": "mark_mql", "lead": "iv@example.com", "occurred_at": at(2)},
    ]
    commands = [c.COMMAND_ADAPTER.validate_python(line) for line in lines]
    results = app.handle_many(commands, stop_at_refusal=True)
    assert [type(r).__name__ for r in results] == ["Outcome", "IllegalTransition"]
    assert app.get_lead("iv@example.com").stage == "new"


def test_blank_references_are_rejected() -> None:
    with pytest.raises(ValidationError, match="at least 1 character"):
        c.COMMAND_ADAPTER.validate_python(
            {"command": "capture_lead", "lead": "   ", "source": "web", "occurred_at": at(0)}
        )


def test_capture_of_a_known_lead_can_fill_only_missing_attributes(app: LeadflowApp) -> None:
    base = {
        "command": "capture_lead",
        "lead": "jo@example.com",
        "source": "web",
        "occurred_at": at(0),
    }
    run(app, {**base, "attributes": {"industry": "saas"}})
    run(
        app,
        {
            **base,
            "occurred_at": at(1),
            "fill_missing_only": True,
            "attributes": {"industry": "retail", "employees": 80},
        },
    )
    assert app.get_lead("jo@example.com").attributes == {"industry": "saas", "employees": 80}
    run(app, {**base, "occurred_at": at(2), "attributes": {"industry": "retail"}})
    assert app.get_lead("jo@example.com").attributes["industry"] == "retail"
