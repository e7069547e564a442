"""The relay keeps going when the broker restarts or its PostgreSQL lock connection drops."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.kafka.broker import Broker
from tests.integration.consumers.relay_helpers import (
    caught_up,
    crash_setup,
    end_lock_session,
    running_relay,
)
from tests.integration.consumers.stream_helpers import (
    check_delivery,
    lifecycle,
    read_topic,
    stored_keys,
    stream_setup,
    wait_for,
)

pytestmark = pytest.mark.kafka


@pytest.mark.slow
def test_the_relay_keeps_going_across_a_broker_crash(
    tmp_path: Path, kafka_broker: Broker | None
) -> None:
    setup = crash_setup(tmp_path, kafka_broker)
    assert kafka_broker is not None
    writer = setup.open_app("writer")
    with running_relay(setup) as relay:
        lifecycle(writer, 0)
        wait_for(lambda: caught_up(relay, writer), 30, "the relay to publish")
        try:
            kafka_broker.kill()
            for n in range(1, 4):  # the store takes commands while the broker is down
                lifecycle(writer, n)
            wait_for(
                lambda: relay.stats.publish_failures > 0,
                30,
                "the relay to notice the broker is gone",
            )
            assert not caught_up(relay, writer)
        finally:
            kafka_broker.start()
        lifecycle(writer, 4)
        wait_for(lambda: caught_up(relay, writer), 90, "the relay to publish after the restart")
    records = read_topic(kafka_broker.bootstrap, setup.stream.events_topic)
    result = check_delivery(stored_keys(writer), records)
    print(f"\nacross a broker crash: {result}")
    writer.close()


@pytest.mark.postgres
def test_the_relay_takes_the_lock_again_when_its_connection_drops(
    tmp_path: Path, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap, postgres_dsn)
    writer = setup.open_app("writer")
    with running_relay(setup) as relay:
        lifecycle(writer, 0)
        wait_for(lambda: caught_up(relay, writer), 30, "the relay to publish")
        terminated = end_lock_session(postgres_dsn, setup.settings.store.postgres_schema)
        assert terminated == [(True,)], "exactly the relay's lock connection"
        wait_for(lambda: relay.stats.activations >= 2, 30, "the relay to take the lock again")
        assert relay.stats.lock_losses == 1
        lifecycle(writer, 1)
        wait_for(lambda: caught_up(relay, writer), 30, "the relay to publish again")
    check_delivery(stored_keys(writer), read_topic(kafka_bootstrap, setup.stream.events_topic))
    writer.close()
