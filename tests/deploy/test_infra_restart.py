"""The session's broker and database can be stopped (or crashed) and started again
with their data intact, as the chaos tests need. Skipped for external servers."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from deploy.kafka.broker import Broker
from deploy.postgres.server import PostgresServer
from tests.deploy.kafka_helpers import delete_topic, make_topic, read_to_end

HALTS = ["stop", "kill"]  # clean shutdown, and a crash (SIGKILL / immediate shutdown)


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.parametrize("halt", HALTS)
def test_broker_restart_keeps_records(kafka_broker: Broker | None, halt: str) -> None:
    if kafka_broker is None:
        pytest.skip("external Kafka (LEADFLOW_KAFKA_BOOTSTRAP): not ours to restart")
    bootstrap = kafka_broker.bootstrap
    topic = make_topic(bootstrap, partitions=1, prefix="restart")
    value = uuid.uuid4().bytes
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    producer.send(topic, key=b"k", value=value).get(timeout=30)
    producer.close()

    try:
        getattr(kafka_broker, halt)()
        assert not kafka_broker.is_running()
    finally:
        kafka_broker.start()  # later tests need the broker, whatever happened here

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        records = read_to_end(consumer, [TopicPartition(topic, 0)])
    finally:
        consumer.close()
    assert [(r.key, r.value) for r in records] == [(b"k", value)]
    delete_topic(bootstrap, topic)


@pytest.mark.postgres
@pytest.mark.parametrize("halt", HALTS)
def test_postgres_restart_keeps_rows(postgres_server: PostgresServer | None, halt: str) -> None:
    if postgres_server is None:
        pytest.skip("external PostgreSQL (LEADFLOW_POSTGRES_DSN): not ours to restart")
    table = f"restart_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.dsn) as conn:
        conn.execute(f"CREATE TABLE {table} (value text)")
        conn.execute(f"INSERT INTO {table} VALUES ('before restart')")

    try:
        getattr(postgres_server, halt)()
        assert not postgres_server.is_running()
    finally:
        postgres_server.start()

    with psycopg.connect(postgres_server.dsn) as conn:
        assert conn.execute(f"SELECT value FROM {table}").fetchall() == [("before restart",)]
        conn.execute(f"DROP TABLE {table}")
