"""Domain events of the Lead and Deal aggregates.

Every event is an immutable pydantic model named in the past tense. The envelope
(``DomainEvent``) carries what every event needs: who and what caused it, when it
happened in the business (``occurred_at``) and when it was recorded (``timestamp``),
its ``schema_version``, and the hash chain (``prev_hash`` / ``hash``).

Changing a payload: bump ``SCHEMA_VERSION`` on the class and add a static
``upcast_vN_vN1(state: dict) -> None`` that rewrites a stored state of version N
into version N+1. Stored events are upcast on read (see ``domain.mapper``).

Adding an optional field (envelope or payload): default it to None and list it in
``OMITTED_WHEN_NONE``, so an event without it is stored (and hashed) byte for byte as
before the field existed, and older stored events load unchanged.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from domain.input_limits import check_text

# Fields added after events were stored: left out of the stored state when None.
OMITTED_WHEN_NONE: tuple[str, ...] = ("backdated_from", "half_life_days", "on_behalf_of")

# Every amount leadflow's commands ever accepted (16 digits before the point, 6 after);
# a stored event's amount beyond that is damage, refused when it is decoded.
EventAmount = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=22, decimal_places=6)]

LeadStage = Literal["new", "mql", "sal", "sql", "converted", "recycled", "disqualified"]


class DomainEvent(BaseModel):
    """Envelope shared by every leadflow event."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    # A new event's stored state, kept from hashing it so that it is serialised once
    # (see adapters.mapper). Not a field: copies, pickles and equality ignore it.
    __slots__ = ("_stored_state",)

    SCHEMA_VERSION: ClassVar[int] = 1

    originator_id: UUID
    originator_version: int
    timestamp: datetime = Field(description="recorded_at: when leadflow stored the event")
    event_id: UUID
    occurred_at: datetime = Field(description="business time, taken from the source")
    actor: str
    causation_id: str
    correlation_id: str
    schema_version: int = 1
    prev_hash: str
    hash: str
    backdated_from: datetime | None = Field(
        default=None,
        description="the business time the source gave, when a backdated command was "
        "recorded at the aggregate's last stage change instead (see domain.business_time)",
    )
    on_behalf_of: str | None = Field(
        default=None,
        description="the person a client acted for, as the client said (the actor is "
        "who sent the command: an HTTP API key's name)",
    )

    @property
    def recorded_at(self) -> datetime:
        return self.timestamp

    @property
    def event_type(self) -> str:
        return type(self).__name__


BantAnswer = Annotated[
    str, StringConstraints(min_length=1, max_length=2000), AfterValidator(check_text)
]


class Bant(BaseModel):
    """Budget, authority, need and timeline, as sales recorded them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    budget: BantAnswer
    authority: BantAnswer
    need: BantAnswer
    timeline: BantAnswer


# --- Lead -------------------------------------------------------------------------


class LeadCaptured(DomainEvent):
    external_id: str
    source: str
    campaign: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class LeadAttributesUpdated(DomainEvent):
    attributes: dict[str, Any]


class EngagementRecorded(DomainEvent):
    engagement_id: str = Field(description="the source's idempotency key (event_id)")
    kind: str
    source: str | None = None
    campaign: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class LeadScored(DomainEvent):
    fit: float
    engagement: float
    total: float
    previous_total: float
    as_of: datetime = Field(description="engagement decays up to this business time")
    rule_version: str
    reasons: tuple[str, ...]
    half_life_days: float | None = Field(
        default=None, description="the rules' half-life (absent in events stored before it)"
    )


class ContactLogged(DomainEvent):
    channel: Literal["call", "email", "social", "meeting"]
    outcome: str | None = None


class LeadQualifiedAsMQL(DomainEvent):
    via: Literal["score", "manual"]
    score: float
    reason: str | None = None
    from_stage: LeadStage


class LeadAccepted(DomainEvent):
    owner: str
    reason: str | None = None


class LeadRejected(DomainEvent):
    reason: str


class LeadQualifiedAsSQL(DomainEvent):
    bant: Bant


class LeadFastTracked(DomainEvent):
    from_stage: LeadStage
    to_stage: LeadStage
    skipped: tuple[LeadStage, ...]
    reason: str


class LeadRecycled(DomainEvent):
    from_stage: LeadStage
    reason: str


class LeadDisqualified(DomainEvent):
    from_stage: LeadStage
    reason: str


class LeadReopened(DomainEvent):
    to_stage: LeadStage
    reason: str | None = None


class LeadConverted(DomainEvent):
    deal_id: UUID
    deal_external_id: str
    from_stage: LeadStage
    fast_tracked: bool = False


class LeadErased(DomainEvent):
    """The lead's personal data was forgotten on request: its data key is destroyed, so
    every sealed field of its events (and of its deals') reads as erased. Who asked is the
    actor; ``reason`` must say why without naming the person (it is not sealed)."""

    reason: str
    deal_ids: list[UUID] = Field(default_factory=list, description="its deals, erased with it")


# --- Deal -------------------------------------------------------------------------


class DealOpened(DomainEvent):
    external_id: str
    lead_id: UUID | None = None
    lead_external_id: str | None = None
    amount: EventAmount
    currency: str
    pipeline: str
    stage: str
    owner: str | None = None
    expected_close_date: date | None = None


class DealStageChanged(DomainEvent):
    from_stage: str
    to_stage: str


class DealAmountChanged(DomainEvent):
    amount: EventAmount
    currency: str


class DealCloseDateChanged(DomainEvent):
    expected_close_date: date | None


class DealWon(DomainEvent):
    from_stage: str
    to_stage: str
    amount: EventAmount


class DealLost(DomainEvent):
    from_stage: str
    to_stage: str
    reason: str
    competitor: str | None = None


class DealReopened(DomainEvent):
    from_stage: str
    to_stage: str
    reason: str | None = None


LEAD_EVENTS: tuple[type[DomainEvent], ...] = (
    LeadCaptured,
    LeadAttributesUpdated,
    EngagementRecorded,
    LeadScored,
    ContactLogged,
    LeadQualifiedAsMQL,
    LeadAccepted,
    LeadRejected,
    LeadQualifiedAsSQL,
    LeadFastTracked,
    LeadRecycled,
    LeadDisqualified,
    LeadReopened,
    LeadConverted,
    LeadErased,
)
DEAL_EVENTS: tuple[type[DomainEvent], ...] = (
    DealOpened,
    DealStageChanged,
    DealAmountChanged,
    DealCloseDateChanged,
    DealWon,
    DealLost,
    DealReopened,
)
EVENT_CLASSES: dict[str, type[DomainEvent]] = {c.__name__: c for c in LEAD_EVENTS + DEAL_EVENTS}
