"""Kafka mode: the projector consumes ``leadflow.events.v1`` in a consumer group.

Correctness never rests on Kafka's committed offsets: each batch's read-model changes and
the next offset of every partition in it commit in one read-model transaction, and when
the group assigns partitions the projector seeks each one to the offset stored in the
read model (the beginning when none is stored). Offsets are also committed to Kafka after
each batch, for monitoring (consumer lag) only. Several processes in one group share the
partitions; since the positions live in the shared read model, they produce together the
same read model as one process would.

When the read-model database goes away (PostgreSQL restarted, SQLite locked beyond its
busy timeout) the projector reconnects with exponential backoff, seeks every assigned
partition back to the stored positions, and carries on; the batch in hand was rolled back
with its positions, so it is simply consumed again.

The records carry personal fields sealed (``consumers.contracts.events_topic``); the
projector opens those the read models store (``projections.projected_personal``) with the
application's seal (``PersonalData``: the privacy master key and the event store's key
table, keys cached), so its read model equals a rebuild from the store, ``[erased]`` where
a lead was forgotten.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import structlog
from kafka import ConsumerRebalanceListener, KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError

from adapters.event_envelope import DECODE_ERRORS
from adapters.kafka_topics import ensure_topics, read_to_end
from adapters.logging import error_text
from adapters.projector_settings import ProjectorSettings
from adapters.retrying import (
    FIRST_DELAY_S,
    MAX_DELAY_S,
    retry_while_unavailable,
    sleep_unless_stopped,
)
from adapters.settings import KafkaSettings
from consumers.contracts.events_topic import from_kafka_value
from consumers.failure_policy import is_transient
from domain.personal_fields import PersonalData
from projections.projected_personal import CAPTURED_TYPE, ProjectedPersonal
from projections.projector import Item, Projector, gc_paused
from projections.reconnect import reconnect_with_backoff
from projections.store import ReadModelStore

log = structlog.get_logger("leadflow.consumers.kafka_projector")


@dataclass(slots=True)
class RunStats:
    batches: int = 0
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    reconnects: int = 0
    broker_retries: int = 0


def item_from_record(record: Any, personal: PersonalData) -> Item:
    """The record as the projector's item (an undecodable one when it cannot be read);
    ``personal`` opens its sealed personal fields."""
    key = record.key.decode("utf-8", errors="replace") if record.key else None
    try:
        if record.value is None:
            raise ValueError("the record has no value")
        envelope = from_kafka_value(record.value, personal)
    except DECODE_ERRORS as error:
        where = f"record {record.topic}/{record.partition}@{record.offset}"
        problem = f"{where} cannot be decoded: {error_text(error)}"
        return Item.undecodable(record.partition, record.offset, problem, record.value or b"", key)
    return Item(part=record.partition, position=record.offset, envelope=envelope)


_CAPTURED_HEADER = ("event_type", CAPTURED_TYPE.encode())


def _captured_leads(records: Sequence[Any]) -> set[UUID]:
    """The leads whose capture is among ``records`` (by their headers and keys), whose
    keys open the captured external ids; a record with a damaged key is left out."""
    leads: set[UUID] = set()
    for record in records:
        if record.key and _CAPTURED_HEADER in (record.headers or ()):
            try:
                leads.add(UUID(record.key.decode("ascii")))
            except ValueError:
                continue
    return leads


GATHER_BYTES = 64 * 1024  # some tens of event records


def gathering(wait_ms: int) -> dict[str, int]:
    """Fetch settings: the broker answers once it holds ``GATHER_BYTES`` for the projector
    or after ``wait_ms``, so that a trickle of events comes in batches (a read-model
    transaction each), not one or two records a transaction. A backlog is answered at once."""
    if wait_ms == 0:
        return {"fetch_min_bytes": 1}
    return {"fetch_min_bytes": GATHER_BYTES, "fetch_max_wait_ms": wait_ms}


class SeekFailed(Exception):
    """The projector could not seek newly assigned partitions to their stored positions."""


class _SeekToStoredPositions(ConsumerRebalanceListener):  # type: ignore[misc]
    """Seeks every assigned partition to the position stored in the read model.

    The Kafka client runs this on its own I/O thread before it fetches from the new
    partitions. A failure is kept and raised by the consuming loop: consuming from any
    other position than the stored one must never go unnoticed.
    """

    def __init__(self, consumer: KafkaConsumer, store: ReadModelStore, topic: str) -> None:
        self.consumer = consumer
        self.store = store
        self.topic = topic
        self.failure: BaseException | None = None

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        log.info("partitions_revoked", topic=self.topic, partitions=_numbers(revoked))

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        try:
            self.failure = None
            stored = self.store.positions(self.topic)
            seeks: dict[int, int | str] = {}
            for tp in assigned:
                if tp.partition in stored:
                    self.consumer.seek(tp, stored[tp.partition])
                    seeks[tp.partition] = stored[tp.partition]
                else:
                    self.consumer.seek_to_beginning(tp)
                    seeks[tp.partition] = "beginning"
        except Exception as error:
            self.failure = error
            raise
        log.info("partitions_assigned", topic=self.topic, seek_to=seeks)

    def check(self) -> None:
        if self.failure is not None:
            msg = f"seeking assigned partitions to the stored positions failed: {self.failure}"
            raise SeekFailed(msg) from self.failure

    def seek_assigned(self) -> None:
        """Seek every currently assigned partition to its stored position again."""
        self.on_partitions_assigned(self.consumer.assignment())


def _numbers(partitions: Iterable[TopicPartition]) -> list[int]:
    return sorted(tp.partition for tp in partitions)


class KafkaProjector:
    def __init__(
        self,
        kafka: KafkaSettings,
        store: ReadModelStore,
        options: ProjectorSettings,
        personal: PersonalData,
    ) -> None:
        # opens the records' sealed personal fields that the read models store
        self.personal = ProjectedPersonal(personal)
        self.kafka = kafka
        self.store = store
        self.options = options
        self.projector = Projector(store)
        self._log = log.bind(topic=options.topic, group_id=options.group_id)

    def run(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        max_seconds: float | None = None,
        until_idle: bool = False,
    ) -> RunStats:
        """Consume until ``should_stop()``, ``max_seconds`` or (``until_idle``) until every
        assigned partition is consumed to its end."""
        stats = RunStats()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds

        def stopping() -> bool:
            return should_stop() or (deadline is not None and time.monotonic() >= deadline)

        consumer = self._connect(stopping, stats)
        if consumer is None:
            return stats
        self._log.info("projector_started", read_model=self.store.location)
        listener = _SeekToStoredPositions(consumer, self.store, self.options.topic)
        broker_backoff = FIRST_DELAY_S
        try:
            consumer.subscribe([self.options.topic], listener=listener)
            idle_polls = 0
            while not stopping():
                try:
                    with gc_paused():  # from parsing the records to the batch's commit
                        polled = consumer.poll(timeout_ms=self.options.poll_timeout_ms)
                        listener.check()
                        records = [r for batch in polled.values() for r in batch]
                        if records:
                            self._apply(consumer, records, stats)
                    if records:
                        idle_polls = 0
                    elif until_idle and read_to_end(consumer):
                        idle_polls += 1
                        if idle_polls >= 2:
                            break
                    broker_backoff = FIRST_DELAY_S
                except KafkaError as error:
                    next_backoff = self._wait_for_broker(error, broker_backoff, stats, stopping)
                    if next_backoff is None:
                        break
                    broker_backoff = next_backoff
                except Exception as error:
                    cause = error.__cause__ if isinstance(error, SeekFailed) else error
                    if cause is None or not self.store.is_connection_error(cause):
                        raise
                    stats.reconnects += 1
                    if not reconnect_with_backoff(
                        self.store, cause, stopping, then=listener.seek_assigned
                    ):
                        break
        finally:
            consumer.close(autocommit=False)
        self._log.info(
            "projector_stopped",
            batches=stats.batches,
            records=stats.records,
            applied=stats.applied,
            duplicates=stats.duplicates,
            dead_letters=stats.dead_letters,
            reconnects=stats.reconnects,
            broker_retries=stats.broker_retries,
        )
        return stats

    def _connect(self, stopping: Callable[[], bool], stats: RunStats) -> KafkaConsumer | None:
        """The topic and a consumer, retried with back-off while the broker is away; None
        when asked to stop first."""

        def connect() -> KafkaConsumer:
            ensure_topics(self.kafka, {self.options.topic: self.kafka.events_retention_ms})
            return KafkaConsumer(
                **self.kafka.client_config(),
                group_id=self.options.group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_poll_records=self.options.batch_size,
                session_timeout_ms=self.options.session_timeout_ms,
                heartbeat_interval_ms=self.options.heartbeat_interval_ms,
                **gathering(self.options.gather_ms),
            )

        return retry_while_unavailable(
            connect,
            lambda error: isinstance(error, KafkaError) and is_transient(error),
            stopping,
            on_retry=lambda error, delay: self._broker_away(error, delay, stats),
        )

    def _wait_for_broker(
        self, error: KafkaError, backoff: float, stats: RunStats, stopping: Callable[[], bool]
    ) -> float | None:
        """After a transient broker error, wait ``backoff`` seconds: the next back-off, or
        None when asked to stop first. Any other Kafka error is raised."""
        if not is_transient(error):
            raise error
        self._broker_away(error, backoff, stats)
        if not sleep_unless_stopped(backoff, stopping):
            return None
        return min(backoff * 2, MAX_DELAY_S)

    def _broker_away(self, error: Exception, retry_in: float, stats: RunStats) -> None:
        stats.broker_retries += 1
        self._log.warning("broker_unavailable", error=error_text(error), retry_in_s=retry_in)

    def _apply(self, consumer: KafkaConsumer, records: Sequence[Any], stats: RunStats) -> None:
        self.personal.load(_captured_leads(records))
        items = [item_from_record(r, self.personal) for r in records]
        next_positions: dict[int, int] = {}
        for item in items:
            next_positions[item.part] = max(next_positions.get(item.part, 0), item.position + 1)
        result = self.projector.apply_batch(self.options.topic, items, next_positions)
        stats.batches += 1
        stats.records += len(items)
        stats.applied += result.applied
        stats.duplicates += result.duplicates
        stats.dead_letters += result.dead_letters
        offsets = {
            TopicPartition(self.options.topic, part): OffsetAndMetadata(position, "", -1)
            for part, position in next_positions.items()
        }
        consumer.commit_async(offsets=offsets, callback=self._on_commit)

    def _on_commit(self, offsets: Any, response: Any) -> None:
        if isinstance(response, Exception | KafkaError):
            self._log.debug("monitoring_commit_failed", error=str(response))
