"""Poison events never wedge the relay (real broker): an undecodable one goes to the
events topic for the projectors to dead-letter; one too large for Kafka stops the relay
with an error naming it, without publishing anything twice."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from adapters.mapper import PydanticMapper
from consumers.projection.kafka import item_from_record
from consumers.projection.runner import personal_data
from consumers.relay.position import RelayPosition
from consumers.relay.publisher import MAX_RECORD_BYTES, RelayError
from tests.integration.consumers.relay_helpers import insert_raw
from tests.integration.consumers.stream_helpers import (
    REPO,
    check_delivery,
    lifecycle,
    read_topic,
    stored_keys,
    stream_setup,
    subprocess_env,
)

pytestmark = pytest.mark.kafka


def test_an_undecodable_event_goes_to_the_topic_for_the_projectors_to_dead_letter(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    writer = setup.open_app("writer")
    lifecycle(writer, 0)
    bogus = StoredEvent(uuid4(), 1, "domain.events:NoSuchEvent", b'{"x": 1}')
    bogus_id = insert_raw(writer, bogus)
    lifecycle(writer, 1)

    relay = setup.relay(setup.open_app("relay"))
    stats = relay.run(once=True, max_seconds=60)
    stored = stored_keys(writer)
    assert stats.undecodable == 1
    assert stats.position == len(stored), "the relay went on past it"

    records = read_topic(kafka_bootstrap, setup.stream.events_topic)
    assert check_delivery(stored, records) == {"records": len(stored), "duplicates": 0}
    [marker] = [r for r in records if "relay.undecodable" in dict(r.headers)]
    headers = {k: v.decode() for k, v in marker.headers}
    assert headers["notification_id"] == str(bogus_id)
    assert headers["event_topic"] == bogus.topic
    assert "NoSuchEvent" in headers["relay.undecodable"]
    assert json.loads(marker.value)["state"] == {"x": 1}
    item = item_from_record(marker, personal_data(writer))
    assert item.envelope is None and item.problem, "a projector dead-letters it"
    decoded = [item_from_record(r, personal_data(writer)) for r in records if r is not marker]
    assert all(i.envelope is not None for i in decoded)
    writer.close()


def test_an_event_too_large_for_kafka_stops_the_relay_naming_it(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    writer = setup.open_app("writer")
    lifecycle(writer, 0)
    before = writer.recorder.max_notification_id() or 0
    captured = writer.events_of(writer.ids.lead("lead-0@example.com"))[0]
    big = captured.model_copy(
        update={"originator_id": uuid4(), "attributes": {"blob": "x" * (MAX_RECORD_BYTES + 1)}}
    )
    assert isinstance(writer.mapper, PydanticMapper)
    big_id = insert_raw(writer, writer.mapper.to_stored_event(big))
    lifecycle(writer, 1)

    for attempt in range(2):  # a restarted relay stops at the same place, re-sending nothing
        relay = setup.relay(setup.open_app("relay"))
        with pytest.raises(RelayError) as caught:
            relay.run(max_seconds=60)
        assert f"notification {big_id} " in str(caught.value)
        assert "bytes" in str(caught.value)
        assert relay.stats.position == before
        records = read_topic(kafka_bootstrap, setup.stream.events_topic)
        assert len(records) == before, f"attempt {attempt}: only the events before it, once"
    with setup.store_db() as db:
        assert RelayPosition(db, setup.stream.events_topic).load() == before

    done = subprocess.run(
        [sys.executable, "-m", "leadflow.cli.main", "relay", "--max-seconds", "60"],
        env=subprocess_env(setup.env),
        cwd=REPO,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    last = done.stderr.decode().strip().splitlines()[-1]
    assert f"notification {big_id} " in last and not last.startswith("{"), last
    writer.close()
