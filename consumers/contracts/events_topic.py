"""The record format of ``leadflow.events.v1``: one stored event per record.

key     aggregate id (UUID text)
value   JSON ``{"notification_id", "topic", "originator_id", "originator_version", "state"}``
        where ``state`` is the event's stored JSON state, before upcasting (consumers
        upcast, exactly as the event store does on read), its personal fields sealed
        as stored (see below)
headers event_id, event_type, aggregate_type, schema_version, aggregate_version,
        notification_id (all UTF-8 text); the relay adds relay_epoch (its fencing
        epoch, ``consumers.relay.position``)

The embedded mode reads the same envelopes straight from the notification log.

Personal fields (``domain.personal_fields.PERSONAL_FIELDS``: external ids, attributes but
the firmographic ones, properties, BANT answers, contact outcomes, reasons, competitors)
are text ``"\x1fsealed:v1:<lead id, 32 hex>:<base64 of nonce + AES-256-GCM ciphertext>"``
under the lead's data key (``adapters.personal_seal``), as in the event store. Only
leadflow opens them, with the privacy master key and the store's key table: the Kafka
projector does (``from_kafka_value``). Once the lead is forgotten its key is gone and
they stay sealed for ever: a consumer reads ``[erased]``, as a rebuild from the store does.
Records written before sealing may hold plain values; they are read as they are.

A stored event the relay cannot decode still comes, in its place in the aggregate's
order, as an undecodable-event record (``undecodable_record``): the usual value with
``state`` as far as it could be read (``null`` when not at all; then
``stored_state_base64`` holds the stored bytes) plus ``undecodable`` (why); headers
``event_topic``, ``aggregate_version``, ``notification_id`` and ``relay.undecodable``
(the error). A projector decoding it fails exactly as the relay did and dead-letters it.

The relay writes ``state`` as the stored JSON bytes themselves (no decode and re-encode).
The store's transcoder (pydantic-core; ``json.dumps`` in older stores) writes exactly
what ``json.dumps(state, separators=(",", ":"), ensure_ascii=False)`` gives, except that
pydantic-core spells some floats differently (``1e-7``, ``0.00001``); a state that may
hold such a float is re-encoded with ``json.dumps`` (``_state_json``), so every record is
byte for byte what it always was (``tests/integration/consumers/test_event_records.py`` checks it).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from eventsourcing.persistence import Notification

from adapters.event_envelope import EventEnvelope, event_from_state
from adapters.logging import error_text
from adapters.mapper import PydanticMapper
from adapters.storable_text import storable_reason
from domain.events import DomainEvent
from domain.personal_fields import PersonalData

EVENTS_TOPIC = "leadflow.events.v1"


@dataclass(frozen=True, slots=True)
class KafkaRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def record_size(record: KafkaRecord) -> int:
    """Bytes of key, value and headers: what the broker's message size limit counts."""
    size = len(record.key) + len(record.value)
    for name, value in record.headers:
        size += len(value) + (len(name) if name.isascii() else len(name.encode()))
    return size


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


def from_kafka_value(value: bytes, personal: PersonalData) -> EventEnvelope:
    """The envelope of a record, its sealed personal fields opened by ``personal``
    (``[erased]`` where the lead's key was destroyed)."""
    data = json.loads(value)
    state = data["state"]
    event = event_from_state(
        data["topic"], data["originator_id"], data["originator_version"], state, personal
    )
    return EventEnvelope(int(data["notification_id"]), data["topic"], state, event)


def undecodable_record(
    mapper: PydanticMapper, notification: Notification, error: BaseException
) -> KafkaRecord:
    """The record standing for a stored event that cannot be decoded (see above)."""
    problem = storable_reason(error_text(error))
    value: dict[str, Any] = {
        "notification_id": notification.id,
        "topic": notification.topic,
        "originator_id": str(notification.originator_id),
        "originator_version": notification.originator_version,
        "state": None,
        "undecodable": problem,
    }
    try:
        value["state"] = mapper.decode_state(notification)
    except Exception:  # noqa: BLE001 - keep the stored bytes instead
        value["stored_state_base64"] = base64.b64encode(notification.state).decode("ascii")
    headers = {
        "event_topic": notification.topic,
        "aggregate_version": str(notification.originator_version),
        "notification_id": str(notification.id),
        "relay.undecodable": problem,
    }
    return KafkaRecord(
        key=str(notification.originator_id).encode(),
        value=json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode(),
        headers=[(k, v.encode("utf-8")) for k, v in headers.items()],
    )
