"""Records the relay makes itself (the undecodable-event record), their sizes, and the
partition each goes to.

A stored event the relay cannot decode still goes to ``leadflow.events.v1``, in its
place in the aggregate's order, as a record in the usual shape whose ``state`` is the
stored state as far as it could be read (``null`` when not at all; then
``stored_state_base64`` holds the stored bytes) plus ``undecodable`` (why). A projector
decoding it fails exactly as the relay did and dead-letters it, as the embedded mode
does. Headers: the usual ones the relay knows without the event, plus
``relay.undecodable`` (the error) and ``event_topic``.

``KeyHashPartitioner`` places keyed records exactly as kafka-python's (and Java's)
default partitioner does, murmur2 of the key over all of the topic's partitions, but
hashes each key once: an aggregate's records all share its key, and the pure-Python
murmur2 is a sizeable part of every send.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from eventsourcing.persistence import Notification
from kafka.partitioner import DefaultPartitioner, Partitioner
from kafka.partitioner.default import murmur2

from adapters.logging import error_text
from adapters.mapper import PydanticMapper
from consumers.contracts.events_topic import KafkaRecord


def record_size(record: KafkaRecord) -> int:
    """Bytes of key, value and headers: what the broker's message size limit counts."""
    headers = sum([len(k.encode()) + len(v) for k, v in record.headers])
    return len(record.key) + len(record.value) + headers


class KeyHashPartitioner(Partitioner):  # type: ignore[misc]  # kafka-python is untyped
    """kafka-python's ``DefaultPartitioner``, remembering the hash of recent keys."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._default = DefaultPartitioner()
        self._capacity = capacity
        self._hashes: dict[bytes, int] = {}

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        partitions: set[int] | None = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:
            return int(
                self._default.partition(
                    topic, key, serialized_key, value, serialized_value, cluster
                )
            )
        hashed = self._hashes.get(serialized_key)
        if hashed is None:
            if len(self._hashes) >= self._capacity:
                self._hashes.clear()
            hashed = self._hashes[serialized_key] = murmur2(serialized_key) & 0x7FFFFFFF
        return sorted(partitions)[hashed % len(partitions)]


def undecodable_record(
    mapper: PydanticMapper, notification: Notification, error: BaseException
) -> KafkaRecord:
    problem = error_text(error)
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
