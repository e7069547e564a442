"""The relay keeps going when the broker restarts or its PostgreSQL lock connection drops."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from adapters.stopping import ProcessStop
from consumers.relay.lock import advisory_key
from consumers.relay.publisher import Relay
from deploy.kafka.broker import Broker
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


@contextmanager
def running_relay(setup: StreamSetup) -> Iterator[Relay]:
    app = setup.open_app("relay")
    stop = ProcessStop()
    relay = setup.relay(app, stop=stop)
    thread = threading.Thread(target=relay.run, name="relay")
    thread.start()
    try:
        yield relay
    finally:
        stop.set()
        thread.join(timeout=60)
        app.close()
    assert not thread.is_alive()


def caught_up(relay: Relay, app: LeadflowApp) -> bool:
    return relay.stats.position >= (app.recorder.max_notification_id() or 0)


@pytest.mark.slow
def test_the_relay_keeps_going_across_a_broker_crash(
    tmp_path: Path, kafka_broker: Broker | None
) -> None:
    if kafka_broker is None:
        pytest.skip("external Kafka (LEADFLOW_KAFKA_BOOTSTRAP): not ours to restart")
    setup = stream_setup(tmp_path, kafka_broker.bootstrap)
    setup.stream = setup.stream.model_copy(
        update={"send_timeout_seconds": 5.0, "retry_max_seconds": 1.0}
    )
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
    key = advisory_key(f"leadflow.relay:{setup.settings.store.postgres_schema}")
    writer = setup.open_app("writer")
    with running_relay(setup) as relay:
        lifecycle(writer, 0)
        wait_for(lambda: caught_up(relay, writer), 30, "the relay to publish")
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            terminated = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = %s::bigint::oid AND objid = %s::bigint::oid AND objsubid = 1",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
            ).fetchall()
        assert terminated == [(True,)], "exactly the relay's lock connection"
        wait_for(lambda: relay.stats.activations >= 2, 30, "the relay to take the lock again")
        assert relay.stats.lock_losses == 1
        lifecycle(writer, 1)
        wait_for(lambda: caught_up(relay, writer), 30, "the relay to publish again")
    check_delivery(stored_keys(writer), read_topic(kafka_bootstrap, setup.stream.events_topic))
    writer.close()
