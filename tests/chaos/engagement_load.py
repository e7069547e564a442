"""Engagement records offered to the engagement topic at a steady rate, as marketing
automation would send them, with the mess it sends too: invalid records, records sent
again (same ``event_id``), records older than ones already sent for the same lead, and
records keyed away from their lead's partition (so they are consumed out of order).

Every record carries a ``chaos.seq`` header naming its entry in the plan's catalog, so
the checks can tell what each record on the topic should have become.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from kafka import KafkaProducer

from domain.scoring import ENGAGEMENT_KINDS
from service.ids import normalise_ref
from tests.chaos.journal import Journal
from tests.integration.consumers.engagement_samples import bad_samples

SEQ_HEADER = "chaos.seq"
BASE = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
INVALID_SHARE = 0.05
DUPLICATE_SHARE = 0.08
REORDERED_SHARE = 0.10
MOVED_SHARE = 0.10

Kind = Literal["valid", "duplicate", "invalid"]


@dataclass(frozen=True)
class Sent:
    """One record the load offered; ``duplicate`` resends an earlier valid record's value."""

    seq: int
    kind: Kind
    key: bytes | None
    value: bytes | None
    lead: str | None = None
    event_id: str | None = None
    label: str = ""

    @property
    def valid(self) -> bool:
        return self.kind != "invalid"


class EngagementPlan:
    """A seeded sequence of records over ``leads`` leads; ``catalog`` holds every one."""

    def __init__(self, rng: random.Random, leads: int = 300, prefix: str = "chaos") -> None:
        self._rng = rng
        self.prefix = prefix
        self.leads = [f"{prefix}-{n}@example.com" for n in range(leads)]
        self.catalog: dict[int, Sent] = {}
        self.tally: Counter[str] = Counter()
        self._clock: dict[str, datetime] = {}
        self._valid: list[Sent] = []
        self._bad = bad_samples()

    def next(self) -> Sent:
        roll = self._rng.random()
        if roll < INVALID_SHARE:
            return self._invalid()
        if roll < INVALID_SHARE + DUPLICATE_SHARE and self._valid:
            return self._duplicate()
        return self._new(self._rng.choice(self.leads))

    def probe(self, count: int) -> list[Sent]:
        """Fresh valid records for a lead nothing else touches."""
        lead = f"{self.prefix}-probe@example.com"
        return [self._new(lead, plain=True) for _ in range(count)]

    def _add(self, kind: Kind, key: bytes | None, value: bytes | None, **extra: Any) -> Sent:
        sent = Sent(len(self.catalog), kind, key, value, **extra)
        self.catalog[sent.seq] = sent
        self.tally[kind] += 1
        return sent

    def _invalid(self) -> Sent:
        sample = self._bad[self.tally["invalid"] % len(self._bad)]
        return self._add("invalid", sample.key, sample.value, label=sample.label or sample.expect)

    def _duplicate(self) -> Sent:
        original = self._rng.choice(self._valid[-200:])
        key = original.key
        if self._rng.random() < 0.5:
            key = f"resent-{original.seq}".encode()
            self.tally["duplicate keyed elsewhere"] += 1
        return self._add(
            "duplicate", key, original.value, lead=original.lead, event_id=original.event_id
        )

    def _new(self, lead: str, plain: bool = False) -> Sent:
        rng = self._rng
        event_id = f"{self.prefix}-ev-{len(self.catalog)}"
        last = self._clock.get(lead)
        if last is None:
            occurred = BASE + timedelta(minutes=rng.randrange(60 * 24 * 60))
            self._clock[lead] = occurred
        elif not plain and rng.random() < REORDERED_SHARE:
            occurred = last - timedelta(minutes=rng.randint(1, 3000))
            self.tally["reordered (older than sent before)"] += 1
        else:
            occurred = last + timedelta(minutes=rng.randint(1, 600))
            self._clock[lead] = occurred
        key = lead.encode()
        if not plain and rng.random() < MOVED_SHARE:
            key = event_id.encode()
            self.tally["keyed away from its lead"] += 1
        record: dict[str, Any] = {
            "event_id": event_id,
            "email": lead,
            "kind": rng.choice(ENGAGEMENT_KINDS),
            "occurred_at": occurred.isoformat(),
        }
        if rng.random() < 0.4:
            record["attributes"] = {
                "industry": rng.choice(["software", "retail", "fintech"]),
                "employees": rng.choice([40, 250, "1,200"]),
                "title": rng.choice(["VP Sales", "Engineer", "CTO"]),
            }
        if rng.random() < 0.3:
            record["source"] = rng.choice(["mautic", "webform"])
        value = json.dumps(record).encode()
        sent = self._add("valid", key, value, lead=normalise_ref(lead), event_id=event_id)
        self._valid.append(sent)
        return sent


class EngagementLoad(threading.Thread):
    """Sends the plan's records at ``rate`` per second until ``finish``; a send the broker
    never acknowledged is sent again (the checks count what is on the topic)."""

    def __init__(
        self, bootstrap: str, topic: str, plan: EngagementPlan, rate: float, journal: Journal
    ) -> None:
        super().__init__(name="engagement-load", daemon=True)
        self.topic = topic
        self.plan = plan
        self.rate = rate
        self.journal = journal
        self.resent = 0
        self._stop_event = threading.Event()
        self._failed: list[Sent] = []
        self._failed_lock = threading.Lock()
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=10,
            reconnect_backoff_max_ms=1000,
            request_timeout_ms=10_000,
            delivery_timeout_ms=120_000,
            max_block_ms=60_000,
        )

    def run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop_event.is_set():
            self.send(self.plan.next())
            next_at += interval
            pause = next_at - time.monotonic()
            if pause > 0:
                self._stop_event.wait(pause)
            elif pause < -1.0:  # fell behind (a blocked send): offer the rate, no burst
                next_at = time.monotonic()

    def send(self, sent: Sent) -> None:
        headers = [(SEQ_HEADER, str(sent.seq).encode())]
        future = self._producer.send(self.topic, key=sent.key, value=sent.value, headers=headers)
        future.add_errback(self._on_failure, sent)

    def _on_failure(self, sent: Sent, error: Exception) -> None:
        with self._failed_lock:
            self._failed.append(sent)

    def finish(self, timeout: float = 90.0) -> None:
        """Stop offering, then until every record is acknowledged: flush and resend."""
        self._stop_event.set()
        self.join(timeout=30)
        deadline = time.monotonic() + timeout
        while True:
            self._producer.flush(timeout=max(1.0, deadline - time.monotonic()))
            with self._failed_lock:
                failed, self._failed = self._failed, []
            if not failed:
                return
            if time.monotonic() > deadline:
                msg = f"{len(failed)} engagement records were never acknowledged by the broker"
                raise AssertionError(msg)
            self.journal.note("load", f"resending {len(failed)} unacknowledged records")
            self.resent += len(failed)
            for sent in failed:
                self.send(sent)

    def close(self) -> None:
        self._stop_event.set()
        self._producer.close(timeout=5)
