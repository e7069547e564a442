"""Topics are created on start when missing, with partitions from settings and each its
own retention: the relay's, the ingest's and the audit topic carry what docs/topics.md
says, read back from the broker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import structlog
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from structlog.testing import capture_logs

from adapters.kafka_retention import FOREVER, THIRTY_DAYS_MS
from adapters.kafka_topics import ensure_topics
from adapters.settings import KafkaSettings
from domain import commands as c
from tests.integration.consumers.stream_helpers import signed, stream_setup, unique

pytestmark = pytest.mark.kafka


def retention_of(
    kafka: KafkaSettings, names: list[str], config: str = "retention.ms"
) -> dict[str, int]:
    admin = KafkaAdminClient(**kafka.client_config())
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        found = admin.describe_configs(resources)["topic"]
        return {name: int(found[name][config]["value"]) for name in names}
    finally:
        admin.close()


def delete(kafka: KafkaSettings, names: list[str]) -> None:
    admin = KafkaAdminClient(**kafka.client_config())
    try:
        admin.delete_topics(names)
    finally:
        admin.close()


def test_missing_topics_are_created_with_settings_and_existing_ones_left_alone(
    kafka_bootstrap: str,
) -> None:
    kafka = KafkaSettings(bootstrap=kafka_bootstrap, partitions=2)
    names = [unique("topics"), unique("topics")]
    retention = {names[0]: 86_400_000, names[1]: FOREVER}
    assert ensure_topics(kafka, retention) == sorted(names)
    bigger = kafka.model_copy(update={"partitions": 5})
    structlog.reset_defaults()  # a level filter another test configured would hide warnings
    with capture_logs() as logs:
        assert ensure_topics(bigger, dict.fromkeys(names, 1)) == [], "existing ones left alone"
    differs = {
        e["topic"]: e["retention_ms"] for e in logs if e["event"] == "topic_retention_differs"
    }
    assert differs == retention, "an existing topic's other retention is named"

    admin = KafkaAdminClient(**kafka.client_config())
    try:
        described = admin.describe_topics(names)
        assert {t["name"]: len(t["partitions"]) for t in described} == dict.fromkeys(names, 2)
    finally:
        admin.close()
    assert retention_of(kafka, names) == retention
    # a bounded topic rolls its segments at least daily, so they can expire on time
    assert retention_of(kafka, names[:1], "segment.ms") == {names[0]: 86_400_000}
    delete(kafka, names)


def test_every_topic_leadflow_creates_gets_its_configured_retention(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    audit = signed(setup, tmp_path_factory.mktemp("keys"))
    kafka = setup.settings.kafka.model_copy(
        update={
            "events_retention_ms": 3_600_000,
            "qualification_retention_ms": 7_200_000,
            "engagement_retention_ms": 10_800_000,
            # the default: bounded, though no setting asks for it
            "dead_letter_retention_ms": KafkaSettings().dead_letter_retention_ms,
        }
    )
    setup.settings = setup.settings.model_copy(update={"kafka": kafka})
    stream = setup.stream
    app = setup.open_app()
    try:
        app.handle(
            c.CaptureLead(lead="ada@example.com", source="web", occurred_at=datetime.now(UTC))
        )
        setup.relay(app).run(once=True)
        setup.ingest(app).run(once=True, max_seconds=30)
    finally:
        app.close()

    expected = {
        stream.events_topic: 3_600_000,
        stream.qualification_topic: 7_200_000,
        stream.engagement_topic: 10_800_000,
        stream.dlq_topic: THIRTY_DAYS_MS,
        audit.topic: FOREVER,
    }
    assert retention_of(kafka, list(expected)) == expected
    delete(kafka, list(expected))
