"""Per-aggregate facts and how each domain event changes them (pure Python, no SQL).

A lead's facts: where it stands (stage, owner, score, last activity), where it came from
(source, campaign, capture cohort month, size segment), the stages it ever reached
(``reached``: the lifecycle stages it has been at or passed, including the stages a
fast-track skipped), and its visits to stages (entered / exited business times and where
it went next). A deal's facts: its pipeline stage, status, amount, owner and times.
Everything is derived from the aggregate's own events, in version order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

import structlog

from domain.events import (
    ContactLogged,
    DealAmountChanged,
    DealCloseDateChanged,
    DealLost,
    DealOpened,
    DealReopened,
    DealStageChanged,
    DealWon,
    DomainEvent,
    EngagementRecorded,
    LeadAccepted,
    LeadAttributesUpdated,
    LeadCaptured,
    LeadConverted,
    LeadDisqualified,
    LeadErased,
    LeadFastTracked,
    LeadQualifiedAsMQL,
    LeadQualifiedAsSQL,
    LeadRecycled,
    LeadRejected,
    LeadReopened,
    LeadScored,
)
from domain.lead import skipped_stages
from domain.personal_fields import ERASED_TEXT
from projections.money import AmountOutOfRange, to_minor
from projections.segments import employee_count, segment_of
from projections.store import utc_text

log = structlog.get_logger("leadflow.projections.facts")

E = TypeVar("E", bound=DomainEvent)


class UnprojectableEvent(Exception):
    """An event these facts cannot take (no handler, or no aggregate to apply it to)."""


@dataclass(slots=True)
class Visit:
    seq: int
    stage: str
    entered_at: str
    exited_at: str | None = None
    exited_to: str | None = None


@dataclass(slots=True)
class LeadFacts:
    lead_id: str
    external_id: str
    version: int
    source: str
    campaign: str | None
    employees: float | None
    segment: str
    cohort: str
    captured_at: str
    stage: str
    entered_stage_at: str
    owner: str | None
    score: float
    last_activity_at: str
    visits: int
    contacts: int
    fast_tracks: int
    reached: set[str] = field(default_factory=set)
    """Stages already stored as reached (before this batch)."""
    new_reached: dict[str, str] = field(default_factory=dict)
    """Stages first reached in this batch -> business time."""
    open_visit: Visit | None = None
    changed_visits: dict[int, Visit] = field(default_factory=dict)

    def row(self) -> tuple[Any, ...]:
        return (
            self.lead_id,
            self.external_id,
            self.version,
            self.source,
            self.campaign,
            self.employees,
            self.segment,
            self.cohort,
            self.captured_at,
            self.stage,
            self.entered_stage_at,
            self.owner,
            self.score,
            self.last_activity_at,
            self.visits,
            self.contacts,
            self.fast_tracks,
        )

    # --- changes --------------------------------------------------------------------

    def reach(self, stage: str, at: str) -> None:
        if stage not in self.reached and stage not in self.new_reached:
            self.new_reached[stage] = at

    def enter(self, stage: str, at: str) -> None:
        if self.open_visit is not None:
            self.open_visit.exited_at = at
            self.open_visit.exited_to = stage
            self.changed_visits[self.open_visit.seq] = self.open_visit
        self.visits += 1
        self.open_visit = Visit(self.visits, stage, at)
        self.changed_visits[self.visits] = self.open_visit
        self.stage = stage
        self.entered_stage_at = at
        self.reach(stage, at)


@dataclass(slots=True)
class DealFacts:
    deal_id: str
    external_id: str
    version: int
    lead_id: str | None
    pipeline: str
    stage: str
    status: str
    owner: str | None
    amount_minor: int
    currency: str
    expected_close_date: str | None
    opened_at: str
    entered_stage_at: str
    last_activity_at: str
    closed_at: str | None = None
    lost_reason: str | None = None
    competitor: str | None = None

    def row(self) -> tuple[Any, ...]:
        return (
            self.deal_id,
            self.external_id,
            self.version,
            self.lead_id,
            self.pipeline,
            self.stage,
            self.status,
            self.owner,
            self.amount_minor,
            self.currency,
            self.expected_close_date,
            self.opened_at,
            self.entered_stage_at,
            self.last_activity_at,
            self.closed_at,
            self.lost_reason,
            self.competitor,
        )

    def enter(self, stage: str, at: str) -> None:
        self.stage = stage
        self.entered_stage_at = at


# --- leads ------------------------------------------------------------------------------


def new_lead(e: LeadCaptured) -> LeadFacts:
    at = utc_text(e.occurred_at)
    employees = employee_count(e.attributes.get("employees"))
    facts = LeadFacts(
        lead_id=str(e.originator_id),
        external_id=e.external_id,
        version=e.originator_version,
        source=e.source,
        campaign=e.campaign,
        employees=employees,
        segment=segment_of(employees),
        cohort=cohort_of(e.occurred_at),
        captured_at=at,
        stage="new",
        entered_stage_at=at,
        owner=None,
        score=0.0,
        last_activity_at=at,
        visits=0,
        contacts=0,
        fast_tracks=0,
    )
    facts.enter("new", at)
    return facts


def cohort_of(captured_at: datetime) -> str:
    """The capture cohort: year and month of capture, in UTC (``YYYY-MM``)."""
    return utc_text(captured_at)[:7]


def _attributes_updated(f: LeadFacts, e: LeadAttributesUpdated, at: str) -> None:
    if "employees" in e.attributes:
        f.employees = employee_count(e.attributes["employees"])
        f.segment = segment_of(f.employees)


def _scored(f: LeadFacts, e: LeadScored, at: str) -> None:
    f.score = e.total


def _contact(f: LeadFacts, e: ContactLogged, at: str) -> None:
    f.contacts += 1


def _accepted(f: LeadFacts, e: LeadAccepted, at: str) -> None:
    f.owner = e.owner
    f.enter("sal", at)


def _fast_tracked(f: LeadFacts, e: LeadFastTracked, at: str) -> None:
    f.fast_tracks += 1
    for stage in e.skipped:
        f.reach(stage, at)
    f.enter(e.to_stage, at)


def _converted(f: LeadFacts, e: LeadConverted, at: str) -> None:
    if e.fast_tracked:
        f.fast_tracks += 1
        for stage in skipped_stages(e.from_stage, "converted"):
            f.reach(stage, at)
    if f.stage != "converted":
        f.enter("converted", at)


def _to(stage: str) -> Callable[[LeadFacts, DomainEvent, str], None]:
    return lambda f, e, at: f.enter(stage, at)


def _activity(f: object, e: DomainEvent, at: str) -> None:
    """Counts as activity (``last_activity_at``) and nothing else."""


def _erased(f: LeadFacts, e: LeadErased, at: str) -> None:
    # what the lead's sealed external id reads as from now on (a projector still holding
    # the lead's key in its cache may have written the plain one from earlier events)
    f.external_id = ERASED_TEXT


_LEAD_HANDLERS: dict[type[DomainEvent], Callable[[LeadFacts, Any, str], None]] = {
    LeadAttributesUpdated: _attributes_updated,
    EngagementRecorded: _activity,
    LeadScored: _scored,
    ContactLogged: _contact,
    LeadQualifiedAsMQL: _to("mql"),
    LeadAccepted: _accepted,
    LeadRejected: _to("recycled"),
    LeadQualifiedAsSQL: _to("sql"),
    LeadFastTracked: _fast_tracked,
    LeadRecycled: _to("recycled"),
    LeadDisqualified: _to("disqualified"),
    LeadReopened: lambda f, e, at: f.enter(e.to_stage, at),
    LeadConverted: _converted,
    LeadErased: _erased,
}
# Not activity of the lead: recorded when someone asked, it moves no report.
_NOT_ACTIVITY: frozenset[type[DomainEvent]] = frozenset({LeadErased})


def is_activity(event: DomainEvent) -> bool:
    """Whether the event counts as activity: every event but those that move no report."""
    return type(event) not in _NOT_ACTIVITY


# --- deals ------------------------------------------------------------------------------


def new_deal(e: DealOpened) -> DealFacts:
    at = utc_text(e.occurred_at)
    deal_id = str(e.originator_id)
    return DealFacts(
        deal_id=deal_id,
        external_id=e.external_id,
        version=e.originator_version,
        lead_id=str(e.lead_id) if e.lead_id else None,
        pipeline=e.pipeline,
        stage=e.stage,
        status="open",
        owner=e.owner,
        amount_minor=_minor(e.amount, e.currency, deal_id),
        currency=e.currency,
        expected_close_date=e.expected_close_date.isoformat() if e.expected_close_date else None,
        opened_at=at,
        entered_stage_at=at,
        last_activity_at=at,
    )


def _minor(amount: Decimal, currency: str, deal_id: str) -> int:
    """The amount in minor units; one a read model cannot hold is not projected."""
    try:
        return to_minor(amount, currency, deal_id=deal_id)
    except AmountOutOfRange as error:
        raise UnprojectableEvent(str(error)) from error


def _amount(f: DealFacts, e: DealAmountChanged, at: str) -> None:
    f.amount_minor = _minor(e.amount, e.currency, f.deal_id)
    f.currency = e.currency


def _close_date(f: DealFacts, e: DealCloseDateChanged, at: str) -> None:
    f.expected_close_date = e.expected_close_date.isoformat() if e.expected_close_date else None


def _won(f: DealFacts, e: DealWon, at: str) -> None:
    f.status = "won"
    f.amount_minor = _minor(e.amount, f.currency, f.deal_id)
    f.closed_at = at
    f.enter(e.to_stage, at)


def _lost(f: DealFacts, e: DealLost, at: str) -> None:
    f.status = "lost"
    f.lost_reason = e.reason
    f.competitor = e.competitor
    f.closed_at = at
    f.enter(e.to_stage, at)


def _reopened(f: DealFacts, e: DealReopened, at: str) -> None:
    f.status = "open"
    f.closed_at = f.lost_reason = f.competitor = None
    f.enter(e.to_stage, at)


_DEAL_HANDLERS: dict[type[DomainEvent], Callable[[DealFacts, Any, str], None]] = {
    DealStageChanged: lambda f, e, at: f.enter(e.to_stage, at),
    DealAmountChanged: _amount,
    DealCloseDateChanged: _close_date,
    DealWon: _won,
    DealLost: _lost,
    DealReopened: _reopened,
}


F = TypeVar("F", LeadFacts, DealFacts)


@dataclass(frozen=True, slots=True)
class _Projection(Generic[F]):
    """How one kind of aggregate's facts follow its events, from the one that starts it."""

    kind: str
    start: type[DomainEvent]
    started: str
    new: Callable[[Any], F]
    handlers: Mapping[type[DomainEvent], Callable[[F, Any, str], None]]

    def apply(self, facts: F | None, event: DomainEvent) -> F:
        if isinstance(event, self.start):
            if facts is not None:
                raise UnprojectableEvent(
                    f"{self.kind} {event.originator_id} was {self.started} before"
                )
            return self.new(event)
        if facts is None:
            raise UnprojectableEvent(
                f"no {self.start.__name__} seen for {self.kind} {event.originator_id}"
            )
        handler = self.handlers.get(type(event))
        if handler is None:
            raise UnprojectableEvent(
                f"the {self.kind} projection has no rule for {event.event_type}"
            )
        at = utc_text(event.occurred_at)
        handler(facts, event, at)
        facts.version = event.originator_version
        if is_activity(event):
            facts.last_activity_at = max(facts.last_activity_at, at)
        return facts


_LEADS = _Projection("lead", LeadCaptured, "captured", new_lead, _LEAD_HANDLERS)
_DEALS = _Projection("deal", DealOpened, "opened", new_deal, _DEAL_HANDLERS)


def apply_to_lead(facts: LeadFacts | None, event: DomainEvent) -> LeadFacts:
    return _LEADS.apply(facts, event)


def apply_to_deal(facts: DealFacts | None, event: DomainEvent) -> DealFacts:
    return _DEALS.apply(facts, event)


PROJECTED_EVENTS: frozenset[type[DomainEvent]] = frozenset(
    {LeadCaptured, DealOpened, *_LEAD_HANDLERS, *_DEAL_HANDLERS}
)
