"""The local Kafka broker does what leadflow relies on: keyed records with headers,
idempotent producers, consumer groups with committed offsets, and transactions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from tests.deploy.kafka_helpers import delete_topic, make_topic, poll_records, read_to_end

pytestmark = pytest.mark.kafka

PARTITIONS = 3


@pytest.fixture
def topic(kafka_bootstrap: str) -> Iterator[str]:
    name = make_topic(kafka_bootstrap, PARTITIONS, prefix="infra")
    yield name
    delete_topic(kafka_bootstrap, name)


def test_idempotent_producer_and_consumer_group_offsets(kafka_bootstrap: str, topic: str) -> None:
    sent = [
        (f"lead-{i % 4}".encode(), f"event-{i}".encode(), [("event_id", f"e{i}".encode())])
        for i in range(20)
    ]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True, acks="all")
    for key, value, headers in sent:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()

    group = f"infra-group-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=kafka_bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    records = poll_records(consumer, len(sent))
    assert sorted((r.key, r.value, list(r.headers)) for r in records) == sorted(
        (key, value, headers) for key, value, headers in sent
    )
    # One key lives in one partition, in the order it was produced.
    by_key: dict[bytes, list[Any]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record)
    for key, keyed in by_key.items():
        assert len({r.partition for r in keyed}) == 1
        assert [r.value for r in keyed] == [v for k, v, _ in sent if k == key]

    consumer.commit()
    positions = {tp: consumer.position(tp) for tp in consumer.assignment()}
    consumer.close()
    assert sum(positions.values()) == len(sent)

    second = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    try:
        for tp, position in positions.items():
            assert second.committed(tp) == position
    finally:
        second.close()


def test_transactions_and_read_committed(kafka_bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"infra-tx-{uuid.uuid4().hex[:8]}"
    )
    producer.init_transactions()
    for values, commit in (([b"c1", b"c2"], True), ([b"aborted"], False), ([b"c3"], True)):
        producer.begin_transaction()
        for value in values:
            producer.send(topic, key=b"tx", value=value)
        producer.flush()
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close()

    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    committed = KafkaConsumer(bootstrap_servers=kafka_bootstrap, isolation_level="read_committed")
    uncommitted = KafkaConsumer(
        bootstrap_servers=kafka_bootstrap, isolation_level="read_uncommitted"
    )
    try:
        assert [r.value for r in read_to_end(committed, partitions)] == [b"c1", b"c2", b"c3"]
        # The aborted record was written to the log; only read_committed hides it.
        assert b"aborted" in [r.value for r in read_to_end(uncommitted, partitions)]
    finally:
        committed.close()
        uncommitted.close()
