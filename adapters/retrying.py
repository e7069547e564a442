"""Waiting for a server that is not there yet: retry with exponential back-off until it
answers or the process is asked to stop."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0


def sleep_unless_stopped(seconds: float, should_stop: Callable[[], bool]) -> bool:
    """Sleep ``seconds`` unless asked to stop first (then False)."""
    until = time.monotonic() + seconds
    while not should_stop():
        left = until - time.monotonic()
        if left <= 0:
            return True
        time.sleep(min(left, 0.1))
    return False


def retry_while_unavailable(
    attempt: Callable[[], T],
    unavailable: Callable[[Exception], bool],
    should_stop: Callable[[], bool],
    *,
    on_retry: Callable[[Exception, float], None],
    max_delay: float = MAX_DELAY_S,
) -> T | None:
    """``attempt()``, tried again after a back-off while it fails with an error that
    ``unavailable`` accepts (``on_retry`` logs it with the delay); any other error is
    raised. None when asked to stop first."""
    delay = FIRST_DELAY_S
    while not should_stop():
        try:
            return attempt()
        except Exception as error:
            if not unavailable(error):
                raise
            on_retry(error, delay)
            if not sleep_unless_stopped(delay, should_stop):
                break
            delay = min(delay * 2, max_delay)
    return None
