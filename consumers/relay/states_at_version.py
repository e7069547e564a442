"""Lead and deal state at the version of each event the relay publishes.

The public records carry the lead or deal as it stood right after the event. The relay
reads every event in notification order, so it keeps recently seen aggregates in memory
and applies each event to them as it passes (exactly what the event store's repository
does on a read); an aggregate it does not hold is read from the event store at that
version (snapshots keep that cheap). Any doubt (a gap, a batch sent again) drops the
entry, and the next read goes to the store.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast
from uuid import UUID

from consumers.contracts.qualification import DealState, LeadState, decimal_text
from domain.aggregate import Aggregate, project_aggregate
from domain.deal import Deal
from domain.events import DomainEvent
from domain.lead import Lead
from service.application import LeadflowApp

A = TypeVar("A", bound=Aggregate)
_PROJECT = cast(Callable[[Any, Iterable[Any]], Any], project_aggregate)


class StatesAtVersion:
    """A ``qualification.StateLookup`` fed with every event in notification order."""

    def __init__(self, app: LeadflowApp, capacity: int = 10_000) -> None:
        self._app = app
        self._capacity = capacity
        self._held: OrderedDict[UUID, Aggregate] = OrderedDict()
        self.store_reads = 0

    def observe(self, event: DomainEvent) -> None:
        """Apply the next event of an aggregate (or start holding a new one)."""
        aggregate_id, version = event.originator_id, event.originator_version
        held = self._held.get(aggregate_id)
        if held is None:
            if version == 1:
                self._hold(_PROJECT(None, [event]))
            return
        if held.version + 1 == version:
            held.apply(event)
            self._held.move_to_end(aggregate_id)
        elif held.version != version:
            del self._held[aggregate_id]  # not the next event: read from the store when needed

    def forget(self) -> None:
        self._held.clear()

    def _hold(self, aggregate: Aggregate) -> None:
        self._held[aggregate.id] = aggregate
        self._held.move_to_end(aggregate.id)
        while len(self._held) > self._capacity:
            self._held.popitem(last=False)

    def _at(self, kind: type[A], aggregate_id: UUID, version: int) -> A:
        held = self._held.get(aggregate_id)
        if held is None or held.version != version:
            held = self._app.repository.get(aggregate_id, version=version, projector_func=_PROJECT)
            self.store_reads += 1
            self._hold(held)
        if not isinstance(held, kind):
            msg = f"{aggregate_id} version {version} is not a {kind.KIND}"
            raise TypeError(msg)
        return held

    def lead(self, lead_id: UUID, version: int) -> LeadState:
        lead = self._at(Lead, lead_id, version)
        return LeadState(
            id=lead.id,
            external_id=lead.external_id,
            stage=lead.stage,
            score=lead.score,
            owner=lead.owner,
            source=lead.source,
            campaign=lead.campaign,
        )

    def deal(self, deal_id: UUID, version: int) -> DealState:
        deal = self._at(Deal, deal_id, version)
        return DealState(
            id=deal.id,
            external_id=deal.external_id,
            pipeline=deal.pipeline,
            stage=deal.stage,
            status=deal.status,
            amount=decimal_text(deal.amount),
            currency=deal.currency,
            owner=deal.owner,
            expected_close_date=deal.expected_close_date,
            lead_id=deal.lead_id,
            lead_external_id=deal.lead_external_id,
        )
