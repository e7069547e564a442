"""``leadflow ingest``: engagement records from Kafka into the event store.

A consumer group on ``leadflow.engagement.v1``. For each poll batch: every record is
validated (``consumers.contracts.engagement``); the valid ones are turned into commands
(``consumers.ingest.apply``: capture the lead when it is new, record the engagement;
the lead rescores and may reach MQL) and stored in one transaction; the invalid ones go
to ``leadflow.engagement.dlq.v1`` with their original key, value and headers plus
``dlq.reason`` (what, where, why), ``dlq.problem`` and ``dlq.source.topic/partition/
offset``. Then the dead letters are acknowledged, the verdicts written to the ingest
ledger (``consumers.ingest.ledger``), and only then the offsets committed: without
waiting for the broker's answer (the next poll does not wait on a round trip), and once
more, waited for, when the ingest stops. A commit that fails or is lost only means the
records after the last one committed are read again.

A crash anywhere before the commit means the batch is read again: the commands are
idempotent (the engagement's ``event_id``, and each record's own causation id), the
ledger keeps one row per record, and a dead letter may be published twice (its
``dlq.source.*`` headers tell). A failing batch (database or broker away) is retried
with back-off from its first record; it is never skipped. Any other failure while
applying a batch is narrowed down to the record that causes it, which is dead-lettered
as ``unprocessable`` (``consumers.ingest.apply.apply_isolating``): the consumer always
makes progress. A dead letter too large for the dead-letter topic goes there truncated,
with headers ``dlq.original_size`` and ``dlq.original_sha256``.

``occurred_at`` is judged against the record's own Kafka timestamp (the producer's create
time), not the wall clock, so reading the topic again gives the same verdicts.

Verdict of a valid record: ``accepted`` when this record (this topic, partition and
offset) recorded the engagement, ``duplicate`` when an engagement with its ``event_id``
was already recorded for the lead by another record. The verdict is a function of the
record and the event store, so reading the topic again gives the same counts and
changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import structlog
from kafka import (
    ConsumerRebalanceListener,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)
from kafka.errors import (
    CommitFailedError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)

from adapters.kafka_topics import (
    KAFKA_DEFAULT_MAX_MESSAGE_BYTES,
    MAX_MESSAGE_BYTES,
    QUICK_RECONNECT,
    acknowledged_delivery,
    ensure_topics_patiently,
    read_to_end,
    topic_max_message_bytes,
)
from adapters.logging import error_text
from adapters.retrying import retry_while_unavailable
from adapters.settings import KafkaSettings
from adapters.stopping import ProcessStop
from adapters.store_db import StoreDb
from adapters.stream_settings import StreamSettings
from consumers.contracts.engagement import EngagementRecordV1, InvalidEngagement
from consumers.failure_policy import classify, is_transient, storable_reason, storable_text
from consumers.ingest.apply import IngestLimits, apply_isolating
from consumers.ingest.ledger import IngestCounts, IngestLedger, LedgerEntry, Status
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.engagement_ingest")

INGEST_ACTOR = "engagement-ingest"
GATHER_BYTES = 64 * 1024  # some hundreds of engagement records
KAFKA_CLOCK = "the record's Kafka timestamp"
# A dead letter the dead-letter topic cannot take whole (its max.message.bytes, less this
# much for the record batch's own bytes) goes there as a truncated copy keeping the first
# DLQ_COPY_BYTES of key and value.
BATCH_OVERHEAD_BYTES = 1024
DLQ_COPY_BYTES = 64 * 1024
_TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)


def kafka_origin(topic: str, partition: int, offset: int, event_id: str) -> str:
    return f"kafka:{topic}/{partition}/{offset}/{event_id}"


class _AssignmentLog(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, on_assigned: Callable[[list[TopicPartition]], None]) -> None:
        self._on_assigned = on_assigned

    def on_partitions_revoked(self, revoked: Any) -> None:
        if revoked:
            log.info("ingest_partitions_revoked", partitions=sorted(tp.partition for tp in revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._on_assigned(list(assigned))


class EngagementIngest:
    """The Kafka loop. ``run`` returns this run's counts; the ledger holds all of them."""

    def __init__(
        self,
        app: LeadflowApp,
        stream: StreamSettings,
        kafka: KafkaSettings,
        *,
        open_db: Callable[[], StoreDb],
        group: str | None = None,
        stop: ProcessStop | None = None,
    ) -> None:
        """Built by ``leadflow.bootstrap.engagement_ingest``; ``open_db`` opens the ledger's
        connection to the event store's database."""
        self.kafka = kafka
        self._open_db = open_db
        self.stream = stream
        self.app = app
        self.group = group or stream.ingest_group
        self.topic = stream.engagement_topic
        self.stop = stop or ProcessStop()
        self.limits = IngestLimits.from_settings(stream)
        self.counts = IngestCounts()
        self._dlq_limit = MAX_MESSAGE_BYTES
        self._producer_now: KafkaProducer | None = None
        self._committing: dict[TopicPartition, OffsetAndMetadata] = {}  # last sent, per partition
        self._log = log.bind(group=self.group, topic=self.topic, dlq_topic=stream.dlq_topic)

    # --- lifecycle -------------------------------------------------------------------

    def run(self, *, once: bool = False, max_seconds: float | None = None) -> IngestCounts:
        """Consume until ``stop`` is set (``once``: until the topic is read to its end;
        ``max_seconds``: ``stop`` is set after that long)."""
        with self.stop.within(max_seconds):
            topics = {
                self.topic: self.kafka.engagement_retention_ms,
                self.stream.dlq_topic: self.kafka.dead_letter_retention_ms,
            }
            if ensure_topics_patiently(
                self.kafka, topics, self.stop, self.stream.retry_max_seconds
            ):
                self._run(once)
        return self.counts

    def _run(self, once: bool) -> None:
        db = self._open_db()
        clients: tuple[KafkaConsumer, KafkaProducer] | None = None
        try:
            ledger = self._open_ledger(db)
            if ledger is None:
                return
            clients = self._connect()
            if clients is None:
                return
            consumer, self._producer_now = clients
            consumer.subscribe([self.topic], listener=_AssignmentLog(self._on_assigned))
            self._log.info("ingest_started", store=db.location, once=once)
            self._loop(consumer, ledger, once)
            self._commit_waiting(consumer)
        finally:
            if clients is not None:
                self._close(clients[0], self._producer_now)
            db.close()
            self._log.info("ingest_stopped", run=self._fields(self.counts))

    def _open_ledger(self, db: StoreDb) -> IngestLedger | None:
        """The ledger (its table created if need be), retried while the store is away: the
        broker may come back only for the store to be gone; None when stopped first."""

        def unreachable(error: Exception, retry_in: float) -> None:
            self._log.warning("event_store_unreachable", error=error_text(error), retry_in=retry_in)

        return retry_while_unavailable(
            lambda: IngestLedger(db),
            is_transient,
            self.stop.is_set,
            on_retry=unreachable,
            max_delay=self.stream.retry_max_seconds,
        )

    def _connect(self) -> tuple[KafkaConsumer, KafkaProducer] | None:
        """Consumer and producer, retried with back-off while the broker is away; None
        when stopped first."""
        backoff = 0.5
        while not self.stop.is_set():
            consumer: KafkaConsumer | None = None
            try:
                limit = (
                    topic_max_message_bytes(self.kafka, self.stream.dlq_topic)
                    or KAFKA_DEFAULT_MAX_MESSAGE_BYTES
                )
                self._dlq_limit = min(limit, MAX_MESSAGE_BYTES) - BATCH_OVERHEAD_BYTES
                consumer = self._consumer()
                return consumer, self._producer()
            except KafkaError as error:
                if consumer is not None:
                    self._close(consumer, None)
                self._log.warning("broker_unreachable", error=error_text(error), retry_in=backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.stream.retry_max_seconds)
        return None

    def _consumer(self) -> KafkaConsumer:
        timeout = self.stream.ingest_session_timeout_seconds
        return KafkaConsumer(
            **self.kafka.client_config(),
            **QUICK_RECONNECT,
            bootstrap_timeout_ms=int(self.stream.send_timeout_seconds * 1000),
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self.stream.ingest_batch_size,
            **_gathering(self.stream.ingest_gather_ms),
            session_timeout_ms=int(timeout * 1000),
            heartbeat_interval_ms=max(100, int(timeout * 250)),
        )

    def _producer(self) -> KafkaProducer:
        return KafkaProducer(
            **self.kafka.client_config(),
            **acknowledged_delivery(self.stream.send_timeout_seconds),
            linger_ms=5,
        )

    def _close(self, consumer: KafkaConsumer, producer: KafkaProducer | None) -> None:
        with suppress(KafkaError):
            consumer.close(autocommit=False)
        if producer is not None:
            with suppress(KafkaError):
                producer.close(timeout=self.stream.send_timeout_seconds)

    def _on_assigned(self, assigned: list[TopicPartition]) -> None:
        # offsets of partitions another member may have read since are not ours to commit
        self._committing = {tp: o for tp, o in self._committing.items() if tp in assigned}
        if assigned:
            self._log.info("ingest_ready", partitions=sorted(tp.partition for tp in assigned))

    def _loop(self, consumer: KafkaConsumer, ledger: IngestLedger, once: bool) -> None:
        backoff = 0.5
        while not self.stop.is_set():
            try:
                batch: dict[TopicPartition, list[Any]] = consumer.poll(timeout_ms=250)
            except KafkaError as error:
                if not is_transient(error):
                    raise
                self._log.warning("ingest_poll_failed", error=error_text(error), retry_in=backoff)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.stream.retry_max_seconds)
                continue
            if not batch:
                if once and read_to_end(consumer):
                    break
                continue
            try:
                if self._producer_now is None:
                    self._producer_now = self._producer()
                self._process(batch, consumer, self._producer_now, ledger)
            except CommitFailedError as error:
                # The group rebalanced: whoever owns the partitions now reads these records
                # again, and the ledger and the commands absorb the repetition.
                self._log.warning("ingest_commit_failed", error=str(error))
            except Exception as error:  # a failed batch is retried, never skipped
                if classify(error) == "fatal":  # the store itself is wrong: say so and stop
                    self._log.error("ingest_failed", error=storable_reason(error_text(error)))
                    raise
                self._log.error(
                    "ingest_batch_failed",
                    error=error_text(error),
                    retry_in=backoff,
                    exc_info=backoff == 0.5,  # the traceback once per outage, not per retry
                )
                self._rewind(consumer, batch)
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.stream.retry_max_seconds)
            else:
                backoff = 0.5

    def _on_commit(self, offsets: Any, response: Any) -> None:
        if isinstance(response, Exception):  # e.g. the group rebalanced: records are read again
            self._log.warning("ingest_commit_failed", error=error_text(response))

    def _commit_waiting(self, consumer: KafkaConsumer) -> None:
        """On stopping: the offsets last sent, for the partitions still assigned, committed
        and waited for (a commit sent without waiting may still be on its way)."""
        assigned = consumer.assignment()
        offsets = {tp: o for tp, o in self._committing.items() if tp in assigned}
        if not offsets:
            return
        try:
            consumer.commit(offsets)
        except KafkaError as error:  # the records after the last commit are read again
            self._log.warning("ingest_commit_failed", error=error_text(error))

    def _rewind(self, consumer: KafkaConsumer, batch: dict[TopicPartition, list[Any]]) -> None:
        for tp, records in batch.items():
            try:
                consumer.seek(tp, records[0].offset)
            except (KafkaError, AssertionError) as error:
                self._log.warning("ingest_rewind_skipped", partition=tp.partition, error=str(error))

    # --- one batch -------------------------------------------------------------------

    def _process(
        self,
        batch: dict[TopicPartition, list[Any]],
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        ledger: IngestLedger,
    ) -> None:
        records = [record for records in batch.values() for record in records]
        entries = self.judge(records)
        letters = [
            (record, entry)
            for record, entry in zip(records, entries, strict=True)
            if entry.status == "dead_lettered"
        ]
        self._send_dead_letters(producer, letters)
        ledger.record(entries)
        offsets = {tp: OffsetAndMetadata(rs[-1].offset + 1, "", -1) for tp, rs in batch.items()}
        self._committing.update(offsets)
        consumer.commit_async(offsets=offsets, callback=self._on_commit)
        batch_counts = IngestCounts()
        for entry in entries:
            batch_counts = batch_counts.plus(entry.status)
        self.counts = self.counts.add(batch_counts)
        self._log.info(
            "ingest_batch", batch=self._fields(batch_counts), run=self._fields(self.counts)
        )

    def judge(self, records: Sequence[Any]) -> list[LedgerEntry]:
        """The verdict on each consumed record; the commands of the valid ones are applied."""
        parsed: list[EngagementRecordV1 | InvalidEngagement] = []
        for record in records:
            try:
                parsed.append(self._parse(record))
            except InvalidEngagement as bad:
                parsed.append(bad)
        valid = [
            (p, kafka_origin(r.topic, r.partition, r.offset, p.event_id))
            for r, p in zip(records, parsed, strict=True)
            if isinstance(p, EngagementRecordV1)
        ]
        applied = iter(apply_isolating(self.app, valid, INGEST_ACTOR))
        entries = []
        for record, item in zip(records, parsed, strict=True):
            verdict = item if isinstance(item, InvalidEngagement) else next(applied)
            event_id = item.event_id if isinstance(item, EngagementRecordV1) else None
            if isinstance(verdict, InvalidEngagement):
                reason = storable_reason(verdict.reason)
                self._log.warning(
                    "engagement_dead_lettered",
                    partition=record.partition,
                    offset=record.offset,
                    event_id=event_id,
                    problem=verdict.problem,
                )
                entries.append(
                    self._entry(record, "dead_lettered", event_id, verdict.problem, reason)
                )
            else:
                status: Status = "duplicate" if verdict == "duplicate" else "accepted"
                entries.append(self._entry(record, status, event_id))
        return entries

    def _parse(self, record: Any) -> EngagementRecordV1:
        """The record, its occurred_at judged against its own Kafka timestamp."""
        stamp = getattr(record, "timestamp", None)
        if not isinstance(stamp, int) or stamp < 0:
            return self.limits.parse(record.value)
        created = datetime.fromtimestamp(stamp / 1000, UTC)
        return self.limits.parse(record.value, now=created, clock=KAFKA_CLOCK)

    def _entry(
        self,
        record: Any,
        status: Status,
        event_id: str | None,
        problem: str | None = None,
        reason: str | None = None,
    ) -> LedgerEntry:
        return LedgerEntry(
            self.group,
            record.topic,
            record.partition,
            record.offset,
            status,
            event_id,
            problem,
            reason,
        )

    def _send_dead_letters(
        self, producer: KafkaProducer, letters: Sequence[tuple[Any, LedgerEntry]]
    ) -> None:
        """Publish and confirm every dead letter.

        A failed send leaves the (idempotent) producer unusable: it is replaced, and the
        batch retried. When the topic refused letters as too large, the limit drops below
        the largest of them, so that the retry sends it truncated.
        """
        if not letters:
            return
        pending = [(self._dead_letter(producer, r, e), r, e) for r, e in letters]
        try:
            producer.flush(timeout=self.stream.send_timeout_seconds)
            too_large: list[int] = []
            for future, record, entry in pending:
                if future.failed() and isinstance(future.exception, _TOO_LARGE):
                    too_large.append(self._letter_size(record, entry))
            for future, _, _ in pending:
                if future.failed() and not too_large:
                    raise future.exception
            if too_large:
                self._dlq_limit = min(self._dlq_limit, max(too_large) - 1)
                self._log.warning(
                    "dead_letter_too_large", dlq_limit=self._dlq_limit, sizes=sorted(too_large)
                )
                msg = f"the dead-letter topic refused a record of {max(too_large)} bytes"
                raise MessageSizeTooLargeError(msg)
            for future, _, _ in pending:
                future.get(timeout=0)  # raises the send's error, if it failed
        except BaseException:
            self._producer_now = None
            with suppress(KafkaError):
                producer.close(timeout=0)
            raise

    def _letter_size(self, record: Any, entry: LedgerEntry) -> int:
        headers = list(record.headers or []) + dlq_headers(entry, self.group)
        return (
            len(record.key or b"")
            + len(record.value or b"")
            + sum(len(k) + len(v) for k, v in headers)
        )

    def _dead_letter(self, producer: KafkaProducer, record: Any, entry: LedgerEntry) -> Any:
        headers = list(record.headers or []) + dlq_headers(entry, self.group)
        key: bytes | None = record.key
        value: bytes | None = record.value
        if self._letter_size(record, entry) > self._dlq_limit:
            self._log.warning(
                "dead_letter_truncated",
                partition=record.partition,
                offset=record.offset,
                size=self._letter_size(record, entry),
                dlq_limit=self._dlq_limit,
            )
            headers += truncation_headers(value or b"")
            key = key[:DLQ_COPY_BYTES] if key is not None else None
            value = value[:DLQ_COPY_BYTES] if value is not None else None
        return producer.send(self.stream.dlq_topic, key=key, value=value, headers=headers)

    @staticmethod
    def _fields(counts: IngestCounts) -> dict[str, int]:
        return {
            "accepted": counts.accepted,
            "duplicate": counts.duplicate,
            "dead_lettered": counts.dead_lettered,
            "consumed": counts.consumed,
        }


