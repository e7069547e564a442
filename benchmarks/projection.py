"""``projection``: events per second from Kafka into the read models (Kafka projector).

Once per run, a store is filled with lead lifecycles (``events`` events) and its events
are put on a scratch topic as the relay would (same records, same partitioning). Each
round, ``consumers.projection.kafka.KafkaProjector`` consumes that topic with a fresh
consumer group into a fresh, empty read model (the run's store kind: a SQLite file or a
PostgreSQL schema) until every record is applied: its stop check reads the positions it
committed with the read model. The clock covers the whole run: joining the group,
polling, decoding (opening the sealed personal fields with the source store's keys, read
afresh each round), applying each batch and its positions in one transaction.

The baseline, in the same round: a raw kafka-python ``KafkaConsumer`` in a fresh group,
with the projector's poll size, that polls the same records and decodes each one
(``consumers.contracts.events_topic.from_kafka_value``) and does nothing else. Target: ratio >= 0.7.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from uuid import uuid4

from kafka import KafkaConsumer, TopicPartition

from adapters.settings import KafkaSettings, Settings
from benchmarks.event_fill import event_records, fill_store, publish
from benchmarks.framework import (
    BenchContext,
    Benchmark,
    BenchmarkError,
    Param,
    Result,
    Series,
    Target,
    interleaved_rounds,
    stopwatch,
)
from benchmarks.stores import fresh_store, opened
from benchmarks.topics import scratch_topics, with_bootstrap
from consumers.contracts.events_topic import from_kafka_value
from consumers.projection.kafka import KafkaProjector
from consumers.projection.runner import personal_data
from leadflow.bootstrap import open_read_model

TARGET = Target(on="ratio", at_least=0.7)
POLL_TIMEOUT_MS = 200
DEADLINE_SECONDS = 1800.0

PARAMS = (
    Param("events", quick=2_000, full=20_000, help="records on the events topic"),
    Param("batch_size", quick=1_000, full=1_000, help="records per poll (and transaction)"),
)


def run(ctx: BenchContext) -> list[Result]:
    kind = ctx.store_kind
    assert ctx.kafka_bootstrap is not None, "the runner provides a broker"
    batch_size = ctx.int_param("batch_size")
    with fresh_store(ctx, "sqlite", "projection_source") as source:
        with opened(source) as app:
            kafka = with_bootstrap(source.kafka, ctx.kafka_bootstrap)
            fill_store(app, ctx.int_param("events"), "projection")
            records = event_records(app)
        with scratch_topics(kafka, "projection") as (topic,):
            publish(kafka, topic, records)
            figures = interleaved_rounds(
                ctx.rounds,
                {
                    "projector": _projector_probe(
                        ctx, source, kafka, topic, len(records), batch_size
                    ),
                    "consumer": _consumer_probe(source, kafka, topic, len(records), batch_size),
                },
                benchmark="projection",
                store=kind,
            )
    return [
        Result(
            benchmark="projection",
            name="projection.kafka",
            store=kind,
            measured=Series(
                f"Kafka projector: {len(records)} records into an empty {kind} read model",
                "events/s",
                figures["projector"],
            ),
            baseline=Series(
                "raw KafkaConsumer: poll and decode the same records, nothing else",
                "events/s",
                figures["consumer"],
            ),
            higher_is_better=True,
            target=TARGET,
            details={
                "events": len(records),
                "batch_size": batch_size,
                "partitions": kafka.partitions,
                "read_model": kind,
            },
        )
    ]


def _projector_probe(
    ctx: BenchContext,
    source: Settings,
    kafka: KafkaSettings,
    topic: str,
    count: int,
    batch_size: int,
) -> Callable[[int], float]:
    def probe(number: int) -> float:
        label = f"projection_r{number + 1}"
        with (
            fresh_store(ctx, ctx.store_kind, label) as settings,
            open_read_model(settings) as store,
            opened(source) as keys_app,  # its key cache starts empty each round
        ):
            own = settings.projector.model_copy(
                update={
                    "topic": topic,
                    "batch_size": batch_size,
                    "poll_timeout_ms": POLL_TIMEOUT_MS,
                    "group_id": f"bench-projector-{uuid4().hex[:10]}",
                }
            )
            projector = KafkaProjector(kafka, store, own, personal_data(keys_app))

            def caught_up() -> bool:
                return sum(store.positions(topic).values()) >= count

            with stopwatch() as watch:
                stats = projector.run(should_stop=caught_up, max_seconds=DEADLINE_SECONDS)
        if stats.applied != count:
            msg = f"the projector applied {stats.applied} of {count} records ({stats})"
            raise BenchmarkError(msg)
        return count / watch.seconds

    return probe


def _consumer_probe(
    source: Settings, kafka: KafkaSettings, topic: str, count: int, batch_size: int
) -> Callable[[int], float]:
    def probe(_: int) -> float:
        with opened(source) as keys_app, stopwatch() as watch:
            personal = personal_data(keys_app)
            # partitions assigned, no group: the baseline pays no coordinator round trips
            # (and cannot hang looking for a coordinator, as kafka-python 3.0 once did here)
            consumer = KafkaConsumer(
                **kafka.client_config(),
                enable_auto_commit=False,
                max_poll_records=batch_size,
            )
            try:
                partitions = [
                    TopicPartition(topic, p)
                    for p in sorted(consumer.partitions_for_topic(topic) or ())
                ]
                consumer.assign(partitions)
                consumer.seek_to_beginning(*partitions)
                decoded = 0
                deadline = time.monotonic() + DEADLINE_SECONDS
                while decoded < count and time.monotonic() < deadline:
                    polled = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
                    for batch in polled.values():
                        for record in batch:
                            from_kafka_value(record.value, personal)
                            decoded += 1
            finally:
                consumer.close(autocommit=False)
        if decoded != count:
            msg = f"the raw consumer read {decoded} records, {count} are on the topic"
            raise BenchmarkError(msg)
        return count / watch.seconds

    return probe


BENCHMARK = Benchmark(
    name="projection",
    summary="events/s from Kafka into the read models vs a raw consumer that only decodes",
    run=run,
    params=PARAMS,
    needs_kafka=True,
)
