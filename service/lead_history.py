"""What an auditor needs about one lead: every stored event of the lead and of its deals,
whether each aggregate's hash chain verifies, and the state as of any business moment.

Events are read straight from the event store, one by one, so a tampered or undecodable
event is reported in place instead of hiding the rest of the history. The history is in
recorded order: each aggregate's events in version order, lead and deals interleaved by
``recorded_at``.

As-of: the state at business time T is rebuilt from the events with ``occurred_at <= T``,
applied in version order. That is how the business stood at T as far as leadflow knows
today: an event that happened before T but was recorded after T (a late CRM sync, an
import) counts, and ``recorded_after`` says how many of those there are.
"""

from __future__ import annotations

import heapq
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, Literal, cast
from uuid import UUID

import structlog
from eventsourcing.persistence import StoredEvent
from pydantic import BaseModel, ConfigDict, Field

from adapters.event_envelope import DECODE_ERRORS, event_from_state
from adapters.logging import error_text
from adapters.mapper import (
    EVENT_CLASS_BY_TOPIC,
    PydanticMapper,
    raw_state,
    stored_class,
    stored_version,
)
from domain.aggregate import Aggregate, project_aggregate
from domain.errors import DomainError, UnknownAggregate
from domain.event_state import stored_state
from domain.events import (
    OMITTED_WHEN_NONE,
    DealOpened,
    DomainEvent,
    LeadCaptured,
    LeadConverted,
)
from domain.hash_chain import ChainVerdict, StoredLink, verify_chain
from domain.input_limits import TIME_RANGE, in_time_range
from service.application import LeadflowApp
from service.ids import normalise_ref

log = structlog.get_logger("leadflow.service.lead_history")
UNDECODABLE = "cannot be decoded"

AggregateKind = Literal["lead", "deal"]
# A backdated event's original time (``backdated_from``) is shown with its data.
_ENVELOPE = frozenset(DomainEvent.model_fields) - set(OMITTED_WHEN_NONE)
# Bookkeeping sets that duplicate the event list and have no stable order.
_STATE_NOISE = frozenset({"causations", "engagement_ids"})
_CREATED: dict[AggregateKind, type[DomainEvent]] = {"lead": LeadCaptured, "deal": DealOpened}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class AuditedEvent(_Model):
    """One stored event. Envelope fields are None only when the event cannot be decoded."""

    aggregate: AggregateKind
    aggregate_id: UUID
    external_id: str
    version: int | None = Field(description="None: the stored row's version is not a number")
    type: str
    event_id: UUID | None
    occurred_at: datetime | None
    recorded_at: datetime | None
    actor: str | None
    causation_id: str | None
    correlation_id: str | None
    schema_version: int | None
    data: dict[str, Any]
    problem: str | None = None


class ChainReport(_Model):
    aggregate: AggregateKind
    aggregate_id: UUID
    external_id: str
    ok: bool
    events_checked: int
    events_stored: int
    broken_at_version: int | None = None
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"verified ({self.events_checked} events)"
        return f"BROKEN at version {self.broken_at_version}: {self.problem}"


class AggregateState(_Model):
    aggregate: AggregateKind
    aggregate_id: UUID
    external_id: str
    exists: bool
    events_applied: int
    state: dict[str, Any] | None
    problem: str | None = None


class AsOfState(_Model):
    """States rebuilt from the events with ``occurred_at <= at`` (all events when ``at`` is
    None); ``recorded_after`` of them were recorded after ``at``."""

    at: datetime | None
    basis: Literal["occurred_at"] = "occurred_at"
    events_included: int
    recorded_after: int
    aggregates: tuple[AggregateState, ...]


class LeadHistory(_Model):
    ref: str
    lead_id: UUID
    external_id: str
    chains: tuple[ChainReport, ...]
    events: tuple[AuditedEvent, ...]
    as_of: AsOfState
    forged_snapshots: tuple[str, ...] = ()
    """Stored snapshots of these aggregates that are not what their events give."""

    @property
    def verified(self) -> bool:
        return all(chain.ok for chain in self.chains) and not self.forged_snapshots

    def document(self) -> dict[str, Any]:
        """The whole history as one JSON-ready document."""
        return {"verified": self.verified, **self.model_dump(mode="json")}