def _gathering(wait_ms: int) -> dict[str, int]:
    """Fetch settings: the broker answers once it holds ``GATHER_BYTES`` for the ingest
    or after ``wait_ms``, so that a steady trickle comes in batches, not one by one."""
    if wait_ms == 0:
        return {"fetch_min_bytes": 1}
    return {"fetch_min_bytes": GATHER_BYTES, "fetch_max_wait_ms": wait_ms}


def truncation_headers(value: bytes) -> list[tuple[str, bytes]]:
    """Headers of a truncated dead letter: the original value's size and digest."""
    return [
        ("dlq.truncated", b"true"),
        ("dlq.original_size", str(len(value)).encode()),
        ("dlq.original_sha256", hashlib.sha256(value).hexdigest().encode()),
    ]


def dlq_headers(entry: LedgerEntry, group: str) -> list[tuple[str, bytes]]:
    """The ``dlq.*`` headers; every value is UTF-8 whatever the record held."""
    values: Sequence[tuple[str, str]] = (
        ("dlq.reason", storable_reason(entry.reason or "unknown")),
        ("dlq.problem", entry.problem or "unknown"),
        ("dlq.source.topic", entry.topic),
        ("dlq.source.partition", str(entry.partition)),
        ("dlq.source.offset", str(entry.offset)),
        ("dlq.consumer.group", group),
        ("dlq.failed_at", datetime.now(UTC).isoformat()),
    )
    return [(k, storable_text(v).encode("utf-8")) for k, v in values]
