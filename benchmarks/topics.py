"""Scratch Kafka topics for one measurement: unique names, created up front, deleted after."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import structlog
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from adapters.kafka_topics import ensure_topics
from adapters.logging import error_text
from adapters.settings import KafkaSettings

log = structlog.get_logger("leadflow.benchmarks.topics")


def unique_topic(label: str) -> str:
    return f"bench.{label}.{uuid4().hex[:10]}"


@contextmanager
def scratch_topics(kafka: KafkaSettings, *labels: str) -> Iterator[list[str]]:
    """New topics (one per label, with leadflow's topic spec); deleted on exit."""
    names = [unique_topic(label) for label in labels]
    ensure_topics(kafka, dict.fromkeys(names, kafka.events_retention_ms))
    try:
        yield names
    finally:
        delete_topics(kafka, names)


def delete_topics(kafka: KafkaSettings, names: list[str]) -> None:
    admin = KafkaAdminClient(**kafka.client_config())
    try:
        admin.delete_topics(names)
    except KafkaError as error:  # a leftover topic costs disk, not correctness
        log.warning("benchmark_topics_not_deleted", topics=names, error=error_text(error))
    finally:
        admin.close()


def with_bootstrap(kafka: KafkaSettings, bootstrap: str) -> KafkaSettings:
    return kafka.model_copy(update={"bootstrap": bootstrap})
