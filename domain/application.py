"""The application service: one method per command, on eventsourcing's Application.

Leads and deals are addressed by the caller's external id (email or CRM id) or by
leadflow's own UUID. An external id maps to a stable UUID (uuid5), so capturing the
same lead twice, even from two processes at once, can never create two leads.

A command whose id (``command_id``, the causation id of its events) the aggregate has
seen before is a duplicate and changes nothing. Optimistic-concurrency conflicts are
retried against fresh state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Literal, TypeVar, cast
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper, Transcoder
from pydantic import BaseModel, ConfigDict

from domain import commands as c
from domain.aggregate import Aggregate, EventContext, Snapshot, project_aggregate
from domain.deal import Deal
from domain.errors import AlreadyExists, DomainError, UnknownAggregate
from domain.events import DomainEvent
from domain.hash_chain import ChainVerdict, StoredLink, verify_chain
from domain.lead import Lead
from domain.persistence import JSONTranscoder, PydanticMapper
from domain.scoring import ScoringRules, load_scoring_rules
from domain.stage_model import Pipeline, StageModel, load_stage_model

log = structlog.get_logger("leadflow.application")

_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://leadflow.dev/ids")
A = TypeVar("A", bound=Aggregate)


def normalise_ref(ref: str) -> str:
    """External ids compare trimmed; emails compare case-insensitively."""
    ref = ref.strip()
    return ref.lower() if "@" in ref else ref


def lead_id_for(external_id: str) -> UUID:
    return uuid5(_ID_NAMESPACE, f"lead:{normalise_ref(external_id)}")


def deal_id_for(external_id: str) -> UUID:
    return uuid5(_ID_NAMESPACE, f"deal:{normalise_ref(external_id)}")


class Outcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: Literal["applied", "duplicate"]
    aggregate_ids: tuple[UUID, ...] = ()
    events: int = 0


class ConcurrencyConflict(DomainError):
    pass


class LeadflowApp(Application[UUID]):
    name = "leadflow"
    snapshot_class = Snapshot
    snapshotting_projectors: ClassVar[dict[Any, Any]] = {
        Lead: project_aggregate,
        Deal: project_aggregate,
    }
    MAX_ATTEMPTS = 20

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        stage_model: StageModel | None = None,
        scoring_rules: ScoringRules | None = None,
        snapshot_interval: int = 100,
        default_actor: str = "leadflow",
    ) -> None:
        self.stage_model = stage_model or load_stage_model()
        self.scoring_rules = scoring_rules or load_scoring_rules()
        self.default_actor = default_actor
        env = dict(env or {})
        if snapshot_interval > 0:
            env.setdefault("IS_SNAPSHOTTING_ENABLED", "y")
            # per instance: the interval comes from settings, not from the class
            self.snapshotting_intervals = {  # type: ignore[misc]
                Lead: snapshot_interval,
                Deal: snapshot_interval,
            }
        super().__init__(env)
        self._handlers: dict[type[c.Command], Callable[[Any], Outcome]] = {
            c.CaptureLead: self.capture_lead,
            c.RecordEngagement: self.record_engagement,
            c.LogContact: self.log_contact,
            c.MarkMql: self.mark_mql,
            c.AcceptLead: self.accept_lead,
            c.ReopenLead: self.reopen_lead,
            c.RejectLead: self.reject_lead,
            c.RecycleLead: self.recycle_lead,
            c.DisqualifyLead: self.disqualify_lead,
            c.QualifyLead: self.qualify_lead,
            c.FastTrack: self.fast_track,
            c.OpenDeal: self.open_deal,
            c.MoveDeal: self.move_deal,
            c.WinDeal: self.win_deal,
            c.LoseDeal: self.lose_deal,
            c.ReopenDeal: self.reopen_deal,
            c.UpdateDeal: self.update_deal,
        }

    def construct_transcoder(self) -> Transcoder:
        return JSONTranscoder()

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=PydanticMapper
        )

    # --- dispatch ---------------------------------------------------------------------

    def handle(self, command: c.Command) -> Outcome:
        return self._handlers[type(command)](command)

    # --- lead commands ----------------------------------------------------------------

    def capture_lead(self, cmd: c.CaptureLead) -> Outcome:
        ctx = self._context(cmd)
        lead_id = lead_id_for(cmd.lead)

        def attempt() -> Outcome:
            try:
                lead = self._load(Lead, lead_id, cmd.lead)
            except UnknownAggregate:
                lead = Lead.capture(
                    lead_id,
                    normalise_ref(cmd.lead),
                    cmd.source,
                    cmd.campaign,
                    cmd.attributes,
                    self.scoring_rules,
                    ctx,
                    cmd.occurred_at,
                )
                return self._save(lead)
            if ctx.causation_id in lead.causations:
                return Outcome(status="duplicate", aggregate_ids=(lead.id,))
            lead.update_attributes(cmd.attributes, self.scoring_rules, ctx, cmd.occurred_at)
            return self._save(lead)

        return self._retrying(attempt)

    def record_engagement(self, cmd: c.RecordEngagement) -> Outcome:
        return self._on_lead(
            cmd,
            lambda lead, ctx: lead.record_engagement(
                cmd.event_id,
                cmd.kind,
                cmd.properties,
                cmd.source,
                cmd.campaign,
                self.scoring_rules,
                ctx,
                cmd.occurred_at,
            ),
        )

    def log_contact(self, cmd: c.LogContact) -> Outcome:
        return self._on_lead(
            cmd, lambda lead, ctx: lead.log_contact(cmd.channel, cmd.outcome, ctx, cmd.occurred_at)
        )

    def mark_mql(self, cmd: c.MarkMql) -> Outcome:
        return self._on_lead(cmd, lambda lead, ctx: lead.mark_mql(cmd.reason, ctx, cmd.occurred_at))

    def accept_lead(self, cmd: c.AcceptLead) -> Outcome:
        return self._on_lead(
            cmd, lambda lead, ctx: lead.accept(cmd.owner, cmd.reason, ctx, cmd.occurred_at)
        )

    def reject_lead(self, cmd: c.RejectLead) -> Outcome:
        return self._on_lead(cmd, lambda lead, ctx: lead.reject(cmd.reason, ctx, cmd.occurred_at))

    def recycle_lead(self, cmd: c.RecycleLead) -> Outcome:
        return self._on_lead(cmd, lambda lead, ctx: lead.recycle(cmd.reason, ctx, cmd.occurred_at))

    def disqualify_lead(self, cmd: c.DisqualifyLead) -> Outcome:
        return self._on_lead(
            cmd, lambda lead, ctx: lead.disqualify(cmd.reason, ctx, cmd.occurred_at)
        )

    def reopen_lead(self, cmd: c.ReopenLead) -> Outcome:
        return self._on_lead(cmd, lambda lead, ctx: lead.reopen(cmd.reason, ctx, cmd.occurred_at))

    def qualify_lead(self, cmd: c.QualifyLead) -> Outcome:
        return self._on_lead(cmd, lambda lead, ctx: lead.qualify(cmd.bant, ctx, cmd.occurred_at))

    def fast_track(self, cmd: c.FastTrack) -> Outcome:
        return self._on_lead(
            cmd, lambda lead, ctx: lead.fast_track(cmd.to_stage, cmd.reason, ctx, cmd.occurred_at)
        )

    # --- deal commands ----------------------------------------------------------------

    def open_deal(self, cmd: c.OpenDeal) -> Outcome:
        ctx = self._context(cmd)
        deal_id = deal_id_for(cmd.deal)
        pipeline = self._pipeline(cmd.pipeline)

        def attempt() -> Outcome:
            if self.exists(deal_id):
                existing = self._load(Deal, deal_id, cmd.deal)
                if ctx.causation_id in existing.causations:
                    return Outcome(status="duplicate", aggregate_ids=(deal_id,))
                raise AlreadyExists("deal", cmd.deal, f"opened as {existing.id}")
            lead = self._load(Lead, self.resolve_lead(cmd.lead), cmd.lead) if cmd.lead else None
            if lead is not None:
                lead.convert(deal_id, normalise_ref(cmd.deal), cmd.fast_track, ctx, cmd.occurred_at)
            deal = Deal.open(
                deal_id,
                normalise_ref(cmd.deal),
                pipeline,
                cmd.amount,
                cmd.currency,
                lead.id if lead else None,
                lead.external_id if lead else None,
                cmd.owner or (lead.owner if lead else None),
                cmd.expected_close_date,
                ctx,
                cmd.occurred_at,
            )
            return self._save(*(a for a in (lead, deal) if a is not None))

        return self._retrying(attempt)

    def move_deal(self, cmd: c.MoveDeal) -> Outcome:
        return self._on_deal(
            cmd,
            lambda deal, ctx: deal.move(
                cmd.stage, self._pipeline(deal.pipeline), ctx, cmd.occurred_at
            ),
        )

    def win_deal(self, cmd: c.WinDeal) -> Outcome:
        return self._on_deal(
            cmd,
            lambda deal, ctx: deal.win(
                cmd.amount, self._pipeline(deal.pipeline), ctx, cmd.occurred_at
            ),
        )

    def lose_deal(self, cmd: c.LoseDeal) -> Outcome:
        return self._on_deal(
            cmd,
            lambda deal, ctx: deal.lose(
                cmd.reason, cmd.competitor, self._pipeline(deal.pipeline), ctx, cmd.occurred_at
            ),
        )

    def reopen_deal(self, cmd: c.ReopenDeal) -> Outcome:
        return self._on_deal(
            cmd,
            lambda deal, ctx: deal.reopen(
                cmd.stage, cmd.reason, self._pipeline(deal.pipeline), ctx, cmd.occurred_at
            ),
        )

    def update_deal(self, cmd: c.UpdateDeal) -> Outcome:
        def change(deal: Deal, ctx: EventContext) -> None:
            if cmd.amount is not None or cmd.currency is not None:
                deal.change_amount(
                    deal.amount if cmd.amount is None else cmd.amount,
                    cmd.currency,
                    ctx,
                    cmd.occurred_at,
                )
            if "expected_close_date" in cmd.model_fields_set:
                deal.change_close_date(cmd.expected_close_date, ctx, cmd.occurred_at)

        return self._on_deal(cmd, change)

    # --- queries ----------------------------------------------------------------------

    def resolve_lead(self, ref: str) -> UUID:
        return self._resolve(ref, lead_id_for)

    def resolve_deal(self, ref: str) -> UUID:
        return self._resolve(ref, deal_id_for)

    def get_lead(self, ref: str, version: int | None = None) -> Lead:
        return self._load(Lead, self.resolve_lead(ref), ref, version)

    def get_deal(self, ref: str, version: int | None = None) -> Deal:
        return self._load(Deal, self.resolve_deal(ref), ref, version)

    def exists(self, aggregate_id: UUID) -> bool:
        return bool(self.recorder.select_events(aggregate_id, limit=1))

    def events_of(self, aggregate_id: UUID) -> list[DomainEvent]:
        return [e for e in self.events.get(aggregate_id) if isinstance(e, DomainEvent)]

    def stored_links(self, aggregate_id: UUID) -> Iterator[StoredLink]:
        """The aggregate's events exactly as stored, for verifying the hash chain."""
        assert isinstance(self.mapper, PydanticMapper)
        for stored in self.recorder.select_events(aggregate_id):
            yield StoredLink(
                topic=stored.topic,
                originator_id=str(stored.originator_id),
                originator_version=stored.originator_version,
                state=self.mapper.decode_state(stored),
            )

    def verify_chain(self, aggregate_id: UUID) -> ChainVerdict:
        return verify_chain(self.stored_links(aggregate_id))

    # --- plumbing ---------------------------------------------------------------------

    def _resolve(self, ref: str, id_for: Callable[[str], UUID]) -> UUID:
        try:
            own_id = UUID(ref)
        except ValueError:
            return id_for(ref)
        return own_id if self.exists(own_id) else id_for(ref)

    def _pipeline(self, name: str | None) -> Pipeline:
        try:
            return self.stage_model.pipeline(name)
        except KeyError:
            known = ", ".join(sorted(self.stage_model.pipelines))
            msg = f"unknown pipeline {name!r}; the stage model defines: {known}"
            raise DomainError(msg) from None

    def _context(self, cmd: c.Command) -> EventContext:
        causation = cmd.command_id or str(uuid4())
        return EventContext(
            actor=cmd.actor or self.default_actor,
            causation_id=causation,
            correlation_id=cmd.correlation_id or causation,
        )

    def _load(self, kind: type[A], aggregate_id: UUID, ref: str, version: int | None = None) -> A:
        projector = cast(Callable[[Any, Iterable[Any]], Any], project_aggregate)
        try:
            aggregate: Aggregate = self.repository.get(
                aggregate_id, version=version, projector_func=projector
            )
        except AggregateNotFoundError:
            raise UnknownAggregate(kind.KIND, ref) from None
        if not isinstance(aggregate, kind):
            raise UnknownAggregate(kind.KIND, ref)
        return aggregate

    def _save(self, *aggregates: Aggregate) -> Outcome:
        events = sum(len(a.pending_events) for a in aggregates)
        ids = tuple(a.id for a in aggregates)
        if not events:
            return Outcome(status="duplicate", aggregate_ids=ids)
        self.save(*aggregates)
        return Outcome(status="applied", aggregate_ids=ids, events=events)

    def _on_lead(self, cmd: c.LeadCommand, action: Callable[[Lead, EventContext], Any]) -> Outcome:
        return self._on_aggregate(Lead, self.resolve_lead(cmd.lead), cmd.lead, cmd, action)

    def _on_deal(self, cmd: c.DealCommand, action: Callable[[Deal, EventContext], Any]) -> Outcome:
        return self._on_aggregate(Deal, self.resolve_deal(cmd.deal), cmd.deal, cmd, action)

    def _on_aggregate(
        self,
        kind: type[A],
        aggregate_id: UUID,
        ref: str,
        cmd: c.Command,
        action: Callable[[A, EventContext], Any],
    ) -> Outcome:
        ctx = self._context(cmd)

        def attempt() -> Outcome:
            aggregate = self._load(kind, aggregate_id, ref)
            if ctx.causation_id in aggregate.causations:
                return Outcome(status="duplicate", aggregate_ids=(aggregate.id,))
            action(aggregate, ctx)
            return self._save(aggregate)

        return self._retrying(attempt)

    def _retrying(self, attempt: Callable[[], Outcome]) -> Outcome:
        for number in range(1, self.MAX_ATTEMPTS + 1):
            try:
                return attempt()
            except IntegrityError:
                log.debug("concurrency_conflict_retry", attempt=number)
        msg = f"gave up after {self.MAX_ATTEMPTS} concurrent-update conflicts"
        raise ConcurrencyConflict(msg)
