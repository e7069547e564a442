"""Embedded mode: the projector follows the event store's notification log in-process.

The consumed position (the last applied notification id) is stored with the read model,
in the same transaction as the changes, exactly as in Kafka mode. ``follow`` rides out a
database outage (read model or event store): it reconnects with exponential backoff and
catches up from the stored position. Anything else (a table missing, a read-only
database) stops it: retrying cannot help (``consumers.failure_policy``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from consumers.failure_policy import is_transient
from projections.catch_up import DEFAULT_BATCH, catch_up
from projections.reconnect import reconnect_with_backoff
from projections.store import ReadModelStore
from service.application import LeadflowApp


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
        return is_transient(error) or store.is_connection_error(error)

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
