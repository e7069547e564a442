"""Create leadflow's topics when they are missing, with partitions and retention from settings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import structlog
from kafka import KafkaAdminClient
from kafka.errors import TopicAlreadyExistsError

from leadflow.settings import KafkaSettings

log = structlog.get_logger("leadflow.kafka_topics")


def topic_spec(kafka: KafkaSettings) -> dict[str, Any]:
    """How a new topic is created: partitions, replication factor and retention."""
    return {
        "num_partitions": kafka.partitions,
        "replication_factor": kafka.replication_factor,
        "configs": {"retention.ms": str(kafka.retention_ms)},
    }


def ensure_topics(kafka: KafkaSettings, names: Iterable[str]) -> list[str]:
    """Create every topic in ``names`` that does not exist yet; return those created.

    Existing topics are left exactly as they are (their partition count is never
    changed: that would move keys to other partitions and break per-key order).
    """
    wanted = sorted(set(names))
    admin = KafkaAdminClient(**kafka.client_config())
    try:
        existing = set(admin.list_topics())
        created: list[str] = []
        for name in wanted:
            if name in existing:
                continue
            try:
                admin.create_topics({name: topic_spec(kafka)}, wait_for_metadata=True)
            except TopicAlreadyExistsError:
                log.debug("topic_created_concurrently", topic=name)
                continue
            created.append(name)
            log.info(
                "topic_created",
                topic=name,
                partitions=kafka.partitions,
                replication_factor=kafka.replication_factor,
                retention_ms=kafka.retention_ms,
            )
        return created
    finally:
        admin.close()
