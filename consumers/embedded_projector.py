"""Embedded mode: the projector follows the event store's notification log in-process.

The consumed position (the last applied notification id) is stored with the read model,
in the same transaction as the changes, exactly as in Kafka mode. ``follow`` rides out a
database outage (read model or event store): it reconnects with exponential backoff and
catches up from the stored position.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from typing import cast

import structlog
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import Notification
from eventsourcing.persistence import OperationalError as StoreOperationalError
from eventsourcing.utils import TopicError

from consumers.event_records import envelope_from_notification
from domain.application import LeadflowApp
from domain.persistence import PydanticMapper
from leadflow.logging import error_text
from projections.projector import Item, Projector, gc_paused
from projections.reconnect import reconnect_with_backoff
from projections.store import EMBEDDED_STREAM, ReadModelStore

log = structlog.get_logger("leadflow.consumers.embedded_projector")

DEFAULT_BATCH = 1000
DECODE_ERRORS = (ValueError, KeyError, TypeError, TopicError, zlib.error)


def item_from_notification(mapper: PydanticMapper, notification: Notification) -> Item:
    try:
        envelope = envelope_from_notification(mapper, notification)
    except DECODE_ERRORS as error:
        return Item(
            part=0,
            position=notification.id,
            envelope=None,
            problem=f"notification {notification.id} ({notification.topic} "
            f"v{notification.originator_version}) cannot be decoded: "
            f"{error_text(error)}",
            payload=notification.state.decode("utf-8", errors="replace"),
            aggregate_id=str(notification.originator_id),
        )
    return Item(part=0, position=notification.id, envelope=envelope)


def notification_batches(
    app: LeadflowApp, after: int, batch_size: int = DEFAULT_BATCH, until: int | None = None
) -> Iterator[Sequence[Item]]:
    """The event store's notifications after id ``after`` (up to ``until``), decoded."""
    mapper = cast(PydanticMapper, app.mapper)
    while True:
        notifications = app.recorder.select_notifications(
            start=after, limit=batch_size, stop=until, inclusive_of_start=False
        )
        if not notifications:
            return
        yield [item_from_notification(mapper, n) for n in notifications]
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


def follow(
    app: LeadflowApp,
    store: ReadModelStore,
    should_stop: Callable[[], bool],
    *,
    interval_s: float = 0.5,
    batch_size: int = DEFAULT_BATCH,
) -> int:
    """Keep catching up until ``should_stop()``; the number of events applied."""

    def unavailable(error: BaseException) -> bool:
        event_store_down = isinstance(error, StoreOperationalError | StoreInterfaceError)
        return event_store_down or store.is_connection_error(error)

    applied = 0
    while not should_stop():
        try:
            news = catch_up(app, store, batch_size=batch_size)
        except Exception as error:
            if not unavailable(error):
                raise
            if not reconnect_with_backoff(store, error, should_stop, retryable=unavailable):
                break
            continue
        applied += news
        if not news:
            time.sleep(interval_s)
    return applied
