"""Valid engagement records → commands → the event store, many records in one transaction.

Shared by ``leadflow ingest`` (Kafka) and ``leadflow engage`` (CLI). Each record becomes
"capture the lead when it is new" and "record the engagement"; the lead rescores and
may reach MQL by itself. The commands of a whole batch are stored in one transaction
(``LeadflowApp.handle_many``); a refused record changes nothing and the others still
apply.

Firmographics (``attributes``) of a record fill in what the lead does not know yet; they
never overwrite a value the lead has. The planner leaves out what it already knows the
lead has; the final say is the application's (``CaptureLead.fill_missing_only``), against
the lead as loaded in the storing transaction, so two ingest members capturing the same
new lead at once cannot overwrite each other. A record read again, or an old one arriving late,
must not undo newer data, and reading a topic again must change nothing. Corrections of
known attributes go through the ``capture_lead`` command.

``apply_isolating`` keeps a consumer moving: a failure that is the record's fault
(``consumers.failure_policy``: permanent) is narrowed down by splitting the batch until
the one record that causes it is found; that record is judged ``unprocessable`` and the
others apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import structlog
from pydantic import ValidationError

from adapters.logging import error_text
from adapters.stream_settings import StreamSettings
from consumers.contracts.engagement import (
    INGEST_CLOCK,
    EngagementRecordV1,
    InvalidEngagement,
    parse_engagement,
    to_commands,
)
from consumers.failure_policy import isolate_bad_items
from domain.commands import Command, RecordEngagement
from domain.errors import DomainError, UnknownAggregate
from domain.lead import Lead
from service.application import LeadflowApp
from service.ids import as_uuid
from service.unit_of_work import Outcome

log = structlog.get_logger("leadflow.engagement_apply")

# applied: recorded now; redelivered: recorded earlier by this same origin (a record read
# again after a crash); duplicate: an engagement with this event_id was already recorded.
Applied = Literal["applied", "redelivered", "duplicate"]


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_bytes: int
    max_future: timedelta

    @classmethod
    def from_settings(cls, stream: StreamSettings) -> IngestLimits:
        return cls(stream.max_record_bytes, stream.max_future)

    def parse(
        self, raw: bytes | None, *, now: datetime | None = None, clock: str = INGEST_CLOCK
    ) -> EngagementRecordV1:
        """The record; whatever the bytes are, any failure raises ``InvalidEngagement``."""
        try:
            return parse_engagement(
                raw, max_bytes=self.max_bytes, max_future=self.max_future, now=now, clock=clock
            )
        except InvalidEngagement:
            raise
        except Exception as error:  # any input a validator chokes on is invalid
            reason = f"unreadable record: {error_text(error)}"
            raise InvalidEngagement("invalid_fields", reason) from error


@dataclass(frozen=True, slots=True)
class _Planned:
    commands: tuple[Command, ...]
    engage: RecordEngagement


class _Planner:
    """Plans each record's commands, knowing which attributes each lead already has,
    including those the batch's earlier records will add."""

    def __init__(self, app: LeadflowApp, actor: str) -> None:
        self.app = app
        self.actor = actor
        self._known: dict[UUID, set[str] | None] = {}

    def read_ahead(self, lead_refs: Sequence[str]) -> None:
        """Read the batch's leads into the aggregate cache at once (one query per table
        instead of three round trips per lead); those that do not exist are known to."""
        ids = [self.app.ids.lead(ref) for ref in lead_refs]
        ids += [own for ref in lead_refs if (own := as_uuid(ref)) is not None]
        for lead_id in self.app.preload(ids):
            self._known.setdefault(lead_id, None)

    def _known_keys(self, lead_id: UUID, ref: str) -> set[str] | None:
        """The lead's attribute names; None when the lead does not exist (yet)."""
        if lead_id not in self._known:
            try:
                self._known[lead_id] = set(self._lead(lead_id, ref).attributes)
            except UnknownAggregate:
                self._known[lead_id] = None
        return self._known[lead_id]

    def _lead(self, lead_id: UUID, ref: str) -> Lead:
        """The lead as the batch will load it: through the aggregate cache, which this
        read fills, so that the batch's own load is no second read of the store."""
        lead = self.app.peek_cached(lead_id)
        if not isinstance(lead, Lead):
            lead = self.app.load_cached(Lead, lead_id, ref)
        if lead.erased_at is not None:
            return self.app.get_lead(ref)  # the ref may name a lead forgotten since
        return lead

    def plan(self, record: EngagementRecordV1, origin: str) -> _Planned | InvalidEngagement:
        try:
            capture, engage = to_commands(record, origin, self.actor)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "command"
            return InvalidEngagement(
                "invalid_fields", f"invalid command from the record: {where}: {first['msg']}"
            )
        lead_id = self.app.ids.lead(capture.lead)
        if self.app.resolve_lead(capture.lead) != lead_id:
            return _Planned((engage,), engage)  # addressed by leadflow's own id: it exists
        known = self._known_keys(lead_id, capture.lead)
        if known is None:
            self._known[lead_id] = set(capture.attributes)
            return _Planned((capture, engage), engage)
        missing = {k: v for k, v in capture.attributes.items() if k not in known}
        if not missing:
            return _Planned((engage,), engage)
        known.update(missing)
        return _Planned((capture.model_copy(update={"attributes": missing}), engage), engage)


