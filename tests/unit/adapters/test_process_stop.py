"""The one way a long-running process stops: a signal, a deadline or ``set()``."""

from __future__ import annotations

import os
import signal
import time

from adapters.stopping import ProcessStop


def test_a_deadline_sets_the_stop_and_ends_a_wait() -> None:
    stop = ProcessStop(max_seconds=0.2)
    assert not stop.is_set()
    started = time.monotonic()
    assert stop.wait(30) is True
    assert 0.15 <= time.monotonic() - started < 5
    assert stop.is_set() and stop()


def test_within_limits_a_block_only() -> None:
    stop = ProcessStop()
    with stop.within(None):
        assert not stop.wait(0.01)
    with stop.within(60):
        assert not stop.is_set()
    assert not stop.wait(0.01), "the block's limit ends with the block"
    with stop.within(0.05):
        assert stop.wait(30)
    assert stop.is_set(), "a stop once set stays set"


def test_sigterm_and_sigint_set_the_stop_instead_of_killing() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(signum)
        stop = ProcessStop()
        with stop.on_signals():
            os.kill(os.getpid(), signum)
            assert stop.wait(5)
        assert signal.getsignal(signum) is previous
