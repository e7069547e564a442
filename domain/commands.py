"""Commands: what callers ask leadflow to do, validated before anything is touched.

The same models parse the JSON Lines of ``leadflow import``, the CLI subcommands and
(later) HTTP bodies. ``lead`` and ``deal`` name the caller's external id (an email or a
CRM id) or leadflow's own UUID; every command carries it normalised. Timestamps are
ISO 8601, one without an offset is UTC, and every command carries them in UTC. The
bounds (ranges, identifier rules) are those of ``domain.input_limits``. ``backdated``
applies the business-time rule of ``domain.business_time``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
)

from domain.aggregate import GENERATED_CAUSATION_PREFIX, is_generated_causation
from domain.events import Bant
from domain.input_limits import (
    check_identifier,
    check_identifier_input,
    check_json_object,
    check_text,
    date_in_range,
    normalise_identifier,
    utc_timestamp,
)
from domain.scoring import ENGAGEMENT_KINDS

Timestamp = Annotated[datetime, AfterValidator(utc_timestamp)]
CalendarDate = Annotated[date, AfterValidator(date_in_range)]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(check_text),
]
# Ids are checked before trimming, so that trimming cannot hide a refused character.
Ref = Annotated[  # a lead's or a deal's external id
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=320),
    BeforeValidator(check_identifier_input),
    AfterValidator(normalise_identifier),
]
Key = Annotated[  # an event id, a stage's or a pipeline's name
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=320),
    BeforeValidator(check_identifier_input),
    AfterValidator(check_identifier),
]
Token = Annotated[  # a command, correlation or actor id
    str,
    StringConstraints(max_length=200),
    BeforeValidator(check_identifier_input),
    AfterValidator(check_identifier),
]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_object)]
# Amounts as CRMs export them (e.g. quantity x price: 9225.225), kept exactly.
# 14 digits before the point: any amount fits a read model's 64-bit integer in minor units.
Amount = Annotated[Decimal, Field(ge=0, max_digits=20, decimal_places=6)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: Token | None = None
    correlation_id: Token | None = None
    actor: Token | None = None
    on_behalf_of: Token | None = Field(
        default=None, description="the person the sender acts for (recorded beside the actor)"
    )
    occurred_at: Timestamp
    backdated: bool = Field(
        default=False,
        description="a stage or deal change dated before the last stage change is recorded "
        "at that change, keeping this occurred_at in the event's backdated_from (without "
        "it, such a change is refused)",
    )

    @field_validator("backdated", mode="before")
    @classmethod
    def _null_is_absent(cls, backdated: object) -> object:
        """``"backdated": null`` reads as absent, as every other optional field does."""
        return False if backdated is None else backdated

    @field_validator("command_id")
    @classmethod
    def _not_reserved(cls, command_id: str | None) -> str | None:
        if command_id is not None and is_generated_causation(command_id):
            msg = (
                f"starts with {GENERATED_CAUSATION_PREFIX!r}, which leadflow reserves for "
                "commands sent without an id"
            )
            raise ValueError(msg)
        return command_id


class LeadCommand(Command):
    lead: Ref


class CaptureLead(LeadCommand):
    command: Literal["capture_lead"] = "capture_lead"
    source: Text
    campaign: Text | None = None
    attributes: JsonObject = Field(default_factory=dict)
    fill_missing_only: bool = Field(
        default=False,
        description="for a known lead, add only attributes it lacks; never overwrite",
    )


class RecordEngagement(LeadCommand):
    command: Literal["record_engagement"] = "record_engagement"
    event_id: Key
    kind: str
    source: Text | None = None
    campaign: Text | None = None
    properties: JsonObject = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in ENGAGEMENT_KINDS:
            msg = f"unknown engagement kind {kind!r}; expected one of {', '.join(ENGAGEMENT_KINDS)}"
            raise ValueError(msg)
        return kind


class LogContact(LeadCommand):
    command: Literal["log_contact"] = "log_contact"
    channel: Literal["call", "email", "social", "meeting"]
    outcome: Text | None = None


class MarkMql(LeadCommand):
    command: Literal["mark_mql"] = "mark_mql"
    reason: Text | None = None


class AcceptLead(LeadCommand):
    command: Literal["accept_lead"] = "accept_lead"
    reason: Text | None = None
    owner: Text | None = None


class ReopenLead(LeadCommand):
    command: Literal["reopen_lead"] = "reopen_lead"
    reason: Text | None = None


class RejectLead(LeadCommand):
    command: Literal["reject_lead"] = "reject_lead"
    reason: Text


class RecycleLead(LeadCommand):
    command: Literal["recycle_lead"] = "recycle_lead"
    reason: Text


class DisqualifyLead(LeadCommand):
    command: Literal["disqualify_lead"] = "disqualify_lead"
    reason: Text


class QualifyLead(LeadCommand):
    command: Literal["qualify_lead"] = "qualify_lead"
    bant: Bant


class FastTrack(LeadCommand):
    command: Literal["fast_track"] = "fast_track"
    to_stage: Literal["mql", "sal", "sql"]
    reason: Text


class ForgetLead(LeadCommand):
    """Forget the lead's personal data (``leadflow forget``; not a command of imports)."""

    command: Literal["forget_lead"] = "forget_lead"
    reason: Text


class DealCommand(Command):
    deal: Ref


class OpenDeal(DealCommand):
    command: Literal["open_deal"] = "open_deal"
    lead: Ref | None = None
    amount: Amount
    currency: Currency = "EUR"
    pipeline: Key | None = None
    owner: Text | None = None
    expected_close_date: CalendarDate | None = None
    fast_track: bool = False


class MoveDeal(DealCommand):
    command: Literal["move_deal"] = "move_deal"
    stage: Key


class WinDeal(DealCommand):
    command: Literal["win_deal"] = "win_deal"
    amount: Amount | None = None


class LoseDeal(DealCommand):
    command: Literal["lose_deal"] = "lose_deal"
    reason: Text
    competitor: Text | None = None


class ReopenDeal(DealCommand):
    command: Literal["reopen_deal"] = "reopen_deal"
    stage: Key | None = None
    reason: Text | None = None


class UpdateDeal(DealCommand):
    command: Literal["update_deal"] = "update_deal"
    amount: Amount | None = None
    currency: Currency | None = None
    expected_close_date: CalendarDate | None = None


AnyCommand = Annotated[
    CaptureLead
    | RecordEngagement
    | LogContact
    | MarkMql
    | AcceptLead
    | ReopenLead
    | RejectLead
    | RecycleLead
    | DisqualifyLead
    | QualifyLead
    | FastTrack
    | OpenDeal
    | MoveDeal
    | WinDeal
    | LoseDeal
    | ReopenDeal
    | UpdateDeal,
    Field(discriminator="command"),
]
COMMAND_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(AnyCommand)
COMMAND_NAMES: tuple[str, ...] = tuple(
    m.model_fields["command"].default
    for m in (
        CaptureLead,
        RecordEngagement,
        LogContact,
        MarkMql,
        AcceptLead,
        ReopenLead,
        RejectLead,
        RecycleLead,
        DisqualifyLead,
        QualifyLead,
        FastTrack,
        OpenDeal,
        MoveDeal,
        WinDeal,
        LoseDeal,
        ReopenDeal,
        UpdateDeal,
    )
)
