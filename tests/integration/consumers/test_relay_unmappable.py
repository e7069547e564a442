"""An event the relay cannot map to the public contract is never skipped silently: a
``relay.unmappable`` record takes its place on leadflow.qualification.v1, in order."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from uuid import uuid4

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from adapters.mapper import PydanticMapper
from consumers.contracts.schema_files import REPO_SCHEMAS
from consumers.relay.position import RelayPosition
from domain.events import LeadAccepted
from service.ids import lead_id_for
from tests.integration.consumers.relay_helpers import insert_raw
from tests.integration.consumers.stream_helpers import (
    check_delivery,
    lifecycle,
    read_topic,
    stored_keys,
    stream_setup,
)

pytestmark = pytest.mark.kafka


def test_an_unmappable_event_is_published_as_a_marker_in_its_place(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    writer = setup.open_app("writer")
    lifecycle(writer, 0)
    lead_events = writer.events_of(lead_id_for("lead-0@example.com"))
    accepted = next(e for e in lead_events if isinstance(e, LeadAccepted))
    # decodes, but as the first event of a lead it has no lead state to publish
    bogus = accepted.model_copy(
        update={"originator_id": uuid4(), "originator_version": 1, "event_id": uuid4()}
    )
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
