"""The Kafka witness: signed heads on the topic ``LEADFLOW_AUDIT_TOPIC``
(``leadflow.audit.v1``), published by the relay and read back by ``verify``."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from adapters.audit_log import SignedHead
from adapters.audit_witness import head_from_json
from adapters.settings import KafkaSettings

RECORD_KEY = b"leadflow-signed-head"
_POLL_MS = 1000
_POLLS = 10


def latest_head_on_topic(kafka: KafkaSettings, topic: str) -> SignedHead | None:
    """The signed head of highest position among the last record of each partition of
    ``topic`` (None when the topic is empty or missing)."""
    consumer = KafkaConsumer(**kafka.client_config(), enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return None
        consumer.assign(assigned)
        ends = consumer.end_offsets(assigned)
        wanted = {tp for tp in assigned if ends[tp] > 0}
        for tp in wanted:
            consumer.seek(tp, ends[tp] - 1)
        heads: list[SignedHead] = []
        for _ in range(_POLLS):
            if not wanted:
                break
            for tp, records in consumer.poll(timeout_ms=_POLL_MS).items():
                heads += [head_from_json(r.value.decode("ascii")) for r in records]
                wanted.discard(tp)
        return max(heads, key=lambda h: h.position, default=None)
    finally:
        consumer.close()
