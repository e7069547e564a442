"""Offered load at a fixed rate, and watchers that note when each record's effect shows.

Times are ``time.monotonic()`` in this process: a record's latency is the moment a
watcher first saw its effect minus the moment it was handed to the producer.
"""

from __future__ import annotations

import math
import sqlite3
import statistics
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import structlog
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from psycopg import sql

from adapters.settings import KafkaSettings, StoreSettings
from benchmarks.framework import BenchmarkError

log = structlog.get_logger("leadflow.benchmarks.latency")

SEND_TIMEOUT_SECONDS = 30.0
QUERY_CHUNK = 500


@dataclass(frozen=True)
class Offer:
    key: str
    value: bytes


def load_producer(kafka: KafkaSettings) -> KafkaProducer:
    """What a marketing-automation tool would use: acks=all, no lingering."""
    return KafkaProducer(**kafka.client_config(), acks="all", linger_ms=0)


def offer_at_rate(
    producer: KafkaProducer,
    topic: str,
    offers: Sequence[Offer],
    rate: float,
    before_send: Watcher | None = None,
) -> dict[str, float]:
    """Send ``offers`` at ``rate`` records per second; the moment each was sent, by key."""
    sent: dict[str, float] = {}
    start = time.monotonic()
    for number, offer in enumerate(offers):
        delay = start + number / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if before_send is not None:
            before_send.expect(offer.key)
        sent[offer.key] = time.monotonic()
        producer.send(topic, key=offer.key.encode(), value=offer.value)
    producer.flush(timeout=SEND_TIMEOUT_SECONDS)
    seconds = time.monotonic() - start
    log.info(
        "load_offered",
        topic=topic,
        records=len(offers),
        achieved_rate=round(len(offers) / seconds, 1),
    )
    return sent


class Watcher(threading.Thread):
    """Notes when each expected key is first seen; ``seen`` maps key -> moment."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.seen: dict[str, float] = {}
        self.failure: BaseException | None = None
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def expect(self, key: str) -> None:
        with self._lock:
            self._pending.add(key)

    def pending(self) -> set[str]:
        with self._lock:
            return set(self._pending)

    def _saw(self, keys: Sequence[str]) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                if key not in self.seen:
                    self.seen[key] = now
                self._pending.discard(key)

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                self.look()
        except BaseException as error:  # reported by wait_for_all
            self.failure = error
            log.error("watcher_failed", watcher=self.name, exc_info=True)

    def look(self) -> None:
        raise NotImplementedError

    def wait_for_all(self, keys: Sequence[str], timeout: float) -> None:
        """Until every key is seen; raises BenchmarkError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self.failure is not None:
                msg = f"{self.name} failed: {self.failure}"
                raise BenchmarkError(msg) from self.failure
            with self._lock:
                missing = [k for k in keys if k not in self.seen]
            if not missing:
                return
            if time.monotonic() > deadline:
                msg = (
                    f"{self.name}: {len(missing)} of {len(keys)} records not seen "
                    f"{timeout:g} s after they were sent (first: {missing[0]})"
                )
                raise BenchmarkError(msg)
            time.sleep(0.05)

    def wait_or_mark_late(self, keys: Sequence[str], timeout: float) -> int:
        """``wait_for_all``, but a key still unseen after ``timeout`` seconds is noted as
        seen then (its latency at least the wait): how many were. For loads beyond what
        the pipeline keeps up with, where a backlog is the finding, not a failure."""
        try:
            self.wait_for_all(keys, timeout)
        except BenchmarkError:
            if self.failure is not None:
                raise
            with self._lock:
                late = [k for k in keys if k not in self.seen]
            self._saw(late)
            log.warning("records_not_seen_in_time", watcher=self.name, late=len(late))
            return len(late)
        return 0

    def close(self) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(timeout=10)


class ReadModelWatcher(Watcher):
    """Polls the read model (the store's: a SQLite file or the PostgreSQL schema): a lead
    counts as seen once its row in ``rm_leads`` reaches the version its record leads to
    (all of the record's events applied). Keys are lead ids."""

    def __init__(self, store: StoreSettings, versions: Mapping[str, int], interval: float) -> None:
        super().__init__("read-model watcher")
        self._conn: sqlite3.Connection | psycopg.Connection[tuple[Any, ...]]
        if store.dsn is None:
            self._conn = sqlite3.connect(
                str(store.sqlite_read_models),
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
            )
            self._mark = "?"
        else:
            self._conn = psycopg.connect(store.dsn, autocommit=True)
            schema = sql.Identifier(store.postgres_schema)
            self._conn.execute(sql.SQL("SET search_path TO {}").format(schema))
            self._mark = "%s"
        self._versions = versions
        self._interval = interval

    def look(self) -> None:
        began = time.monotonic()
        pending = sorted(self.pending())
        for start in range(0, len(pending), QUERY_CHUNK):
            chunk = pending[start : start + QUERY_CHUNK]
            marks = ", ".join([self._mark] * len(chunk))
            rows = self._conn.execute(
                f"SELECT lead_id, version FROM rm_leads WHERE lead_id IN ({marks})",  # noqa: S608 - placeholders only
                chunk,
            ).fetchall()
            self._saw([lead for lead, version in rows if version >= self._versions[lead]])
        # a backlog makes each look longer: the watcher takes at most a fifth of a core
        time.sleep(max(self._interval, 4 * (time.monotonic() - began)))

    def close(self) -> None:
        super().close()
        self._conn.close()


def read_from_start(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """Assign ``consumer`` every partition of ``topic``, each from its first record."""
    partitions = consumer.partitions_for_topic(topic) or set()
    if not partitions:
        raise BenchmarkError(f"topic {topic} has no partitions the consumer can see")
    assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assigned)
    consumer.seek_to_beginning(*assigned)
    return assigned


class TopicWatcher(Watcher):
    """Consumes every partition of ``topic`` from the start; a record's key is seen when
    a poll returns it."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        super().__init__("raw consumer")
        self._consumer = KafkaConsumer(**kafka.client_config(), enable_auto_commit=False)
        try:
            read_from_start(self._consumer, topic)
        except BenchmarkError:
            self._consumer.close()
            raise

    def look(self) -> None:
        polled = self._consumer.poll(timeout_ms=50)
        self._saw([r.key.decode() for batch in polled.values() for r in batch])

    def close(self) -> None:
        super().close()
        self._consumer.close(autocommit=False)


@dataclass(frozen=True)
class Window:
    p50: float
    p99: float
    max: float


def latency_windows(
    keys: Sequence[str], sent: dict[str, float], seen: dict[str, float], windows: int
) -> list[Window]:
    """Latencies (ms) of ``keys`` (in sending order) in ``windows`` consecutive groups."""
    size = math.ceil(len(keys) / windows)
    found = []
    for start in range(0, len(keys), size):
        ms = sorted((seen[k] - sent[k]) * 1000 for k in keys[start : start + size])
        found.append(Window(statistics.median(ms), percentile(ms, 0.99), ms[-1]))
    if len(found) != windows:
        msg = f"{len(keys)} records cannot make {windows} windows; raise the rate or duration"
        raise BenchmarkError(msg)
    return found


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]
