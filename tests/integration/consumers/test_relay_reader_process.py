"""A relay whose pages a child process reads (``LEADFLOW_STREAM_RELAY_READER_PROCESS``)
loses nothing when that child dies: the read fails as a transient store failure, the
relay starts over from its saved position with a new child, and every event reaches the
topic, in order per aggregate."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from consumers.relay.reader_process import ReaderProcess
from tests.integration.consumers.relay_helpers import caught_up, running_relay
from tests.integration.consumers.stream_helpers import (
    check_delivery,
    lifecycle,
    read_topic,
    stored_keys,
    stream_setup,
)

pytestmark = pytest.mark.kafka


def wait_until(check: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_page_reader_loses_nothing(tmp_path: Path, kafka_bootstrap: str) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    setup.stream = setup.stream.model_copy(
        update={"relay_reader_process": True, "relay_batch_size": 5, "retry_max_seconds": 1.0}
    )
    writer = setup.open_app("writer")
    for n in range(4):
        lifecycle(writer, n)
    with running_relay(setup) as relay:
        wait_until(lambda: caught_up(relay, writer))
        reader = relay._reader
        assert isinstance(reader, ReaderProcess)
        pid = reader._process.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        for n in range(4, 8):
            lifecycle(writer, n)
        wait_until(lambda: caught_up(relay, writer))
        assert relay._reader is not reader  # a new child took over
        assert relay.stats.activations == 2
    stored = stored_keys(writer)
    events = read_topic(kafka_bootstrap, setup.stream.events_topic)
    check_delivery(stored, events)  # every stored event, in order per aggregate
    writer.close()
