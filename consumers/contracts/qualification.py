"""``leadflow.qualification.v1``: the public integration events sales systems subscribe to.

These are NOT the domain events. They are a stable public contract, versioned on its
own and documented by the JSON Schema files in ``schemas/qualification/v1/`` (generated
from the models below: ``python -m consumers.contracts.qualification --write-schemas``).

Record: key = lead id (deal events: deal id, so one deal's changes stay in order),
value = one JSON object below, headers ``schema``, ``type``, ``event_id`` (and, from the
relay, ``relay_epoch``).
Every record carries the domain event's ``event_id`` (the deduplication key: delivery
is at least once) and ``aggregate_version`` (the lead's or deal's version, increasing
per key). ``lead`` / ``deal`` give the aggregate as it stood right after the event;
the relay reads that state from the event store at exactly that version, so a record
published twice is published identically.

Compatibility: within v1, fields are only ever added (consumers must ignore fields
they do not know) and no field changes meaning or type; anything else is v2 on a new
topic. ``tests/integration/consumers/test_qualification_schema.py`` fails when the
models and the committed schema files disagree.

``relay.unmappable`` is no business event: the relay could not map a domain event to
this contract, so the change it stands for is not published in full. It comes in the
event's place, keyed by its lead or deal, with the event's id, type and version and the
reason; a sales system that meets one should read that lead or deal afresh.

Personal data and retention: records hold personal data (``lead.external_id`` is
usually the person's email; BANT answers; reasons people typed; the owner's name).
When a lead is erased (``leadflow forget``), ``lead.erased`` names it and its deals:
a subscriber must then delete every copy it keeps of them.
leadflow creates the topic keeping records 30 days by default
(``LEADFLOW_KAFKA_QUALIFICATION_RETENTION_MS``, docs/topics.md); a subscriber keeps its
own copy and answers for it.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Protocol
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from consumers.contracts.events_topic import KafkaRecord
from domain import events as ev

SCHEMA_ID: Final = "leadflow.qualification.v1"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas" / "qualification" / "v1"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

LeadStageName = Literal["new", "mql", "sal", "sql", "converted", "recycled", "disqualified"]
DecimalText = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]+(\.[0-9]+)?$",
        description="a decimal number as text, exactly as recorded (never rounded)",
        examples=["12500.00"],
    ),
]


class _Public(BaseModel):
    model_config = ConfigDict(
        frozen=True, validate_by_name=True, json_schema_serialization_defaults_required=True
    )


class LeadState(_Public):
    """The lead as it stood right after the event."""

    id: UUID = Field(description="leadflow's lead id (also the record key)")
    external_id: str = Field(description="the caller's id for the lead: an email or a CRM id")
    stage: LeadStageName = Field(description="lifecycle stage after the event")
    score: float = Field(description="fit + engagement score after the event")
    owner: str | None = Field(description="the sales owner, once sales accepted the lead")
    source: str
    campaign: str | None


class DealState(_Public):
    """The deal as it stood right after the event."""

    id: UUID = Field(description="leadflow's deal id (also the record key)")
    external_id: str = Field(description="the caller's id for the deal (CRM id)")
    pipeline: str
    stage: str = Field(description="pipeline stage after the event")
    status: Literal["open", "won", "lost"]
    amount: DecimalText
    currency: str = Field(description="ISO 4217 code")
    owner: str | None
    expected_close_date: date | None
    lead_id: UUID | None = Field(description="the lead the deal was opened from, if any")
    lead_external_id: str | None


class BantAnswers(_Public):
    """Budget, authority, need and timeline, as sales recorded them."""

    budget: str
    authority: str
    need: str
    timeline: str


class IntegrationEvent(_Public):
    schema_name: Literal["leadflow.qualification.v1"] = Field(
        default=SCHEMA_ID, alias="schema", description="this contract and its major version"
    )
    type: str = Field(description="what happened: one of the types of leadflow.qualification.v1")
    event_id: UUID = Field(description="unique per event; deduplicate on it")
    aggregate_version: int = Field(description="version of the lead or deal; increases per key")
    occurred_at: datetime = Field(description="when it happened in the business")
    recorded_at: datetime = Field(description="when leadflow recorded it")
    actor: str = Field(description="who or what caused it")
    correlation_id: str = Field(description="ties together everything one request caused")

    def record_key(self) -> UUID:
        raise NotImplementedError


class _LeadEvent(IntegrationEvent):
    lead: LeadState

    def record_key(self) -> UUID:
        return self.lead.id


class _DealEvent(IntegrationEvent):
    deal: DealState

    def record_key(self) -> UUID:
        return self.deal.id


class LeadMqlReached(_LeadEvent):
    """The lead became a marketing qualified lead (MQL)."""

    type: Literal["lead.mql_reached"] = "lead.mql_reached"
    from_stage: LeadStageName
    via: Literal["score", "manual", "fast_track"]
    score: float = Field(description="the score when it qualified")
    reason: str | None
    skipped_stages: list[LeadStageName] = Field(description="non-empty only for a fast-track")


class LeadSalReached(_LeadEvent):
    """Sales accepted the lead (SAL), or it was fast-tracked to SAL."""

    type: Literal["lead.sal_reached"] = "lead.sal_reached"
    from_stage: LeadStageName
    via: Literal["accepted", "fast_track"]
    owner: str | None
    reason: str | None
    skipped_stages: list[LeadStageName]


class LeadSqlReached(_LeadEvent):
    """The lead became a sales qualified lead (SQL): BANT recorded, or fast-tracked."""

    type: Literal["lead.sql_reached"] = "lead.sql_reached"
    from_stage: LeadStageName
    via: Literal["bant", "fast_track"]
    bant: BantAnswers | None = Field(description="present when via is bant")
    reason: str | None
    skipped_stages: list[LeadStageName]


class LeadRecycledEvent(_LeadEvent):
    """The lead went back to nurturing: sales rejected it, or it was recycled."""

    type: Literal["lead.recycled"] = "lead.recycled"
    from_stage: LeadStageName
    via: Literal["rejected", "recycled"]
    reason: str


class LeadDisqualifiedEvent(_LeadEvent):
    """The lead was disqualified."""

    type: Literal["lead.disqualified"] = "lead.disqualified"
    from_stage: LeadStageName
    reason: str


class LeadReopenedEvent(_LeadEvent):
    """A disqualified lead was reopened into the stage it had left."""

    type: Literal["lead.reopened"] = "lead.reopened"
    to_stage: LeadStageName
    reason: str | None


class LeadConvertedEvent(_LeadEvent):
    """A deal was opened from the lead."""

    type: Literal["lead.converted"] = "lead.converted"
    from_stage: LeadStageName
    deal_id: UUID
    deal_external_id: str
    fast_tracked: bool = Field(description="the lead skipped stages to convert")


class DealOpenedEvent(_DealEvent):
    """A deal was opened (from a lead, or directly)."""

    type: Literal["deal.opened"] = "deal.opened"


class DealStageChangedEvent(_DealEvent):
    """An open deal moved to another stage of its pipeline (forwards or backwards)."""

    type: Literal["deal.stage_changed"] = "deal.stage_changed"
    from_stage: str
    to_stage: str


class DealWonEvent(_DealEvent):
    """The deal was won."""

    type: Literal["deal.won"] = "deal.won"
    from_stage: str
    to_stage: str
    amount: DecimalText
    currency: str


class DealLostEvent(_DealEvent):
    """The deal was lost."""

    type: Literal["deal.lost"] = "deal.lost"
    from_stage: str
    to_stage: str
    reason: str
    competitor: str | None


class DealReopenedEvent(_DealEvent):
    """A closed deal was reopened."""

    type: Literal["deal.reopened"] = "deal.reopened"
    from_stage: str
    to_stage: str
    reason: str | None


class LeadErasedEvent(IntegrationEvent):
    """The lead's personal data was forgotten on request (GDPR Art. 17): delete every copy
    of it and of its deals that you keep (external ids, BANT answers, reasons, whatever
    else an earlier record gave you). leadflow's own copies read as ``[erased]`` from now
    on; no later record names the person. It carries no personal data."""

    type: Literal["lead.erased"] = "lead.erased"
    lead_id: UUID = Field(description="the erased lead (also the record key)")
    deal_ids: list[UUID] = Field(description="its deals: delete what you keep of them too")

    def record_key(self) -> UUID:
        return self.lead_id


class RelayUnmappable(IntegrationEvent):
    """The relay could not map this domain event to the contract: the change it stands for
    is not published in full (read the lead or deal afresh)."""

    type: Literal["relay.unmappable"] = "relay.unmappable"
    aggregate_id: UUID = Field(description="the lead or deal (also the record key)")
    event_type: str = Field(description="the domain event's type")
    reason: str = Field(description="why the relay could not map it")

    def record_key(self) -> UUID:
        return self.aggregate_id


EVENT_MODELS: tuple[type[IntegrationEvent], ...] = (
    LeadMqlReached,
    LeadSalReached,
    LeadSqlReached,
    LeadRecycledEvent,
    LeadDisqualifiedEvent,
    LeadReopenedEvent,
    LeadConvertedEvent,
    DealOpenedEvent,
    DealStageChangedEvent,
    DealWonEvent,
    DealLostEvent,
    DealReopenedEvent,
    LeadErasedEvent,
)
QualificationEvent = Annotated[
    LeadMqlReached
    | LeadSalReached
    | LeadSqlReached
    | LeadRecycledEvent
    | LeadDisqualifiedEvent
    | LeadReopenedEvent
    | LeadConvertedEvent
    | DealOpenedEvent
    | DealStageChangedEvent
    | DealWonEvent
    | DealLostEvent
    | DealReopenedEvent
    | LeadErasedEvent
    | RelayUnmappable,
    Field(discriminator="type"),
]
QUALIFICATION_ADAPTER: TypeAdapter[QualificationEvent] = TypeAdapter(QualificationEvent)


def event_type(model: type[IntegrationEvent]) -> str:
    return str(model.model_fields["type"].default)


# --- mapping from domain events ------------------------------------------------------


class StateLookup(Protocol):
    """Where the relay reads a lead's or deal's state at one version."""

    def lead(self, lead_id: UUID, version: int) -> LeadState: ...

    def deal(self, deal_id: UUID, version: int) -> DealState: ...


def decimal_text(value: Decimal) -> str:
    return format(value, "f")


def _envelope(event: ev.DomainEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "aggregate_version": event.originator_version,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "actor": event.actor,
        "correlation_id": event.correlation_id,
    }


def _lead_event(event: ev.DomainEvent, lookup: StateLookup) -> IntegrationEvent | None:
    match event:
        case ev.LeadQualifiedAsMQL():
            payload: dict[str, Any] = {
                "from_stage": event.from_stage,
                "via": event.via,
                "score": event.score,
                "reason": event.reason,
                "skipped_stages": [],
            }
            model: type[_LeadEvent] = LeadMqlReached
        case ev.LeadAccepted():
            payload = {
                "from_stage": "mql",
                "via": "accepted",
                "owner": event.owner,
                "reason": event.reason,
                "skipped_stages": [],
            }
            model = LeadSalReached
        case ev.LeadQualifiedAsSQL():
            payload = {
                "from_stage": "sal",
                "via": "bant",
                "bant": BantAnswers(**event.bant.model_dump()),
                "reason": None,
                "skipped_stages": [],
            }
            model = LeadSqlReached
        case ev.LeadFastTracked():
            return _fast_tracked(event, lookup)
        case ev.LeadRejected():
            payload = {"from_stage": "mql", "via": "rejected", "reason": event.reason}
            model = LeadRecycledEvent
        case ev.LeadRecycled():
            payload = {"from_stage": event.from_stage, "via": "recycled", "reason": event.reason}
            model = LeadRecycledEvent
        case ev.LeadDisqualified():
            payload = {"from_stage": event.from_stage, "reason": event.reason}
            model = LeadDisqualifiedEvent
        case ev.LeadReopened():
            payload = {"to_stage": event.to_stage, "reason": event.reason}
            model = LeadReopenedEvent
        case ev.LeadErased():
            return LeadErasedEvent(
                **_envelope(event), lead_id=event.originator_id, deal_ids=event.deal_ids
            )
        case ev.LeadConverted():
            payload = {
                "from_stage": event.from_stage,
                "deal_id": event.deal_id,
                "deal_external_id": event.deal_external_id,
                "fast_tracked": event.fast_tracked,
            }
            model = LeadConvertedEvent
        case _:
            return None
    lead = lookup.lead(event.originator_id, event.originator_version)
    return model(**_envelope(event), **payload, lead=lead)


def _fast_tracked(event: ev.LeadFastTracked, lookup: StateLookup) -> _LeadEvent:
    lead = lookup.lead(event.originator_id, event.originator_version)
    common: dict[str, Any] = {
        **_envelope(event),
        "lead": lead,
        "from_stage": event.from_stage,
        "via": "fast_track",
        "reason": event.reason,
        "skipped_stages": list(event.skipped),
    }
    if event.to_stage == "mql":
        return LeadMqlReached(**common, score=lead.score)
    if event.to_stage == "sal":
        return LeadSalReached(**common, owner=lead.owner)
    return LeadSqlReached(**common, bant=None)


def _deal_event(event: ev.DomainEvent, lookup: StateLookup) -> IntegrationEvent | None:
    match event:
        case ev.DealOpened():
            payload: dict[str, Any] = {}
            model: type[_DealEvent] = DealOpenedEvent
        case ev.DealStageChanged():
            payload = {"from_stage": event.from_stage, "to_stage": event.to_stage}
            model = DealStageChangedEvent
        case ev.DealWon():
            payload = {
                "from_stage": event.from_stage,
                "to_stage": event.to_stage,
                "amount": decimal_text(event.amount),
            }
            model = DealWonEvent
        case ev.DealLost():
            payload = {
                "from_stage": event.from_stage,
                "to_stage": event.to_stage,
                "reason": event.reason,
                "competitor": event.competitor,
            }
            model = DealLostEvent
        case ev.DealReopened():
            payload = {
                "from_stage": event.from_stage,
                "to_stage": event.to_stage,
                "reason": event.reason,
            }
            model = DealReopenedEvent
        case _:
            return None
    deal = lookup.deal(event.originator_id, event.originator_version)
    if model is DealWonEvent:
        payload["currency"] = deal.currency
    return model(**_envelope(event), **payload, deal=deal)


def integration_event(event: ev.DomainEvent, lookup: StateLookup) -> IntegrationEvent | None:
    """The public event for a domain event, or None when sales systems do not see it."""
    if type(event) in ev.DEAL_EVENTS:
        return _deal_event(event, lookup)
    return _lead_event(event, lookup)


def unmappable_event(event: ev.DomainEvent, reason: str) -> RelayUnmappable:
    """The marker published in place of a domain event that could not be mapped."""
    return RelayUnmappable(
        **_envelope(event),
        aggregate_id=event.originator_id,
        event_type=event.event_type,
        reason=reason,
    )


def to_public_record(public: IntegrationEvent) -> KafkaRecord:
    return KafkaRecord(
        key=str(public.record_key()).encode(),
        value=public.model_dump_json(by_alias=True).encode("utf-8"),
        headers=[
            ("schema", SCHEMA_ID.encode()),
            ("type", public.type.encode()),
            ("event_id", str(public.event_id).encode()),
        ],
    )


# --- JSON Schema files ---------------------------------------------------------------


def _document(schema: dict[str, Any], name: str, title: str) -> dict[str, Any]:
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"urn:leadflow:schema:qualification:v1:{name}",
        **schema,
        "title": title,
    }


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema: one per event type, plus ``envelope.json`` for any record."""
    documents = {
        f"{event_type(model)}.json": _document(
            model.model_json_schema(mode="serialization", by_alias=True),
            event_type(model),
            event_type(model),
        )
        for model in EVENT_MODELS
    }
    union = QUALIFICATION_ADAPTER.json_schema(mode="serialization", by_alias=True)
    union["description"] = (__doc__ or "").strip()
    documents["envelope.json"] = _document(union, "envelope", SCHEMA_ID)
    return documents


def render_schema(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    import sys

    from consumers.contracts.schema_files import main

    sys.exit(main())
