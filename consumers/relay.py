"""``leadflow relay``: the event store's notification log onto Kafka (transactional outbox).

Every stored event goes to ``leadflow.events.v1`` in notification order (record format:
``consumers.event_records``), keyed by aggregate id; the events sales systems care about
also go to ``leadflow.qualification.v1`` (``consumers.qualification``). The producer is
idempotent with acks=all. A batch is sent, flushed, every send confirmed, and only then
the position saved (``consumers.relay_position``): delivery is at least once, and a
crash between the broker's ack and the save re-sends the batch, which consumers absorb
(every record carries event id and notification id).

Only the holder of the relay lock publishes (``consumers.relay_lock``); another relay
waits as a hot standby and takes over when the lock frees. When the broker is away the
relay keeps its position and retries with back-off; when the database is away it lets
go of the lock and starts over.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from eventsourcing.persistence import Notification
from kafka import KafkaProducer
from kafka.errors import KafkaConfigurationError, KafkaError

from consumers.event_records import envelope_from_notification, to_kafka_record
from consumers.kafka_topics import acknowledged_delivery, ensure_topics_patiently
from consumers.qualification import integration_event, to_public_record
from consumers.relay_lock import RelayLock, relay_lock_for
from consumers.relay_position import RelayPosition
from consumers.relay_states import FollowedStates
from consumers.relay_wakeup import new_events_signal
from consumers.stopping import stop_after
from consumers.store_db import StoreDb
from consumers.stream_settings import StreamSettings
from domain.application import LeadflowApp
from domain.persistence import PydanticMapper
from leadflow.settings import Settings

log = structlog.get_logger("leadflow.relay")


class RelayError(Exception):
    """The relay cannot go on without a person looking (e.g. an event it cannot decode)."""


class LockLost(Exception):
    """The relay lock was lost while active (PostgreSQL connection dropped)."""


@dataclass
class RelayStats:
    published: int = 0
    public: int = 0
    batches: int = 0
    position: int = 0
    activations: int = 0
    lock_losses: int = 0
    publish_failures: int = 0


class Relay:
    def __init__(
        self,
        settings: Settings,
        stream: StreamSettings,
        app: LeadflowApp,
        *,
        stop: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.stream = stream
        self.app = app
        self.stop = stop or threading.Event()
        self.stats = RelayStats()
        self._states = FollowedStates(app)
        assert isinstance(app.mapper, PydanticMapper)
        self._mapper = app.mapper
        self._log = log.bind(
            events_topic=stream.events_topic, qualification_topic=stream.qualification_topic
        )

    # --- lifecycle -------------------------------------------------------------------

    def run(self, *, once: bool = False, max_seconds: float | None = None) -> RelayStats:
        """Publish until ``stop`` is set (``once``: until caught up; ``max_seconds``: ``stop``
        is set after that long)."""
        with stop_after(self.stop, max_seconds):
            topics = [self.stream.events_topic, self.stream.qualification_topic]
            if ensure_topics_patiently(
                self.settings.kafka, topics, self.stop, self.stream.retry_max_seconds
            ):
                self._run(once)
        return self.stats

    def _run(self, once: bool) -> None:
        lock = relay_lock_for(self.settings)
        self._log.info("relay_started", lock=lock.description, once=once)
        backoff = 0.5
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
                except RelayError:
                    raise
                except Exception as error:  # noqa: BLE001 - the store went away: start over
                    self._log.error(
                        "relay_store_failed",
                        error=f"{type(error).__name__}: {error}",
                        retry_in=backoff,
                    )
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, self.stream.retry_max_seconds)
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
        db = StoreDb(self.settings)
        signal = new_events_signal(self.settings, self.app, self.stream.relay_poll_seconds)
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
            while not self.stop.is_set():
                if not lock.still_held():
                    raise LockLost
                notifications = self.app.recorder.select_notifications(
                    start=self.stats.position,
                    limit=self.stream.relay_batch_size,
                    inclusive_of_start=False,
                )
                if not notifications:
                    if once:
                        return True
                    signal.wait(self.stop)
                    continue
                try:
                    producer = producer or self._producer()
                    self._publish(producer, notifications)
                except KafkaError as error:
                    self.stats.publish_failures += 1
                    self._log.warning(
                        "relay_publish_failed",
                        error=f"{type(error).__name__}: {error}",
                        position=self.stats.position,
                        retry_in=backoff,
                    )
                    if producer is not None:
                        producer.close(timeout=0)
                    producer = None
                    self._states.forget()
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, self.stream.retry_max_seconds)
                    continue
                backoff = 0.5
                if not lock.still_held():
                    raise LockLost
                position.save(notifications[-1].id)
                self.stats.position = notifications[-1].id
            return True
        finally:
            signal.close()
            if producer is not None:
                producer.close(timeout=self.stream.send_timeout_seconds)
            db.close()

    def _producer(self) -> KafkaProducer:
        try:
            return KafkaProducer(
                **self.settings.kafka.client_config(),
                **acknowledged_delivery(self.stream.send_timeout_seconds),
                # every batch ends with flush(): lingering costs no latency, and fewer,
                # larger producer batches cost far less CPU than one wake-up per record
                linger_ms=1000,
                batch_size=256 * 1024,
            )
        except KafkaConfigurationError as error:
            raise RelayError(f"Kafka producer configuration: {error}") from error

    def _publish(self, producer: KafkaProducer, notifications: Sequence[Notification]) -> None:
        futures: list[Any] = []
        public = 0
        for notification in notifications:
            try:
                envelope = envelope_from_notification(self._mapper, notification)
                self._states.observe(envelope.event)
                public_event = integration_event(envelope.event, self._states)
            except (ValueError, TypeError, KeyError, AttributeError) as error:
                msg = (
                    f"notification {notification.id} ({notification.topic}, aggregate "
                    f"{notification.originator_id} version {notification.originator_version}) "
                    f"cannot be published: {type(error).__name__}: {error}"
                )
                raise RelayError(msg) from error
            record = to_kafka_record(envelope)
            futures.append(
                producer.send(
                    self.stream.events_topic,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                )
            )
            if public_event is not None:
                public_record = to_public_record(public_event)
                futures.append(
                    producer.send(
                        self.stream.qualification_topic,
                        key=public_record.key,
                        value=public_record.value,
                        headers=public_record.headers,
                    )
                )
                public += 1
        producer.flush(timeout=self.stream.send_timeout_seconds)
        for future in futures:
            future.get(timeout=0)  # raises the send's error, if it failed
        self.stats.published += len(notifications)
        self.stats.public += public
        self.stats.batches += 1
        self._log.debug(
            "relay_published",
            events=len(notifications),
            public=public,
            first=notifications[0].id,
            last=notifications[-1].id,
        )
