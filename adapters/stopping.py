"""Stopping a long-running stream process: on a signal (the CLI sets the event) or a timer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stop_after(stop: threading.Event, seconds: float | None) -> Iterator[None]:
    """Set ``stop`` after ``seconds`` (None: never), unless the block ends first."""
    if seconds is None:
        yield
        return
    timer = threading.Timer(seconds, stop.set)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