def _verdict(results: Sequence[Outcome | DomainError]) -> Applied | InvalidEngagement:
    """The engagement's outcome; one the command ledger had recorded as stored by this
    same origin is ``redelivered``."""
    engage_result = results[-1]
    if isinstance(engage_result, DomainError):
        why = "; ".join(str(r) for r in results if isinstance(r, DomainError))
        return InvalidEngagement("refused", f"refused by the domain: {why}")
    if engage_result.status == "applied":
        return "applied"
    return "redelivered" if engage_result.replayed and engage_result.events else "duplicate"


def apply_engagements(
    app: LeadflowApp, records: Sequence[tuple[EngagementRecordV1, str]], actor: str
) -> list[Applied | InvalidEngagement]:
    """Apply (record, origin) pairs in one transaction; one verdict per pair, in order.

    ``origin`` names the inbound message and becomes the causation id of its events.
    A concurrency conflict or a storage failure raises: nothing of the batch is stored.
    """
    planner = _Planner(app, actor)
    refs = [record.lead_ref for record, _ in records]
    with app.ids.batch(refs, []):  # one look-up
        planner.read_ahead(refs)
        plans = [planner.plan(record, origin) for record, origin in records]
    commands = [c for p in plans if isinstance(p, _Planned) for c in p.commands]
    results = app.handle_many(commands) if commands else []
    verdicts: list[Applied | InvalidEngagement] = []
    cursor = 0
    for plan in plans:
        if isinstance(plan, InvalidEngagement):
            verdicts.append(plan)
            continue
        mine = results[cursor : cursor + len(plan.commands)]
        cursor += len(plan.commands)
        verdicts.append(_verdict(mine))
    return verdicts


def apply_isolating(
    app: LeadflowApp, records: Sequence[tuple[EngagementRecordV1, str]], actor: str
) -> list[Applied | InvalidEngagement]:
    """``apply_engagements``, narrowing a permanent failure down to the record causing it
    (``consumers.failure_policy.isolate_bad_items``): that one becomes
    ``unprocessable: <ExceptionType>: <message>`` and the others apply. A transient or
    fatal failure raises: the caller retries the batch, or stops."""

    def set_aside(item: tuple[EngagementRecordV1, str], why: str) -> InvalidEngagement:
        record, origin = item
        reason = f"unprocessable: {why}"
        # the reason may quote the record: it goes to the dead letter, the log has ids (and
        # batch_split the error's kind)
        log.error("engagement_unprocessable", event_id=record.event_id, origin=origin)
        return InvalidEngagement("unprocessable", reason)

    return isolate_bad_items(records, lambda batch: apply_engagements(app, batch, actor), set_aside)
