"""``leadflow relay``: the event store's notification log onto Kafka (transactional outbox).

Every stored event goes to ``leadflow.events.v1`` in notification order (record format:
``consumers.contracts.events_topic``), keyed by aggregate id; the events sales systems care about
also go to ``leadflow.qualification.v1`` (``consumers.contracts.qualification``). The producer is
idempotent with acks=all. A batch is sent, flushed, every send confirmed, and only then
the position saved (``consumers.relay.position``): delivery is at least once, and a
crash between the broker's ack and the save re-sends the batch, which consumers absorb
(every record carries event id and notification id). While the broker confirms a batch
the relay reads and encodes the next one; it is sent only once this one is saved. That
read has no effect of its own: what a page counts and logs is counted and logged once,
after its position is saved, and an error reading it is raised when the page is used.

Only the holder of the relay lock publishes (``consumers.relay.lock``); another relay
waits as a hot standby and takes over when the lock frees. Each activation takes a
new epoch (``consumers.relay.position``), carried in every record as ``relay_epoch``
and checked before each batch and in the position save: a relay deposed while cut
off from its database fails that check and stops publishing. When the broker is away the
relay keeps its position and retries with back-off; when the database is away it lets
go of the lock and starts over. Only failures known to be transient are retried
(``consumers.failure_policy``); anything else stops the relay with a ``RelayError``
naming the notification (a supervisor restarts it, a standby takes over).

A stored event the relay cannot decode does not stop it: it goes to the events topic as
an undecodable-event record (``consumers.contracts.events_topic``) that the projectors
dead-letter, exactly as the embedded projector dead-letters it, and is logged as an
error. An event
that cannot be mapped to the public contract is never skipped silently: a
``relay.unmappable`` record takes its place on the qualification topic (a marker keeps
the stream moving and tells sales systems which lead or deal to read afresh, where
stopping would hold back every later change). An event too large for Kafka (over
``MAX_MESSAGE_BYTES``), or any send the broker refuses for good, raises a ``RelayError``
naming the notification and its size.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import structlog
from kafka import KafkaProducer
from kafka.errors import KafkaConfigurationError, KafkaError

from adapters.audit_log import HEADS_TABLE, SignedHead
from adapters.audit_topic import RECORD_KEY as AUDIT_RECORD_KEY
from adapters.audit_witness import head_to_json
from adapters.kafka_retention import AUDIT_RETENTION_MS
from adapters.kafka_topics import (
    MAX_MESSAGE_BYTES,
    acknowledged_delivery,
    ensure_topics_patiently,
    topic_max_message_bytes,
)
from adapters.logging import error_text
from adapters.settings import KafkaSettings
from adapters.stopping import ProcessStop
from adapters.store_db import StoreDb
from adapters.stream_settings import StreamSettings
from consumers.failure_policy import is_transient
from consumers.relay.collection import collecting_less
from consumers.relay.lock import RelayLock
from consumers.relay.pages import Outgoing, Page, PageReader
from consumers.relay.partitioner import KeyHashPartitioner
from consumers.relay.position import RelayFenced, RelayPosition
from consumers.relay.producer_slot import ProducerSlot
from consumers.relay.reader_process import LocalPages, PageSource
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


@dataclass
class RelayStats:
    published: int = 0
    public: int = 0
    batches: int = 0
    position: int = 0
    activations: int = 0
    lock_losses: int = 0
    publish_failures: int = 0
    epoch: int = 0
    undecodable: int = 0
    unmappable: int = 0


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
        audit_topic: str | None = None,
        pages: Callable[[], PageSource] | None = None,
    ) -> None:
        """Built by ``leadflow.bootstrap.relay``: the lock, the side-table connection and
        the wake-up signal match the event store's database. With ``audit_topic`` (the
        log is signed), the latest signed head each page reaches is published there.
        ``pages`` opens, per activation, where pages are read (by default in this
        process, from ``app``)."""
        self.kafka = kafka
        self.audit_topic = audit_topic
        self._head_published = 0
        self.stream = stream
        self.app = app
        self.lock = lock
        self._open_db = open_db
        self._new_events = new_events
        self.stop = stop or ProcessStop()
        self.stats = RelayStats()
        self._epoch_header = ("relay_epoch", b"0")
        self._pages = pages or self._local_pages
        self._record_limits: dict[str, int] = {}
        self._log = log.bind(
            events_topic=stream.events_topic, qualification_topic=stream.qualification_topic
        )

    # --- lifecycle -------------------------------------------------------------------

    def run(self, *, once: bool = False, max_seconds: float | None = None) -> RelayStats:
        """Publish until ``stop`` is set (``once``: until caught up; ``max_seconds``: ``stop``
        is set after that long)."""
        with self.stop.within(max_seconds):
            topics = {
                self.stream.events_topic: self.kafka.events_retention_ms,
                self.stream.qualification_topic: self.kafka.qualification_retention_ms,
            }
            if self.audit_topic:
                topics[self.audit_topic] = AUDIT_RETENTION_MS
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
                    with collecting_less():
                        if self._publish_while_active(lock, once):
                            break
                except LockLost:
                    self.stats.lock_losses += 1
                    self._log.warning("relay_lock_lost", lock=lock.description)
                except RelayFenced as error:
                    self.stats.lock_losses += 1
                    self._log.warning("relay_fenced", lock=lock.description, error=str(error))
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
        reader = self._reader = self._pages()
        flusher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-flush")
        producer = ProducerSlot(self._producer, flusher)
        try:
            position = self._activate(lock, db)
            backoff = 0.5
            pending: Page | Exception | None = None
            while not self.stop.is_set():
                if not lock.still_held():
                    raise LockLost
                if isinstance(pending, Exception):
                    raise pending  # reading the next page failed: as if read now
                page = pending if pending is not None else reader.read(self.stats.position)
                pending = None
                if not page:
                    if once:
                        return True
                    signal.wait(self.stop)
                    continue
                position.check_epoch()  # a successor may have started: publish nothing more
                try:
                    published, done, pending = self._publish(producer.get(), flusher, reader, page)
                    self._publish_head(producer.get(), db, published)
                except KafkaError as error:
                    self._publish_failed(error, producer.drop(), backoff)
                    self.stop.wait(backoff)
                    backoff = min(backoff * 2, self.stream.retry_max_seconds)
                    continue
                backoff = 0.5
                if not lock.still_held():
                    raise LockLost
                position.save(published)
                self.stats.position = published
                self._account(done)
                self._store_backoff = 0.5
            return True
        finally:
            reader.close()  # it may hold states of a page read ahead and never sent
            signal.close()
            flusher.shutdown(wait=producer.close(self.stream.send_timeout_seconds))
            db.close()

    def _activate(self, lock: RelayLock, db: StoreDb) -> RelayPosition:
        """The saved position, and a new epoch for the records this activation publishes."""
        position = RelayPosition(db, self.stream.events_topic)
        self.stats.position = position.load()
        self.stats.epoch = position.take_epoch()
        self._epoch_header = ("relay_epoch", str(self.stats.epoch).encode())
        self.stats.activations += 1
        self._log.info(
            "relay_active",
            lock=lock.description,
            position=self.stats.position,
            epoch=self.stats.epoch,
            store=db.location,
        )
        return position

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
        self._reader.forget()

    def _producer(self) -> KafkaProducer:
        """A new producer that knows both topics' partitions; also learns what each topic
        takes (a topic created elsewhere may take less than ``MAX_MESSAGE_BYTES``), so that
        a record too large is named before the broker refuses it (which would fail the
        whole producer batch)."""
        topics = (self.stream.events_topic, self.stream.qualification_topic)
        for topic in topics:
            limit = topic_max_message_bytes(self.kafka, topic) or MAX_MESSAGE_BYTES
            self._record_limits[topic] = min(limit, MAX_MESSAGE_BYTES) - BATCH_OVERHEAD_BYTES
        try:
            producer = KafkaProducer(
                **self.kafka.client_config(),
                **acknowledged_delivery(self.stream.send_timeout_seconds),
                **PRODUCER_TUNING,
                partitioner=KeyHashPartitioner(),
            )
        except KafkaConfigurationError as error:
            raise RelayError(f"Kafka producer configuration: {error}") from error
        try:
            for topic in topics:
                producer.partitions_for(topic)  # what the first send would wait for
        except KafkaError:
            with suppress(KafkaError):
                producer.close(timeout=0)
            raise
        return producer

    def _local_pages(self) -> PageSource:
        stream = self.stream
        return LocalPages(
            PageReader(
                self.app, stream.events_topic, stream.qualification_topic, stream.relay_batch_size
            )
        )

    def _read_ahead(self, reader: PageSource, after: int) -> Page | Exception:
        """The next page, or the error reading it, to be raised when that page is used."""
        try:
            return reader.read(after)
        except Exception as error:  # noqa: BLE001 - kept, not swallowed
            return error

    def _publish(
        self,
        producer: KafkaProducer,
        flusher: ThreadPoolExecutor,
        reader: PageSource,
        page: Page,
    ) -> tuple[int, Page, Page | Exception | None]:
        """Publish and confirm the page up to the first notification too large for Kafka:
        the id of the last one published, the part published, and the next page when this
        one went out whole (read while the broker confirms this one). Raises
        ``RelayError`` when the first notification is too large."""
        batch: Page = []
        for converted in page:
            problem = self._too_large(converted.records)
            if problem is not None:
                if not batch:
                    raise RelayError(problem)
                break  # the batch before it goes out; the next round stops at it
            batch.append(converted)
        whole = len(batch) == len(page)
        if whole:
            reader.prefetch(page[-1].records[0].origin.id)
        sent = [
            (self._send(producer, out), out) for converted in batch for out in converted.records
        ]
        flushed = flusher.submit(producer.flush, timeout=self.stream.send_timeout_seconds)
        following: Page | Exception | None = None
        try:
            if whole:
                following = self._read_ahead(reader, page[-1].records[0].origin.id)
        finally:
            wait([flushed])
        flushed.result()
        return self._confirm(sent), batch, following

    def _publish_head(self, producer: KafkaProducer, db: StoreDb, published: int) -> None:
        """Publish (and wait for) the latest signed head at or before ``published`` when
        it is newer than the last one published: the Kafka witness of the signed log."""
        if self.audit_topic is None:
            return
        rows = db.execute(
            "SELECT position, link, key_id, signature, signed_at FROM {t} "
            "WHERE position <= ? AND position > ? ORDER BY position DESC LIMIT 1",
            (published, self._head_published),
            t=HEADS_TABLE,
        )
        if not rows:
            return
        head = SignedHead.from_row(rows[0])
        value = head_to_json(head).encode("ascii")
        future = producer.send(self.audit_topic, key=AUDIT_RECORD_KEY, value=value)
        future.get(timeout=self.stream.send_timeout_seconds)
        self._head_published = head.position
        self._log.debug("signed_head_published", position=head.position, key_id=head.key_id)

    def _confirm(self, sent: list[tuple[Any, Outgoing]]) -> int:
        """Raise the first send's error, if any; the id of the last notification sent."""
        for future, out in sent:
            try:
                future.get(timeout=0)  # raises the send's error, if it failed
            except KafkaError as error:
                if is_transient(error):
                    raise
                msg = (
                    f"notification {out.origin.id} ({out.origin.topic}, "
                    f"{out.size} bytes) was refused by the broker: "
                    f"{error_text(error)}"
                )
                raise RelayError(msg) from error
        return sent[-1][1].origin.id

    def _account(self, page: Page) -> None:
        """Count and log a page once it is published and its position saved."""
        records = sum(len(converted.records) for converted in page)
        self.stats.published += len(page)
        self.stats.public += records - len(page)
        self.stats.batches += 1
        for converted in page:
            if converted.problem is not None:
                kind, event, fields = converted.problem
                if kind == "undecodable":
                    self.stats.undecodable += 1
                else:
                    self.stats.unmappable += 1
                self._log.error(event, **fields)
        self._log.debug(
            "relay_published",
            events=len(page),
            public=records - len(page),
            first=page[0].records[0].origin.id,
            last=page[-1].records[0].origin.id,
        )

    def _too_large(self, records: list[Outgoing]) -> str | None:
        """Why one of a notification's records cannot go to Kafka, if it cannot."""
        for out in records:
            limit = self._record_limits.get(out.topic, MAX_RECORD_BYTES)
            if out.size > limit:
                origin = out.origin
                return (
                    f"notification {origin.id} ({origin.topic}, aggregate "
                    f"{origin.aggregate_id} version {origin.aggregate_version}) "
                    f"is {out.size} bytes as a record for {out.topic}; the limit is {limit} bytes"
                )
        return None

    def _send(self, producer: KafkaProducer, out: Outgoing) -> Any:
        headers = [*out.headers, self._epoch_header]
        return producer.send(out.topic, key=out.key, value=out.value, headers=headers)
