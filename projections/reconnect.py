"""Riding out a read-model database outage: reconnect with exponential backoff."""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from projections.store import ReadModelStore

log = structlog.get_logger("leadflow.projections.reconnect")

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0


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
            error=f"{type(error).__name__}: {' '.join(str(error).split())}",
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


def sleep_unless_stopped(seconds: float, should_stop: Callable[[], bool]) -> bool:
    """Sleep ``seconds`` unless asked to stop first (then False)."""
    until = time.monotonic() + seconds
    while not should_stop():
        left = until - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.1))
    return False
