"""Two applications on one store: each decides on its cached aggregates without asking
the store for newer events, yet never acts on, refuses on or shows stale state."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.command_ledger import LEDGER_KWARG, LedgerEntry
from adapters.settings import Settings
from adapters.stale_check import EXPECTED_VERSIONS_KWARG, StaleAggregates
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


def test_a_refusal_decided_on_a_stale_lead_is_never_recorded_even_when_the_lead_moves_just_before_the_write(  # noqa: E501
    two_apps: tuple[LeadflowApp, LeadflowApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other writer commits between the decision and the ledger's write: the check of
    the cached versions runs in the write's own transaction, so the refusal is dropped
    with it and the command decided again."""
    first, second = two_apps
    save = first.save
    interleaved: list[bool] = []

    def save_after_another_writer(*objs: Any, **kwargs: Any) -> Any:
        if not interleaved:
            interleaved.append(True)
            second.handle(c.MarkMql(lead=LEAD, occurred_at=at(2)))
        return save(*objs, **kwargs)

    monkeypatch.setattr(first, "save", save_after_another_writer)
    outcome = first.handle(
        c.AcceptLead(lead=LEAD, owner="ae-1", occurred_at=at(3), command_id="accept-1")
    )

    assert interleaved and outcome.status == "applied"
    assert first.get_lead(LEAD).stage == "sal"
    assert first.ledger_entries(["accept-1"])["accept-1"].refusal is None


def test_the_recorder_refuses_a_write_naming_a_moved_aggregate(
    two_apps: tuple[LeadflowApp, LeadflowApp],
) -> None:
    first, second = two_apps
    lead_id = first.resolve_lead(LEAD)
    cached = first.get_lead(LEAD).version
    second.handle(c.MarkMql(lead=LEAD, occurred_at=at(2)))
    entry = LedgerEntry("late-1", b"\0" * 32, "accept_lead shared", refusal="stale")

    with pytest.raises(StaleAggregates):
        first.save(**{LEDGER_KWARG: (entry,), EXPECTED_VERSIONS_KWARG: {lead_id: cached}})

    assert first.ledger_entries(["late-1"]) == {}
