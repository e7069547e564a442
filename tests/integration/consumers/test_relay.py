"""The relay publishes every stored event onto the real broker, in per-aggregate order."""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.stopping import ProcessStop
from consumers.relay.position import RelayPosition
from domain import commands as c
from service.application import LeadflowApp
from tests.integration.consumers.stream_helpers import (
    StreamSetup,
    check_delivery,
    lifecycle,
    read_topic,
    stored_keys,
    stream_setup,
    wait_for,
)

pytestmark = pytest.mark.kafka

HEADERS = {
    "event_id",
    "event_type",
    "aggregate_type",
    "schema_version",
    "aggregate_version",
    "notification_id",
    "relay_epoch",  # the fencing epoch of the relay that published it
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def setup(request: pytest.FixtureRequest, tmp_path: Path, kafka_bootstrap: str) -> StreamSetup:
    dsn = request.getfixturevalue("postgres_dsn") if request.param == "postgres" else None
    return stream_setup(tmp_path, kafka_bootstrap, dsn)


def test_every_stored_event_reaches_the_topic_in_per_aggregate_order(setup: StreamSetup) -> None:
    bootstrap = setup.settings.kafka.bootstrap
    assert bootstrap is not None
    writer = setup.open_app("writer")
    for n in range(5):  # stored before the relay starts: it catches up
        lifecycle(writer, n)

    relay_app = setup.open_app("relay")
    stop = ProcessStop()
    relay = setup.relay(relay_app, stop=stop)
    thread = threading.Thread(target=relay.run, name="relay")
    thread.start()
    try:
        for n in range(5, 15):  # stored while it runs: it follows
            lifecycle(writer, n)
        wait_for(lambda: relay.stats.position >= stored_keys_count(writer), 30, "catching up")
        latencies = []
        jitter = random.Random(1)
        for n in range(15, 35):  # one command at a time: how soon is it published?
            time.sleep(jitter.uniform(0, 0.1))  # not in step with the relay's polling
            command = c.CaptureLead(lead=f"late-{n}@ex.com", source="web", occurred_at=now())
            assert writer.handle(command).status == "applied"
            written = time.monotonic()
            target = writer.recorder.max_notification_id() or 0
            deadline = written + 30
            while relay.stats.position < target:  # a tight loop: this measures latency
                assert time.monotonic() < deadline, "the relay did not publish in 30 s"
                time.sleep(0.001)
            latencies.append(time.monotonic() - written)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    print(
        f"\n{'postgres' if setup.settings.store.postgres_dsn else 'sqlite'}: publish latency after "
        f"commit: median {statistics.median(latencies) * 1000:.0f} ms, "
        f"max {max(latencies) * 1000:.0f} ms"
    )

    stored = stored_keys(writer)
    records = read_topic(bootstrap, setup.stream.events_topic)
    result = check_delivery(stored, records)
    assert result == {"records": len(stored), "duplicates": 0}
    notification_ids = []
    for record in records:
        headers = {k: v.decode() for k, v in record.headers}
        assert set(headers) == HEADERS
        value = json.loads(record.value)
        assert headers["notification_id"] == str(value["notification_id"])
        assert headers["event_type"] == value["topic"].rsplit(":", 1)[-1]
        notification_ids.append(value["notification_id"])
    assert sorted(notification_ids) == list(range(1, len(stored) + 1))

    with setup.store_db() as db:
        assert RelayPosition(db, setup.stream.events_topic).load() == len(stored)
    again = setup.relay(relay_app).run(once=True, max_seconds=30)
    assert again.published == 0, "a restarted relay starts from its saved position"
    writer.close()
    relay_app.close()


def now() -> datetime:
    return datetime.now(UTC)


def stored_keys_count(app: LeadflowApp) -> int:
    return app.recorder.max_notification_id() or 0


def test_position_only_moves_forward(setup: StreamSetup) -> None:
    with setup.store_db() as db:
        position = RelayPosition(db, "some-topic")
        assert position.load() == 0
        position.save(10)
        position.save(7)  # a relay that lost its lock must not move it back
        assert position.load() == 10
        assert RelayPosition(db, "other-topic").load() == 0
