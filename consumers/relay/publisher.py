"""``leadflow relay``: the event store's notification log onto Kafka (transactional outbox).

Every stored event goes to ``leadflow.events.v1`` in notification order (record format:
``consumers.contracts.events_topic``), keyed by aggregate id; the events sales systems care about
also go to ``leadflow.qualification.v1`` (``consumers.contracts.qualification``). The producer is
idempotent with acks=all. A batch is sent, flushed, every send confirmed, and only then
the position saved (``consumers.relay.position``): delivery is at least once, and a
crash between the broker's ack and the save re-sends the batch, which consumers absorb
(every record carries event id and notification id). While the broker confirms a batch
the relay reads and encodes the next one; it is sent only once this one is saved.

Only the holder of the relay lock publishes (``consumers.relay.lock``); another relay
waits as a hot standby and takes over when the lock frees. When the broker is away the
relay keeps its position and retries with back-off; when the database is away it lets
go of the lock and starts over. Only failures known to be transient are retried
(``adapters.kafka_topics.is_transient``); anything else stops the relay with a
``RelayError`` naming the notification (a supervisor restarts it, a standby takes over).

A stored event the relay cannot decode does not stop it: it goes to the events topic as
an undecodable-event record (``consumers.relay.own_records``) that the projectors dead-letter,
exactly as the embedded projector dead-letters it, and is logged as an error. An event
too large for Kafka (over ``MAX_MESSAGE_BYTES``), or any send the broker refuses for
good, raises a ``RelayError`` naming the notification and its size.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, NamedTuple

import structlog
from eventsourcing.persistence import Notification
from kafka import KafkaProducer
from kafka.errors import KafkaConfigurationError, KafkaError

from adapters.event_envelope import envelope_from_notification
from adapters.kafka_topics import (
    MAX_MESSAGE_BYTES,
    acknowledged_delivery,
    ensure_topics_patiently,
    topic_max_message_bytes,
)
from adapters.logging import error_text
from adapters.mapper import PydanticMapper
from adapters.settings import KafkaSettings
from adapters.stopping import ProcessStop
from adapters.store_db import StoreDb
from adapters.stream_settings import StreamSettings
from consumers.contracts.events_topic import KafkaRecord, to_kafka_record
from consumers.contracts.qualification import integration_event, to_public_record
from consumers.failure_policy import is_transient
from consumers.relay.followed_states import FollowedStates
from consumers.relay.lock import RelayLock
from consumers.relay.own_records import KeyHashPartitioner, record_size, undecodable_record
from consumers.relay.position import RelayPosition
from consumers.relay.wakeup import NewEventsSignal
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.relay")

# what a single record may take: the topic's limit less the record batch's own overhead
BATCH_OVERHEAD_BYTES = 1024
MAX_RECORD_BYTES = MAX_MESSAGE_BYTES - BATCH_OVERHEAD_BYTES


class RelayError(Exception):
    """The relay cannot go on without a person looking (e.g. an event it cannot decode)."""


class LockLost(Exception):
    """The relay lock was lost while active (PostgreSQL connection dropped)."""


# Every batch ends with flush(): lingering costs no latency, and fewer, larger producer
# batches cost far less CPU than one wake-up per record.
PRODUCER_TUNING: dict[str, int] = {"linger_ms": 1000, "batch_size": 256 * 1024}


class Outgoing(NamedTuple):
    notification: Notification
    topic: str
    record: KafkaRecord


# a page of the notification log: each notification's records, in order
Page = list[list[Outgoing]]


@dataclass
class RelayStats:
    published: int = 0
    public: int = 0
    batches: int = 0
    position: int = 0
    activations: int = 0
    lock_losses: int = 0
    publish_failures: int = 0
    undecodable: int = 0


class Relay:
    def __init__(
        self,
        app: LeadflowApp,
        stream: StreamSettings,
        kafka: KafkaSettings,
        *,
        lock: RelayLock,
        open_db: Callable[[], StoreDb],
        new_events: Callable[[], NewEventsSignal],
        stop: ProcessStop | None = None,
    ) -> None:
        """Built by ``leadflow.bootstrap.relay``: the lock, the side-table connection and
        the wake-up signal match the event store's database."""
        self.kafka = kafka
        self.stream = stream
        self.app = app
        self.lock = lock
        self._open_db = open_db
        self._new_events = new_events
        self.stop = stop or ProcessStop()
        self.stats = RelayStats()
        self._states = FollowedStates(app)
        self._record_limits: dict[str, int] = {}
        assert isinstance(app.mapper, PydanticMapper)
        self._mapper = app.mapper
        self._log = log.bind(
            events_topic=stream.events_topic, qualification_topic=stream.qualification_topic
        )

    # --- lifecycle -------------------------------------------------------------------

    def run(self, *, once: bool = False, max_seconds: float | None = None) -> RelayStats:
        """Publish until ``stop`` is set (``once``: until caught up; ``max_seconds``: ``stop``
        is set after that long)."""
        with self.stop.within(max_seconds):
            topics = [self.stream.events_topic, self.stream.qualification_topic]
            if ensure_topics_patiently(
                self.kafka, topics, self.stop, self.stream.retry_max_seconds
            ):
                self._run(once)
        return self.stats

    def _run(self, once: bool) -> None:
        lock = self.lock
        self._log.info("relay_started", lock=lock.description, once=once)
        self._store_backoff = 0.5
        try:
            while not self.stop.is_set():
                if not self._wait_for_lock(lock):
                    break
                try:
                    if self._publish_while_active(lock, once):
                        break
                except LockLost:
                    self.stats.lock_losses += 1
                    self._log.warning("relay_lock_lost", lock=lock.description)
                except RelayError as error:
                    self._log.error("relay_failed", error=str(error), position=self.stats.position)
                    raise
                except Exception as error:
                    if not is_transient(error):
                        msg = (
                            f"relay stopped after notification {self.stats.position}: "
                            f"{error_text(error)}"
                        )
                        self._log.error("relay_failed", error=msg, position=self.stats.position)
                        raise RelayError(msg) from error
                    self._log.error(
                        "relay_store_failed",
                        error=error_text(error),
                        retry_in=self._store_backoff,
                    )
                    self.stop.wait(self._store_backoff)
                    self._store_backoff = min(
                        self._store_backoff * 2, self.stream.retry_max_seconds
                    )
                lock.release()
        finally:
            lock.release()
            self._log.info(
                "relay_stopped",
                published=self.stats.published,
                public=self.stats.public,
                position=self.stats.position,
            )

    def _wait_for_lock(self, lock: RelayLock) -> bool:
        announced = False
        problem: str | None = None
        while not self.stop.is_set():
            if lock.try_acquire():
                return True
            if not announced:
                self._log.info("relay_standby", lock=lock.description)
                announced = True
            if lock.problem != problem:
                problem = lock.problem
                if problem:
                    self._log.warning("relay_lock_problem", lock=lock.description, problem=problem)
            self.stop.wait(self.stream.standby_poll_seconds)
        return False

    # --- active ----------------------------------------------------------------------

    def _publish_while_active(self, lock: RelayLock, once: bool) -> bool:
        """Publish until stopped (True) or the lock is lost (raises LockLost)."""
        db = self._open_db()
        signal = self._new_events()
        flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-flush")
        producer: KafkaProducer | None = None
        try:
            position = RelayPosition(db, self.stream.events_topic)
            self.stats.position = position.load()
            self.stats.activations += 1
            self._log.info(
                "relay_active",
                lock=lock.description,
                position=self.stats.position,
                store=db.location,
            )
            backoff = 0.5
            pending: Page | None = None
            while not self.stop.is_set():
                if not lock.still_held():
                    raise LockLost
                page = pending if pending is not None else self._read_page(self.stats.position)
                pending = None
                if not page:
                    if once:
                        return True
                    signal.wait(self.stop)
                    continue
                try:
                    producer = producer or self._producer()
                    published, pending = self._publish(producer, flusher, page)
                except KafkaError as error:
                    self._publish_failed(error, producer, backoff)
                    producer = None
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, self.stream.retry_max_seconds)
                    continue
                backoff = 0.5
                if not lock.still_held():
                    raise LockLost
                position.save(published)
                self.stats.position = published
                self._store_backoff = 0.5
            return True
        finally:
            signal.close()
            if producer is not None:
                with suppress(KafkaError):
                    producer.close(timeout=self.stream.send_timeout_seconds)
            flusher.shutdown()
            db.close()

    def _publish_failed(
        self, error: KafkaError, producer: KafkaProducer | None, retry_in: float
    ) -> None:
        """Raise ``RelayError`` for a lasting error; otherwise close the producer and forget
        the followed states: the batch is sent again after ``retry_in`` seconds."""
        if not is_transient(error):
            raise RelayError(f"publishing failed: {error_text(error)}") from error
        self.stats.publish_failures += 1
        self._log.warning(
            "relay_publish_failed",
            error=error_text(error),
            position=self.stats.position,
            retry_in=retry_in,
        )
        if producer is not None:
            with suppress(KafkaError):  # it raises with records still buffered
                producer.close(timeout=0)
        self._states.forget()

    def _producer(self) -> KafkaProducer:
        """A new producer; also learns what each topic takes (a topic created elsewhere may
        take less than ``MAX_MESSAGE_BYTES``), so that a record too large is named before
        the broker refuses it (which would fail the whole producer batch)."""
        for topic in (self.stream.events_topic, self.stream.qualification_topic):
            limit = topic_max_message_bytes(self.kafka, topic) or MAX_MESSAGE_BYTES
            self._record_limits[topic] = min(limit, MAX_MESSAGE_BYTES) - BATCH_OVERHEAD_BYTES
        try:
            return KafkaProducer(
                **self.kafka.client_config(),
                **acknowledged_delivery(self.stream.send_timeout_seconds),
                **PRODUCER_TUNING,
                partitioner=KeyHashPartitioner(),
            )
        except KafkaConfigurationError as error:
            raise RelayError(f"Kafka producer configuration: {error}") from error

    def _read_page(self, after: int) -> Page:
        """The records of the next notifications after ``after``, per notification."""
        notifications = self.app.recorder.select_notifications(
            start=after, limit=self.stream.relay_batch_size, inclusive_of_start=False
        )
        return [self._records(notification) for notification in notifications]

    def _publish(
        self, producer: KafkaProducer, flusher: ThreadPoolExecutor, page: Page
    ) -> tuple[int, Page | None]:
        """Publish and confirm the page up to the first notification too large for Kafka;
        the id of the last one published, and the next page when this one went out whole
        (read while the broker confirms this one). Raises ``RelayError`` when the first
        notification is too large."""
        batch: list[Outgoing] = []
        for records in page:
            problem = self._too_large(records)
            if problem is not None:
                if not batch:
                    raise RelayError(problem)
                break  # the batch before it goes out; the next round stops at it
            batch.extend(records)
        sent = [(self._send(producer, out.topic, out.record), out) for out in batch]
        flushed = flusher.submit(producer.flush, timeout=self.stream.send_timeout_seconds)
        following = None
        try:
            if len(batch) == sum(map(len, page)):
                # a failure here recurs (and is raised) on reading it again, once saved
                with suppress(Exception):
                    following = self._read_page(page[-1][0].notification.id)
        finally:
            wait([flushed])
        flushed.result()
        return self._confirm(sent), following

    def _confirm(self, sent: list[tuple[Any, Outgoing]]) -> int:
        """Raise the first send's error, if any; the id of the last notification sent."""
        for future, out in sent:
            try:
                future.get(timeout=0)  # raises the send's error, if it failed
            except KafkaError as error:
                if is_transient(error):
                    raise
                msg = (
                    f"notification {out.notification.id} ({out.notification.topic}, "
                    f"{record_size(out.record)} bytes) was refused by the broker: "
                    f"{error_text(error)}"
                )
                raise RelayError(msg) from error
        events = [out.notification for _, out in sent if out.topic == self.stream.events_topic]
        self.stats.published += len(events)
        self.stats.public += len(sent) - len(events)
        self.stats.batches += 1
        self._log.debug(
            "relay_published",
            events=len(events),
            public=len(sent) - len(events),
            first=events[0].id,
            last=events[-1].id,
        )
        return events[-1].id

    def _records(self, notification: Notification) -> list[Outgoing]:
        """The events-topic record and the public one, if any."""
        try:
            envelope = envelope_from_notification(self._mapper, notification)
        except Exception as error:
            if is_transient(error):
                raise
            self.stats.undecodable += 1
            self._log.error(
                "relay_event_undecodable",
                notification_id=notification.id,
                event_topic=notification.topic,
                aggregate_id=str(notification.originator_id),
                aggregate_version=notification.originator_version,
                error=error_text(error),
                action="published as an undecodable-event record; projectors dead-letter it",
            )
            marker = undecodable_record(self._mapper, notification, error)
            return [Outgoing(notification, self.stream.events_topic, marker)]
        records = [Outgoing(notification, self.stream.events_topic, to_kafka_record(envelope))]
        try:
            self._states.observe(envelope.event)
            public_event = integration_event(envelope.event, self._states)
        except Exception as error:
            if is_transient(error):
                raise
            self._log.error(
                "relay_public_event_failed",
                notification_id=notification.id,
                event_topic=notification.topic,
                aggregate_id=str(notification.originator_id),
                error=error_text(error),
                action="published on the events topic only",
            )
            return records
        if public_event is not None:
            public = to_public_record(public_event)
            records.append(Outgoing(notification, self.stream.qualification_topic, public))
        return records

    def _too_large(self, records: list[Outgoing]) -> str | None:
        """Why one of a notification's records cannot go to Kafka, if it cannot."""
        for notification, topic, record in records:
            size = record_size(record)
            limit = self._record_limits.get(topic, MAX_RECORD_BYTES)
            if size > limit:
                return (
                    f"notification {notification.id} ({notification.topic}, aggregate "
                    f"{notification.originator_id} version {notification.originator_version}) "
                    f"is {size} bytes as a record for {topic}; the limit is {limit} bytes"
                )
        return None

    @staticmethod
    def _send(producer: KafkaProducer, topic: str, record: KafkaRecord) -> Any:
        return producer.send(topic, key=record.key, value=record.value, headers=record.headers)
