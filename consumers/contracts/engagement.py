"""``leadflow.engagement.v1``: one engagement per record, as marketing automation sends it.

The record is one JSON object (UTF-8, at most ``max_record_bytes``)::

    {"event_id": "mautic-8812", "email": "ada@example.com", "kind": "form_submit",
     "occurred_at": "2026-03-01T10:00:00Z", "source": "mautic", "campaign": "spring",
     "attributes": {"company": "Acme", "industry": "software", "employees": 120},
     "properties": {"form": "demo"}}

``event_id`` is the idempotency key. ``lead`` (the caller's external id) or ``email``
names the lead; with both, ``lead`` is the id and ``email`` is kept as an attribute.
``parse_engagement`` is the single validation path for Kafka and ``leadflow engage``: it
returns the record or raises ``InvalidEngagement`` saying what is wrong, where and why.

Beyond the field types, every value in the record is bounded as the domain bounds a
command's (``domain.input_limits``): ``attributes`` and ``properties`` nest at most
``MAX_DEPTH`` levels, text and keys hold no NUL or other control characters (tab,
newline and carriage return are allowed), integers lie within ±2**53 and numbers are
finite.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from adapters.storable_text import storable_text
from domain.commands import CaptureLead, RecordEngagement
from domain.input_limits import JsonRefused, check_json_value, load_json, utc_timestamp
from domain.scoring import EngagementKind

DEFAULT_SOURCE = "engagement"
MAX_COMMAND_ID = 200
INGEST_CLOCK = "the time of ingest"

Problem = Literal[
    "empty",
    "oversized",
    "not_utf8",
    "not_json",
    "not_object",
    "invalid_fields",
    "too_far_in_future",
    "refused",
    "unprocessable",
]


class InvalidEngagement(ValueError):
    """A record leadflow cannot take: ``problem`` is its kind, ``reason`` the full story."""

    def __init__(self, problem: Problem, reason: str) -> None:
        self.problem = problem
        self.reason = reason
        super().__init__(reason)


def _iso_text(value: object) -> object:
    if not isinstance(value, str):
        msg = "must be an ISO 8601 timestamp as text"
        raise ValueError(msg)
    return value


IsoTimestamp = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(utc_timestamp)]
Text = Annotated[StrictStr, Field(min_length=1, max_length=2000)]
Number = StrictInt | StrictFloat


class Firmographics(BaseModel):
    """What the source knows about the lead's company and role; other keys are kept too."""

    model_config = ConfigDict(frozen=True, extra="allow")

    company: Text | None = None
    industry: Text | None = None
    employees: Number | Text | None = Field(
        default=None, description='a number, or text such as "1,200", "10k" or "51-200"'
    )
    revenue: Number | Text | None = Field(
        default=None, description='yearly revenue: a number, or text such as "$5M"'
    )
    title: Text | None = None
    country: Text | None = Field(default=None, description="ISO 3166-1 alpha-2 code")


class EngagementRecordV1(BaseModel):
    """One engagement (schema version 1) on topic leadflow.engagement.v1."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="leadflow.engagement.v1")

    schema_version: Literal[1] = 1
    event_id: Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"\S")] = Field(
        description="unique per engagement: the idempotency key"
    )
    email: Annotated[StrictStr, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    lead: Annotated[StrictStr, Field(min_length=1, max_length=320, pattern=r"\S")] | None = Field(
        default=None, description="the caller's external id of the lead; else email is used"
    )
    kind: EngagementKind
    occurred_at: IsoTimestamp = Field(description="ISO 8601; without an offset it is UTC")
    source: Text | None = None
    campaign: Text | None = None
    attributes: Firmographics = Field(default_factory=Firmographics)
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _within_limits(cls, data: object) -> object:
        if isinstance(data, dict):
            check_json_value(data, depth=0)  # the record's fields sit where a command's do
        return data

    @field_validator("occurred_at")
    @classmethod
    def _not_far_in_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        context = info.context or {}
        now, limit = context.get("now"), context.get("max_future")
        clock = str(context.get("clock", INGEST_CLOCK))
        if isinstance(now, datetime) and isinstance(limit, timedelta) and value - now > limit:
            raise PydanticCustomError(
                "too_far_in_future",
                "lies more than {limit} after {clock} ({now})",
                {
                    "limit": duration_text(limit),
                    "clock": clock,
                    "now": now.isoformat(timespec="seconds"),
                },
            )
        return value

    @model_validator(mode="after")
    def _names_a_lead(self) -> EngagementRecordV1:
        if self.lead is None and self.email is None:
            msg = "names no lead: give lead (your external id) or email"
            raise ValueError(msg)
        return self

    @property
    def lead_ref(self) -> str:
        ref = self.lead or self.email
        assert ref is not None
        return ref


# --- parsing -------------------------------------------------------------------------


def _where(error: ErrorDetails) -> str:
    return ".".join(str(part) for part in error["loc"]) or "record"


def _short(value: object, limit: int = 80) -> str:
    text = storable_text(json.dumps(value, ensure_ascii=False, default=str))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _describe(error: ErrorDetails) -> str:
    where = _where(error)
    if error["type"] == "missing":
        return f"{where}: required field is missing"
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown field"
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return f"{where}: {message}"
    return f"{where}: {message} (got {_short(error['input'])})"


def duration_text(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {list: "array", str: "string", type(None): "null"}.get(type(value), "value")


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        bad = raw[error.start : error.start + 1].hex()
        reason = f"not UTF-8: byte 0x{bad} at byte offset {error.start}: {error.reason}"
        raise InvalidEngagement("not_utf8", reason) from None
    try:
        data = load_json(text)
    except json.JSONDecodeError as error:
        reason = f"not JSON: line {error.lineno} column {error.colno}: {error.msg}"
        raise InvalidEngagement("not_json", reason) from None
    except JsonRefused as error:
        problem: Problem = "invalid_fields" if error.beyond_limits else "not_json"
        raise InvalidEngagement(problem, str(error)) from None
    if not isinstance(data, dict):
        reason = f"not a JSON object: the record is a JSON {_json_kind(data)}: {_short(data)}"
        raise InvalidEngagement("not_object", reason)
    if _SURROGATE_ESCAPE.search(raw):
        _reject_lone_surrogates(data)
    return data


# the only way into decoded JSON for a surrogate code point (U+D800..U+DFFF) is an escape
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _reject_lone_surrogates(data: dict[str, Any]) -> None:
    """A ``\\udXXX`` escape not part of a pair decodes to a code point no UTF-8 text
    holds: no store nor Kafka header could take it."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        code = ord(error.object[error.start])
        reason = f"not Unicode text: the JSON escape \\u{code:04x} is a lone surrogate"
        raise InvalidEngagement("not_utf8", reason) from None


