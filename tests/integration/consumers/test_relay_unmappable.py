"""An event the relay cannot map to the public contract is never skipped silently: a
``relay.unmappable`` record takes its place on leadflow.qualification.v1, in order."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from uuid import uuid4

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from adapters.mapper import PydanticMapper
from consumers.contracts.schema_files import REPO_SCHEMAS
from consumers.relay.position import RelayPosition
from consumers.relay.publisher import RelayError
from domain import commands as c
from domain.events import DomainEvent, LeadAccepted
from service.application import LeadflowApp
from tests.integration.consumers.relay_helpers import insert_raw
from tests.integration.consumers.stream_helpers import (
    T0,
    check_delivery,
    lifecycle,
    read_topic,
    stored_keys,
    stream_setup,
)

pytestmark = pytest.mark.kafka


def unmappable_event(app: LeadflowApp) -> DomainEvent:
    """An event that decodes but cannot be mapped: lead 0's acceptance (``app`` has run
    ``lifecycle(app, 0)``) as the first event of a new lead, which has no state to publish."""
    accepted = next(
        e for e in app.events_of(app.ids.lead("lead-0@example.com")) if isinstance(e, LeadAccepted)
    )
    return accepted.model_copy(
        update={"originator_id": uuid4(), "originator_version": 1, "event_id": uuid4()}
    )


def test_an_unmappable_event_is_published_as_a_marker_in_its_place(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    writer = setup.open_app("writer")
    lifecycle(writer, 0)
    bogus = unmappable_event(writer)
    assert isinstance(writer.mapper, PydanticMapper)
    bogus_id = insert_raw(writer, writer.mapper.to_stored_event(bogus))
    lifecycle(writer, 1)
    stored = stored_keys(writer)

    stats = setup.relay(setup.open_app("relay")).run(once=True, max_seconds=60)
    assert stats.unmappable == 1
    assert stats.position == len(stored)
    with setup.store_db() as db:
        assert RelayPosition(db, setup.stream.events_topic).load() == len(stored)

    events = read_topic(kafka_bootstrap, setup.stream.events_topic)
    assert check_delivery(stored, events)["duplicates"] == 0
    public = read_topic(kafka_bootstrap, setup.stream.qualification_topic)
    assert len(public) == stats.public
    [marker] = [r for r in public if dict(r.headers)["type"] == b"relay.unmappable"]
    value = json.loads(marker.value)
    envelope = json.loads((REPO_SCHEMAS / "qualification/v1/envelope.json").read_text())
    Draft202012Validator(envelope).validate(value)
    assert marker.key == str(bogus.originator_id).encode()
    assert value["event_id"] == str(bogus.event_id)
    assert value["aggregate_id"] == str(bogus.originator_id)
    assert (value["aggregate_version"], value["event_type"]) == (1, "LeadAccepted")
    assert "LeadAccepted" in value["reason"]

    # in order: every partition of the public topic follows the notification log
    notification_of = {
        dict(r.headers)["event_id"]: int(dict(r.headers)["notification_id"]) for r in events
    }
    assert notification_of[str(bogus.event_id).encode()] == bogus_id
    order: dict[int, list[int]] = defaultdict(list)
    for record in sorted(public, key=lambda r: (r.partition, r.offset)):
        order[record.partition].append(notification_of[dict(record.headers)["event_id"]])
    assert all(ids == sorted(ids) for ids in order.values())
    assert bogus_id in order[marker.partition]
    writer.close()


def test_the_position_passes_the_marker_only_once_it_is_published(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    donor = stream_setup(tmp_path / "donor", kafka_bootstrap).open_app("donor")
    lifecycle(donor, 0)
    bogus = unmappable_event(donor)
    donor.close()
    writer = setup.open_app("writer")
    assert isinstance(writer.mapper, PydanticMapper)
    # captures are not public: the marker is the only record for the public topic
    writer.handle(c.CaptureLead(lead="quiet-1@example.com", source="web", occurred_at=T0))
    bogus_id = insert_raw(writer, writer.mapper.to_stored_event(bogus))
    writer.handle(c.CaptureLead(lead="quiet-2@example.com", source="web", occurred_at=T0))
    stored = stored_keys(writer)

    # a public topic too small for any record: the marker cannot go out
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        topic = {
            "num_partitions": 3,
            "replication_factor": 1,
            "configs": {"max.message.bytes": "64"},
        }
        admin.create_topics({setup.stream.qualification_topic: topic}, wait_for_metadata=True)
        with pytest.raises(RelayError, match=f"notification {bogus_id} "):
            setup.relay(setup.open_app("relay")).run(max_seconds=60)
        with setup.store_db() as db:
            assert RelayPosition(db, setup.stream.events_topic).load() == bogus_id - 1
        assert len(read_topic(kafka_bootstrap, setup.stream.events_topic)) == bogus_id - 1

        wide = {"max.message.bytes": str(1024 * 1024)}
        admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, setup.stream.qualification_topic, wide)]
        )
    finally:
        admin.close()
    stats = setup.relay(setup.open_app("relay")).run(once=True, max_seconds=60)
    assert (stats.unmappable, stats.position) == (1, len(stored))
    [marker] = read_topic(kafka_bootstrap, setup.stream.qualification_topic)
    assert json.loads(marker.value)["event_id"] == str(bogus.event_id)
    writer.close()
