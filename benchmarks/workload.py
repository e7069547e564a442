"""Commands a benchmark sends: realistic lead lifecycles, built before the clock starts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice

from domain import commands as c
from domain.events import Bant

EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Fit 45 (industry, size, title) plus a page view stays below the MQL threshold of the
# default scoring rules, so mark_mql is always legal.
ATTRIBUTES = {
    "industry": "software",
    "employees": 250,
    "title": "VP Sales",
    "company": "Example Analytics GmbH",
}
BANT = Bant(
    budget="approved for this quarter",
    authority="VP Sales signs",
    need="pipeline visibility",
    timeline="within 60 days",
)
COMMANDS_PER_LIFECYCLE = 9


def lead_lifecycle(run: str, number: int) -> list[c.Command]:
    """Nine commands taking one lead from capture to a won deal (about 12 events)."""
    lead = f"lead-{number}@{run}.bench.example"
    deal = f"deal-{run}-{number}"
    start = EPOCH + timedelta(minutes=number)

    def at(step: int) -> datetime:
        return start + timedelta(hours=step)

    return [
        c.CaptureLead(
            lead=lead, source="web_form", campaign="spring-webinar", attributes=ATTRIBUTES,
            occurred_at=at(0),
        ),
        c.RecordEngagement(
            lead=lead, event_id=f"{run}-{number}-pv", kind="page_view",
            properties={"url": "/pricing/enterprise"}, occurred_at=at(1),
        ),
        c.LogContact(lead=lead, channel="call", outcome="left a voicemail", occurred_at=at(2)),
        c.MarkMql(lead=lead, reason="asked for a call back", occurred_at=at(3)),
        c.AcceptLead(lead=lead, owner="ann.seller", occurred_at=at(4)),
        c.QualifyLead(lead=lead, bant=BANT, occurred_at=at(5)),
        c.OpenDeal(
            deal=deal, lead=lead, amount=Decimal("12500.00"), currency="EUR",
            occurred_at=at(6),
        ),
        c.MoveDeal(deal=deal, stage="needs_analysis", occurred_at=at(7)),
        c.WinDeal(deal=deal, occurred_at=at(8)),
    ]  # fmt: skip


def lifecycle_stream(run: str) -> Iterator[c.Command]:
    """Lifecycles of new leads, one after another, without end."""
    number = 0
    while True:
        yield from lead_lifecycle(run, number)
        number += 1


def lifecycle_commands(run: str, count: int) -> list[c.Command]:
    """Exactly ``count`` commands; the last lifecycle may stop part-way (still legal)."""
    return list(islice(lifecycle_stream(run), count))


def contact_log(lead: str, count: int, first_minute: int = 0) -> list[c.Command]:
    """``count`` contacts logged on one lead: one event each."""
    return [
        c.LogContact(
            lead=lead,
            channel="email",
            outcome="sent the follow-up",
            occurred_at=EPOCH + timedelta(minutes=first_minute + i),
        )
        for i in range(count)
    ]


def capture(lead: str) -> c.CaptureLead:
    return c.CaptureLead(lead=lead, source="web_form", attributes=ATTRIBUTES, occurred_at=EPOCH)
