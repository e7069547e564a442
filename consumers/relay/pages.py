"""Pages of the relay: the notification log read and turned into ready Kafka records.

A page holds, per notification and in order, its events-topic record and its public
record (if any), each with its size as the broker counts it, and the problem it
was published with (undecodable, unmappable). Pages are plain tuples of bytes and
text, so that a page reader in another process (``consumers.relay.reader_process``)
hands them over cheaply.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from eventsourcing.persistence import Notification

from adapters.event_envelope import envelope_from_notification
from adapters.logging import error_kind, error_text
from adapters.mapper import PydanticMapper
from consumers.contracts.events_topic import (
    KafkaRecord,
    record_size,
    to_kafka_record,
    undecodable_record,
)
from consumers.contracts.qualification import (
    integration_event,
    to_public_record,
    unmappable_event,
)
from consumers.failure_policy import classify, storable_reason
from consumers.relay.states_at_version import StatesAtVersion
from service.application import LeadflowApp


class Origin(NamedTuple):
    """The notification a record stands for, as errors and logs name it."""

    id: int
    topic: str
    aggregate_id: str
    aggregate_version: int


class Outgoing(NamedTuple):
    origin: Origin
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    size: int  # key, value and headers: what the broker's size limit counts


class Problem(NamedTuple):
    """A notification published in a substitute form: counted and logged once published."""

    kind: Literal["undecodable", "unmappable"]
    event: str
    fields: dict[str, Any]


class Converted(NamedTuple):
    """One notification's records, in order, and its problem if it has one."""

    records: list[Outgoing]
    problem: Problem | None


# a page of the notification log, in order
Page = list[Converted]


def _ids(origin: Origin) -> dict[str, Any]:
    """What a log line names a notification by (built only for a problem)."""
    return {
        "notification_id": origin.id,
        "event_topic": origin.topic,
        "aggregate_id": origin.aggregate_id,
        "aggregate_version": origin.aggregate_version,
    }


def _origin(notification: Notification, aggregate_id: str) -> Origin:
    return Origin(
        notification.id, notification.topic, aggregate_id, notification.originator_version
    )


def _outgoing(origin: Origin, topic: str, record: KafkaRecord) -> Outgoing:
    return Outgoing(origin, topic, record.key, record.value, record.headers, record_size(record))


class PageReader:
    """Reads pages after a position; follows lead and deal state for the public records
    (``forget`` when the next page read is not the one after the last)."""

    def __init__(
        self, app: LeadflowApp, events_topic: str, qualification_topic: str, page_size: int
    ) -> None:
        assert isinstance(app.mapper, PydanticMapper)
        self._app = app
        self._mapper = app.mapper
        self._events_topic = events_topic
        self._qualification_topic = qualification_topic
        self._page_size = page_size
        self._states = StatesAtVersion(app)

    def read(self, after: int) -> Page:
        """The records of the next notifications after ``after``, per notification."""
        notifications = self._app.recorder.select_notifications(
            start=after, limit=self._page_size, inclusive_of_start=False
        )
        return [self._records(notification) for notification in notifications]

    def forget(self) -> None:
        self._states.forget()

    def _records(self, notification: Notification) -> Converted:
        """The events-topic record and the public one, if any."""
        try:
            envelope = envelope_from_notification(self._mapper, notification)
        except Exception as error:
            if classify(error) != "permanent":
                raise
            origin = _origin(notification, str(notification.originator_id))
            marker = undecodable_record(self._mapper, notification, error)
            action = "published as an undecodable-event record; projectors dead-letter it"
            fields = {**_ids(origin), **error_kind(error), "action": action}
            return Converted(
                [_outgoing(origin, self._events_topic, marker)],
                Problem("undecodable", "relay_event_undecodable", fields),
            )
        record = to_kafka_record(envelope)
        origin = _origin(notification, record.key.decode())  # the key is the aggregate id
        records = [_outgoing(origin, self._events_topic, record)]
        problem: Problem | None = None
        try:
            self._states.observe(envelope.event)
            public_event = integration_event(envelope.event, self._states)
            public = None if public_event is None else to_public_record(public_event)
        except Exception as error:
            if classify(error) != "permanent":
                raise
            reason = storable_reason(error_text(error))
            public = to_public_record(unmappable_event(envelope.event, reason))
            problem = Problem(
                "unmappable",
                "relay_public_event_unmappable",
                {
                    **_ids(origin),
                    "event_id": str(envelope.event.event_id),
                    **error_kind(error),
                    "action": "published a relay.unmappable record on the qualification topic",
                },
            )
        if public is not None:
            records.append(_outgoing(origin, self._qualification_topic, public))
        return Converted(records, problem)
