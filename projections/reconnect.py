"""Riding out a read-model database outage: reconnect with exponential backoff."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from adapters.logging import error_text
from adapters.retrying import FIRST_DELAY_S, MAX_DELAY_S, sleep_unless_stopped
from projections.store import ReadModelStore

log = structlog.get_logger("leadflow.projections.reconnect")


def reconnect_with_backoff(
    store: ReadModelStore,
    error: BaseException,
    should_stop: Callable[[], bool],
    *,
    then: Callable[[], None] = lambda: None,
    retryable: Callable[[BaseException], bool] | None = None,
) -> bool:
    """After ``error`` (a connection error), reconnect ``store`` and run ``then`` (e.g. seek
    to the stored positions), retrying both with exponential backoff (capped at
    ``MAX_DELAY_S``) while they fail with connection errors. True once done, False when
    ``should_stop()`` asked to stop first. Any other error is raised."""
    is_retryable = retryable or store.is_connection_error
    delay = FIRST_DELAY_S
    attempt = 0
    while True:
        attempt += 1
        log.warning(
            "read_model_unavailable",
            read_model=store.location,
            attempt=attempt,
            retry_in_s=delay,
            error=error_text(error),
        )
        if not sleep_unless_stopped(delay, should_stop):
            log.info("reconnect_abandoned", read_model=store.location, attempts=attempt)
            return False
        try:
            store.reconnect()
            then()
        except Exception as failure:
            if not is_retryable(failure):
                raise
            error = failure
            delay = min(delay * 2, MAX_DELAY_S)
            continue
        log.info("read_model_available_again", read_model=store.location, attempts=attempt)
        return True
