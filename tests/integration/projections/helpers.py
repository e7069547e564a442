"""Shared helpers for projection tests: event stores from command lists, publishing
envelopes to Kafka as the relay does, read-model snapshots for comparisons."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from adapters.event_envelope import envelope_from_notification
from adapters.lead_keys import TABLE as KEYS_TABLE
from adapters.mapper import PydanticMapper
from adapters.privacy_keys import DEFAULT_FILE_NAME, KEY_SETTING
from adapters.settings import Settings
from adapters.store_db import StoreDb
from consumers.contracts.events_topic import to_kafka_record
from domain import commands as c
from domain.stage_model import StageModel
from leadflow.bootstrap import open_application
from projections.schema import FACT_TABLES
from projections.store import PostgresStore, ReadModelStore, SqliteStore
from service.application import LeadflowApp
from tests.settings_helpers import settings_with

REPO = Path(__file__).resolve().parents[3]
PYTHON = sys.executable


def new_read_model(
    request: pytest.FixtureRequest, kind: str, directory: Path, model: StageModel
) -> ReadModelStore:
    """An empty read model: a SQLite file in ``directory``, or (``kind`` "postgresql")
    a schema of its own on the test PostgreSQL."""
    if kind == "sqlite":
        return SqliteStore(directory / "rm.sqlite3", model)
    dsn = request.getfixturevalue("postgres_dsn")
    return PostgresStore(dsn, f"t_{uuid.uuid4().hex[:12]}", model)


def apply_commands(app: LeadflowApp, commands: Sequence[c.Command], chunk: int = 250) -> None:
    """Apply every command; any refusal is a bug in the generator and fails loudly."""
    for start in range(0, len(commands), chunk):
        batch = commands[start : start + chunk]
        for command, outcome in zip(batch, app.handle_many(batch), strict=True):
            assert not isinstance(outcome, Exception), f"{command!r} was refused: {outcome}"


def embedded_settings(data_dir: Path) -> Settings:
    """SQLite stores under ``data_dir``, no Kafka, whatever the environment says."""
    return settings_with(data_dir=data_dir, postgres_dsn=None, kafka={"bootstrap": None})


def event_store(data_dir: Path, commands: Sequence[c.Command] = ()) -> tuple[Settings, LeadflowApp]:
    settings = embedded_settings(data_dir)
    app = open_application(settings)
    apply_commands(app, commands)
    return settings, app


def facts(store: ReadModelStore) -> dict[str, list[tuple[Any, ...]]]:
    """Every fact row of a read model, table by table, in key order."""
    return {table.name: store.rows(table) for table in FACT_TABLES}


def assert_same_facts(actual: ReadModelStore, expected: ReadModelStore) -> None:
    got, want = facts(actual), facts(expected)
    for table in want:
        assert len(got[table]) == len(want[table]), f"{table}: row counts differ"
        for a, b in zip(got[table], want[table], strict=True):
            assert a == b, f"{table}: {a} != {b}"


def create_topic(bootstrap: str, partitions: int = 4) -> str:
    name = f"projection-test-{uuid.uuid4().hex[:10]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)],
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    return name


class Publisher:
    """What the relay does: every stored event, in notification order, keyed by aggregate."""

    def __init__(self, app: LeadflowApp, bootstrap: str, topic: str) -> None:
        self.app = app
        self.topic = topic
        self.position = 0
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
        )

    def publish_new(self, duplicate_every: int = 0) -> int:
        """Publish notifications after the last published one; with ``duplicate_every``
        also re-send every n-th record (at-least-once delivery). Returns how many."""
        mapper = cast(PydanticMapper, self.app.mapper)
        sent = 0
        while True:
            notifications = self.app.recorder.select_notifications(
                start=self.position, limit=500, inclusive_of_start=False
            )
            if not notifications:
                break
            for notification in notifications:
                record = to_kafka_record(envelope_from_notification(mapper, notification))
                copies = 2 if duplicate_every and notification.id % duplicate_every == 0 else 1
                for _ in range(copies):
                    self.producer.send(
                        self.topic, key=record.key, value=record.value, headers=record.headers
                    )
                sent += 1
            self.position = notifications[-1].id
        self.producer.flush()
        return sent

    def close(self) -> None:
        self.producer.close()


def sharing_lead_keys(source: Settings, env: dict[str, str]) -> dict[str, str]:
    """``env`` of a projector process (``projector_env``) with its own store, extended so
    that it opens the sealed fields of ``source``'s events: ``source``'s privacy master
    key, and a copy of ``source``'s lead keys in the process's store (as wrapped, under
    that master key). Call it again after commands that capture new leads."""
    key_file = source.privacy.master_key_file or source.store.data_dir / DEFAULT_FILE_NAME
    shared = {**env, KEY_SETTING: str(key_file)}
    dsn = shared.get("LEADFLOW_POSTGRES_DSN")
    target = settings_with(
        data_dir=Path(shared["LEADFLOW_DATA_DIR"]),
        postgres_dsn=dsn,
        postgres_schema=shared.get("LEADFLOW_POSTGRES_SCHEMA", "public") if dsn else "public",
    )
    privacy = target.privacy.model_copy(update={"master_key_file": key_file})
    open_application(target.model_copy(update={"privacy": privacy})).close()  # its tables
    with StoreDb(source.store) as source_db, StoreDb(target.store) as target_db:
        rows = source_db.execute(
            "SELECT lead_id, nonce, wrapped_key, created_at FROM {t}", (), t=KEYS_TABLE
        )
        target_db.executemany(
            "INSERT INTO {t} (lead_id, nonce, wrapped_key, created_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (lead_id) DO NOTHING",
            rows,
            t=KEYS_TABLE,
        )
    return shared


def projector_env(
    data_dir: Path, bootstrap: str, topic: str, group: str, **extra: str
) -> dict[str, str]:
    """Environment for a projector subprocess (``leadflow project``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(
        LEADFLOW_DATA_DIR=str(data_dir),
        LEADFLOW_KAFKA_BOOTSTRAP=bootstrap,
        LEADFLOW_PROJECTOR_TOPIC=topic,
        LEADFLOW_PROJECTOR_GROUP_ID=group,
        LEADFLOW_PROJECTOR_SESSION_TIMEOUT_MS="6000",
        LEADFLOW_PROJECTOR_HEARTBEAT_INTERVAL_MS="1000",
        LEADFLOW_PROJECTOR_BATCH_SIZE="200",
        LEADFLOW_LOG_LEVEL="info",
        LEADFLOW_LOG_FORMAT="json",
    )
    env.update(extra)
    return env
