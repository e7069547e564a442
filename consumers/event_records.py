"""The record format of ``leadflow.events.v1``: one stored event per record.

key     aggregate id (UUID text)
value   JSON ``{"notification_id", "topic", "originator_id", "originator_version", "state"}``
        where ``state`` is the event's stored JSON state, before upcasting (consumers
        upcast, exactly as the event store does on read)
headers event_id, event_type, aggregate_type, schema_version, aggregate_version,
        notification_id (all UTF-8 text)

The embedded mode reads the same envelopes straight from the notification log.

The relay writes ``state`` as the stored JSON bytes themselves (no decode and re-encode).
The store's transcoder (pydantic-core; ``json.dumps`` in older stores) writes exactly
what ``json.dumps(state, separators=(",", ":"), ensure_ascii=False)`` gives, except that
pydantic-core spells some floats differently (``1e-7``, ``0.00001``); a state that may
hold such a float is re-encoded with ``json.dumps`` (``_state_json``), so every record is
byte for byte what it always was (``tests/stream/test_event_records.py`` checks it).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
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
    # the stored JSON of ``state`` when read from the event store (None from Kafka)
    stored_json: bytes | None = field(default=None, compare=False, repr=False)

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
    stored_json = mapper.plain_state(notification)
    state = mapper.transcoder.decode(stored_json)
    event = build_event(
        notification.topic, notification.originator_id, notification.originator_version, state
    )
    return EventEnvelope(notification.id, notification.topic, state, event, stored_json)


# json.dumps spells two kinds of float differently from pydantic-core: with an exponent
# (pydantic-core: "e", a sign, digits) and below 1e-4 (pydantic-core: "0.0000..."). A
# number ends at "," "}" or "]"; text in a string that looks like one costs a re-encode.
_EXPONENT = re.compile(rb"e[-+][0-9]+[,}\]]")
_SMALL_FLOAT = re.compile(rb"0\.0000[0-9]*[,}\]]")


def _state_json(envelope: EventEnvelope) -> bytes:
    stored = envelope.stored_json
    if stored is None or _EXPONENT.search(stored) or _SMALL_FLOAT.search(stored):
        return json.dumps(envelope.state, separators=(",", ":"), ensure_ascii=False).encode()
    return stored


@lru_cache(maxsize=256)
def _json_text(text: str) -> bytes:
    return json.dumps(text, ensure_ascii=False).encode()


_CLASS_HEADERS: dict[type[DomainEvent], tuple[bytes, bytes]] = {}


def _class_headers(envelope: EventEnvelope) -> tuple[bytes, bytes]:
    """event_type, aggregate_type: the same for every event of a class."""
    cls = type(envelope.event)
    found = _CLASS_HEADERS.get(cls)
    if found is None:
        found = (envelope.event.event_type.encode(), envelope.aggregate_type.encode())
        _CLASS_HEADERS[cls] = found
    return found


def to_kafka_record(envelope: EventEnvelope) -> KafkaRecord:
    event = envelope.event
    aggregate_id = str(event.originator_id).encode()
    version = str(event.originator_version).encode()
    notification_id = str(envelope.notification_id).encode()
    value = b"".join(
        (
            b'{"notification_id":',
            notification_id,
            b',"topic":',
            _json_text(envelope.topic),
            b',"originator_id":"',
            aggregate_id,
            b'","originator_version":',
            version,
            b',"state":',
            _state_json(envelope),
            b"}",
        )
    )
    event_type, aggregate_type = _class_headers(envelope)
    headers = [
        ("event_id", str(event.event_id).encode()),
        ("event_type", event_type),
        ("aggregate_type", aggregate_type),
        ("schema_version", str(event.schema_version).encode()),
        ("aggregate_version", version),
        ("notification_id", notification_id),
    ]
    return KafkaRecord(key=aggregate_id, value=value, headers=headers)


def from_kafka_value(value: bytes) -> EventEnvelope:
    data = json.loads(value)
    state = data["state"]
    event = build_event(data["topic"], data["originator_id"], data["originator_version"], state)
    return EventEnvelope(int(data["notification_id"]), data["topic"], state, event)
