"""The relay's pages hold, byte for byte, the records the straightforward path builds.

The reference decodes each notification with eventsourcing's own read, builds the
events-topic record and the public one, and reads every lead's or deal's state from the
event store at the event's version (no state followed in memory). The relay's pages
must give the same records (topic, key, value, headers) in the same order, whatever it
does to go faster, read in its own process or in its page reader process. Privacy is
on: personal fields are sealed in the store and opened for the public records. No
broker is needed: pages are built, not sent.
"""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

from adapters.event_envelope import envelope_from_notification
from adapters.mapper import PydanticMapper
from consumers.contracts.events_topic import to_kafka_record
from consumers.contracts.qualification import (
    DealState,
    LeadState,
    integration_event,
    to_public_record,
)
from consumers.relay.states_at_version import StatesAtVersion
from service.application import LeadflowApp
from tests.integration.consumers.stream_helpers import StreamSetup, lifecycle, stream_setup

# topic, key, value, headers
Row = tuple[str, bytes, bytes, list[tuple[str, bytes]]]


class StoreStates:
    """Every state read from the event store at the version asked."""

    def __init__(self, app: LeadflowApp) -> None:
        self._states = StatesAtVersion(app, capacity=0)

    def lead(self, lead_id: UUID, version: int) -> LeadState:
        return self._states.lead(lead_id, version)

    def deal(self, deal_id: UUID, version: int) -> DealState:
        return self._states.deal(deal_id, version)


def reference_rows(app: LeadflowApp, events_topic: str, public_topic: str) -> list[Row]:
    assert isinstance(app.mapper, PydanticMapper)
    states = StoreStates(app)
    rows: list[Row] = []
    for notification in app.recorder.select_notifications(start=1, limit=100_000):
        envelope = envelope_from_notification(app.mapper, notification)
        record = to_kafka_record(envelope)
        rows.append((events_topic, record.key, record.value, record.headers))
        public = integration_event(envelope.event, states)
        if public is not None:
            p = to_public_record(public)
            rows.append((public_topic, p.key, p.value, p.headers))
    return rows


def relay_rows(setup: StreamSetup, app: LeadflowApp, page_size: int, in_child: bool) -> list[Row]:
    """What the relay's pages hold (``in_child``: read by its page reader process)."""
    stream = setup.stream.model_copy(
        update={"relay_batch_size": page_size, "relay_reader_process": in_child}
    )
    relay = setup.relay(app, stream=stream)
    rows: list[Row] = []
    position = 0
    reader = relay._pages()
    try:
        while page := reader.read(position):
            for converted in page:
                assert converted.problem is None
                for out in converted.records:
                    rows.append((out.topic, out.key, out.value, out.headers))
            position = page[-1].records[0].origin.id
            reader.prefetch(position)
    finally:
        reader.close()
    topics = {stream.events_topic: "events", stream.qualification_topic: "public"}
    return [(topics[topic], key, value, headers) for topic, key, value, headers in rows]


def test_the_relay_pages_hold_the_reference_records(tmp_path: Path) -> None:
    setup = stream_setup(tmp_path, "127.0.0.1:1")
    app = setup.open_app("writer")
    for n in range(15):  # every lifecycle path, three times
        lifecycle(app, n)
    expected = reference_rows(app, "events", "public")
    assert len(expected) > 15 * 5
    assert sum(topic == "public" for topic, *_ in expected) > 15
    assert any(b"sealed:v1:" in value for _, _, value, _ in expected)  # privacy is on
    for page_size, in_child in ((7, False), (2_000, False), (7, True), (2_000, True)):
        assert relay_rows(setup, app, page_size, in_child) == expected
    app.close()
