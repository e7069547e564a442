"""Where the relay's records go: ``KeyHashPartitioner`` places keyed records exactly as
kafka-python's (and Java's) default partitioner does, murmur2 of the key over all of the
topic's partitions, but hashes each key once: an aggregate's records all share its key,
and the pure-Python murmur2 is a sizeable part of every send.
"""

from __future__ import annotations

from typing import Any

from kafka.partitioner import DefaultPartitioner, Partitioner
from kafka.partitioner.default import murmur2


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
