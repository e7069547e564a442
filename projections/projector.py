"""The projector: applies a batch of events to the facts, in one transaction with the
consumed positions, so a crash anywhere loses nothing and counts nothing twice.

An event whose aggregate version is not newer than the one already applied is a
duplicate and changes nothing. A record that cannot be decoded or applied is stored in
``rm_dead_letters`` (and logged) and the position moves past it: bad input never stops a
projector and is never silently dropped. That includes a value the database refuses
(a data error): the batch is split in savepoints until the item that fails is found
(``adapters.batch_isolation``); that item is dead-lettered and the others applied.

A live (strict) projector never applies an event across a version gap: the event is
dead-lettered as ``gap: expected version N, got M`` and the aggregate stays where it is,
so a redelivery of the missing version followed by the held one applies both in order.
An event that can never be applied freezes its aggregate: the log line
``aggregate_frozen`` and ``leadflow verify`` name it, its cause and the way out
(``projections.frozen_aggregates``).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Literal, NamedTuple

import structlog

from adapters.batch_isolation import isolate
from adapters.event_envelope import EventEnvelope
from adapters.logging import error_kind, error_text
from adapters.storable_text import storable_reason, storable_text
from domain.events import DEAL_EVENTS, DomainEvent
from projections.business_versions import BusinessVersions
from projections.fact_store import load_deals, load_leads, save_deals, save_leads
from projections.facts import (
    DealFacts,
    LeadFacts,
    UnprojectableEvent,
    apply_to_deal,
    apply_to_lead,
)
from projections.frozen_aggregates import WAY_OUT, frozen_aggregates, gap_problem
from projections.schema import DEAD_LETTERS
from projections.store import ReadModelStore, Tx, utc_now_text

log = structlog.get_logger("leadflow.projections.projector")


@dataclass(frozen=True, slots=True)
class Item:
    """One consumed record: its position and either the decoded event or why not."""

    part: int
    position: int
    envelope: EventEnvelope | None
    problem: str | None = None
    payload: str = ""
    aggregate_id: str | None = None

    @classmethod
    def undecodable(
        cls, part: int, position: int, problem: str, raw: bytes, aggregate_id: str | None
    ) -> Item:
        """A record that cannot be decoded: dead-lettered with ``problem`` and its bytes."""
        payload = raw.decode("utf-8", errors="replace")
        return cls(part, position, None, problem, payload, aggregate_id)


@dataclass(frozen=True, slots=True)
class BatchResult:
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    skipped: int = 0

    def __add__(self, other: BatchResult) -> BatchResult:
        return BatchResult(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


class Projector:
    """Applies batches of items to one read-model store.

    ``strict`` (live streams): an event for an aggregate not created yet, or one that
    does not follow the last applied version, is a dead letter. A non-strict projector
    (as-of replays, which filter events by business time) skips such events quietly.
    """

    def __init__(self, store: ReadModelStore, *, strict: bool = True) -> None:
        self.store = store
        self.strict = strict

    def apply_batch(
        self, stream: str, items: Sequence[Item], next_positions: Mapping[int, int]
    ) -> BatchResult:
        result, dead = self.store.write(lambda tx: self._apply(tx, stream, items, next_positions))
        for letter in dead:
            log.error(
                "record_not_projected",
                stream=stream,
                part=letter.part,
                position=letter.position,
                aggregate_id=letter.aggregate_id,
                problem=letter.kind,  # its text may quote the event: rm_dead_letters has it
            )
        gaps = {d.aggregate_id for d in dead if d.kind == "version_gap" and d.aggregate_id}
        if gaps:
            self._log_frozen(stream, gaps)
        log.debug(
            "batch_applied",
            stream=stream,
            positions=dict(next_positions),
            applied=result.applied,
            duplicates=result.duplicates,
            dead_letters=result.dead_letters,
        )
        return result

    def _apply(
        self, tx: Tx, stream: str, items: Sequence[Item], next_positions: Mapping[int, int]
    ) -> tuple[BatchResult, list[_DeadLetter]]:
        def attempt(chunk: Sequence[Item]) -> list[_Outcome]:
            with tx.savepoint():
                return self._apply_items(tx, chunk)

        def split(size: int, error: Exception) -> None:
            log.warning(
                "batch_refused_isolating",
                stream=stream,
                items=size,
                **error_kind(error),
            )

        outcomes = isolate(
            items,
            attempt,
            lambda item, error: _DeadLetter.of(item, f"data error: {error_text(error)}", "data"),
            is_items_fault=self.store.is_data_error,
            on_split=split,
        )
        dead = [o for o in outcomes if isinstance(o, _DeadLetter)]
        result = BatchResult(
            applied=sum(o == "applied" for o in outcomes),
            duplicates=sum(o == "duplicate" for o in outcomes),
            dead_letters=len(dead),
            skipped=sum(o == "skipped" for o in outcomes),
        )
        _save_dead_letters(tx, stream, dead)
        self.store.save_positions(tx, stream, next_positions)
        return result, dead

    def _apply_items(self, tx: Tx, items: Sequence[Item]) -> list[_Outcome]:
        """Apply ``items`` to the facts and save the facts: what became of each item."""
        targets = [_target(item.envelope) for item in items]
        leads = load_leads(tx, {t.aggregate_id for t in targets if t is not None and not t.deal})
        deals = load_deals(tx, {t.aggregate_id for t in targets if t is not None and t.deal})
        versions = BusinessVersions(tx, leads, deals)
        touched_leads: dict[str, LeadFacts] = {}
        touched_deals: dict[str, DealFacts] = {}
        outcomes: list[_Outcome] = []
        for item, target in zip(items, targets, strict=True):
            if target is None:
                problem = item.problem or "undecodable record"
                outcomes.append(_DeadLetter.of(item, problem, "undecodable"))
                continue
            event, aggregate_id = target.event, target.aggregate_id
            facts: Mapping[str, LeadFacts | DealFacts] = deals if target.deal else leads
            current = facts.get(aggregate_id)
            stored_version = current.version if current is not None else 0
            if event.originator_version <= stored_version:
                outcomes.append("duplicate")
                continue
            if self.strict and event.originator_version != stored_version + 1:
                gap = gap_problem(stored_version + 1, event.originator_version)
                outcomes.append(_DeadLetter.of(item, gap, "version_gap"))
                continue
            before = current.last_activity_at if current is not None else None
            try:
                if target.deal:
                    deal = apply_to_deal(deals.get(aggregate_id), event)
                    deals[aggregate_id] = touched_deals[aggregate_id] = deal
                    versions.observe("deal", deal, event, before)
                else:
                    lead = apply_to_lead(leads.get(aggregate_id), event)
                    leads[aggregate_id] = touched_leads[aggregate_id] = lead
                    versions.observe("lead", lead, event, before)
            except UnprojectableEvent as problem:
                letter = _DeadLetter.of(item, str(problem), "unprojectable")
                outcomes.append(letter if self.strict else "skipped")
                continue
            outcomes.append("applied")
        save_leads(tx, list(touched_leads.values()))
        save_deals(tx, list(touched_deals.values()))
        versions.save(tx)
        return outcomes

    def _log_frozen(self, stream: str, aggregate_ids: set[str]) -> None:
        """One error line per aggregate this batch found frozen: why, and the way out."""
        with self.store.read() as tx:
            frozen = frozen_aggregates(tx, aggregate_ids)
        for aggregate in frozen:
            if aggregate.stream != stream:
                continue
            log.bind(aggregate_id=aggregate.aggregate_id).error(
                "aggregate_frozen",
                stream=stream,
                version=aggregate.version,
                held=aggregate.held,
                cause="see leadflow verify",  # its text may quote the event
                way_out=WAY_OUT,
            )


# why an item was not projected, for the log: the problem's text may quote the event
DeadLetterKind = Literal["undecodable", "version_gap", "unprojectable", "data"]


@dataclass(frozen=True, slots=True)
class _DeadLetter:
    """An item not projected; ``problem`` and ``payload`` are storable text."""

    part: int
    position: int
    aggregate_id: str | None
    problem: str
    payload: str
    kind: DeadLetterKind

    @classmethod
    def of(cls, item: Item, problem: str, kind: DeadLetterKind) -> _DeadLetter:
        envelope = item.envelope
        aggregate_id = item.aggregate_id
        payload = item.payload
        if envelope is not None:
            aggregate_id = str(envelope.event.originator_id)
            payload = payload or json.dumps(envelope.state, ensure_ascii=False)
        return cls(
            item.part,
            item.position,
            None if aggregate_id is None else storable_text(aggregate_id),
            storable_reason(problem),
            storable_text(payload),
            kind,
        )


_Outcome = Literal["applied", "duplicate", "skipped"] | _DeadLetter


def _save_dead_letters(tx: Tx, stream: str, dead: list[_DeadLetter]) -> None:
    now = utc_now_text()
    tx.insert(
        DEAD_LETTERS,
        [(stream, d.part, d.position, d.aggregate_id, d.problem, d.payload, now) for d in dead],
        "ON CONFLICT (stream, part, record_position) DO NOTHING",
    )


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is decoded and applied.

    A batch allocates many short-lived objects, which makes the collector scan every live
    object of the process over and over (about a quarter of the projector's time); they
    are freed by reference counting anyway. Collection resumes after the batch.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_DEAL_EVENTS = frozenset(DEAL_EVENTS)


class _Target(NamedTuple):
    """The event of a decoded item and the aggregate it applies to (looked up once; a
    tuple: built for every event, faster than a frozen dataclass)."""

    event: DomainEvent
    aggregate_id: str
    deal: bool


def _target(envelope: EventEnvelope | None) -> _Target | None:
    if envelope is None:
        return None
    event = envelope.event
    return _Target(event, str(event.originator_id), type(event) in _DEAL_EVENTS)
