"""Kafka projectors in the tests: in this process or as separate processes, and waiting
until a read model has caught up with a topic."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from consumers.projection.kafka import KafkaProjector
from consumers.projection.runner import personal_data
from projections.store import ReadModelStore
from service.application import LeadflowApp
from tests.integration.projections.helpers import PYTHON, REPO
from tests.settings_helpers import settings_with


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition's end: the offset its next record will get."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


def wait_caught_up(store: ReadModelStore, bootstrap: str, topic: str, timeout: float = 120) -> None:
    """Until the read model's stored positions reach the end of every partition."""
    ends = end_offsets(bootstrap, topic)
    deadline = time.monotonic() + timeout
    while store.positions(topic) != {p: e for p, e in ends.items() if e}:
        assert time.monotonic() < deadline, f"stored {store.positions(topic)}, ends {ends}"
        time.sleep(0.25)


class ProjectorProcess:
    """``leadflow project`` as a separate process, logging to a file."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str, *args: str) -> None:
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "leadflow", "project", *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log_file,
        )

    def events(self, *names: str) -> list[dict[str, Any]]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [e for e in map(_json, lines) if e.get("event") in names]

    def partitions(self) -> list[str]:
        """The partitions the process consumes now, from its rebalance log lines."""
        owned: list[str] = []
        for event in self.events("partitions_assigned", "partitions_revoked"):
            owned = list(event["seek_to"]) if event["event"] == "partitions_assigned" else []
        return owned

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.log_file.close()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.log_file.close()
        return code

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self.log_file.close()
        return code


def _json(line: str) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def in_process_projector(
    bootstrap: str, store: ReadModelStore, topic: str, group: str, app: LeadflowApp
) -> KafkaProjector:
    """A Kafka projector opening the records' sealed fields with ``app``'s seal."""
    settings = settings_with(kafka={"bootstrap": bootstrap, "partitions": 4})
    options = settings.projector.model_copy(
        update={"topic": topic, "group_id": group, "batch_size": 300, "session_timeout_ms": 6000}
    )
    return KafkaProjector(settings.kafka, store, options, personal_data(app))
