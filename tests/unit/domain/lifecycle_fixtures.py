"""Shared builders for domain unit tests (no store, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import uuid4

from domain.aggregate import EventContext
from domain.deal import Deal
from domain.events import Bant
from domain.lead import Lead
from domain.scoring import load_scoring_rules
from domain.stage_model import load_stage_model

RULES = load_scoring_rules()
MODEL = load_stage_model()
PIPELINE = MODEL.pipeline(None)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BANT = Bant(budget="50k EUR", authority="VP Sales", need="pipeline visibility", timeline="Q2")


def ctx(actor: str = "tester") -> EventContext:
    cid = str(uuid4())
    return EventContext(actor=actor, causation_id=cid, correlation_id=cid)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def new_lead(
    external_id: str = "ada@example.com", attributes: dict[str, object] | None = None
) -> Lead:
    return Lead.capture(uuid4(), external_id, "web", "spring", attributes or {}, RULES, ctx(), T0)


def lead_in(stage: str) -> Lead:
    lead = new_lead()
    if stage == "new":
        return lead
    lead.mark_mql("manual", ctx(), at(1))
    if stage == "mql":
        return lead
    lead.accept("sam", None, ctx(), at(2))
    if stage == "sal":
        return lead
    lead.qualify(BANT, ctx(), at(3))
    if stage == "sql":
        return lead
    if stage == "recycled":
        lead.recycle("not now", ctx(), at(4))
        return lead
    if stage == "disqualified":
        lead.disqualify("wrong fit", ctx(), at(4))
        return lead
    lead.convert(uuid4(), "deal-1", False, ctx(), at(4))
    assert stage == "converted"
    return lead


def new_deal(amount: str = "10000") -> Deal:
    return Deal.open(
        uuid4(), "deal-1", PIPELINE, Decimal(amount), "EUR", None, None, "sam", None, ctx(), T0
    )
