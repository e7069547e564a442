"""Fewer cyclic garbage collections while the relay is active.

A page's objects (notifications, events, records, send futures) live until the broker
confirms the page, so with CPython's default thresholds (a collection every 700 net new
objects) they survive into the oldest generation and set off full collections that walk
every aggregate the relay follows: a sixth of the relay's time in the profile of
``docs/performance.md``. They are freed by reference counting once the page is saved,
so while a relay is active the collector runs only every ``YOUNG_THRESHOLD`` net new
objects (cycles are still collected, later). The thresholds are restored when the last
active relay of the process stops.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 100_000

_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def collecting_less() -> Iterator[None]:
    global _active, _saved  # noqa: PLW0603 - one setting per process
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(YOUNG_THRESHOLD, _saved[0]), *_saved[1:])
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0:
                gc.set_threshold(*_saved)
