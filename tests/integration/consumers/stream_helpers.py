"""Shared pieces of the stream tests: isolated settings, topic reading, CLI subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from adapters.audit_keys import generate_key_pair
from adapters.audit_settings import AuditSettings
from adapters.settings import Settings
from adapters.stopping import ProcessStop
from adapters.store_db import StoreDb
from adapters.stream_settings import StreamSettings
from consumers.ingest.consumer import EngagementIngest
from consumers.relay.publisher import Relay
from domain import commands as c
from domain.errors import DomainError
from domain.events import Bant, EngagementRecorded
from leadflow import bootstrap
from service.application import LeadflowApp
from tests.integration.consumers.engagement_samples import Sample
from tests.settings_helpers import settings_with

REPO = Path(__file__).resolve().parents[3]
PARTITIONS = 3


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class StreamSetup:
    """One test's isolated world: its own store (file or schema), topics and group."""

    settings: Settings
    stream: StreamSettings
    env: dict[str, str] = field(default_factory=dict)

    def open_app(self, actor: str = "test") -> LeadflowApp:
        return bootstrap.open_application(self.settings, default_actor=actor)

    def relay(
        self,
        app: LeadflowApp,
        *,
        stream: StreamSettings | None = None,
        stop: ProcessStop | None = None,
    ) -> Relay:
        return bootstrap.relay(self.settings, stream or self.stream, app, stop=stop)

    def ingest(
        self,
        app: LeadflowApp,
        *,
        stream: StreamSettings | None = None,
        group: str | None = None,
        stop: ProcessStop | None = None,
    ) -> EngagementIngest:
        return bootstrap.engagement_ingest(
            self.settings, stream or self.stream, app, group=group, stop=stop
        )

    def store_db(self) -> StoreDb:
        return bootstrap.open_store_db(self.settings)


def stream_setup(tmp_path: Path, broker: str, postgres_dsn: str | None = None) -> StreamSetup:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    settings = settings_with(
        data_dir=tmp_path / "data",
        postgres_dsn=postgres_dsn,
        postgres_schema=schema if postgres_dsn else "public",
        kafka={"bootstrap": broker, "partitions": PARTITIONS},
        stream={
            "events_topic": unique("events"),
            "qualification_topic": unique("qualification"),
            "engagement_topic": unique("engagement"),
            "dlq_topic": unique("dlq"),
            "ingest_group": unique("ingest"),
            "standby_poll_seconds": 0.2,
        },
    )
    stream = settings.stream
    env = {
        "LEADFLOW_DATA_DIR": str(settings.store.data_dir),
        "LEADFLOW_KAFKA_BOOTSTRAP": broker,
        "LEADFLOW_KAFKA_PARTITIONS": str(PARTITIONS),
        "LEADFLOW_LOG_FORMAT": "json",
        "LEADFLOW_STREAM_EVENTS_TOPIC": stream.events_topic,
        "LEADFLOW_STREAM_QUALIFICATION_TOPIC": stream.qualification_topic,
        "LEADFLOW_STREAM_ENGAGEMENT_TOPIC": stream.engagement_topic,
        "LEADFLOW_STREAM_DLQ_TOPIC": stream.dlq_topic,
        "LEADFLOW_STREAM_INGEST_GROUP": stream.ingest_group,
        "LEADFLOW_STREAM_STANDBY_POLL_SECONDS": str(stream.standby_poll_seconds),
    }
    if postgres_dsn:
        env["LEADFLOW_POSTGRES_DSN"] = postgres_dsn
        env["LEADFLOW_POSTGRES_SCHEMA"] = schema
    return StreamSetup(settings, stream, env)


def signed(setup: StreamSetup, keys: Path) -> AuditSettings:
    """Give ``setup`` an audit key (made in ``keys``, outside its data dir) and its own
    audit topic; the relay then publishes signed heads there."""
    generate_key_pair(keys / "audit.pem")
    audit = AuditSettings(key_file=keys / "audit.pem", topic=unique("audit"))
    setup.settings = setup.settings.model_copy(update={"audit": audit})
    return audit


# --- Kafka ---------------------------------------------------------------------------------


def produce(
    bootstrap: str,
    topic: str,
    samples: list[Sample],
    first_index: int = 0,
    *,
    timestamp_ms: int | None = None,
) -> None:
    """Each sample as one record, with headers ``sample`` (its index, counted from
    ``first_index``) and ``origin``; ``timestamp_ms`` stamps them all (default: now)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=2 * 1024 * 1024)
    for index, sample in enumerate(samples, start=first_index):
        headers = [("sample", str(index).encode()), ("origin", b"test-suite")]
        producer.send(
            topic, key=sample.key, value=sample.value, headers=headers, timestamp_ms=timestamp_ms
        )
    producer.flush()
    producer.close()


def read_topic(bootstrap: str, topic: str, timeout: float = 30.0) -> list[Any]:
    """Every record of ``topic`` from offset 0 to its current end, per partition in order."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        deadline = time.monotonic() + timeout
        partitions = None
        while not partitions:
            assert time.monotonic() < deadline, f"topic {topic} has no partitions"
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                time.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Any] = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


def stored_keys(app: LeadflowApp) -> list[tuple[str, int]]:
    """(aggregate id, version) of every stored event, in notification order."""
    keys: list[tuple[str, int]] = []
    start = 0
    while True:
        batch = app.recorder.select_notifications(start, 1000, inclusive_of_start=False)
        if not batch:
            return keys
        keys.extend((str(n.originator_id), n.originator_version) for n in batch)
        start = batch[-1].id


