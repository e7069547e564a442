"""Topics are created on start when missing, with partitions and retention from settings."""

from __future__ import annotations

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from adapters.kafka_topics import ensure_topics
from adapters.settings import KafkaSettings
from tests.integration.consumers.stream_helpers import unique

pytestmark = pytest.mark.kafka


def test_missing_topics_are_created_with_settings_and_existing_ones_left_alone(
    kafka_bootstrap: str,
) -> None:
    kafka = KafkaSettings(bootstrap=kafka_bootstrap, partitions=2, retention_ms=86_400_000)
    names = [unique("topics"), unique("topics")]
    assert ensure_topics(kafka, names) == sorted(names)
    bigger = kafka.model_copy(update={"partitions": 5})
    assert ensure_topics(bigger, [*names, names[0]]) == [], "existing topics are left alone"

    admin = KafkaAdminClient(**kafka.client_config())
    try:
        described = admin.describe_topics(names)
        assert {t["name"]: len(t["partitions"]) for t in described} == dict.fromkeys(names, 2)
        resource = ConfigResource(ConfigResourceType.TOPIC, names[0])
        configs = admin.describe_configs([resource])["topic"][names[0]]
        assert configs["retention.ms"]["value"] == "86400000"
    finally:
        admin.delete_topics(names)
        admin.close()
