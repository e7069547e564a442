"""The leadflow.events.v1 record the relay builds from the stored bytes is byte for byte
the record the format defines: the envelope JSON with ``json.dumps`` (compact, UTF-8),
whatever the store (plain, encrypted, compressed) and whatever the state holds."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.partitioner import DefaultPartitioner
from pydantic import SecretStr

from adapters.event_envelope import EventEnvelope, envelope_from_notification
from adapters.mapper import JSONTranscoder, PydanticMapper
from consumers.contracts.events_topic import KafkaRecord, from_kafka_value, to_kafka_record
from consumers.projection.runner import personal_data
from consumers.relay.partitioner import KeyHashPartitioner
from domain import commands as c
from domain.events import LeadCaptured
from leadflow.bootstrap import open_application
from service.application import LeadflowApp
from tests.integration.consumers.stream_helpers import lifecycle
from tests.settings_helpers import settings_with


def reference_record(envelope: EventEnvelope) -> KafkaRecord:
    """The record as the format defines it (the relay's encoding before it spliced bytes)."""
    event = envelope.event
    value = {
        "notification_id": envelope.notification_id,
        "topic": envelope.topic,
        "originator_id": str(event.originator_id),
        "originator_version": event.originator_version,
        "state": envelope.state,
    }
    headers = {
        "event_id": str(event.event_id),
        "event_type": event.event_type,
        "aggregate_type": envelope.aggregate_type,
        "schema_version": str(event.schema_version),
        "aggregate_version": str(event.originator_version),
        "notification_id": str(envelope.notification_id),
    }
    return KafkaRecord(
        key=str(event.originator_id).encode(),
        value=json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        headers=[(k, v.encode()) for k, v in headers.items()],
    )


def filled_app(tmp_path: Path, **options: Any) -> LeadflowApp:
    app = open_application(settings_with(data_dir=tmp_path, postgres_dsn=None, **options), "test")
    for n in range(6):
        lifecycle(app, n)
    return app


CIPHER_KEY = SecretStr(base64.b64encode(bytes(range(32))).decode())


@pytest.mark.parametrize(
    "options",
    [{}, {"compress_events": True}, {"cipher_key": CIPHER_KEY, "compress_events": True}],
    ids=["plain", "compressed", "encrypted"],
)
def test_every_stored_event_becomes_the_defined_record(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    app = filled_app(tmp_path, **options)
    assert isinstance(app.mapper, PydanticMapper)
    notifications = app.recorder.select_notifications(0, 1000, inclusive_of_start=False)
    assert len(notifications) > 50
    for notification in notifications:
        envelope = envelope_from_notification(app.mapper, notification)
        record = to_kafka_record(envelope)
        assert record == reference_record(envelope), notification.id
        assert from_kafka_value(record.value, personal_data(app)).event == envelope.event
    app.close()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=-1e-3, max_value=1e-3)
    | st.floats(min_value=1e14, max_value=1e18)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(extra=st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_any_stored_state_is_published_as_json_dumps_writes_it(extra: dict[str, Any]) -> None:
    """Whatever pydantic-core stored (floats included), the record says what json.dumps
    would: the stored bytes where they agree, a re-encode where they may not."""
    event = SAMPLE.event
    state = {**SAMPLE.state, **extra}
    stored = JSONTranscoder().encode(state)
    envelope = EventEnvelope(7, SAMPLE.topic, json.loads(stored), event, stored)
    assert to_kafka_record(envelope) == reference_record(envelope)


@pytest.fixture(scope="module")
def sealing_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeadflowApp]:
    data_dir = tmp_path_factory.mktemp("sealing")
    app = open_application(settings_with(data_dir=data_dir, postgres_dsn=None), "test")
    yield app
    app.close()


# what a person may type (no control characters: domain.input_limits), marked so that it
# cannot turn up by chance in base64, an id or a hash
personal_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40).map(
    lambda text: f"person·{text}"
)


@settings(max_examples=25, deadline=None)
@given(name=personal_text, title=personal_text, note=personal_text)
def test_a_record_holds_personal_values_only_sealed_and_the_seal_opens_them(
    sealing_app: LeadflowApp, name: str, title: str, note: str
) -> None:
    app = sealing_app
    lead = f"{uuid.uuid4().hex}@example.com"
    attributes = {"name": name, "title": title, "country": "de"}
    at = datetime(2026, 3, 1, tzinfo=UTC)
    before = app.recorder.max_notification_id() or 0
    app.handle(c.CaptureLead(lead=lead, source="web", attributes=attributes, occurred_at=at))
    app.handle(c.LogContact(lead=lead, channel="call", outcome=note, occurred_at=at))
    assert isinstance(app.mapper, PydanticMapper)
    new = app.recorder.select_notifications(before, 100, inclusive_of_start=False)
    assert {n.topic.rpartition(":")[2] for n in new} >= {"LeadCaptured", "ContactLogged"}
    for notification in new:
        envelope = envelope_from_notification(app.mapper, notification)
        value = to_kafka_record(envelope).value
        for plain in (lead, name, title, note):
            assert plain.encode() not in value
            assert json.dumps(plain, ensure_ascii=True)[1:-1].encode() not in value
        assert from_kafka_value(value, personal_data(app)).event == envelope.event
    captured = app.events_of(app.get_lead(lead).id)[0]
    assert captured.attributes == attributes  # type: ignore[attr-defined]


def _sample() -> EventEnvelope:
    event = LeadCaptured.model_validate(
        {
            "originator_id": uuid.uuid4(),
            "originator_version": 1,
            "timestamp": "2026-01-05T12:00:00Z",
            "event_id": uuid.uuid4(),
            "occurred_at": "2026-01-05T12:00:00Z",
            "actor": "test",
            "causation_id": "c",
            "correlation_id": "c",
            "prev_hash": "",
            "hash": "0" * 64,
            "external_id": "a@example.com",
            "source": "web",
        }
    )
    state = event.model_dump(mode="json", exclude={"originator_id", "originator_version"})
    return EventEnvelope(7, "domain.events:LeadCaptured", state, event)


SAMPLE = _sample()


class Cluster:
    def __init__(self, partitions: int) -> None:
        self.partitions = set(range(partitions))

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions if topic == "t" else None

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


@pytest.mark.parametrize("partitions", [1, 3, 6, 7])
def test_keys_go_to_the_partition_the_default_partitioner_picks(partitions: int) -> None:
    default, remembering = DefaultPartitioner(), KeyHashPartitioner(capacity=100)
    cluster = Cluster(partitions)
    keys = [str(uuid.uuid4()).encode() for _ in range(300)]
    for key in keys + keys:  # the second time from memory (and after clearing it)
        expected = default.partition("t", key, key, None, None, cluster)
        assert remembering.partition("t", key, key, None, None, cluster) == expected
    with pytest.raises(ValueError, match="not found"):
        remembering.partition("other", b"k", b"k", None, None, cluster)
