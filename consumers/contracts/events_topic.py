"""The record format of ``leadflow.events.v1``: one stored event per record.

key     aggregate id (UUID text)
value   JSON ``{"notification_id", "topic", "originator_id", "originator_version", "state"}``
        where ``state`` is the event's stored JSON state, before upcasting (consumers
        upcast, exactly as the event store does on read)
headers event_id, event_type, aggregate_type, schema_version, aggregate_version,
        notification_id (all UTF-8 text); the relay adds relay_epoch (its fencing
        epoch, ``consumers.relay.position``)

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
from dataclasses import dataclass
from functools import lru_cache

from adapters.event_envelope import EventEnvelope, event_from_state
from domain.events import DomainEvent

EVENTS_TOPIC = "leadflow.events.v1"


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


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
    event = event_from_state(
        data["topic"], data["originator_id"], data["originator_version"], state
    )
    return EventEnvelope(int(data["notification_id"]), data["topic"], state, event)
