"""`leadflow verify`: is the live read model what the events say, and is history intact?

Rebuilds the read model from the event store into a scratch store, compares the fact
tables row by row, and verifies every aggregate's hash chain. It also names the
aggregates the live projector holds at a version (``projections.frozen_aggregates``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast
from uuid import UUID

import structlog

from adapters.event_envelope import DECODE_ERRORS
from adapters.logging import error_text
from adapters.mapper import PydanticMapper, stored_class, stored_version
from domain.hash_chain import ChainVerdict, StoredLink, verify_chain
from projections.catch_up import catch_up
from projections.compare import Difference, compare_stores
from projections.frozen_aggregates import FrozenAggregate, frozen_aggregates
from projections.store import ReadModelStore, open_scratch_store
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.projections.verify")


@dataclass(frozen=True, slots=True)
class BrokenChain:
    aggregate_id: str
    verdict: ChainVerdict

    def __str__(self) -> str:
        if self.verdict.broken_at_version is None:
            return f"aggregate {self.aggregate_id}: hash chain not checked: {self.verdict.problem}"
        return (
            f"aggregate {self.aggregate_id}: hash chain broken at version "
            f"{self.verdict.broken_at_version}: {self.verdict.problem}"
        )


@dataclass(slots=True)
class Verification:
    differences: list[Difference] = field(default_factory=list)
    broken_chains: list[BrokenChain] = field(default_factory=list)
    unreadable_events: list[str] = field(default_factory=list)
    """Stored events the rebuild could not decode or apply (from its dead letters)."""
    live_dead_letters: int = 0
    frozen_aggregates: list[FrozenAggregate] = field(default_factory=list)
    """Aggregates the live read model holds at a version, each with its cause."""
    forged_snapshots: list[str] = field(default_factory=list)
    """Stored snapshots that are unreadable or not what their events give."""
    aggregates: int = 0
    events_checked: int = 0

    @property
    def ok(self) -> bool:
        return not (
            self.differences
            or self.broken_chains
            or self.unreadable_events
            or self.frozen_aggregates
            or self.forged_snapshots
        )


def _verify_chain(app: LeadflowApp, aggregate_id: UUID) -> ChainVerdict:
    """The aggregate's hash chain; an event that cannot be decoded (its topic is not a
    leadflow event, or its bytes cannot be decrypted, decompressed or parsed) breaks the
    chain at its version, with why."""
    mapper = cast(PydanticMapper, app.mapper)
    links: list[StoredLink] = []
    for stored in app.recorder.select_events(aggregate_id):
        try:
            stored_class(stored)
            state = mapper.decode_state(stored)
        except DECODE_ERRORS as error:
            verdict = verify_chain(links)
            if not verdict.ok:
                return verdict
            version = stored.originator_version
            problem = f"event {version} cannot be decoded: {error_text(error)}"
            return ChainVerdict(False, verdict.events_checked, stored_version(stored), problem)
        links.append(
            StoredLink(stored.topic, str(stored.originator_id), stored.originator_version, state)
        )
    return verify_chain(links)


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def verify_read_model(
    app: LeadflowApp, live: ReadModelStore, *, until: int | None = None
) -> Verification:
    """Compare ``live`` with a rebuild from the event store (up to notification ``until``)
    and check every hash chain."""
    result = Verification()
    with open_scratch_store(live.stage_model) as scratch:
        catch_up(app, scratch, until=until)
        result.differences = compare_stores(live, scratch)
        with scratch.read() as tx:
            ids = [
                str(i)
                for (i,) in tx.execute(
                    "SELECT lead_id FROM rm_leads UNION SELECT deal_id FROM rm_deals "
                    "UNION SELECT aggregate_id FROM rm_dead_letters WHERE aggregate_id IS NOT NULL"
                )
            ]
            result.unreadable_events = [
                f"notification {position}"
                + (f" of aggregate {aggregate_id}" if aggregate_id else "")
                + f": {problem}"
                for position, aggregate_id, problem in tx.execute(
                    "SELECT record_position, aggregate_id, error FROM rm_dead_letters "
                    "ORDER BY record_position"
                )
            ]
    with live.read() as tx:
        result.live_dead_letters = int(tx.execute("SELECT COUNT(*) FROM rm_dead_letters")[0][0])
        if result.live_dead_letters:
            result.frozen_aggregates = frozen_aggregates(tx)
    for aggregate_id in sorted(ids):
        if not _is_uuid(aggregate_id):  # a damaged row's id: its unreadable event says so
            continue
        verdict = _verify_chain(app, UUID(aggregate_id))
        result.events_checked += verdict.events_checked
        if not verdict.ok:
            result.broken_chains.append(BrokenChain(aggregate_id, verdict))
        result.forged_snapshots += app.snapshot_problems(UUID(aggregate_id))
    result.aggregates = len(ids)
    log.info(
        "verified",
        read_model=live.location,
        aggregates=result.aggregates,
        events_checked=result.events_checked,
        differences=len(result.differences),
        broken_chains=len(result.broken_chains),
        unreadable_events=len(result.unreadable_events),
        frozen_aggregates=len(result.frozen_aggregates),
        forged_snapshots=len(result.forged_snapshots),
    )
    return result
