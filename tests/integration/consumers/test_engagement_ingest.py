"""``leadflow ingest`` against the real broker: a mixed stream, a crash, a full replay."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.kafka_topics import ensure_topics
from adapters.store_db import StoreDb
from consumers.ingest.consumer import EngagementIngest
from consumers.ingest.ledger import IngestCounts, IngestLedger
from deploy._common import free_port
from domain import commands as c
from service.application import LeadflowApp
from tests.integration.consumers.engagement_samples import (
    bad_samples,
    expected_ingest_counts,
    valid_samples,
)
from tests.integration.consumers.stream_helpers import (
    CliProcess,
    StreamSetup,
    produce,
    read_topic,
    stream_setup,
    unique,
    wait_for,
)

pytestmark = pytest.mark.kafka


def ledger_counts(setup: StreamSetup, group: str) -> IngestCounts:
    with setup.store_db() as db:
        counts = IngestLedger(db).counts(group)
    return counts.get((group, setup.stream.engagement_topic), IngestCounts())


def store_snapshot(app: LeadflowApp) -> list[tuple[Any, ...]]:
    rows = app.recorder.select_notifications(0, 1_000_000)
    return [(n.id, n.originator_id, n.originator_version, n.topic, n.state) for n in rows]


@pytest.mark.slow
def test_a_mixed_stream_is_counted_exactly_dead_lettered_with_reasons_and_replayable(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    setup.env["LEADFLOW_STREAM_INGEST_SESSION_TIMEOUT_SECONDS"] = "6"
    group, topic = setup.stream.ingest_group, setup.stream.engagement_topic
    app = setup.open_app()
    deal = app.handle(c.OpenDeal(deal="d-1", amount=Decimal(10), occurred_at=datetime.now(UTC)))
    rng = random.Random(11)
    samples = valid_samples(rng, 240) + bad_samples(str(deal.aggregate_ids[0])) * 2
    rng.shuffle(samples)
    half = len(samples) // 2
    ensure_topics(setup.settings.kafka, {topic: setup.settings.kafka.engagement_retention_ms})

    produce(kafka_bootstrap, topic, samples[:half], 0)
    small_batches = {**setup.env, "LEADFLOW_STREAM_INGEST_BATCH_SIZE": "15"}
    first = CliProcess(["ingest"], small_batches, tmp_path / "ingest-1.log")
    first.wait_for_log("ingest_ready")
    wait_for(lambda: ledger_counts(setup, group).consumed > 0, 30, "the first batch")
    time.sleep(rng.uniform(0, 0.1))
    first.kill()  # a crash somewhere in the middle of the first half
    print(f"\nkilled after {ledger_counts(setup, group).consumed} of {half} records")

    second = CliProcess(["ingest"], setup.env, tmp_path / "ingest-2.log")
    produce(kafka_bootstrap, topic, samples[half:], half)
    wait_for(lambda: ledger_counts(setup, group).consumed >= len(samples), 90, "all records judged")
    assert second.process.poll() is None, "the consumer is still running"

    counts = ledger_counts(setup, group)
    print(f"\n{len(samples)} records sent: {counts}")
    assert counts.consumed == len(samples)
    assert counts == expected_ingest_counts(samples)

    letters: dict[int, Any] = {}
    for record in read_topic(kafka_bootstrap, setup.stream.dlq_topic):
        headers = {k: v.decode() for k, v in record.headers}
        assert headers["dlq.reason"].strip(), "every dead letter says why"
        assert headers["origin"] == "test-suite", "original headers are kept"
        assert headers["dlq.source.topic"] == topic
        sample = samples[int(headers["sample"])]
        assert headers["dlq.problem"] == sample.expect, headers["dlq.reason"]
        assert (record.key, record.value) == (sample.key, sample.value), "original bytes"
        letters[int(headers["sample"])] = record
    assert len(letters) == counts.dead_lettered
    assert second.terminate() == 0, "SIGTERM stops the consumer cleanly"

    before = store_snapshot(app)
    replay_group = unique("replay")
    replay = setup.ingest(app, group=replay_group).run(once=True, max_seconds=90)
    assert store_snapshot(app) == before, "reading the topic again changes nothing"
    assert replay == counts
    assert ledger_counts(setup, replay_group) == counts
    app.close()


@pytest.mark.parametrize("gather_ms", [0, 20, 200])
def test_gathering_batches_changes_no_verdict(
    tmp_path: Path, kafka_bootstrap: str, gather_ms: int
) -> None:
    """Whether the broker answers the ingest's fetch at once or holds it to gather a
    batch, every record is judged and applied as before."""
    setup = stream_setup(tmp_path, kafka_bootstrap)
    stream = setup.stream.model_copy(update={"ingest_gather_ms": gather_ms})
    topic = stream.engagement_topic
    samples = valid_samples(random.Random(7), 30, prefix="gather") + bad_samples()
    ensure_topics(setup.settings.kafka, {topic: setup.settings.kafka.engagement_retention_ms})
    produce(kafka_bootstrap, topic, samples, 0)
    app = setup.open_app()
    counts = setup.ingest(app, stream=stream).run(once=True, max_seconds=60)
    assert counts == expected_ingest_counts(samples)
    assert app.get_lead("gather-lead-0@example.com").engagements.count
    app.close()


@pytest.mark.postgres
def test_ingest_into_a_postgres_event_store(
    tmp_path: Path, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap, postgres_dsn)
    topic = setup.stream.engagement_topic
    samples = valid_samples(random.Random(5), 40, prefix="pg") + bad_samples()
    ensure_topics(setup.settings.kafka, {topic: setup.settings.kafka.engagement_retention_ms})
    produce(kafka_bootstrap, topic, samples, 0)
    app = setup.open_app()
    counts = setup.ingest(app).run(once=True, max_seconds=60)
    assert counts == expected_ingest_counts(samples)
    assert ledger_counts(setup, setup.stream.ingest_group) == counts
    assert len(read_topic(kafka_bootstrap, setup.stream.dlq_topic)) == counts.dead_lettered
    lead = app.get_lead("pg-lead-0@example.com")
    assert lead.engagements.count, "engagements reached the lead"
    app.close()


@pytest.mark.postgres
def test_ingest_waits_for_a_store_that_is_away_when_it_starts(
    tmp_path: Path, kafka_bootstrap: str, postgres_dsn: str
) -> None:
    """The broker may come back only for the event store to be gone (a chaos run saw the
    ingest exit then, creating its ledger table): it waits for the store, as it does for
    the broker, until it is stopped."""
    setup = stream_setup(tmp_path, kafka_bootstrap, postgres_dsn)
    away = f"postgresql://leadflow:leadflow@127.0.0.1:{free_port()}/leadflow"
    store_away = setup.settings.store.model_copy(update={"postgres_dsn": SecretStr(away)})
    app = setup.open_app()
    ingest = EngagementIngest(
        app,
        setup.stream,
        setup.settings.kafka,
        open_db=lambda: StoreDb(store_away),
    )
    started = time.monotonic()
    assert ingest.run(max_seconds=3) == IngestCounts()
    assert time.monotonic() - started >= 3
    app.close()


def test_a_run_that_ends_leaves_nothing_to_read_again(tmp_path: Path, kafka_bootstrap: str) -> None:
    """Offsets are committed without waiting for the broker's answer, then waited for when
    the ingest stops: the same group's next run starts after the last record judged."""
    setup = stream_setup(tmp_path, kafka_bootstrap)
    stream = setup.stream.model_copy(update={"ingest_batch_size": 7})  # several polls
    topic = stream.engagement_topic
    samples = valid_samples(random.Random(3), 30, prefix="commit") + bad_samples()
    ensure_topics(setup.settings.kafka, {topic: setup.settings.kafka.engagement_retention_ms})
    produce(kafka_bootstrap, topic, samples, 0)
    app = setup.open_app()
    first = setup.ingest(app, stream=stream).run(once=True, max_seconds=120)
    assert first == expected_ingest_counts(samples)
    again = setup.ingest(app, stream=stream).run(once=True, max_seconds=30)
    assert again == IngestCounts(), "the first run's offsets were all committed"
    app.close()