def check_delivery(stored: list[tuple[str, int]], records: list[Any]) -> dict[str, int]:
    """Every stored event is on the topic, and per aggregate none comes before its predecessor.

    Duplicates (at-least-once) are allowed; returns how many records were duplicates.
    """
    seen: dict[str, int] = defaultdict(int)
    duplicates = 0
    for record in records:
        aggregate = record.key.decode()
        version = int(dict(record.headers)["aggregate_version"])
        assert json.loads(record.value)["originator_version"] == version
        if version <= seen[aggregate]:
            duplicates += 1
            continue
        assert version == seen[aggregate] + 1, (
            f"aggregate {aggregate}: version {version} arrived before {seen[aggregate] + 1}"
        )
        seen[aggregate] = version
    missing = [k for k in stored if seen[k[0]] < k[1]]
    assert not missing, f"{len(missing)} stored events never reached the topic: {missing[:5]}"
    return {"records": len(records), "duplicates": duplicates}


# --- subprocesses ----------------------------------------------------------------------------


def subprocess_env(env: dict[str, str]) -> dict[str, str]:
    """The environment with only the test's own LEADFLOW_* settings."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    return {**inherited, **env}


class CliProcess:
    """``leadflow <args>`` in a subprocess; its JSON log lines go to a file we can search."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log_file = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "leadflow.cli.main", *args],
            env=subprocess_env(env),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=self._log_file,
        )

    def log_events(self) -> Iterator[dict[str, Any]]:
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    def has_logged(self, event: str) -> bool:
        return any(e.get("event") == event for e in self.log_events())

    def wait_for_log(self, event: str, timeout: float = 30.0) -> None:
        def logged() -> bool:
            if self.process.poll() is not None and not self.has_logged(event):
                tail = self.log_path.read_text(errors="replace")[-2000:]
                msg = f"process exited ({self.process.returncode}) before {event!r}:\n{tail}"
                raise AssertionError(msg)
            return self.has_logged(event)

        wait_for(logged, timeout, f"log line {event!r} in {self.log_path}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log_file.close()

    def terminate(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log_file.close()
        return code


# --- a lifecycle workload ----------------------------------------------------------------------

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
BANT = Bant(budget="50k EUR", authority="VP Sales", need="visibility", timeline="Q2")
FIT = {"industry": "software", "employees": 200, "title": "VP Sales", "country": "de"}


def _at(day: float) -> datetime:
    return T0 + timedelta(days=day)


def lifecycle(app: LeadflowApp, n: int, tag: str = "lead") -> list[UUID]:
    """Drive lead ``n`` through one of five paths that touch every public event type."""
    ref = f"{tag}-{n}@example.com"
    deal = f"deal-{tag}-{n}"
    lead_id = app.handle(c.CaptureLead(lead=ref, source="web", attributes=FIT, occurred_at=_at(0)))
    ids = list(lead_id.aggregate_ids)

    def do(command: c.Command) -> None:
        ids.extend(app.handle(command).aggregate_ids)

    path = n % 5
    if path == 4:
        do(c.FastTrack(lead=ref, to_stage="sql", reason="perfect fit demo", occurred_at=_at(1)))
        do(c.OpenDeal(deal=deal, lead=ref, amount=Decimal("900.50"), occurred_at=_at(2)))
        do(c.LoseDeal(deal=deal, reason="budget", competitor="Rival", occurred_at=_at(3)))
        do(c.ReopenDeal(deal=deal, reason="budget back", occurred_at=_at(4)))
        return ids
    for day, kind in enumerate(("demo_request", "webinar_attended"), start=1):
        do(c.RecordEngagement(lead=ref, event_id=f"{ref}-{kind}", kind=kind, occurred_at=_at(day)))
    if app.get_lead(ref).stage == "new":
        do(c.MarkMql(lead=ref, reason="hand-picked", occurred_at=_at(3)))
    if path == 1:
        do(c.RejectLead(lead=ref, reason="not now", occurred_at=_at(4)))
        return ids
    if path == 2:
        do(c.DisqualifyLead(lead=ref, reason="student", occurred_at=_at(4)))
        do(c.ReopenLead(lead=ref, reason="was a mistake", occurred_at=_at(5)))
        return ids
    do(c.AcceptLead(lead=ref, owner="sam", occurred_at=_at(4)))
    if path == 3:
        do(c.RecycleLead(lead=ref, reason="no budget yet", occurred_at=_at(5)))
        return ids
    do(c.QualifyLead(lead=ref, bant=BANT, occurred_at=_at(5)))
    do(c.OpenDeal(deal=deal, lead=ref, amount=Decimal("12500.00"), occurred_at=_at(6)))
    do(c.MoveDeal(deal=deal, stage="needs_analysis", occurred_at=_at(7)))
    do(c.WinDeal(deal=deal, occurred_at=_at(8)))
    return ids


def lifecycle_safe(app: LeadflowApp, n: int, tag: str = "lead") -> None:
    try:
        lifecycle(app, n, tag)
    except DomainError as error:  # pragma: no cover - the paths above are legal
        raise AssertionError(f"lifecycle {n} refused: {error}") from error


def engagement_ids(app: LeadflowApp, lead_ref: str) -> set[str]:
    """The ids of the engagements recorded on a lead (its events keep them; its state
    only counts them)."""
    lead = app.get_lead(lead_ref)
    return {e.engagement_id for e in app.events_of(lead.id) if isinstance(e, EngagementRecorded)}