class _Aggregate:
    """One aggregate's stored events, decoded one by one."""

    def __init__(
        self,
        kind: AggregateKind,
        aggregate_id: UUID,
        stored: Sequence[StoredEvent],
        known_as: str | None = None,
    ) -> None:
        self.kind = kind
        self.id = aggregate_id
        self.stored = stored
        self.known_as = known_as
        self.states: list[dict[str, Any] | None] = []
        self.events: list[DomainEvent | None] = []
        self.problems: list[str | None] = []

    def decode(self, mapper: PydanticMapper) -> None:
        for stored in self.stored:
            state: dict[str, Any] | None = None
            try:
                stored_class(stored)  # an unknown topic is named, and never imported
                state = mapper.decode_state(stored)
                event = event_from_state(
                    stored.topic,
                    stored.originator_id,
                    stored.originator_version,
                    state,
                    mapper.personal,
                )
            except DECODE_ERRORS as error:
                self.states.append(state)
                self.events.append(None)
                self.problems.append(f"{UNDECODABLE}: {error_text(error)}")
                continue
            self.states.append(state)
            self.events.append(event)
            self.problems.append(None)

    @property
    def external_id(self) -> str:
        """From the creation event; if that cannot be decoded, the name it is known by."""
        first = self.events[0] if self.events else None
        return str(getattr(first, "external_id", None) or self.known_as or self.id)

    def chain(self) -> ChainReport:
        verdict = verify_chain(self._links())
        undecodable = next(
            (i for i, state in enumerate(self.states) if state is None), len(self.states)
        )
        if verdict.ok and undecodable < len(self.states):
            version = stored_version(self.stored[undecodable])
            problem = self.problems[undecodable] or UNDECODABLE
            verdict = ChainVerdict(False, verdict.events_checked, version, problem)
        return ChainReport(
            aggregate=self.kind,
            aggregate_id=self.id,
            external_id=self.external_id,
            ok=verdict.ok,
            events_checked=verdict.events_checked,
            events_stored=len(self.stored),
            broken_at_version=verdict.broken_at_version,
            problem=verdict.problem,
        )

    def _links(self) -> Iterator[StoredLink]:
        for stored, state in zip(self.stored, self.states, strict=True):
            if state is None:
                return
            yield StoredLink(
                stored.topic, str(stored.originator_id), stored.originator_version, state
            )

    def audited(self) -> list[AuditedEvent]:
        return [
            _audited(self.kind, self.id, self.external_id, stored, event, state, problem)
            for stored, event, state, problem in zip(
                self.stored, self.events, self.states, self.problems, strict=True
            )
        ]

    def state_as_of(self, at: datetime | None) -> tuple[AggregateState, list[DomainEvent]]:
        undecodable = [
            s.originator_version for s, e in zip(self.stored, self.events, strict=True) if not e
        ]
        included = [e for e in self.events if e is not None and (at is None or e.occurred_at <= at)]
        exists = bool(included) and isinstance(included[0], _CREATED[self.kind])
        state: dict[str, Any] | None = None
        problem = None
        if undecodable:
            problem = f"cannot rebuild: version {undecodable[0]} cannot be decoded"
        elif exists:
            aggregate = cast(Aggregate, project_aggregate(None, included))
            state = aggregate.model_dump(mode="json", exclude=set(_STATE_NOISE))
        result = AggregateState(
            aggregate=self.kind,
            aggregate_id=self.id,
            external_id=self.external_id,
            exists=exists,
            events_applied=len(included) if exists else 0,
            state=state,
            problem=problem,
        )
        return result, included if exists else []


