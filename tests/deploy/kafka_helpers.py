"""Small kafka-python helpers for integration tests against the real broker."""

from __future__ import annotations

import time
import uuid
from typing import Any

from kafka import KafkaAdminClient


def make_topic(bootstrap: str, partitions: int = 3, prefix: str = "test") -> str:
    """Create a uniquely named topic (the broker does not auto-create topics)."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}},
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    return name


def delete_topic(bootstrap: str, name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.delete_topics([name])
    finally:
        admin.close()


def poll_records(consumer: Any, count: int, timeout: float = 30.0) -> list[Any]:
    """Poll until ``count`` records arrived (assertion error after ``timeout`` seconds)."""
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    assert len(records) >= count, f"got {len(records)} of {count} records in {timeout}s"
    return records


def read_to_end(consumer: Any, partitions: list[Any], timeout: float = 30.0) -> list[Any]:
    """Everything readable from the start of ``partitions`` up to their end offsets."""
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    end = consumer.end_offsets(partitions)
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    while any(consumer.position(tp) < end[tp] for tp in partitions):
        assert time.monotonic() < deadline, "did not reach the end offsets in time"
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records
