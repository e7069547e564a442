"""Read many aggregates into the aggregate cache at once: one query per table.

eventsourcing's repository reads one aggregate at a time: its latest snapshot, its
events after it, and (to open sealed personal fields) its data key, each a round trip on
PostgreSQL. ``read_into_cache`` reads the same for a whole batch with one query each and
puts each aggregate into the cache exactly as the repository would have built it. An
aggregate whose read is anything but plain (a snapshot that must be replayed to be
proven, or a record that does not decode) is left out: the repository's own read then
proves, reports or raises as it always does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

import structlog
from eventsourcing.application import Application

from adapters.many_aggregates import reads_at_once, snapshots_and_events
from domain.aggregate import Snapshot, project_aggregate
from service.snapshot_proof import ProvenSnapshots

log = structlog.get_logger("leadflow.service.batch_read")


@runtime_checkable
class _LoadsKeys(Protocol):
    def load(self, key_owners: Collection[UUID]) -> None: ...


def read_into_cache(
    app: Application[UUID], aggregate_ids: Iterable[UUID], personal: object | None
) -> set[UUID]:
    """Put into ``app``'s aggregate cache those of ``aggregate_ids`` not cached yet; the
    ids that have no stored events (no such aggregate). ``personal``: what opens sealed
    personal fields, whose keys are read first in one query when it can."""
    cache = app.repository.cache
    if cache is None or not reads_at_once(app.recorder):
        return set()
    wanted = [i for i in dict.fromkeys(aggregate_ids) if i not in cache.cache]
    if not wanted:
        return set()
    snapshots = app.snapshots
    if snapshots is not None and not isinstance(snapshots, ProvenSnapshots):
        return set()
    if isinstance(personal, _LoadsKeys):
        personal.load(wanted)
    snapshot_recorder = snapshots.recorder if snapshots is not None else None
    stored_snapshots, stored = snapshots_and_events(app.recorder, snapshot_recorder, wanted)
    latest = _decoded_snapshots(snapshots, stored_snapshots) if snapshots is not None else {}
    absent: set[UUID] = set()
    for aggregate_id in wanted:
        if aggregate_id in latest and latest[aggregate_id] is None:
            continue  # a snapshot that does not decode
        records = stored.get(aggregate_id)
        snapshot = latest.get(aggregate_id)
        if not records:
            if snapshot is None:
                absent.add(aggregate_id)
            continue
        aggregate = _built(app, snapshots, snapshot, records)
        if aggregate is not None:
            cache.put(aggregate_id, aggregate)
    log.debug("aggregates_read_at_once", wanted=len(wanted), absent=len(absent))
    return absent


def _decoded_snapshots(
    snapshots: ProvenSnapshots, stored: dict[UUID, Any]
) -> dict[UUID, Snapshot | None]:
    """Each stored snapshot decoded; None for one that does not decode (left to the
    repository's read)."""
    found: dict[UUID, Snapshot | None] = {}
    for aggregate_id, record in stored.items():
        try:
            snapshot = snapshots.mapper.to_domain_event(record)
        except Exception:  # noqa: BLE001 - the repository's read raises it where it belongs
            snapshot = None
        found[aggregate_id] = snapshot if isinstance(snapshot, Snapshot) else None
    return found


def _built(
    app: Application[UUID],
    snapshots: ProvenSnapshots | None,
    snapshot: Snapshot | None,
    records: list[Any],
) -> Any | None:
    """The aggregate the repository would build from ``snapshot`` and ``records``; None
    when only the repository's own read may say."""
    try:
        events = [app.mapper.to_domain_event(record) for record in records]
    except Exception:  # noqa: BLE001 - the repository's read raises it where it belongs
        return None
    if snapshot is not None:
        first = events[0]
        if snapshots is None or first.originator_version != snapshot.originator_version:
            return None
        if not snapshots.usable_as_read(snapshot, first):
            return None
        events = [snapshot, *events[1:]]
    return project_aggregate(None, events)