def _audited(
    kind: AggregateKind,
    aggregate_id: UUID,
    external_id: str,
    stored: StoredEvent,
    event: DomainEvent | None,
    state: dict[str, Any] | None,
    problem: str | None,
) -> AuditedEvent:
    event_type = str(stored.topic).rpartition(":")[2]
    if event is None:
        raw = state if state is not None else {"stored": _raw_text(raw_state(stored))}
        return AuditedEvent(
            aggregate=kind,
            aggregate_id=aggregate_id,
            external_id=external_id,
            version=stored_version(stored),
            type=event_type,
            event_id=None,
            occurred_at=None,
            recorded_at=None,
            actor=None,
            causation_id=None,
            correlation_id=None,
            schema_version=None,
            data=raw,
            problem=problem,
        )
    return AuditedEvent(
        aggregate=kind,
        aggregate_id=aggregate_id,
        external_id=external_id,
        version=event.originator_version,
        type=event.event_type,
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        recorded_at=event.recorded_at,
        actor=event.actor,
        causation_id=event.causation_id,
        correlation_id=event.correlation_id,
        schema_version=event.schema_version,
        data={k: v for k, v in stored_state(event).items() if k not in _ENVELOPE},
    )


def _raw_text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def resolve_lead_id(app: LeadflowApp, ref: str) -> UUID:
    """The lead's id from its external id (email, CRM id) or its leadflow UUID.

    Reads only the event store, so a damaged history can still be looked up."""
    try:
        candidate = UUID(ref.strip())
    except ValueError:
        return _by_external_id(app, ref)
    if app.recorder.select_events(candidate, limit=1):
        return candidate
    return _by_external_id(app, ref)


def _by_external_id(app: LeadflowApp, ref: str) -> UUID:
    """The id scheme's lead for ``ref``, looked up again when the id it remembered is of a
    lead erased since (another process unlinked its external id)."""
    lead_id = app.ids.lead(ref)
    last = app.recorder.select_events(lead_id, desc=True, limit=1)
    if last and str(last[0].topic).endswith(":LeadErased") and app.ids.is_stale(ref, lead_id):
        return app.ids.lead(ref)
    return lead_id


def lead_history(app: LeadflowApp, ref: str, as_of: datetime | None = None) -> LeadHistory:
    """The full, verified history of one lead and its deals; the state as of ``as_of``
    (business time; None = everything recorded)."""
    mapper = cast(PydanticMapper, app.mapper)
    lead_id = resolve_lead_id(app, ref)
    known_as = None if ref.strip() == str(lead_id) else normalise_ref(ref)
    lead = _Aggregate("lead", lead_id, app.recorder.select_events(lead_id), known_as)
    if not lead.stored or not _may_be_lead(lead.stored[0].topic):
        raise _not_a_lead(app, ref, mapper)
    lead.decode(mapper)
    aggregates = [lead]
    for deal_id, deal_ref in _deals(lead.events).items():
        deal = _Aggregate("deal", deal_id, app.recorder.select_events(deal_id), deal_ref)
        deal.decode(mapper)
        aggregates.append(deal)
    chains = tuple(a.chain() for a in aggregates)
    for chain in chains:
        if not chain.ok:
            log.warning(
                "hash_chain_broken",
                aggregate=chain.aggregate,
                aggregate_id=str(chain.aggregate_id),
                version=chain.broken_at_version,
                problem=_loggable(chain.problem),
            )
    states, included = zip(*(a.state_as_of(as_of) for a in aggregates), strict=True)
    applied = [e for events in included for e in events]
    late = sum(1 for e in applied if as_of is not None and e.recorded_at > as_of)
    return LeadHistory(
        ref=ref,
        lead_id=lead_id,
        external_id=lead.external_id,
        chains=chains,
        events=tuple(_recorded_order(a.audited() for a in aggregates)),
        as_of=AsOfState(
            at=as_of, events_included=len(applied), recorded_after=late, aggregates=states
        ),
        forged_snapshots=tuple(p for a in aggregates for p in app.snapshot_problems(a.id)),
    )


def _may_be_lead(first_topic: str) -> bool:
    """A lead's first event, or one whose topic was altered (reported as undecodable)."""
    return first_topic.endswith(":LeadCaptured") or first_topic not in EVENT_CLASS_BY_TOPIC


