"""Two applications on one store: each decides on its cached aggregates without asking
the store for newer events, yet never acts on, refuses on or shows stale state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from adapters.settings import Settings
from domain import commands as c
from leadflow.bootstrap import open_application
from service.application import LeadflowApp

T0 = datetime(2026, 4, 6, 9, 0, tzinfo=UTC)
LEAD = "shared@example.com"


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def two_apps(store_settings: Settings) -> Iterator[tuple[LeadflowApp, LeadflowApp]]:
    with open_application(store_settings) as first, open_application(store_settings) as second:
        first.handle(c.CaptureLead(lead=LEAD, source="web", occurred_at=at(0)))
        first.handle(c.LogContact(lead=LEAD, channel="call", occurred_at=at(1)))  # cached now
        yield first, second


def test_a_write_on_a_stale_cached_lead_is_retried_on_fresh_state(
    two_apps: tuple[LeadflowApp, LeadflowApp],
) -> None:
    first, second = two_apps
    second.handle(c.LogContact(lead=LEAD, channel="email", occurred_at=at(2)))

    outcome = first.handle(c.LogContact(lead=LEAD, channel="meeting", occurred_at=at(3)))

    assert outcome.status == "applied"
    lead_id = first.resolve_lead(LEAD)
    assert first.verify_chain(lead_id).ok
    assert [e.event_type for e in first.events_of(lead_id)][-3:] == ["ContactLogged"] * 3


def test_a_refusal_is_never_decided_on_a_stale_cached_lead(
    two_apps: tuple[LeadflowApp, LeadflowApp],
) -> None:
    first, second = two_apps
    second.handle(c.MarkMql(lead=LEAD, occurred_at=at(2)))

    outcome = first.handle(c.AcceptLead(lead=LEAD, owner="ae-1", occurred_at=at(3)))

    assert outcome.status == "applied"
    assert first.get_lead(LEAD).stage == "sal"


def test_a_duplicate_is_judged_on_fresh_state_and_queries_read_the_store(
    two_apps: tuple[LeadflowApp, LeadflowApp],
) -> None:
    first, second = two_apps
    update = c.CaptureLead(
        lead=LEAD, source="web", attributes={"industry": "saas"}, occurred_at=at(2)
    )
    first.handle(update)
    second.handle(update.model_copy(update={"attributes": {"industry": "retail"}}))

    assert first.get_lead(LEAD).attributes == {"industry": "retail"}
    resent = first.handle(update.model_copy(update={"occurred_at": at(3)}))

    assert resent.status == "applied"
    assert first.get_lead(LEAD).attributes == {"industry": "saas"}
