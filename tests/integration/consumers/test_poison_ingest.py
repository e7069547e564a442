"""Poison input never stops ``leadflow ingest``: each such record is dead-lettered, the
consumer goes on, and a replay judges every record the same way (real broker)."""

from __future__ import annotations

import hashlib
import random
import threading
import time
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from adapters.kafka_topics import ensure_topics
from adapters.stopping import ProcessStop
from consumers.contracts.engagement import EngagementRecordV1
from consumers.ingest.apply import IngestLimits, apply_isolating
from consumers.ingest.consumer import DLQ_COPY_BYTES
from consumers.ingest.submit import submit_payload
from domain.errors import DomainError
from leadflow.bootstrap import open_application
from service.application import LeadflowApp
from service.unit_of_work import Outcome
from tests.integration.consumers.engagement_samples import (
    Sample,
    bad_samples,
    encode,
    expected_ingest_counts,
    valid_record,
    valid_samples,
)
from tests.integration.consumers.stream_helpers import produce, read_topic, stream_setup, unique
from tests.settings_helpers import settings_with

pytestmark = pytest.mark.kafka

# a record just under the broker's default limit (1 MiB): its dead-letter copy, with the
# dlq.* headers, is over it on a dead-letter topic created with the broker's defaults
NEAR_ONE_MIB = 1_048_400


