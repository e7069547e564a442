"""The JSON Schema of a ``leadflow.events.v1`` record's value (``schemas/events/v1/record.json``).

The topic is leadflow's own (relay to projectors), not a public contract: the schema
documents the envelope and, above all, where personal data is and that it is sealed.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.utils import get_topic

from domain.personal_fields import FIRMOGRAPHIC_ATTRIBUTES, PERSONAL_FIELDS, SEALED_PREFIX

# "\x1fsealed:v1:" + the key owner's id (32 hex) + ":" + base64 of nonce and ciphertext
SEALED_PATTERN = "^" + SEALED_PREFIX.replace("\x1f", "\\u001f") + "[0-9a-f]{32}:[A-Za-z0-9+/]+=*$"

_DESCRIPTION = (
    "leadflow.events.v1: every event of leadflow's event store, one record each, keyed by "
    "aggregate id (consumers.contracts.events_topic), for leadflow's own projectors. "
    "Personal data is sealed: the personal fields of each event type "
    "(x-personal-fields; attributes: every attribute but the firmographic ones) are text "
    "'\\u001fsealed:v1:<lead id, 32 hex>:<base64 of a 12-byte nonce and the AES-256-GCM "
    "ciphertext of the value's JSON>' under the lead's own data key. Only leadflow opens "
    "them, with its privacy master key (LEADFLOW_PRIVACY_MASTER_KEY_FILE) and the event "
    "store's key table. leadflow forget destroys the lead's key: every copy on the topic "
    "then stays sealed for ever, and leadflow reads it as '[erased]'. Records written "
    "before sealing may hold plain values. Retention: 30 days by default "
    "(LEADFLOW_KAFKA_EVENTS_RETENTION_MS, docs/topics.md)."
)


def personal_fields_by_topic() -> dict[str, dict[str, str]]:
    """Each event topic (``state``'s ``topic``) → its personal fields and their kind."""
    return {get_topic(cls): dict(fields) for cls, fields in PERSONAL_FIELDS.items()}


def schema_document() -> dict[str, Any]:
    sealed = {"type": "string", "pattern": SEALED_PATTERN}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:leadflow:schema:events:v1:record",
        "title": "leadflow.events.v1 record",
        "description": _DESCRIPTION,
        "type": "object",
        "required": ["notification_id", "topic", "originator_id", "originator_version", "state"],
        "properties": {
            "notification_id": {
                "type": "integer",
                "description": "the event's position in the event store's notification log",
            },
            "topic": {"type": "string", "description": "the event's type, as stored"},
            "originator_id": {"type": "string", "format": "uuid", "description": "lead or deal"},
            "originator_version": {"type": "integer", "description": "version of the aggregate"},
            "state": {
                "type": ["object", "null"],
                "description": "the event's state as stored (before upcasting), personal "
                "fields sealed; null only in an undecodable-event record",
            },
            "undecodable": {
                "type": "string",
                "description": "only in an undecodable-event record: why the relay could "
                "not decode the stored event (projectors dead-letter it)",
            },
            "stored_state_base64": {
                "type": "string",
                "description": "only in an undecodable-event record whose state could not "
                "be read at all: the stored bytes",
            },
        },
        "$defs": {"SealedValue": sealed},
        "x-personal-fields": personal_fields_by_topic(),
        "x-firmographic-attributes": sorted(FIRMOGRAPHIC_ATTRIBUTES),
    }