def _not_a_lead(app: LeadflowApp, ref: str, mapper: PydanticMapper) -> DomainError:
    """UnknownAggregate, or a pointer to the lead when ``ref`` names a deal."""
    try:
        deal_id = UUID(ref.strip())
    except ValueError:
        deal_id = app.ids.deal(ref)
    first = app.recorder.select_events(deal_id, limit=1)
    if first and first[0].topic.endswith(":DealOpened"):
        try:
            state = mapper.open_state(first[0].topic, mapper.decode_state(first[0]))
            lead_ref = state.get("lead_external_id")
        except DECODE_ERRORS:
            lead_ref = None
        if lead_ref:
            return DomainError(f"{ref!r} is a deal, not a lead: its lead is {lead_ref!r}")
        return DomainError(f"{ref!r} is a deal that was not opened from a lead")
    return UnknownAggregate("lead", ref)


def _deals(events: Iterable[DomainEvent | None]) -> dict[UUID, str]:
    """The lead's deals, in the order they were opened: id -> external id."""
    return {
        event.deal_id: event.deal_external_id
        for event in events
        if isinstance(event, LeadConverted)
    }


def _recorded_order(per_aggregate: Iterable[list[AuditedEvent]]) -> Iterator[AuditedEvent]:
    """Interleave aggregates by recorded_at, never reordering one aggregate's versions; an
    undecodable event keeps the place of the event before it."""

    def keyed(events: list[AuditedEvent]) -> list[tuple[datetime, AuditedEvent]]:
        last = datetime.min.replace(tzinfo=UTC)
        out = []
        for event in events:
            last = event.recorded_at or last
            out.append((last, event))
        return out

    streams = [keyed(events) for events in per_aggregate]
    for _, event in heapq.merge(*streams, key=lambda pair: pair[0]):
        yield event


def parse_as_of(text: str) -> datetime:
    """ISO 8601 date or date-time; without an offset it is UTC. A bare date means the end
    of that day (everything that occurred on it is included). Refused outside the range
    of accepted timestamps."""
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        msg = (
            f"{text!r} is not an ISO 8601 date or date-time (e.g. 2026-02-15 or 2026-02-15T12:00Z)"
        )
        raise ValueError(msg) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if len(value) == 10:  # YYYY-MM-DD
        moment = datetime.combine(moment.date(), time.max, tzinfo=UTC)
    try:
        return in_time_range(moment)
    except ValueError:
        raise ValueError(f"{text!r} is outside the accepted range, {TIME_RANGE}") from None


def _loggable(problem: str | None) -> str | None:
    """A chain's problem for the log: a decoding error's text may quote the event, so only
    that it could not be decoded (the history shows the whole text)."""
    undecodable = problem is not None and problem.startswith(UNDECODABLE)
    return UNDECODABLE if undecodable else problem


def write_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that the file appears complete or not at all."""
    path = path.expanduser()
    target_dir = path.parent if str(path.parent) else Path()
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=target_dir)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def export_jsonl(history: LeadHistory, path: Path) -> int:
    """Write the history as JSON Lines: one ``{"record": "event", ...}`` line per event in
    history order, then one ``{"record": "summary", ...}`` line (chains, as-of state,
    verified). The file appears complete or not at all. Returns the number of lines."""
    lines = [
        json.dumps({"record": "event", **e.model_dump(mode="json")}, ensure_ascii=False)
        for e in history.events
    ]
    summary = history.model_dump(mode="json", exclude={"events"})
    summary = {"record": "summary", "verified": history.verified, **summary}
    summary["events"] = len(history.events)
    lines.append(json.dumps(summary, ensure_ascii=False))
    write_whole(path, ("\n".join(lines) + "\n").encode("utf-8"))
    log.info("history_exported", lead_id=str(history.lead_id), path=str(path), lines=len(lines))
    return len(lines)


__all__ = [
    "AggregateState",
    "AsOfState",
    "AuditedEvent",
    "ChainReport",
    "LeadHistory",
    "export_jsonl",
    "lead_history",
    "parse_as_of",
    "resolve_lead_id",
    "write_whole",
]
