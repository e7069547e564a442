"""As-of from the business-time versions: the read models as they stood at a past moment,
without replaying history.

Into a scratch read model go, for every aggregate whose events arrived in business-time
order, its version valid at the moment (``valid_from <= T < valid_to``), the stages its
lead had reached by then and its stage visits entered by then (a visit left after the
moment is still open). The external ids come from the live ``rm_leads`` / ``rm_deals``
(erasure keeps those right). The other aggregates, those in ``rm_out_of_order`` and those
with dead letters, have their events replayed as ``projections.reports.as_of`` does, so
the figures equal the replay's while the cost follows the size of the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast
from uuid import UUID

import structlog
from eventsourcing.persistence import Notification

from adapters.mapper import PydanticMapper
from projections.catch_up import item_from_notification
from projections.fact_store import select_in
from projections.projector import Item, Projector
from projections.schema import (
    DEAD_LETTERS,
    DEAL_VERSIONS,
    DEALS,
    LEAD_REACHED,
    LEAD_VERSIONS,
    LEAD_VISITS,
    LEADS,
    OUT_OF_ORDER,
    Table,
)
from projections.store import EMBEDDED_STREAM, ReadModelStore, Row, Tx, open_scratch_store, utc_text
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.projections.as_of")


def read_model_from_versions(
    app: LeadflowApp, live: ReadModelStore, at: datetime
) -> ReadModelStore:
    """A scratch read model as of ``at`` (naive: UTC) from ``live``'s versions."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    moment = utc_text(at)
    with live.read() as tx:
        replayed = _replayed_ids(tx)
        leads = _valid_leads(tx, moment)
        deals = _valid_deals(tx, moment)
        reached = tx.execute(
            f"SELECT lead_id, stage, reached_at FROM {LEAD_REACHED.name} WHERE reached_at <= ?",  # noqa: S608
            (moment,),
        )
        visits = tx.execute(
            "SELECT lead_id, seq, stage, entered_at, "  # noqa: S608
            "CASE WHEN exited_at <= ? THEN exited_at END, "
            "CASE WHEN exited_at <= ? THEN exited_to END "
            f"FROM {LEAD_VISITS.name} WHERE entered_at <= ?",
            (moment, moment, moment),
        )
    store = open_scratch_store(live.stage_model)
    try:

        def fill(tx: Tx) -> None:
            for table, rows in (
                (LEADS, leads),
                (DEALS, deals),
                (LEAD_REACHED, reached),
                (LEAD_VISITS, visits),
            ):
                tx.insert(table, [r for r in rows if r[0] not in replayed])

        store.write(fill)
        events = _replay(app, store, replayed, at)
    except BaseException:
        store.close()
        raise
    log.debug(
        "as_of_from_versions",
        at=moment,
        leads=len(leads),
        deals=len(deals),
        replayed_aggregates=len(replayed),
        replayed_events=events,
    )
    return store


def _valid_leads(tx: Tx, moment: str) -> list[Row]:
    """``rm_leads`` rows as of ``moment`` (aggregate version 0: not kept in versions)."""
    return _valid_rows(tx, LEAD_VERSIONS, LEADS, moment, ())


def _valid_deals(tx: Tx, moment: str) -> list[Row]:
    """``rm_deals`` rows as of ``moment``, without the personal loss reason and competitor
    (no report shows them)."""
    return _valid_rows(tx, DEAL_VERSIONS, DEALS, moment, (None, None))


def _valid_rows(
    tx: Tx, versions: Table, current: Table, moment: str, tail: tuple[None, ...]
) -> list[Row]:
    """The versions valid at ``moment`` as rows of ``current``, with the external ids of
    the ``current`` rows (looked up by id: no scan of the whole table)."""
    columns = ", ".join(c for c in versions.column_names if c not in ("valid_from", "valid_to"))
    valid = tx.execute(
        f"SELECT {columns} FROM {versions.name} "  # noqa: S608 - schema names
        "WHERE valid_from <= ? AND (valid_to IS NULL OR valid_to > ?)",
        (moment, moment),
    )
    key = current.key[0]
    external: dict[str, str] = dict(
        select_in(tx, f"{key}, external_id", current.name, key, [row[0] for row in valid])
    )
    return [(row[0], external[row[0]], 0, *row[1:], *tail) for row in valid]


def _replayed_ids(tx: Tx) -> set[str]:
    """Aggregates without versions to trust: out of business-time order, or with a dead
    letter (the live projector may hold them at a version the replay goes past)."""
    found = tx.execute(
        f"SELECT aggregate_id FROM {OUT_OF_ORDER.name} UNION "  # noqa: S608
        f"SELECT aggregate_id FROM {DEAD_LETTERS.name} WHERE aggregate_id IS NOT NULL"
    )
    ids: set[str] = set()
    for (text,) in found:
        try:
            ids.add(str(UUID(str(text))))
        except ValueError:
            continue  # a damaged record's id: no aggregate to replay
    return ids


def _replay(app: LeadflowApp, store: ReadModelStore, ids: set[str], at: datetime) -> int:
    """Apply the events of aggregates ``ids`` that occurred at or before ``at``."""
    if not ids:
        return 0
    mapper = cast(PydanticMapper, app.mapper)
    items: list[Item] = []
    for aggregate_id in sorted(ids):
        for stored in app.recorder.select_events(UUID(aggregate_id)):
            notification = Notification(
                stored.originator_id, stored.originator_version, stored.topic, stored.state, id=0
            )
            items.append(item_from_notification(mapper, notification))
    kept: Sequence[Item] = [
        i for i in items if i.envelope is None or i.envelope.event.occurred_at <= at
    ]
    result = Projector(store, strict=False).apply_batch(EMBEDDED_STREAM, kept, {0: 0})
    return result.applied
