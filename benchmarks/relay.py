"""``relay``: events per second from the notification log to Kafka through leadflow's relay.

A store is filled once with lead lifecycles (``events`` events). Each round, the relay
(``consumers.relay.publisher.Relay``, ``run(once=True)``) publishes the whole store to fresh topics
and stops when caught up: it reads the log in pages, decodes every event, builds the
events-topic record and the public qualification record, sends, flushes, confirms and
saves its position after every page (2,000 notifications), as in production. The relay
runs as configured: in one process by default, with its page reader process when
``LEADFLOW_STREAM_RELAY_READER_PROCESS=true`` is set for the benchmark run. The clock
covers the whole run, connecting (and starting the page reader) included.

The baseline, in the same round: a raw kafka-python ``KafkaProducer`` with the relay's
settings (idempotent, acks=all, the same linger and batch size) sending the very same
records (same keys, values, headers with the relay's epoch, to the same two topics, in
the same order; pre-encoded before the clock starts) and flushing at the end. Target:
ratio >= 0.8.

The pre-encoded records are held as tuples of bytes, which the cyclic garbage collector
does not track: otherwise every collection in either probe walks some 200,000 objects
that belong to neither (a sixth of both probes' time).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence

from adapters.settings import KafkaSettings, Settings
from benchmarks.event_fill import (
    SEND_TIMEOUT_SECONDS,
    fill_store,
    relay_like_producer,
    relay_records,
)
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
from consumers.contracts.events_topic import KafkaRecord
from leadflow import bootstrap
from service.application import LeadflowApp

TARGET = Target(on="ratio", at_least=0.8)

EPOCH_HEADER = ("relay_epoch", b"1")  # the relay's epoch on fresh topics
# public?, key, value, headers: only bytes and text, so the collector untracks them
Fixture = tuple[bool, bytes, bytes, tuple[tuple[str, bytes], ...]]

PARAMS = (
    Param("events", quick=1_500, full=20_000, help="events in the store the relay publishes"),
)


def run(ctx: BenchContext) -> list[Result]:
    kind = ctx.store_kind
    assert ctx.kafka_bootstrap is not None, "the runner provides a broker"
    with fresh_store(ctx, kind, "relay") as base, opened(base) as app:
        settings = base.model_copy(
            update={"kafka": with_bootstrap(base.kafka, ctx.kafka_bootstrap)}
        )
        stored = fill_store(app, ctx.int_param("events"), "relay")
        records = _untracked(relay_records(app))
        figures = interleaved_rounds(
            ctx.rounds,
            {
                "relay": _relay_probe(settings, app, stored),
                "producer": _producer_probe(settings.kafka, records, stored),
            },
            benchmark="relay",
            store=kind,
        )
    public = sum(is_public for is_public, *_ in records)
    value_bytes = sum(len(value) for _, _, value, _ in records)
    return [
        Result(
            benchmark="relay",
            name="relay.publish",
            store=kind,
            measured=Series(
                f"leadflow relay: {stored} stored events to fresh topics, until caught up",
                "events/s",
                figures["relay"],
            ),
            baseline=Series(
                "raw KafkaProducer, same records, same acks/idempotence/linger/batch, one flush",
                "events/s",
                figures["producer"],
            ),
            higher_is_better=True,
            target=TARGET,
            details={
                "events": stored,
                "public_records": public,
                "record_bytes": round(value_bytes / max(1, len(records))),
                "partitions": settings.kafka.partitions,
            },
        )
    ]


def _untracked(records: Sequence[tuple[bool, KafkaRecord]]) -> list[Fixture]:
    """The records as tuples that the collector no longer tracks, with the header the
    relay adds to each (its epoch)."""
    fixture = [(is_public, r.key, r.value, (*r.headers, EPOCH_HEADER)) for is_public, r in records]
    for _ in range(3):  # each collection untracks one more level of nested tuples
        gc.collect()
    return fixture


def _relay_probe(settings: Settings, app: LeadflowApp, stored: int) -> Callable[[int], float]:
    def probe(_: int) -> float:
        with scratch_topics(settings.kafka, "relay-events", "relay-public") as topics:
            stream = settings.stream.model_copy(
                update={"events_topic": topics[0], "qualification_topic": topics[1]}
            )
            relay = bootstrap.relay(settings, stream, app)
            with stopwatch() as watch:
                stats = relay.run(once=True)
        if stats.published != stored:
            msg = f"the relay published {stats.published} events of the {stored} stored"
            raise BenchmarkError(msg)
        return stored / watch.seconds

    return probe


def _producer_probe(
    kafka: KafkaSettings, records: Sequence[Fixture], stored: int
) -> Callable[[int], float]:
    def probe(_: int) -> float:
        # the topics are created before the clock starts and deleted after it stops
        with scratch_topics(kafka, "raw-events", "raw-public") as topics, stopwatch() as watch:
            failed = _send_all(kafka, topics, records)
        if failed:
            msg = f"the raw producer failed to send {failed} of {len(records)} records"
            raise BenchmarkError(msg)
        return stored / watch.seconds

    return probe


def _send_all(kafka: KafkaSettings, topics: list[str], records: Sequence[Fixture]) -> int:
    """Send every record (public ones to the second topic), flush; how many failed."""
    events_topic, public_topic = topics
    producer = relay_like_producer(kafka)
    try:
        futures = [
            producer.send(
                public_topic if is_public else events_topic,
                key=key,
                value=value,
                headers=list(headers),
            )
            for is_public, key, value, headers in records
        ]
        producer.flush(timeout=SEND_TIMEOUT_SECONDS)
        return sum(1 for f in futures if f.failed())
    finally:
        producer.close(timeout=SEND_TIMEOUT_SECONDS)


BENCHMARK = Benchmark(
    name="relay",
    summary="events/s from the notification log to Kafka vs a raw KafkaProducer",
    run=run,
    params=PARAMS,
    needs_kafka=True,
)
