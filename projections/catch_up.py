"""Catching a read model up with the event store's notification log: every event after
the read model's stored position, decoded and applied in batches by the projector, with
the position in the same transaction. Used by the embedded projector, ``rebuild``,
``verify`` and as-of reports.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast
from uuid import UUID

import structlog
from eventsourcing.persistence import Notification

from adapters.event_envelope import DECODE_ERRORS, envelope_from_notification
from adapters.logging import error_text
from adapters.mapper import PydanticMapper, raw_state
from domain.personal_fields import PersonalData
from projections.projected_personal import CAPTURED_TOPIC, projected
from projections.projector import Item, Projector, gc_paused
from projections.store import EMBEDDED_STREAM, ReadModelStore
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.projections.catch_up")

DEFAULT_BATCH = 1000


def item_from_notification(
    mapper: PydanticMapper, notification: Notification, personal: PersonalData | None = None
) -> Item:
    """The stored event as the projector's item, its personal fields opened by
    ``personal`` (by default: those the read models store, with the mapper's seal)."""
    if personal is None:
        personal = projected(mapper.personal)
    try:
        envelope = envelope_from_notification(mapper, notification, personal)
    except DECODE_ERRORS as error:
        problem = (
            f"notification {notification.id} ({notification.topic} "
            f"v{notification.originator_version}) cannot be decoded: {error_text(error)}"
        )
        raw = raw_state(notification)  # a damaged row may hold no state, or text
        return Item.undecodable(0, notification.id, problem, raw, str(notification.originator_id))
    return Item(part=0, position=notification.id, envelope=envelope)


def notification_batches(
    app: LeadflowApp, after: int, batch_size: int = DEFAULT_BATCH, until: int | None = None
) -> Iterator[Sequence[Item]]:
    """The event store's notifications after id ``after`` (up to ``until``), decoded."""
    mapper = cast(PydanticMapper, app.mapper)
    personal = projected(mapper.personal)
    while True:
        notifications = app.recorder.select_notifications(
            start=after, limit=batch_size, stop=until, inclusive_of_start=False
        )
        if not notifications:
            return
        if personal is not None:
            personal.load(
                {
                    n.originator_id
                    for n in notifications
                    if n.topic == CAPTURED_TOPIC and isinstance(n.originator_id, UUID)
                }
            )
        yield [item_from_notification(mapper, n, personal) for n in notifications]
        after = notifications[-1].id
        if len(notifications) < batch_size:
            return


def catch_up(
    app: LeadflowApp,
    store: ReadModelStore,
    *,
    batch_size: int = DEFAULT_BATCH,
    until: int | None = None,
) -> int:
    """Apply everything the event store has (up to notification ``until``) that the read
    model has not; the number of events applied (duplicates and dead letters not counted)."""
    projector = Projector(store)
    applied = 0
    batches = notification_batches(app, store.last_notification_id(), batch_size, until)
    while True:
        with gc_paused():
            items = next(batches, None)
            if items is None:
                break
            result = projector.apply_batch(EMBEDDED_STREAM, items, {0: items[-1].position + 1})
        applied += result.applied
    if applied:
        log.debug(
            "caught_up",
            read_model=store.location,
            applied=applied,
            notification_id=store.last_notification_id(),
        )
    return applied
