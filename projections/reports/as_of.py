"""As-of: the read models as they stood at a past moment, computed from events.

``past_read_model`` answers from the live read model's business-time versions
(``projections.reports.as_of_versions``: the cost follows the size of the answer) when it
keeps them, else by ``read_model_as_of``, the replay, whose figures are the definition:

Business time: every event whose ``occurred_at`` is at or before the moment is replayed,
in the order of the event store, into a scratch in-memory read model by the same
projector code. An event recorded later but occurring before the moment is included; an
event recorded before it but occurring after it is not. Events of an aggregate whose first
event occurred after the moment are left out with it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from projections.catch_up import notification_batches
from projections.projector import Projector
from projections.reports.as_of_versions import read_model_from_versions
from projections.store import EMBEDDED_STREAM, ReadModelStore, open_scratch_store
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.projections.as_of")


def read_model_as_of(app: LeadflowApp, at: datetime, *, batch_size: int = 2000) -> ReadModelStore:
    """A scratch read model of every event that occurred at or before ``at`` (naive: UTC)."""
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
    store = open_scratch_store(app.stage_model)
    projector = Projector(store, strict=False)
    replayed = 0
    for items in notification_batches(app, 0, batch_size):
        kept = [i for i in items if i.envelope is None or i.envelope.event.occurred_at <= at]
        replayed += projector.apply_batch(
            EMBEDDED_STREAM, kept, {0: items[-1].position + 1}
        ).applied
    log.debug("as_of_built", at=at.isoformat(), events=replayed)
    return store


def past_read_model(app: LeadflowApp, at: datetime, live: ReadModelStore) -> ReadModelStore:
    """A scratch read model as of ``at``: from ``live``'s versions, or replayed when
    ``live`` has not kept them since it was created (until ``leadflow rebuild``). In
    embedded mode, catch ``live`` up first."""
    if live.keeps_versions():
        return read_model_from_versions(app, live, at)
    log.debug(
        "as_of_replays_history",
        read_model=live.location,
        reason="the read model has no business-time versions: run leadflow rebuild",
    )
    return read_model_as_of(app, at)