def create_plain_topic(bootstrap: str, topic: str) -> None:
    """A topic with the broker's default configuration (max.message.bytes ~ 1 MiB)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 1, 1)], wait_for_metadata=True)
    finally:
        admin.close()


@pytest.mark.postgres
def test_poison_records_are_dead_lettered_and_the_ingest_goes_on(
    tmp_path: Path, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap, postgres_dsn)
    topic, dlq = setup.stream.engagement_topic, setup.stream.dlq_topic
    ensure_topics(setup.settings.kafka, {topic: setup.settings.kafka.engagement_retention_ms})
    create_plain_topic(kafka_bootstrap, dlq)
    huge = valid_record("huge-1", "huge@example.com")
    huge["properties"] = {"blob": "x" * NEAR_ONE_MIB}
    huge_value = encode(huge)[:NEAR_ONE_MIB]  # also cut: the reason is its size
    samples = (
        bad_samples()
        + valid_samples(random.Random(3), 20, prefix="poison")
        + [Sample(huge_value, "oversized", label="near 1 MiB")]
    )
    produce(kafka_bootstrap, topic, samples)

    # produced 3 days ago (its Kafka timestamp): 2 days later is too far in its future,
    # though long past by the wall clock
    stamp = datetime.now(UTC) - timedelta(days=3)
    late = valid_record("stamped-1", "stamped@example.com")
    late["occurred_at"] = (stamp + timedelta(days=2)).isoformat()
    stamped = [Sample(encode(late), "too_far_in_future", label="future of its timestamp")]
    produce(kafka_bootstrap, topic, stamped, timestamp_ms=int(stamp.timestamp() * 1000))
    samples += stamped

    app = setup.open_app()
    counts = setup.ingest(app).run(once=True, max_seconds=90)
    assert counts == expected_ingest_counts(samples)

    letters = read_topic(kafka_bootstrap, dlq)
    assert len(letters) == counts.dead_lettered
    problems: dict[str, str] = {}
    for record in letters:
        headers = {k: v.decode() for k, v in record.headers}
        problems[headers["dlq.reason"]] = headers["dlq.problem"]
        if headers.get("dlq.truncated") == "true":
            assert len(record.value) == DLQ_COPY_BYTES
            assert headers["dlq.original_size"] == str(len(huge_value))
            assert headers["dlq.original_sha256"] == hashlib.sha256(huge_value).hexdigest()
            assert huge_value.startswith(record.value)
        else:
            assert "dlq.original_size" not in headers
    assert sum(h == "too_far_in_future" for h in problems.values()) == 2  # + "far future"
    assert any("the record's Kafka timestamp" in reason for reason in problems)
    assert any("nested deeper than 8 levels" in reason for reason in problems)
    assert any("integer out of range (401 digits; at most ±2**53)" in r for r in problems)
    assert any("U+0000" in reason for reason in problems)
    truncated = [r for r in letters if ("dlq.truncated", b"true") in r.headers]
    assert len(truncated) == 1

    replay = setup.ingest(app, group=unique("replay")).run(once=True, max_seconds=90)
    assert replay == counts, "the same verdicts on a replay, whatever the wall clock says"
    app.close()


def test_the_ingest_retries_connecting_instead_of_raising(tmp_path: Path) -> None:
    setup = stream_setup(tmp_path, "127.0.0.1:1")  # nothing listens there
    stream = setup.stream.model_copy(update={"send_timeout_seconds": 2.0})
    app = setup.open_app()
    stop = ProcessStop()
    ingest = setup.ingest(app, stream=stream, stop=stop)
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(ingest._connect()))
    thread.start()
    time.sleep(3)  # at least one failed attempt to bootstrap (2 s) and a back-off
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert result == [None], "stopped while waiting for the broker: no clients, no error"
    app.close()


# --- a failure that is not a refusal ---------------------------------------------------


@pytest.fixture
def sqlite_app(tmp_path: Path) -> typing.Iterator[LeadflowApp]:
    application = open_application(
        settings_with(data_dir=tmp_path / "data", kafka={"bootstrap": None})
    )
    yield application
    application.close()


def _records(count: int) -> list[tuple[EngagementRecordV1, str]]:
    return [
        (
            EngagementRecordV1.model_validate(valid_record(f"iso-{i}", f"iso-{i}@example.com")),
            f"kafka:t/0/{i}",
        )
        for i in range(count)
    ]


def _failing_on(
    app: LeadflowApp, monkeypatch: pytest.MonkeyPatch, lead: str, error: Exception
) -> None:
    """The store's own ``handle_many``, failing whenever a batch touches ``lead``: the
    kind of failure (a bug, a value the database refuses) no validation foresaw."""
    real = app.handle_many

    def handle_many(commands: Any, **kwargs: Any) -> list[Outcome | DomainError]:
        if any(getattr(command, "lead", None) == lead for command in commands):
            raise error
        return real(commands, **kwargs)

    monkeypatch.setattr(app, "handle_many", handle_many)


def test_a_permanent_failure_dead_letters_only_the_record_causing_it(
    sqlite_app: LeadflowApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = _records(9)
    _failing_on(sqlite_app, monkeypatch, "iso-6@example.com", RuntimeError("boom\nsecond line"))
    verdicts = apply_isolating(sqlite_app, records, "ingest")
    assert [v if isinstance(v, str) else v.problem for v in verdicts] == ["applied"] * 6 + [
        "unprocessable"
    ] + ["applied"] * 2
    bad = verdicts[6]
    assert not isinstance(bad, str)
    assert bad.reason == "unprocessable: RuntimeError: boom second line"
    assert sqlite_app.get_lead("iso-8@example.com").engagements.count


def test_a_transient_failure_fails_the_batch_to_be_retried(
    sqlite_app: LeadflowApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = _records(3)
    _failing_on(sqlite_app, monkeypatch, "iso-1@example.com", psycopg.OperationalError("gone"))
    with pytest.raises(psycopg.OperationalError):
        apply_isolating(sqlite_app, records, "ingest")
    monkeypatch.undo()
    assert apply_isolating(sqlite_app, records, "ingest") == ["applied"] * 3


def test_submitted_poison_is_reported_not_raised(sqlite_app: LeadflowApp) -> None:
    limits = IngestLimits(max_bytes=64 * 1024, max_future=timedelta(days=1))
    payload = b"\n".join((s.value or b"") for s in bad_samples() if s.label.startswith("nest"))
    payload += b"\n" + encode(valid_record("fine-1", "fine@example.com"))
    results = submit_payload(sqlite_app, payload, limits)
    assert [r.status for r in results] == ["invalid", "invalid", "accepted"]
    assert all("nested" in (r.reason or "") for r in results[:2])