def parse_engagement(
    raw: bytes | None,
    *,
    max_bytes: int,
    max_future: timedelta,
    now: datetime | None = None,
    clock: str = INGEST_CLOCK,
) -> EngagementRecordV1:
    """Validate one record's bytes; ``now`` bounds occurred_at (default: the wall clock at
    ingest; ``clock`` names it in the reason, e.g. "the record's Kafka timestamp")."""
    if not raw:
        raise InvalidEngagement("empty", "empty record: it has no value")
    if len(raw) > max_bytes:
        reason = f"oversized: the record has {len(raw)} bytes; the limit is {max_bytes} bytes"
        raise InvalidEngagement("oversized", reason)
    data = _decode(raw)
    context = {"now": now or datetime.now(UTC), "max_future": max_future, "clock": clock}
    try:
        return EngagementRecordV1.model_validate(data, context=context)
    except ValidationError as error:
        details = error.errors(include_url=False)
        only_future = all(e["type"] == "too_far_in_future" for e in details)
        problem: Problem = "too_far_in_future" if only_future else "invalid_fields"
        reason = "invalid engagement record: " + "; ".join(_describe(e) for e in details)
        raise InvalidEngagement(problem, reason) from None


# --- commands ------------------------------------------------------------------------


def command_id(origin: str) -> str:
    """A command id from where the record came from; long origins are digested."""
    if len(origin) <= MAX_COMMAND_ID - 10:
        return origin
    return "sha256:" + hashlib.sha256(origin.encode()).hexdigest()


def to_commands(
    record: EngagementRecordV1, origin: str, actor: str
) -> tuple[CaptureLead, RecordEngagement]:
    """Capture the lead (with the record's attributes; of a known lead, only those it
    lacks), then record the engagement.

    ``origin`` names the inbound message (e.g. ``kafka:<topic>/<partition>/<offset>/<id>``);
    it becomes the causation id of the events, and the correlation id is ``event_id``.
    """
    engage_id = command_id(origin)
    attributes = record.attributes.model_dump(exclude_none=True)
    if record.lead is not None and record.email is not None:
        attributes.setdefault("email", record.email)
    capture = CaptureLead(
        lead=record.lead_ref,
        source=record.source or DEFAULT_SOURCE,
        campaign=record.campaign,
        attributes=attributes,
        fill_missing_only=True,  # decided by the application on the freshly loaded lead
        occurred_at=record.occurred_at,
        command_id=f"{engage_id}:capture",
        correlation_id=record.event_id,
        actor=actor,
    )
    engage = RecordEngagement(
        lead=record.lead_ref,
        event_id=record.event_id,
        kind=record.kind,
        source=record.source,
        campaign=record.campaign,
        properties=record.properties,
        occurred_at=record.occurred_at,
        command_id=engage_id,
        correlation_id=record.event_id,
        actor=actor,
    )
    return capture, engage


def schema_document() -> dict[str, Any]:
    """The JSON Schema of a v1 record (``schemas/engagement/v1/engagement.json``)."""
    schema = EngagementRecordV1.model_json_schema(mode="validation")
    schema.setdefault("description", "")
    schema["description"] = (
        f"{schema['description']} At most 64 KiB by default (configurable); occurred_at at "
        "most one day (configurable) after the time of ingest; give lead or email. Holds "
        "personal data (email, attributes, properties): leadflow creates this topic and its "
        "dead-letter topic keeping records 30 days by default "
        "(LEADFLOW_KAFKA_ENGAGEMENT_RETENTION_MS, LEADFLOW_KAFKA_DEAD_LETTER_RETENTION_MS)."
    ).strip()
    schema["anyOf"] = [{"required": ["lead"]}, {"required": ["email"]}]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:leadflow:schema:engagement:v1",
        **schema,
    }
