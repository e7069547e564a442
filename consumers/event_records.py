"""The record format of ``leadflow.events.v1``: one stored event per record.

key     aggregate id (UUID text)
value   JSON ``{"notification_id", "topic", "originator_id", "originator_version", "state"}``
        where ``state`` is the event's stored JSON state, before upcasting (consumers
        upcast, exactly as the event store does on read)
headers event_id, event_type, aggregate_type, schema_version, aggregate_version,
        notification_id (all UTF-8 text)

The embedded mode reads the same envelopes straight from the notification log.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from domain.events import DEAL_EVENTS, EVENT_CLASSES, DomainEvent
from domain.persistence import PydanticMapper, upcast

EVENTS_TOPIC = "leadflow.events.v1"

# A record names its event class; it is looked up here, never imported from the name.
_EVENT_CLASS_BY_TOPIC: dict[str, type[DomainEvent]] = {
    get_topic(cls): cls for cls in EVENT_CLASSES.values()
}


@dataclass(frozen=True, slots=True)
class EventEnvelope:
    """A domain event with its position in the application's notification log."""

    notification_id: int
    topic: str
    state: dict[str, Any]
    event: DomainEvent

    @property
    def aggregate_type(self) -> str:
        return "deal" if type(self.event) in DEAL_EVENTS else "lead"


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def build_event(
    topic: str, originator_id: UUID | str, originator_version: int, state: dict[str, Any]
) -> DomainEvent:
    cls = _EVENT_CLASS_BY_TOPIC.get(topic)
    if cls is None:
        msg = f"topic {topic!r} is not a leadflow domain event"
        raise ValueError(msg)
    data = upcast(cls, dict(state))
    data["originator_id"] = originator_id
    data["originator_version"] = originator_version
    return cls.model_validate(data)


def envelope_from_notification(mapper: PydanticMapper, notification: Notification) -> EventEnvelope:
    state = mapper.decode_state(notification)
    event = build_event(
        notification.topic, notification.originator_id, notification.originator_version, state
    )
    return EventEnvelope(notification.id, notification.topic, state, event)


def to_kafka_record(envelope: EventEnvelope) -> KafkaRecord:
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


def from_kafka_value(value: bytes) -> EventEnvelope:
    data = json.loads(value)
    state = data["state"]
    event = build_event(data["topic"], data["originator_id"], data["originator_version"], state)
    return EventEnvelope(int(data["notification_id"]), data["topic"], state, event)
