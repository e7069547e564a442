"""LeadflowApp: leadflow on eventsourcing's Application.

It configures the store (JSON transcoder, pydantic mapper, snapshots, an aggregate cache
that is not fast-forwarded) and is what every entry point holds: commands go through
``handle``/``handle_many`` (see ``service.unit_of_work`` and ``service.handlers``), reads
through the queries (``service.queries``); ids follow its id scheme ``ids``
(``service.ids``), chosen by the composition root for the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from typing import Any, ClassVar, TypeVar, cast
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    ApplicationRecorder,
    EventStore,
    Mapper,
    Recording,
    Transcoder,
)

from adapters.command_ledger import CommandLedger, LedgerEntry
from adapters.mapper import JSONTranscoder, PydanticMapper
from domain import commands as c
from domain.aggregate import Aggregate, Snapshot, project_aggregate
from domain.deal import Deal
from domain.errors import DomainError, UnknownAggregate
from domain.events import DomainEvent
from domain.hash_chain import ChainVerdict, StoredLink, verify_chain
from domain.lead import Lead
from domain.personal_fields import PersonalData
from domain.scoring import ScoringRules, load_scoring_rules
from domain.stage_model import StageModel, load_stage_model
from service import queries, unit_of_work
from service.batch_read import read_into_cache
from service.ids import IdScheme, resolve_ref
from service.snapshot_proof import ForgedSnapshot, ProvenSnapshots, snapshot_problems
from service.snapshot_seal import LocalSealKey
from service.unit_of_work import Outcome

A = TypeVar("A", bound=Aggregate)

log = structlog.get_logger("leadflow.service.application")


class LeadflowApp(Application[UUID]):
    name = "leadflow"
    snapshot_class = Snapshot
    snapshotting_projectors: ClassVar[dict[Any, Any]] = {
        Lead: project_aggregate,
        Deal: project_aggregate,
    }

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        stage_model: StageModel | None = None,
        scoring_rules: ScoringRules | None = None,
        snapshot_interval: int = 100,
        default_actor: str = "leadflow",
        ids: IdScheme,
    ) -> None:
        self.ids = ids
        self.personal_data: PersonalData | None = None
        self._on_close: list[Callable[[], None]] = []
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

    def construct_transcoder(self) -> Transcoder:
        return JSONTranscoder()

    def construct_recorder(self) -> ApplicationRecorder:
        """The store's recorder, which must keep the command ledger (``event_store_env``
        chooses one of ``adapters.command_ledger``'s recorders)."""
        recorder = super().construct_recorder()
        if not isinstance(recorder, CommandLedger):
            msg = (
                f"the event store's recorder {type(recorder).__name__} keeps no command "
                "ledger; open the application with adapters.event_store.event_store_env"
            )
            raise TypeError(msg)
        return recorder

    def on_close(self, close: Callable[[], None]) -> None:
        """Run ``close`` when the application is closed (its side tables' connections)."""
        self._on_close.append(close)

    def close(self) -> None:
        try:
            super().close()
        finally:
            for close in self._on_close:
                close()

    def seal_personal_data(self, personal: PersonalData) -> None:
        """Seal new events' personal fields with ``personal`` and open stored ones with it
        (``domain.personal_fields``); without it, they are stored plain."""
        self.personal_data = personal
        cast(PydanticMapper, self.mapper).personal = personal

    def ledger_entries(self, command_ids: Iterable[str]) -> dict[str, LedgerEntry]:
        """The command ledger's entries of these ids (those it holds)."""
        ledger = cast(CommandLedger, self.recorder)
        return ledger.ledger_entries(command_ids)

    def construct_snapshot_store(self) -> EventStore[UUID]:
        """Snapshots proven against the events on every load (``service.snapshot_proof``)."""
        recorder = self.factory.aggregate_recorder(purpose="snapshots")
        return ProvenSnapshots(self.mapper, recorder, self.events)

    def take_snapshot(
        self, aggregate_id: UUID, version: int | None = None, projector_func: Any = None
    ) -> None:
        """A snapshot asked for by name (saves take theirs in ``_take_snapshots``) is only
        a cache: when the stored snapshot it would be built from is forged, none is taken
        and ``verify`` reports the forged one."""
        try:
            super().take_snapshot(aggregate_id, version, projector_func or project_aggregate)
        except ForgedSnapshot as error:
            log.warning(
                "snapshot_not_taken",
                aggregate_id=str(aggregate_id),
                version=version,
                forged_version=error.originator_version,
            )

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """eventsourcing's save, collecting leadflow's aggregates' events directly: its
        ``collect_events`` tells aggregates from events by ``isinstance`` against runtime
        protocols, which inspects every protocol member per object (the slowest part of a
        batch's save). Anything else is collected as eventsourcing does."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        others = []
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            else:
                others.append(obj)
        processing_event.collect_events(*others, **kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # deprecated; eventsourcing still calls it
        return recordings

    def _take_snapshots(self, processing_event: Any) -> None:
        """Each saved aggregate whose new events cross a snapshot interval is snapshotted
        as it stands after the save (its state is what its events give), instead of
        reloading it at the interval's version: that reload replays its history, so a busy
        lead's writes would grow with its length."""
        intervals = self.snapshotting_intervals or {}
        if self.snapshots is None or not intervals:
            return
        first_new: dict[UUID, int] = {}
        for event in processing_event.events:
            first_new.setdefault(event.originator_id, event.originator_version)
        for aggregate_id, aggregate in processing_event.aggregates.items():
            interval = intervals.get(type(aggregate))
            first = first_new.get(aggregate_id)
            if not interval or first is None:
                continue
            if aggregate.version // interval > (first - 1) // interval:
                self.snapshots.put([Snapshot.take(aggregate)])

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=PydanticMapper
        )

    # --- commands ---------------------------------------------------------------------

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

        A refused command yields its DomainError in the result list and changes nothing
        (see ``service.unit_of_work.handle_many`` for ``stop_at_refusal`` and retries).
        """
        return unit_of_work.handle_many(self, commands, stop_at_refusal=stop_at_refusal)

    # --- queries ----------------------------------------------------------------------

    def resolve_lead(self, ref: str) -> UUID:
        return resolve_ref(ref, self.ids.lead, self.exists)

    def resolve_deal(self, ref: str) -> UUID:
        return resolve_ref(ref, self.ids.deal, self.exists)

    def get_lead(self, ref: str, version: int | None = None) -> Lead:
        def read() -> Lead:
            return queries.read_aggregate(
                self.events, self.snapshots, Lead, self.resolve_lead(ref), ref, version
            )

        lead = read()
        if lead.erased_at is None or not self.ids.is_stale(ref, lead.id):
            return lead
        return read()  # the ref was remembered for a lead forgotten since (by another process)

    def get_deal(self, ref: str, version: int | None = None) -> Deal:
        return queries.read_aggregate(
            self.events, self.snapshots, Deal, self.resolve_deal(ref), ref, version
        )

    def exists(self, aggregate_id: UUID) -> bool:
        return self.is_cached(aggregate_id) or bool(
            self.recorder.select_events(aggregate_id, limit=1)
        )

    def events_of(self, aggregate_id: UUID) -> list[DomainEvent]:
        return queries.domain_events(self.events, aggregate_id)

    def stored_links(self, aggregate_id: UUID) -> Iterator[StoredLink]:
        """The aggregate's events exactly as stored, for verifying the hash chain."""
        return queries.stored_links(self.recorder, self.mapper, aggregate_id)

    def verify_chain(self, aggregate_id: UUID) -> ChainVerdict:
        return verify_chain(self.stored_links(aggregate_id))

    def seal_snapshots_locally(self, secret: bytes) -> None:
        """Seal snapshots under ``secret`` when no audit key can (``service.snapshot_seal``)."""
        if isinstance(self.snapshots, ProvenSnapshots):
            self.snapshots.local_seal = LocalSealKey(secret)

    def snapshots_table(self) -> str | None:
        """The name of the store's snapshot table (None when snapshots are off)."""
        if self.snapshots is None:
            return None
        recorder: Any = self.snapshots.recorder  # SQLite's and PostgreSQL's name their table
        return str(recorder.events_table_name)

    def snapshot_problems(self, aggregate_id: UUID) -> list[str]:
        """The aggregate's stored snapshots that are unreadable or not what its events give."""
        if not isinstance(self.snapshots, ProvenSnapshots):
            return []
        return snapshot_problems(self.snapshots, self.events, aggregate_id)

    # --- the aggregate cache, for the unit of work ------------------------------------

    def load_cached(self, kind: type[A], aggregate_id: UUID, ref: str) -> A:
        """For a command: through the aggregate cache (a copy, possibly behind the store)."""
        projector = cast(Callable[[Any, Iterable[Any]], Any], project_aggregate)
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id, projector_func=projector)
        except AggregateNotFoundError:
            raise UnknownAggregate(kind.KIND, ref) from None
        return queries.of_kind(kind, aggregate, ref)

    def preload(self, aggregate_ids: Iterable[UUID]) -> set[UUID]:
        """Read into the aggregate cache those of these aggregates it lacks, with one query
        per table for all of them (``service.batch_read``); the ids of those that do not
        exist."""
        return read_into_cache(self, aggregate_ids, self.personal_data)

    def peek_cached(self, aggregate_id: UUID) -> Aggregate | None:
        """The cached aggregate itself, not a copy: only to read, on the writing thread."""
        cache = self.repository.cache
        if cache is None:
            return None
        try:
            cached = cache.get(aggregate_id)
        except KeyError:
            return None
        return cached if isinstance(cached, Aggregate) else None

    def is_cached(self, aggregate_id: UUID) -> bool:
        """In the aggregate cache, so stored: aggregates are never deleted."""
        cache = self.repository.cache
        return cache is not None and aggregate_id in cache.cache

    def evict(self, aggregate_ids: Iterable[UUID]) -> None:
        cache = self.repository.cache
        if cache is None:
            return
        for aggregate_id in aggregate_ids:
            with suppress(KeyError):
                cache.get(aggregate_id, evict=True)
