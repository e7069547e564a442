"""The relay's producer slot on a real broker: the producer connected in the background is
the one used; after a failure the next one is connected anew; one never used is closed
once connected, without the relay waiting for it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from kafka import KafkaProducer
from kafka.errors import KafkaConnectionError, KafkaError

from consumers.relay.producer_slot import ProducerSlot

pytestmark = pytest.mark.kafka


class Connections:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.made: list[KafkaProducer] = []

    def connect(self) -> KafkaProducer:
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, max_block_ms=10_000)
        self.made.append(producer)
        return producer


def test_the_producer_connected_in_the_background_is_used_until_dropped(
    kafka_bootstrap: str,
) -> None:
    connections = Connections(kafka_bootstrap)
    with ThreadPoolExecutor(max_workers=1) as worker:
        slot = ProducerSlot(connections.connect, worker)
        first = slot.get()
        assert slot.get() is first
        assert connections.made == [first]
        assert slot.drop() is first  # a failure: the relay closes it
        connections.made[0].close(timeout=5)
        second = slot.get()
        assert connections.made == [first, second]
        assert slot.close(timeout=5)
    with pytest.raises(KafkaError):
        second.send("leadflow-test-closed", value=b"x")  # closed


def test_a_producer_never_used_is_closed_once_connected(kafka_bootstrap: str) -> None:
    connections = Connections(kafka_bootstrap)
    worker = ThreadPoolExecutor(max_workers=1)
    slot = ProducerSlot(connections.connect, worker)
    waits = slot.close(timeout=5)
    worker.shutdown(wait=True)  # the test waits; the relay does not
    assert waits is False
    [producer] = connections.made
    with pytest.raises(KafkaError):
        producer.send("leadflow-test-closed", value=b"x")


def test_a_failed_connection_is_raised_by_get_and_tried_again_after_drop() -> None:
    attempts: list[int] = []

    def unreachable() -> KafkaProducer:
        attempts.append(1)
        raise KafkaConnectionError("no broker answered")

    with ThreadPoolExecutor(max_workers=1) as worker:
        slot = ProducerSlot(unreachable, worker)
        with pytest.raises(KafkaError):
            slot.get()
        assert slot.drop() is None
        with pytest.raises(KafkaError):
            slot.get()
        assert len(attempts) == 2
        assert slot.close(timeout=1)
