"""Plumbing shared by the stream processes: topics created when missing (partitions,
retention and maximum message size), and the producer settings for acknowledged delivery."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import structlog
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import (
    KafkaError,
    TopicAlreadyExistsError,
)

from adapters.kafka_retention import retention_configs
from adapters.logging import error_text
from adapters.retrying import retry_while_unavailable
from adapters.settings import KafkaSettings

log = structlog.get_logger("leadflow.kafka_topics")


# kafka-python backs off reconnecting up to 30 s by default: a process would notice a
# restarted broker that late. One second is cheap against a single broker.
QUICK_RECONNECT: dict[str, Any] = {"reconnect_backoff_max_ms": 1000}

# The largest record the stream topics take (topic ``max.message.bytes``) and the
# producers send (``max_request_size``). The domain caps command payloads far below it.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588


def is_transient_kafka_error(error: KafkaError) -> bool:
    """kafka-python marks what may succeed when tried again; its bare ``KafkaError`` is an
    unclassified failure (e.g. a connection lost mid-request) and is retried too, since a
    permanent refusal always has its own class."""
    return bool(error.retriable) or type(error) is KafkaError


def read_to_end(consumer: KafkaConsumer) -> bool:
    """Whether the consumer has partitions and has read every one of them to its end."""
    assigned = list(consumer.assignment())
    if not assigned:
        return False
    ends = consumer.end_offsets(assigned)
    return all(consumer.position(tp) >= ends[tp] for tp in assigned)


def acknowledged_delivery(send_timeout_seconds: float) -> dict[str, Any]:
    """Producer settings: idempotent, acks from all in-sync replicas, bounded waiting.

    A send is retried inside kafka-python until ``send_timeout_seconds``; only then does
    it fail, and the caller resends from its last acknowledged position. Creating the
    producer while the broker is away fails after that long too.
    """
    timeout_ms = int(send_timeout_seconds * 1000)
    return {
        **QUICK_RECONNECT,
        "bootstrap_timeout_ms": timeout_ms,
        "acks": "all",
        "enable_idempotence": True,
        "request_timeout_ms": max(500, timeout_ms // 3),
        "delivery_timeout_ms": timeout_ms,
        "max_block_ms": timeout_ms,
        "max_request_size": MAX_MESSAGE_BYTES,
    }


def topic_spec(kafka: KafkaSettings, retention_ms: int) -> dict[str, Any]:
    """How a new topic is created: partitions, replication factor, its retention, and
    records up to ``MAX_MESSAGE_BYTES``."""
    return {
        "num_partitions": kafka.partitions,
        "replication_factor": kafka.replication_factor,
        "configs": {
            **retention_configs(retention_ms),
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
        },
    }


def ensure_topics(kafka: KafkaSettings, retention_ms: Mapping[str, int]) -> list[str]:
    """Create every topic named in ``retention_ms`` that does not exist yet, with that
    ``retention.ms`` (``adapters.kafka_retention``); return those created.

    Existing topics are left exactly as they are (their partition count is never
    changed: that would move keys to other partitions and break per-key order; their
    retention is the operator's to change with ``kafka-configs``: a differing one is
    logged as ``topic_retention_differs``).
    """
    wanted = sorted(retention_ms)
    admin = KafkaAdminClient(**kafka.client_config())
    try:
        existing = set(admin.list_topics())
        created: list[str] = []
        for name in wanted:
            if name in existing:
                _check_retention(admin, name, retention_ms[name])
                continue
            try:
                spec = topic_spec(kafka, retention_ms[name])
                admin.create_topics({name: spec}, wait_for_metadata=True)
            except TopicAlreadyExistsError:  # by another process, or not yet listed
                log.debug("topic_created_concurrently", topic=name)
                _check_retention(admin, name, retention_ms[name])
                continue
            created.append(name)
            log.info(
                "topic_created",
                topic=name,
                partitions=kafka.partitions,
                replication_factor=kafka.replication_factor,
                retention_ms=retention_ms[name],
            )
        return created
    finally:
        admin.close()


def _check_retention(admin: KafkaAdminClient, topic: str, configured_ms: int) -> None:
    """Warn when an existing topic keeps records for another time than configured."""
    actual = _topic_config(admin, topic, "retention.ms")
    if actual is not None and actual != configured_ms:
        log.warning(
            "topic_retention_differs",
            topic=topic,
            retention_ms=actual,
            configured_ms=configured_ms,
            change_with="kafka-configs --alter --entity-type topics --add-config retention.ms=N",
        )


def _topic_config(admin: KafkaAdminClient, topic: str, key: str) -> int | None:
    """The numeric config ``key`` of ``topic``; None when the broker does not say (e.g. no
    DescribeConfigs permission). Raises when unreachable."""
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, topic, {key: None})
        found = admin.describe_configs([resource], config_filter="all")
        return int(found["topic"][topic][key]["value"])
    except KafkaError as error:
        if is_transient_kafka_error(error):
            raise
        log.warning("topic_config_unknown", topic=topic, key=key, error=error_text(error))
        return None
    except (KeyError, TypeError, ValueError) as error:
        log.warning("topic_config_unknown", topic=topic, key=key, error=error_text(error))
        return None


def topic_max_message_bytes(kafka: KafkaSettings, topic: str) -> int | None:
    """The largest record batch ``topic`` takes (its ``max.message.bytes``); None when the
    broker does not say (e.g. no DescribeConfigs permission). Raises when unreachable."""
    admin = KafkaAdminClient(**kafka.client_config())
    try:
        return _topic_config(admin, topic, "max.message.bytes")
    finally:
        admin.close()


def ensure_topics_patiently(
    kafka: KafkaSettings,
    retention_ms: Mapping[str, int],
    stop: threading.Event,
    retry_max_seconds: float,
) -> bool:
    """``ensure_topics``, retried with back-off while the broker is unreachable.

    False when ``stop`` was set before the broker answered.
    """
    wanted = dict(retention_ms)

    def ensured() -> bool:
        ensure_topics(kafka, wanted)
        return True

    done = retry_while_unavailable(
        ensured,
        lambda error: isinstance(error, KafkaError),
        stop.is_set,
        on_retry=lambda error, delay: log.warning(
            "broker_unreachable", error=error_text(error), retry_in=delay
        ),
        max_delay=retry_max_seconds,
    )
    return done is True
