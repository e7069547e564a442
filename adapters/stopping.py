"""The one way to stop a long-running process (relay, ingest, projector): SIGTERM or
SIGINT, a deadline, or a plain ``set()``; the process finishes the batch in hand."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import structlog

log = structlog.get_logger("leadflow.stopping")


class ProcessStop(threading.Event):
    """An event that is also set once its deadline (if any) has passed, so every loop that
    waits on it or asks ``is_set()`` stops on a signal and on time alike."""

    def __init__(self, max_seconds: float | None = None) -> None:
        super().__init__()
        self._deadline: float | None = None
        if max_seconds is not None:
            self._deadline = time.monotonic() + max_seconds

    def is_set(self) -> bool:
        if not super().is_set() and self._remaining() == 0:
            self.set()
        return super().is_set()

    def __call__(self) -> bool:
        """For loops that take a ``should_stop`` callable."""
        return self.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        remaining = self._remaining()
        if remaining is not None:
            timeout = remaining if timeout is None else min(timeout, remaining)
        super().wait(timeout)
        return self.is_set()

    def _remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    @contextmanager
    def within(self, seconds: float | None) -> Iterator[ProcessStop]:
        """Stop at the latest ``seconds`` from now while the block runs (None: no limit)."""
        previous = self._deadline
        if seconds is not None:
            at = time.monotonic() + seconds
            self._deadline = at if previous is None else min(previous, at)
        try:
            yield self
        finally:
            self._deadline = previous

    @contextmanager
    def on_signals(self) -> Iterator[ProcessStop]:
        """SIGTERM and SIGINT set this stop, instead of killing the process, while the block
        runs (the main thread only, as Python's signal handlers are)."""

        def request_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("stop_requested", signal=signal.Signals(signum).name)
            self.set()

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
