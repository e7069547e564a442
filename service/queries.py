"""Queries: aggregates and their events as stored, never taken from the aggregate cache.

An aggregate is read from its latest snapshot (at or before the asked version) and the
events after it; the stored links are the raw records the hash chain is verified on.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain
from typing import TypeVar
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder, EventStore, Mapper

from adapters.mapper import PydanticMapper
from domain.aggregate import Aggregate, project_aggregate
from domain.errors import UnknownAggregate
from domain.events import DomainEvent
from domain.hash_chain import StoredLink

A = TypeVar("A", bound=Aggregate)


def read_aggregate(
    events: EventStore[UUID],
    snapshots: EventStore[UUID] | None,
    kind: type[A],
    aggregate_id: UUID,
    ref: str,
    version: int | None,
) -> A:
    """The aggregate at ``version`` (None: the latest); refused as unknown by ``ref``."""
    found = (
        list(snapshots.get(aggregate_id, desc=True, limit=1, lte=version))
        if snapshots is not None
        else []
    )
    after = found[0].originator_version if found else None
    newer = events.get(aggregate_id, gt=after, lte=version)
    aggregate = project_aggregate(None, chain(found, newer))
    if aggregate is None:
        raise UnknownAggregate(kind.KIND, ref)
    return of_kind(kind, aggregate, ref)


def domain_events(events: EventStore[UUID], aggregate_id: UUID) -> list[DomainEvent]:
    return [e for e in events.get(aggregate_id) if isinstance(e, DomainEvent)]


def stored_links(
    recorder: AggregateRecorder, mapper: Mapper[UUID], aggregate_id: UUID
) -> Iterator[StoredLink]:
    """The aggregate's events exactly as stored, for verifying the hash chain."""
    assert isinstance(mapper, PydanticMapper)
    for stored in recorder.select_events(aggregate_id):
        yield StoredLink(
            topic=stored.topic,
            originator_id=str(stored.originator_id),
            originator_version=stored.originator_version,
            state=mapper.decode_state(stored),
        )


def of_kind(kind: type[A], aggregate: Aggregate, ref: str) -> A:
    """The aggregate if it is a ``kind``; anything else is unknown by that ``ref``."""
    if not isinstance(aggregate, kind):
        raise UnknownAggregate(kind.KIND, ref)
    return aggregate
