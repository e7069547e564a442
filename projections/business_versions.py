"""Business-time versions of the facts, kept by the projector as it applies a batch.

After each activity event of an aggregate, the facts as they stand form its version valid
from the event's business time (``occurred_at``); several events at one business time
make one version. A version is valid until the next one's ``valid_from``. This equals a
replay up to any moment only while the aggregate's events arrive in business-time order:
the first event that occurred before one applied earlier moves the aggregate to
``rm_out_of_order``, and its versions stop there (an as-of replays its events instead).
Events that move no report (``is_activity`` false) make no version.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from domain.events import DomainEvent
from projections.fact_store import select_in
from projections.facts import DealFacts, LeadFacts, is_activity
from projections.schema import DEAL_VERSIONS, LEAD_VERSIONS, OUT_OF_ORDER, Table
from projections.store import Row, Tx, utc_text

Kind = Literal["lead", "deal"]


def lead_version(facts: LeadFacts) -> tuple[Any, ...]:
    """The columns of ``rm_lead_versions`` after the validity: ``rm_leads`` without the
    id, the personal external id and the aggregate version."""
    return facts.row()[3:]


def deal_version(facts: DealFacts) -> tuple[Any, ...]:
    """The columns of ``rm_deal_versions`` after the validity: ``rm_deals`` without the
    id, the external id, the aggregate version and the personal loss columns."""
    return facts.row()[3:15]


@dataclass(slots=True)
class _Timeline:
    """One aggregate's versions made by this batch, after the stored one they close."""

    stored: tuple[str, tuple[Any, ...]] | None
    """The stored latest version (valid from, columns): the facts as loaded."""
    versions: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def rows(self, aggregate_id: str) -> list[Row]:
        """The versions with their validity; the stored one closed if a later one follows
        (written whole: an event that moves no report left it as it was)."""
        versions = dict(self.versions)
        if self.stored is not None and self.stored[0] < next(iter(versions)):
            versions = {self.stored[0]: self.stored[1], **versions}
        times = list(versions)
        return [
            (aggregate_id, valid_from, valid_to, *versions[valid_from])
            for valid_from, valid_to in zip(times, [*times[1:], None], strict=True)
        ]


@dataclass(slots=True)
class _Kind:
    table: Table
    timelines: dict[str, _Timeline] = field(default_factory=dict)


class BusinessVersions:
    """The versions one batch makes: ``observe`` each applied event, then ``save``."""

    def __init__(self, tx: Tx, leads: Mapping[str, LeadFacts], deals: Mapping[str, DealFacts]):
        self._kinds: dict[Kind, _Kind] = {
            "lead": _Kind(LEAD_VERSIONS),
            "deal": _Kind(DEAL_VERSIONS),
        }
        self._out_of_order = _marked(tx, leads.keys() | deals.keys())
        self._newly_out_of_order: dict[str, Kind] = {}
        loaded: Mapping[str, LeadFacts | DealFacts]
        kind: Kind
        for kind, loaded in (("lead", leads), ("deal", deals)):
            timelines = self._kinds[kind].timelines
            for aggregate_id, facts in loaded.items():
                timelines[aggregate_id] = _Timeline((facts.last_activity_at, _version(facts)))

    def observe(
        self, kind: Kind, facts: LeadFacts | DealFacts, event: DomainEvent, before: str | None
    ) -> None:
        """``facts`` (of aggregate ``kind``) after ``event`` was applied; ``before``: their
        ``last_activity_at`` before it (None: the event created them)."""
        aggregate_id = facts.lead_id if isinstance(facts, LeadFacts) else facts.deal_id
        if aggregate_id in self._out_of_order or not is_activity(event):
            return
        at = facts.last_activity_at  # the event's time, unless it is not after ``before``
        if at == before:
            at = utc_text(event.occurred_at)
        if before is not None and at < before:
            self._out_of_order.add(aggregate_id)
            self._newly_out_of_order[aggregate_id] = kind
            return
        timelines = self._kinds[kind].timelines
        timeline = timelines.get(aggregate_id)
        if timeline is None:
            timeline = timelines[aggregate_id] = _Timeline(None)
        timeline.versions[at] = _version(facts)

    def save(self, tx: Tx) -> None:
        for kind in self._kinds.values():
            _save_kind(tx, kind)
        if self._newly_out_of_order:
            tx.insert(
                OUT_OF_ORDER,
                sorted(self._newly_out_of_order.items()),
                "ON CONFLICT (aggregate_id) DO NOTHING",
            )


def _save_kind(tx: Tx, kind: _Kind) -> None:
    table = kind.table
    rows = [
        row
        for aggregate_id, timeline in kind.timelines.items()
        if timeline.versions
        for row in timeline.rows(aggregate_id)
    ]
    updates = ", ".join(f"{c} = excluded.{c}" for c in table.column_names if c not in table.key)
    tx.insert(table, rows, f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}")


def _version(facts: LeadFacts | DealFacts) -> tuple[Any, ...]:
    return lead_version(facts) if isinstance(facts, LeadFacts) else deal_version(facts)


def _marked(tx: Tx, ids: Collection[str]) -> set[str]:
    return {
        str(i) for (i,) in select_in(tx, "aggregate_id", OUT_OF_ORDER.name, "aggregate_id", ids)
    }
