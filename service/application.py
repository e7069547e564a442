"""The application service: one method per command, on eventsourcing's Application.

Leads and deals are addressed by the caller's external id (email or CRM id) or by
leadflow's own UUID. An external id maps to a stable UUID (uuid5), so capturing the
same lead twice, even from two processes at once, can never create two leads.

A command whose id (``command_id``, the causation id of its events) the aggregate has
seen before is a duplicate and changes nothing. A command without an id gets a
generated causation id (``generated:`` and 32 random hex digits) that is never
remembered: nobody can send it again. Optimistic-concurrency conflicts are retried
against fresh state.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from functools import lru_cache
from itertools import chain
from typing import Any, ClassVar, Literal, TypeVar, cast
from uuid import NAMESPACE_URL, UUID, uuid5

import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper, Transcoder
from pydantic import BaseModel, ConfigDict

from adapters.aggregate_versions import latest_versions
from adapters.mapper import JSONTranscoder, PydanticMapper
from domain import commands as c
from domain.aggregate import (
    Aggregate,
    EventContext,
    Snapshot,
    generated_causation_id,
    project_aggregate,
)
from domain.deal import Deal
from domain.errors import AlreadyExists, DomainError, UnknownAggregate
from domain.events import DomainEvent
from domain.hash_chain import ChainVerdict, StoredLink, verify_chain
from domain.lead import Lead
from domain.scoring import ScoringRules, load_scoring_rules
from domain.stage_model import Pipeline, StageModel, load_stage_model

log = structlog.get_logger("leadflow.application")

_ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://leadflow.dev/ids")
A = TypeVar("A", bound=Aggregate)


def normalise_ref(ref: str) -> str:
    """External ids compare trimmed; emails compare case-insensitively."""
    ref = ref.strip()
    return ref.lower() if "@" in ref else ref


@lru_cache(maxsize=4096)
def lead_id_for(external_id: str) -> UUID:
    return uuid5(_ID_NAMESPACE, f"lead:{normalise_ref(external_id)}")


@lru_cache(maxsize=4096)
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
        # A cached aggregate is used as it is, without asking the store for newer events;
        # a batch that turns out stale (a conflict on save, or a no-op decision on state
        # that another writer has since changed) is evicted and recomputed.
        env.setdefault("AGGREGATE_CACHE_FASTFORWARD", "n")
        if snapshot_interval > 0:
            env.setdefault("IS_SNAPSHOTTING_ENABLED", "y")
            # per instance: the interval comes from settings, not from the class
            self.snapshotting_intervals = {  # type: ignore[misc]
                Lead: snapshot_interval,
                Deal: snapshot_interval,
            }
        super().__init__(env)
        self._handlers: dict[type[c.Command], Callable[[Any, _Batch], Ids]] = {
            c.CaptureLead: self._capture_lead,
            c.RecordEngagement: self._record_engagement,
            c.LogContact: self._log_contact,
            c.MarkMql: self._mark_mql,
            c.AcceptLead: self._accept_lead,
            c.ReopenLead: self._reopen_lead,
            c.RejectLead: self._reject_lead,
            c.RecycleLead: self._recycle_lead,
            c.DisqualifyLead: self._disqualify_lead,
            c.QualifyLead: self._qualify_lead,
            c.FastTrack: self._fast_track,
            c.OpenDeal: self._open_deal,
            c.MoveDeal: self._move_deal,
            c.WinDeal: self._win_deal,
            c.LoseDeal: self._lose_deal,
            c.ReopenDeal: self._reopen_deal,
            c.UpdateDeal: self._update_deal,
        }

    def construct_transcoder(self) -> Transcoder:
        return JSONTranscoder()

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=PydanticMapper
        )

    # --- dispatch ---------------------------------------------------------------------

    def handle(self, command: c.Command) -> Outcome:
        """Apply one command; a refusal raises its DomainError and stores nothing."""
        result = self.handle_many([command])[0]
        if isinstance(result, DomainError):
            raise result
        return result

    def handle_many(
        self, commands: Sequence[c.Command], *, stop_at_refusal: bool = False
    ) -> list[Outcome | DomainError]:
        """Apply commands in order and store all their events in ONE transaction.

        Each command sees the effects of the ones before it. A refused command yields its
        DomainError in the result list and changes nothing; the others still apply (with
        ``stop_at_refusal`` the batch ends at the first refusal: the results stop there
        and only the commands before it are stored). If a concurrent writer touched the
        same aggregates, the batch is recomputed on fresh state after a short random pause;
        after repeated conflicts it is split into single commands, each then stored in its
        own transaction. The batch asks the store once which of the aggregates it may
        create or address by UUID exist, and decides on cached aggregates without asking
        for newer events: a stale one shows up as a conflict on save, or, where nothing was
        to be stored, by a version check of the cached aggregates.
        """
        may_exist = self._ids_to_probe(commands)
        for number in range(1, self.MAX_ATTEMPTS + 1):
            batch = _Batch(self, may_exist)
            results: list[Outcome | DomainError] = []
            for command in commands:
                results.append(self._apply(command, batch))
                if stop_at_refusal and isinstance(results[-1], DomainError):
                    break
            try:
                batch.commit()
            except (IntegrityError, _StaleBatch):
                batch.evict()
                log.debug("concurrency_conflict_retry", attempt=number, commands=len(commands))
                if number > 1 or not batch.used_cache:  # a stale cache needs no pause
                    time.sleep(random.uniform(0, min(0.02 * 2**number, 0.5)))
                if len(commands) > 1 and number >= 2:
                    return self._one_by_one(commands, stop_at_refusal)
                continue
            return results
        msg = f"gave up after {self.MAX_ATTEMPTS} concurrent-update conflicts"
        raise ConcurrencyConflict(msg)

    @staticmethod
    def _ids_to_probe(commands: Sequence[c.Command]) -> set[UUID]:
        """Aggregates whose existence the batch will ask about: asked in one query."""
        ids: set[UUID] = set()
        for command in commands:
            if isinstance(command, c.CaptureLead):
                ids.add(lead_id_for(command.lead))
                continue
            if isinstance(command, c.OpenDeal):
                ids.add(deal_id_for(command.deal))
            for ref in (getattr(command, "lead", None), getattr(command, "deal", None)):
                if ref and (own_id := _as_uuid(ref)) is not None:
                    ids.add(own_id)
        return ids

    def _one_by_one(
        self, commands: Sequence[c.Command], stop_at_refusal: bool
    ) -> list[Outcome | DomainError]:
        results: list[Outcome | DomainError] = []
        for command in commands:
            results += self.handle_many([command])
            if stop_at_refusal and isinstance(results[-1], DomainError):
                break
        return results

    def _apply(self, command: c.Command, batch: _Batch) -> Outcome | DomainError:
        batch.start_command()
        try:
            ids = self._handlers[type(command)](command, batch)
        except DomainError as refused:
            if batch.events_added():  # pragma: no cover - guards the refuse-first invariant
                msg = f"{type(command).__name__} changed state before refusing: {refused}"
                raise RuntimeError(msg) from refused
            return refused
        added = batch.events_added()
        return Outcome(status="applied" if added else "duplicate", aggregate_ids=ids, events=added)

    # --- per-command methods ----------------------------------------------------------

    def capture_lead(self, cmd: c.CaptureLead) -> Outcome:
        return self.handle(cmd)

    def record_engagement(self, cmd: c.RecordEngagement) -> Outcome:
        return self.handle(cmd)

    def log_contact(self, cmd: c.LogContact) -> Outcome:
        return self.handle(cmd)

    def mark_mql(self, cmd: c.MarkMql) -> Outcome:
        return self.handle(cmd)

    def accept_lead(self, cmd: c.AcceptLead) -> Outcome:
        return self.handle(cmd)

    def reject_lead(self, cmd: c.RejectLead) -> Outcome:
        return self.handle(cmd)

    def recycle_lead(self, cmd: c.RecycleLead) -> Outcome:
        return self.handle(cmd)

    def disqualify_lead(self, cmd: c.DisqualifyLead) -> Outcome:
        return self.handle(cmd)

    def reopen_lead(self, cmd: c.ReopenLead) -> Outcome:
        return self.handle(cmd)

    def qualify_lead(self, cmd: c.QualifyLead) -> Outcome:
        return self.handle(cmd)

    def fast_track(self, cmd: c.FastTrack) -> Outcome:
        return self.handle(cmd)

    def open_deal(self, cmd: c.OpenDeal) -> Outcome:
        return self.handle(cmd)

    def move_deal(self, cmd: c.MoveDeal) -> Outcome:
        return self.handle(cmd)

    def win_deal(self, cmd: c.WinDeal) -> Outcome:
        return self.handle(cmd)

    def lose_deal(self, cmd: c.LoseDeal) -> Outcome:
        return self.handle(cmd)

    def reopen_deal(self, cmd: c.ReopenDeal) -> Outcome:
        return self.handle(cmd)

    def update_deal(self, cmd: c.UpdateDeal) -> Outcome:
        return self.handle(cmd)

    # --- command handlers: decide on the batch's aggregates, return the ids touched ----

    def _capture_lead(self, cmd: c.CaptureLead, batch: _Batch) -> Ids:
        ctx = self._context(cmd)
        lead_id = lead_id_for(cmd.lead)
        if not batch.exists(lead_id):
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
            batch.add(lead)
            return (lead_id,)
        lead = batch.load(Lead, lead_id, cmd.lead)
        if ctx.causation_id not in lead.causations:
            attributes = cmd.attributes
            if cmd.fill_missing_only:
                attributes = {k: v for k, v in attributes.items() if k not in lead.attributes}
            lead.update_attributes(attributes, self.scoring_rules, ctx, cmd.occurred_at)
        return (lead_id,)

    def _record_engagement(self, cmd: c.RecordEngagement, batch: _Batch) -> Ids:
        return self._on_lead(
            cmd,
            batch,
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

    def _log_contact(self, cmd: c.LogContact, batch: _Batch) -> Ids:
        return self._on_lead(
            cmd,
            batch,
            lambda lead, ctx: lead.log_contact(cmd.channel, cmd.outcome, ctx, cmd.occurred_at),
        )

    def _mark_mql(self, cmd: c.MarkMql, batch: _Batch) -> Ids:
        return self._on_lead(
            cmd, batch, lambda lead, ctx: lead.mark_mql(cmd.reason, ctx, cmd.occurred_at)
        )

    def _accept_lead(self, cmd: c.AcceptLead, batch: _Batch) -> Ids:
        return self._on_lead(
            cmd, batch, lambda lead, ctx: lead.accept(cmd.owner, cmd.reason, ctx, cmd.occurred_at)
        )

    def _reject_lead(self, cmd: c.RejectLead, batch: _Batch) -> Ids:
        return self._on_lead(
            cmd, batch, lambda lead, ctx: lead.reject(cmd.reason, ctx, cmd.occurred_at)
        )

    def _recycle_lead(self, cmd: c.RecycleLead, batch: _Batch) -> Ids:
        return self._on_lead(
            cmd, batch, lambda lead, ctx: lead.recycle(cmd.reason, ctx, cmd.occurred_at)
        )

    def _disqualify_lead(self, cmd: c.DisqualifyLead, batch: _Batch) -> Ids:
        return self._on_lead(
            cmd, batch, lambda lead, ctx: lead.disqualify(cmd.reason, ctx, cmd.occurred_at)
        )

    def _reopen_lead(self, cmd: c.ReopenLead, batch: _Batch) -> Ids:
        return self._on_lead(
            cmd, batch, lambda lead, ctx: lead.reopen(cmd.reason, ctx, cmd.occurred_at)
        )

    def _qualify_lead(self, cmd: c.QualifyLead, batch: _Batch) -> Ids:
        return self._on_lead(
            cmd, batch, lambda lead, ctx: lead.qualify(cmd.bant, ctx, cmd.occurred_at)
        )

    def _fast_track(self, cmd: c.FastTrack, batch: _Batch) -> Ids:
        return self._on_lead(
            cmd,
            batch,
            lambda lead, ctx: lead.fast_track(cmd.to_stage, cmd.reason, ctx, cmd.occurred_at),
        )

    def _open_deal(self, cmd: c.OpenDeal, batch: _Batch) -> Ids:
        ctx = self._context(cmd)
        deal_id = deal_id_for(cmd.deal)
        pipeline = self._pipeline(cmd.pipeline)
        if batch.exists(deal_id):
            existing = batch.load(Deal, deal_id, cmd.deal)
            if ctx.causation_id in existing.causations:
                return (deal_id,)
            raise AlreadyExists("deal", cmd.deal, f"opened as {existing.id}")
        lead = (
            batch.load(Lead, self._resolve(cmd.lead, lead_id_for, batch), cmd.lead)
            if (cmd.lead)
            else None
        )
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
        batch.add(deal)
        return (lead.id, deal_id) if lead else (deal_id,)

    def _move_deal(self, cmd: c.MoveDeal, batch: _Batch) -> Ids:
        return self._on_deal(
            cmd,
            batch,
            lambda deal, ctx: deal.move(
                cmd.stage, self._pipeline(deal.pipeline), ctx, cmd.occurred_at
            ),
        )

    def _win_deal(self, cmd: c.WinDeal, batch: _Batch) -> Ids:
        return self._on_deal(
            cmd,
            batch,
            lambda deal, ctx: deal.win(
                cmd.amount, self._pipeline(deal.pipeline), ctx, cmd.occurred_at
            ),
        )

    def _lose_deal(self, cmd: c.LoseDeal, batch: _Batch) -> Ids:
        return self._on_deal(
            cmd,
            batch,
            lambda deal, ctx: deal.lose(
                cmd.reason, cmd.competitor, self._pipeline(deal.pipeline), ctx, cmd.occurred_at
            ),
        )

    def _reopen_deal(self, cmd: c.ReopenDeal, batch: _Batch) -> Ids:
        return self._on_deal(
            cmd,
            batch,
            lambda deal, ctx: deal.reopen(
                cmd.stage, cmd.reason, self._pipeline(deal.pipeline), ctx, cmd.occurred_at
            ),
        )

    def _update_deal(self, cmd: c.UpdateDeal, batch: _Batch) -> Ids:
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

        return self._on_deal(cmd, batch, change)

    # --- queries ----------------------------------------------------------------------

    def resolve_lead(self, ref: str) -> UUID:
        return self._resolve(ref, lead_id_for)

    def resolve_deal(self, ref: str) -> UUID:
        return self._resolve(ref, deal_id_for)

    def get_lead(self, ref: str, version: int | None = None) -> Lead:
        return self._read(Lead, self.resolve_lead(ref), ref, version)

    def get_deal(self, ref: str, version: int | None = None) -> Deal:
        return self._read(Deal, self.resolve_deal(ref), ref, version)

    def exists(self, aggregate_id: UUID) -> bool:
        return self._cached(aggregate_id) or bool(
            self.recorder.select_events(aggregate_id, limit=1)
        )

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

    def _resolve(
        self, ref: str, id_for: Callable[[str], UUID], batch: _Batch | None = None
    ) -> UUID:
        own_id = _as_uuid(ref)
        if own_id is None:
            return id_for(ref)
        known = batch.exists(own_id) if batch else self.exists(own_id)
        return own_id if known else id_for(ref)

    def _pipeline(self, name: str | None) -> Pipeline:
        try:
            return self.stage_model.pipeline(name)
        except KeyError:
            known = ", ".join(sorted(self.stage_model.pipelines))
            msg = f"unknown pipeline {name!r}; the stage model defines: {known}"
            raise DomainError(msg) from None

    def _context(self, cmd: c.Command) -> EventContext:
        causation = cmd.command_id or generated_causation_id()
        return EventContext(
            actor=cmd.actor or self.default_actor,
            causation_id=causation,
            correlation_id=cmd.correlation_id or causation,
        )

    def _load(self, kind: type[A], aggregate_id: UUID, ref: str) -> A:
        """For a command: through the aggregate cache (a copy, possibly behind the store)."""
        projector = cast(Callable[[Any, Iterable[Any]], Any], project_aggregate)
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id, projector_func=projector)
        except AggregateNotFoundError:
            raise UnknownAggregate(kind.KIND, ref) from None
        return _of_kind(kind, aggregate, ref)

    def _read(self, kind: type[A], aggregate_id: UUID, ref: str, version: int | None) -> A:
        """For a query: from the store (latest snapshot, then newer events), never the cache."""
        snapshots = (
            list(self.snapshots.get(aggregate_id, desc=True, limit=1, lte=version))
            if self.snapshots is not None
            else []
        )
        after = snapshots[0].originator_version if snapshots else None
        events = self.events.get(aggregate_id, gt=after, lte=version)
        aggregate = project_aggregate(None, chain(snapshots, events))
        if aggregate is None:
            raise UnknownAggregate(kind.KIND, ref)
        return _of_kind(kind, aggregate, ref)

    def _cached(self, aggregate_id: UUID) -> bool:
        """In the aggregate cache, so stored: aggregates are never deleted."""
        cache = self.repository.cache
        return cache is not None and aggregate_id in cache.cache

    def _evict(self, aggregate_ids: Iterable[UUID]) -> None:
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate_id in aggregate_ids:
            with suppress(KeyError):
                cache.get(aggregate_id, evict=True)

    def _on_lead(
        self, cmd: c.LeadCommand, batch: _Batch, action: Callable[[Lead, EventContext], Any]
    ) -> Ids:
        lead_id = self._resolve(cmd.lead, lead_id_for, batch)
        return self._on_aggregate(Lead, lead_id, cmd.lead, cmd, batch, action)

    def _on_deal(
        self, cmd: c.DealCommand, batch: _Batch, action: Callable[[Deal, EventContext], Any]
    ) -> Ids:
        deal_id = self._resolve(cmd.deal, deal_id_for, batch)
        return self._on_aggregate(Deal, deal_id, cmd.deal, cmd, batch, action)

    def _on_aggregate(
        self,
        kind: type[A],
        aggregate_id: UUID,
        ref: str,
        cmd: c.Command,
        batch: _Batch,
        action: Callable[[A, EventContext], Any],
    ) -> Ids:
        ctx = self._context(cmd)
        aggregate = batch.load(kind, aggregate_id, ref)
        if ctx.causation_id not in aggregate.causations:
            action(aggregate, ctx)
        return (aggregate_id,)


Ids = tuple[UUID, ...]


class _StaleBatch(Exception):
    """A decision that stored nothing was taken on a cached aggregate that has moved on."""


def _of_kind(kind: type[A], aggregate: Aggregate, ref: str) -> A:
    if not isinstance(aggregate, kind):
        raise UnknownAggregate(kind.KIND, ref)
    return aggregate


_UUID_TEXT_LENGTHS = frozenset({32, 36, 38, 45})  # hex, hyphenated, {braced}, urn:uuid:


def _as_uuid(ref: str) -> UUID | None:
    if len(ref) not in _UUID_TEXT_LENGTHS:
        return None
    try:
        return UUID(ref)
    except ValueError:
        return None


class _Batch:
    """The aggregates a batch of commands works on, saved together in one transaction."""

    def __init__(self, app: LeadflowApp, may_exist: set[UUID]) -> None:
        self.app = app
        self.aggregates: dict[UUID, Aggregate] = {}
        self._cache_hits: dict[UUID, int] = {}  # version of each aggregate the cache gave
        self._probed = may_exist
        cached = {i for i in may_exist if app._cached(i)}
        unknown = may_exist - cached
        stored = latest_versions(app.recorder, unknown) if unknown else {}
        self._existing = cached | stored.keys()
        self._touched: dict[UUID, int] = {}  # pending events per aggregate when first touched

    def start_command(self) -> None:
        self._touched = {}

    def events_added(self) -> int:
        """Events the current command added to the aggregates it touched."""
        return sum(len(self.aggregates[i].pending_events) - n for i, n in self._touched.items())

    def exists(self, aggregate_id: UUID) -> bool:
        if aggregate_id in self.aggregates:
            return True
        if aggregate_id in self._probed:
            return aggregate_id in self._existing
        return self.app.exists(aggregate_id)

    def load(self, kind: type[A], aggregate_id: UUID, ref: str) -> A:
        aggregate = self.aggregates.get(aggregate_id)
        if aggregate is None:
            cached = self.app._cached(aggregate_id)
            aggregate = self.aggregates[aggregate_id] = self.app._load(kind, aggregate_id, ref)
            if cached:
                self._cache_hits[aggregate_id] = aggregate.version
        if not isinstance(aggregate, kind):
            raise UnknownAggregate(kind.KIND, ref)
        self._touched.setdefault(aggregate_id, len(aggregate.pending_events))
        return aggregate

    def add(self, aggregate: Aggregate) -> None:
        self.aggregates[aggregate.id] = aggregate
        self._touched.setdefault(aggregate.id, 0)

    def commit(self) -> None:
        """Save in one transaction; the store's unique (id, version) refuses stale writes."""
        dirty = [a for a in self.aggregates.values() if a.pending_events]
        self._check_unchanged_are_current()
        if dirty:
            self.app.save(*dirty)

    @property
    def used_cache(self) -> bool:
        return bool(self._cache_hits)

    def evict(self) -> None:
        self.app._evict(self.aggregates)

    def _check_unchanged_are_current(self) -> None:
        """Refusals and duplicates store nothing, so no conflict would reveal stale state."""
        unchanged = {
            i: v for i, v in self._cache_hits.items() if not self.aggregates[i].pending_events
        }
        if not unchanged:
            return
        latest = latest_versions(self.app.recorder, unchanged)
        moved = [str(i) for i, v in unchanged.items() if latest.get(i, 0) > v]
        if moved:
            log.debug("stale_cached_aggregates", aggregate_ids=moved)
            raise _StaleBatch
