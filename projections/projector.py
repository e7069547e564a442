"""The projector: applies a batch of events to the facts, in one transaction with the
consumed positions, so a crash anywhere loses nothing and counts nothing twice.

An event whose aggregate version is not newer than the one already applied is a
duplicate and changes nothing. A record that cannot be decoded or applied is stored in
``rm_dead_letters`` (and logged) and the position moves past it: bad input never stops a
projector and is never silently dropped. That includes a value the database refuses
(a data error): the batch is then applied again item by item, each in a savepoint, and
the item that fails is dead-lettered.

A live (strict) projector never applies an event across a version gap: the event is
dead-lettered as ``gap: expected version N, got M`` and the aggregate stays where it is,
so a redelivery of the missing version followed by the held one applies both in order.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields

import structlog

from adapters.event_envelope import EventEnvelope
from domain.events import DEAL_EVENTS
from projections.fact_store import load_deals, load_leads, save_deals, save_leads
from projections.facts import (
    DealFacts,
    LeadFacts,
    UnprojectableEvent,
    apply_to_deal,
    apply_to_lead,
)
from projections.schema import DEAD_LETTERS
from projections.store import ReadModelStore, Tx, text_safe, utc_now_text

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
        try:
            result, dead = self.store.write(
                lambda tx: self._apply(tx, stream, items, next_positions, one_by_one=False)
            )
        except Exception as error:
            if not self.store.is_data_error(error):
                raise
            log.warning(
                "batch_refused_applying_one_by_one",
                stream=stream,
                positions=dict(next_positions),
                error=_describe(error),
            )
            result, dead = self.store.write(
                lambda tx: self._apply(tx, stream, items, next_positions, one_by_one=True)
            )
        for letter in dead:
            log.error(
                "record_not_projected",
                stream=stream,
                part=letter.part,
                position=letter.position,
                aggregate_id=letter.aggregate_id,
                problem=letter.problem,
            )
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
        self,
        tx: Tx,
        stream: str,
        items: Sequence[Item],
        next_positions: Mapping[int, int],
        *,
        one_by_one: bool,
    ) -> tuple[BatchResult, list[_DeadLetter]]:
        if one_by_one:
            result, dead = BatchResult(), []
            for item in items:
                try:
                    with tx.savepoint():
                        applied, refused = self._apply_items(tx, stream, [item])
                except Exception as error:
                    if not self.store.is_data_error(error):
                        raise
                    applied, refused = (
                        BatchResult(),
                        [_DeadLetter.of(item, f"data error: {_describe(error)}")],
                    )
                result += applied
                dead += refused
            result = BatchResult(result.applied, result.duplicates, len(dead), result.skipped)
        else:
            result, dead = self._apply_items(tx, stream, items)
        _save_dead_letters(tx, stream, dead)
        self.store.save_positions(tx, stream, next_positions)
        return result, dead

    def _apply_items(
        self, tx: Tx, stream: str, items: Sequence[Item]
    ) -> tuple[BatchResult, list[_DeadLetter]]:
        """Apply ``items`` to the facts and save the facts; the dead letters are returned."""
        envelopes = [item.envelope for item in items if item.envelope is not None]
        deal_ids = {str(e.event.originator_id) for e in envelopes if _is_deal(e)}
        lead_ids = {str(e.event.originator_id) for e in envelopes if not _is_deal(e)}
        leads = load_leads(tx, lead_ids)
        deals = load_deals(tx, deal_ids)
        touched_leads: dict[str, LeadFacts] = {}
        touched_deals: dict[str, DealFacts] = {}
        dead: list[_DeadLetter] = []
        applied = duplicates = skipped = 0
        for item in items:
            if item.envelope is None:
                dead.append(_DeadLetter.of(item, item.problem or "undecodable record"))
                continue
            event = item.envelope.event
            aggregate_id = str(event.originator_id)
            is_deal = _is_deal(item.envelope)
            current = deals.get(aggregate_id) if is_deal else leads.get(aggregate_id)
            stored_version = current.version if current is not None else 0
            if event.originator_version <= stored_version:
                duplicates += 1
                continue
            if self.strict and event.originator_version != stored_version + 1:
                gap = f"gap: expected version {stored_version + 1}, got {event.originator_version}"
                dead.append(_DeadLetter.of(item, gap))
                continue
            try:
                if is_deal:
                    deal = apply_to_deal(deals.get(aggregate_id), event)
                    deals[aggregate_id] = touched_deals[aggregate_id] = deal
                else:
                    lead = apply_to_lead(leads.get(aggregate_id), event)
                    leads[aggregate_id] = touched_leads[aggregate_id] = lead
            except UnprojectableEvent as problem:
                if self.strict:
                    dead.append(_DeadLetter.of(item, str(problem)))
                else:
                    skipped += 1
                continue
            applied += 1
        save_leads(tx, list(touched_leads.values()))
        save_deals(tx, list(touched_deals.values()))
        return BatchResult(applied, duplicates, len(dead), skipped), dead


@dataclass(frozen=True, slots=True)
class _DeadLetter:
    part: int
    position: int
    aggregate_id: str | None
    problem: str
    payload: str

    @classmethod
    def of(cls, item: Item, problem: str) -> _DeadLetter:
        envelope = item.envelope
        if envelope is None:
            return cls(item.part, item.position, item.aggregate_id, problem, item.payload)
        payload = item.payload or json.dumps(envelope.state, ensure_ascii=False)
        return cls(item.part, item.position, str(envelope.event.originator_id), problem, payload)


def _save_dead_letters(tx: Tx, stream: str, dead: list[_DeadLetter]) -> None:
    now = utc_now_text()
    tx.insert(
        DEAD_LETTERS,
        [
            (
                stream,
                d.part,
                d.position,
                _safe(d.aggregate_id),
                text_safe(d.problem),
                text_safe(d.payload),
                now,
            )
            for d in dead
        ],
        "ON CONFLICT (stream, part, record_position) DO NOTHING",
    )


def _safe(text: str | None) -> str | None:
    return None if text is None else text_safe(text)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(text_safe(str(error)).split())}"


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


def _is_deal(envelope: EventEnvelope) -> bool:
    return type(envelope.event) in DEAL_EVENTS
