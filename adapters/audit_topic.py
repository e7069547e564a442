"""The Kafka witness: signed heads on the topic ``LEADFLOW_AUDIT_TOPIC``
(``leadflow.audit.v1``), published by the relay and read back by ``verify``."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from adapters.audit_log import SignedHead
from adapters.audit_witness import WitnessError, head_from_json
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
                heads += [_head(topic, record) for record in records]
                wanted.discard(tp)
        return max(heads, key=lambda h: h.position, default=None)
    finally:
        consumer.close()


def _head(topic: str, record: ConsumerRecord) -> SignedHead:
    """The head in ``record``; WitnessError naming the record when it holds none."""
    try:
        return head_from_json(bytes(record.value or b"").decode("ascii", errors="replace"))
    except WitnessError as error:
        msg = (
            f"{topic} partition {record.partition} offset {record.offset} is not a signed "
            f"head: {error}"
        )
        raise WitnessError(msg) from None
