"""While a relay is active the collector runs less often; the thresholds come back when the
last active relay of the process stops, whatever stopped it."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from consumers.relay.collection import YOUNG_THRESHOLD, collecting_less


@pytest.fixture(autouse=True)
def default_thresholds() -> Iterator[tuple[int, int, int]]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*saved)


def test_the_young_threshold_is_raised_while_active_and_restored_after(
    default_thresholds: tuple[int, int, int],
) -> None:
    with collecting_less():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    assert gc.get_threshold() == default_thresholds


def test_a_higher_threshold_already_set_is_kept() -> None:
    gc.set_threshold(YOUNG_THRESHOLD * 2, 5, 5)
    with collecting_less():
        assert gc.get_threshold() == (YOUNG_THRESHOLD * 2, 5, 5)
    assert gc.get_threshold() == (YOUNG_THRESHOLD * 2, 5, 5)


def test_restored_when_the_relay_fails(default_thresholds: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError), collecting_less():
        raise RuntimeError
    assert gc.get_threshold() == default_thresholds


def test_restored_only_when_the_last_of_two_relays_stops(
    default_thresholds: tuple[int, int, int],
) -> None:
    entered, release = threading.Event(), threading.Event()

    def other_relay() -> None:
        with collecting_less():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other_relay)
    thread.start()
    assert entered.wait(10)
    with collecting_less():
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD  # the other relay is still active
    release.set()
    thread.join(10)
    assert gc.get_threshold() == default_thresholds
