"""Records that once stalled ``leadflow ingest``, sent as a new user would (a plain Kafka
client) between good records to the running process: each is dead-lettered with a
reason every header and store takes, and every good record after it is accepted. A
broken store, though, is no record's fault: the ingest stops and says why, neither
retrying for ever nor dead-lettering good records."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from adapters.kafka_topics import ensure_topics
from adapters.storable_text import REASON_MAX_CHARS
from consumers.contracts.engagement import EngagementRecordV1
from consumers.ingest.apply import apply_isolating
from consumers.ingest.ledger import IngestCounts, IngestLedger
from tests.integration.consumers.engagement_samples import encode, valid_record
from tests.integration.consumers.stream_helpers import (
    REPO,
    CliProcess,
    StreamSetup,
    engagement_ids,
    read_topic,
    stream_setup,
    subprocess_env,
    wait_for,
)

GOOD = b'{"event_id": "%s", "email": "%s@example.com", "kind": "demo_request", "occurred_at": "2026-02-01T12:00:00Z"}'  # noqa: E501
HOSTILE: dict[str, bytes] = {
    # an escaped lone surrogate: its reason once broke the dead letter's UTF-8 headers
    "surrogate id": GOOD.replace(b'"%s", "email"', b'"ab\\ud800", "email"'),
    "surrogate value": GOOD.replace(b'"kind"', b'"properties": {"note": "x\\udfff"}, "kind"'),
    "NUL in a field name": GOOD.replace(b'"kind"', b'"bad\\u0000field": 1, "kind"'),
    "NUL byte in the JSON": b'{"event_id": "a\x00b"}',
    "100 KB value": encode(
        valid_record("big-1", "big@example.com", properties={"x": "y" * 100_000})
    ),
}


def _ledger(setup: StreamSetup) -> IngestCounts:
    with setup.store_db() as db:
        counts = IngestLedger(db).counts(setup.stream.ingest_group)
    return counts.get((setup.stream.ingest_group, setup.stream.engagement_topic), IngestCounts())


def _hostile_between_good_records(tmp_path: Path, setup: StreamSetup, broker: str) -> None:
    topic = setup.stream.engagement_topic
    ensure_topics(setup.settings.kafka, {topic: setup.settings.kafka.engagement_retention_ms})
    ingest = CliProcess(["ingest"], setup.env, tmp_path / "ingest.log")
    try:
        ingest.wait_for_log("ingest_ready", timeout=60)
        # one key: one partition, so every good record comes after a hostile one in order
        producer = KafkaProducer(bootstrap_servers=broker, max_request_size=2 * 1024 * 1024)
        goods: list[str] = []
        for number, value in enumerate(HOSTILE.values()):
            for good in (f"before-{number}", f"after-{number}"):
                if good.startswith("after"):
                    producer.send(topic, key=b"user-1", value=value)
                goods.append(good)
                producer.send(topic, key=b"user-1", value=GOOD % (good.encode(), good.encode()))
        producer.flush()
        producer.close()
        sent = len(goods) + len(HOSTILE)
        wait_for(lambda: _ledger(setup).consumed >= sent, 60, "every record judged")
        assert ingest.process.poll() is None, "the ingest is still running"

        assert _ledger(setup) == IngestCounts(accepted=len(goods), dead_lettered=len(HOSTILE))
        letters = read_topic(broker, setup.stream.dlq_topic)
        assert sorted(bytes(r.value) for r in letters) == sorted(HOSTILE.values())
        for letter in letters:
            headers = {k: v.decode("utf-8") for k, v in letter.headers}  # all UTF-8
            reason = headers["dlq.reason"]
            assert reason.strip() and "\x00" not in reason and len(reason) <= REASON_MAX_CHARS
        app = setup.open_app()
        try:
            for good in goods:
                assert good in engagement_ids(app, f"{good}@example.com")
        finally:
            app.close()
        _assert_committed_to_the_end(setup, broker)
        _assert_stream_stats(setup, len(goods), len(HOSTILE))
        assert ingest.terminate() == 0
    finally:
        ingest.kill()


def _assert_committed_to_the_end(setup: StreamSetup, broker: str) -> None:
    topic = setup.stream.engagement_topic
    records = read_topic(broker, topic)
    [partition] = {r.partition for r in records}
    end = records[-1].offset + 1

    def committed() -> int | None:
        # asks the group's coordinator; without subscribing, it does not join the group
        reader = KafkaConsumer(bootstrap_servers=broker, group_id=setup.stream.ingest_group)
        try:
            found = reader.committed(TopicPartition(topic, partition))
        finally:
            reader.close(autocommit=False)
        return None if found is None else int(found)

    wait_for(lambda: committed() == end, 15, f"offset {end} committed")


def _assert_stream_stats(setup: StreamSetup, accepted: int, dead_lettered: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "leadflow.cli.main", "stream-stats", "--json"],
        env=subprocess_env(setup.env),
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    [ingest] = json.loads(done.stdout)["ingest"]
    assert (ingest["accepted"], ingest["dead_lettered"]) == (accepted, dead_lettered)


@pytest.mark.kafka
def test_hostile_records_are_dead_lettered_and_the_good_ones_after_them_accepted(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    _hostile_between_good_records(
        tmp_path, stream_setup(tmp_path, kafka_bootstrap), kafka_bootstrap
    )


@pytest.mark.kafka
@pytest.mark.postgres
def test_the_same_with_a_postgres_event_store(
    tmp_path: Path, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap, postgres_dsn)
    _hostile_between_good_records(tmp_path, setup, kafka_bootstrap)


@pytest.mark.parametrize(
    "error",
    [
        sqlite3.OperationalError("attempt to write a readonly database"),
        sqlite3.OperationalError("no such table: stored_events"),
        psycopg.errors.InsufficientPrivilege(),
    ],
    ids=str,
)
def test_a_broken_store_is_not_blamed_on_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    """Neither retried nor dead-lettered: the ingest stops and says why."""
    app = stream_setup(tmp_path, "127.0.0.1:1").open_app()
    records = [
        (EngagementRecordV1.model_validate(valid_record(f"ro-{i}", f"ro-{i}@example.com")), f"o{i}")
        for i in range(4)
    ]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(app, "handle_many", broken)
    try:
        with pytest.raises(type(error)):
            apply_isolating(app, records, "ingest")
    finally:
        app.close()


@pytest.mark.kafka
def test_the_ingest_stops_on_a_read_only_store_instead_of_retrying(
    tmp_path: Path, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    ensure_topics(
        setup.settings.kafka,
        {setup.stream.engagement_topic: setup.settings.kafka.engagement_retention_ms},
    )
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(setup.stream.engagement_topic, value=GOOD % (b"ro-1", b"ro-1"))
    producer.flush()
    producer.close()
    app = setup.open_app()

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(app, "handle_many", read_only)
    started = time.monotonic()
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            setup.ingest(app).run(once=True, max_seconds=60)
    finally:
        app.close()
    assert time.monotonic() - started < 30, "stopped at once, not after retrying"
    assert _ledger(setup) == IngestCounts(), "no record judged, none dead-lettered"
