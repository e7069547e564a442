"""Pre-filled stores and topics for the stream benchmarks: built untimed, once per run.

``fill_store`` sends lead lifecycles (``benchmarks.workload``: capture to won deal, so
every read model gets work) through ``handle_many`` until the store holds at least the
wanted number of events. ``event_records`` turns the notification log into the exact
``leadflow.events.v1`` records the relay publishes; ``publish`` puts records on a topic
with the relay's producer settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import cast

import structlog
from eventsourcing.persistence import Notification
from kafka import KafkaProducer

from adapters.event_envelope import envelope_from_notification
from adapters.kafka_topics import acknowledged_delivery
from adapters.mapper import PydanticMapper
from adapters.settings import KafkaSettings
from benchmarks.framework import BenchmarkError
from benchmarks.workload import lifecycle_stream
from consumers.contracts.events_topic import KafkaRecord, to_kafka_record
from consumers.contracts.qualification import integration_event, to_public_record
from consumers.relay.publisher import PRODUCER_TUNING
from consumers.relay.states_at_version import StatesAtVersion
from domain.errors import DomainError
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.benchmarks.event_fill")

FILL_BATCH = 500
PAGE = 1000
SEND_TIMEOUT_SECONDS = 60.0


def fill_store(app: LeadflowApp, events: int, run: str, batch_size: int = FILL_BATCH) -> int:
    """Store lifecycles until at least ``events`` events are stored; the number stored."""
    stored = app.recorder.max_notification_id() or 0
    stream = lifecycle_stream(run)
    started = time.monotonic()
    while stored < events:
        for outcome in app.handle_many(list(islice(stream, batch_size))):
            if isinstance(outcome, DomainError):
                msg = f"the benchmark workload was refused: {outcome}"
                raise BenchmarkError(msg)
            stored += outcome.events
    seconds = time.monotonic() - started
    log.info("store_filled", run=run, events=stored, seconds=round(seconds, 1))
    return stored


def stored_notifications(app: LeadflowApp) -> Iterator[Notification]:
    """The whole notification log, in order, read a page at a time."""
    after = 0
    while notifications := app.recorder.select_notifications(
        start=after, limit=PAGE, inclusive_of_start=False
    ):
        yield from notifications
        after = notifications[-1].id


def event_records(app: LeadflowApp) -> list[KafkaRecord]:
    """Every stored event as its ``leadflow.events.v1`` record, in notification order."""
    mapper = cast(PydanticMapper, app.mapper)
    return [
        to_kafka_record(envelope_from_notification(mapper, n)) for n in stored_notifications(app)
    ]


def relay_records(app: LeadflowApp) -> list[tuple[bool, KafkaRecord]]:
    """What the relay publishes for the store, in its order: per notification, the
    events-topic record, then the public (qualification-topic) record if there is one.
    The flag is True for a public record."""
    mapper = cast(PydanticMapper, app.mapper)
    states = StatesAtVersion(app)
    records: list[tuple[bool, KafkaRecord]] = []
    for notification in stored_notifications(app):
        envelope = envelope_from_notification(mapper, notification)
        records.append((False, to_kafka_record(envelope)))
        states.observe(envelope.event)
        found = integration_event(envelope.event, states)
        if found is not None:
            records.append((True, to_public_record(found)))
    return records


def relay_like_producer(kafka: KafkaSettings) -> KafkaProducer:
    """A producer with the relay's settings: idempotent, acks=all, the same linger/batch."""
    return KafkaProducer(
        **kafka.client_config(),
        **acknowledged_delivery(SEND_TIMEOUT_SECONDS),
        **PRODUCER_TUNING,
    )


def publish(kafka: KafkaSettings, topic: str, records: Sequence[KafkaRecord]) -> None:
    """Put ``records`` on ``topic`` and wait until the broker acknowledged every one."""
    producer = relay_like_producer(kafka)
    try:
        futures = [
            producer.send(topic, key=r.key, value=r.value, headers=r.headers) for r in records
        ]
        producer.flush(timeout=SEND_TIMEOUT_SECONDS)
        for future in futures:
            future.get(timeout=0)
    finally:
        producer.close(timeout=SEND_TIMEOUT_SECONDS)
