"""One rule for references: a ref that reads as a UUID names leadflow's own id; an
external id that reads as one is refused where a lead or deal would be created under it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from domain import commands as c
from domain.errors import DomainError, UnknownAggregate
from service.application import LeadflowApp
from service.ids import UuidShapedExternalId

T0 = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def test_a_capture_under_another_leads_uuid_is_refused_and_the_ref_stays_that_lead(
    app: LeadflowApp,
) -> None:
    app.handle(c.CaptureLead(lead="ada@example.com", source="web", occurred_at=at(0)))
    ada = app.get_lead("ada@example.com")
    before = app.events_of(ada.id)

    refused = app.handle_many([c.CaptureLead(lead=str(ada.id), source="import", occurred_at=at(1))])
    applied = app.handle_many([c.MarkMql(lead=str(ada.id), occurred_at=at(2))])

    assert isinstance(refused[0], UuidShapedExternalId)
    assert "reads as a UUID, which always names leadflow's own id" in str(refused[0])
    assert not isinstance(applied[0], DomainError)
    assert app.get_lead("ada@example.com").stage == "mql"
    assert len(app.events_of(ada.id)) == len(before) + 1
    assert app.resolve_lead(str(ada.id)) == ada.id


@pytest.mark.parametrize("spelling", ["{}", "{{{}}}", "urn:uuid:{}", "HEX"])
def test_no_lead_or_deal_is_created_under_a_uuid_shaped_id(app: LeadflowApp, spelling: str) -> None:
    fresh = uuid4()
    ref = fresh.hex if spelling == "HEX" else spelling.format(fresh)
    results = app.handle_many(
        [
            c.CaptureLead(lead=ref, source="web", occurred_at=at(0)),
            c.OpenDeal(deal=ref, amount=10, currency="EUR", occurred_at=at(0)),
        ]
    )
    assert [type(r) for r in results] == [UuidShapedExternalId] * 2
    try:
        app.get_lead(ref)
    except UnknownAggregate:
        pass
    else:
        raise AssertionError(f"a lead was created under {ref!r}")
