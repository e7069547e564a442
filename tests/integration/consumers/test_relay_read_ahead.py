"""Reading the next page while the broker confirms this one has no effect of its own:
after failed sends and pages read again, every count and error log comes once."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from structlog.testing import capture_logs

from deploy.kafka.broker import Broker
from tests.integration.consumers.relay_helpers import (
    caught_up,
    crash_setup,
    insert_raw,
    running_relay,
)
from tests.integration.consumers.stream_helpers import (
    check_delivery,
    lifecycle,
    read_topic,
    stored_keys,
    wait_for,
)

pytestmark = pytest.mark.kafka


@pytest.mark.slow
def test_pages_read_again_after_failed_sends_count_and_log_once(
    tmp_path: Path, kafka_broker: Broker | None
) -> None:
    setup = crash_setup(tmp_path, kafka_broker, send_timeout_seconds=3.0, relay_batch_size=3)
    assert kafka_broker is not None
    writer = setup.open_app("writer")
    with capture_logs() as logs, running_relay(setup) as relay:
        lifecycle(writer, 0)
        wait_for(lambda: caught_up(relay, writer), 30, "the relay to publish")
        try:
            kafka_broker.kill()
            # the page that fails and is read again, then pages read ahead meanwhile
            for _ in range(3):
                insert_raw(writer, StoredEvent(uuid4(), 1, "domain.events:NoSuchEvent", b"{}"))
            lifecycle(writer, 1)
            wait_for(lambda: relay.stats.publish_failures >= 2, 60, f"failed sends: {relay.stats}")
            assert not caught_up(relay, writer)
        finally:
            kafka_broker.start()
        wait_for(lambda: caught_up(relay, writer), 90, "the relay to publish after the restart")
    stored = stored_keys(writer)
    assert relay.stats.undecodable == 3
    assert sum(e["event"] == "relay_event_undecodable" for e in logs) == 3
    assert relay.stats.published == len(stored)
    records = read_topic(kafka_broker.bootstrap, setup.stream.events_topic)
    assert check_delivery(stored, records)["records"] >= relay.stats.published
    writer.close()
