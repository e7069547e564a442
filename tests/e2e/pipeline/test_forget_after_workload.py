"""The privacy workload's person is erased (``leadflow forget`` while ingest, relay and
projector run, Kafka mode, SQLite and PostgreSQL): none of their personal values is left
in any file of the data directory, in any table of the PostgreSQL store, or on the
topics whose records leadflow writes for itself; the public topic says ``lead.erased``;
reports are unchanged, ``verify`` holds and ``history`` keeps stages and times.

Records other systems wrote (the engagement topic) or that leadflow keeps for them (the
dead-letter topic, the public qualification topic) expire with their topic's retention
(30 days by default, README "Privacy"), checked here as the topics' configuration.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import psycopg
import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from psycopg import sql

from domain.personal_fields import ERASED_TEXT
from tests.e2e.pipeline.privacy_workload import EMAIL, PERSONAL_VALUES, UNKNOWN_EMAIL, Workload
from tests.integration.consumers.stream_helpers import read_topic

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# the erased person's values (UNKNOWN_EMAIL was never captured: no lead to erase)
ERASED_VALUES = tuple(v.encode() for v in PERSONAL_VALUES if v != UNKNOWN_EMAIL)
THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000


def _found(where: str, data: bytes) -> list[str]:
    return [f"{where}: {value.decode()}" for value in ERASED_VALUES if value in data]


def test_no_file_in_the_data_dir_holds_a_personal_value(privacy_workload: Workload) -> None:
    for database in privacy_workload.data_dir.glob("*.sqlite3"):
        with sqlite3.connect(database) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    files = [p for p in privacy_workload.data_dir.rglob("*") if p.is_file()]
    assert files
    found = [hit for path in files for hit in _found(path.name, path.read_bytes())]
    assert found == []


def test_no_table_of_the_postgresql_store_holds_a_personal_value(
    privacy_workload: Workload,
) -> None:
    store = privacy_workload.pipeline.settings.store
    if store.dsn is None:
        pytest.skip("a SQLite store: its files are searched above")
    found: list[str] = []
    with psycopg.connect(store.dsn) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
            (store.postgres_schema,),
        ).fetchall()
        assert tables
        for (table,) in tables:
            query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(store.postgres_schema, table))
            for row in connection.execute(query):
                data = b"\x00".join(
                    bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row
                )
                found += _found(table, data)
    assert found == []


def _record_bytes(record: Any) -> bytes:
    headers = b"".join(name.encode() + (value or b"") for name, value in record.headers or [])
    return (record.key or b"") + (record.value or b"") + headers


def test_no_record_leadflow_keeps_for_itself_holds_a_personal_value(
    privacy_workload: Workload,
) -> None:
    pipeline = privacy_workload.pipeline
    topics = [pipeline.setup.stream.events_topic, pipeline.settings.audit.topic]
    found: list[str] = []
    for topic in topics:
        assert topic is not None
        records = read_topic(pipeline.bootstrap, topic)
        assert records, topic
        found += [hit for r in records for hit in _found(topic, _record_bytes(r))]
    assert found == []


def test_the_public_topic_says_lead_erased_and_every_topic_expires(
    privacy_workload: Workload,
) -> None:
    pipeline = privacy_workload.pipeline
    stream = pipeline.setup.stream
    records = read_topic(pipeline.bootstrap, stream.qualification_topic)
    erased = [json.loads(r.value) for r in records if dict(r.headers)["type"] == b"lead.erased"]
    assert len(erased) == 1
    assert len(erased[0]["deal_ids"]) == 1

    topics = [stream.events_topic, stream.qualification_topic, stream.dlq_topic]
    topics.append(stream.engagement_topic)
    admin = KafkaAdminClient(bootstrap_servers=pipeline.bootstrap)
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        described = admin.describe_configs(resources, config_filter="all")["topic"]
    finally:
        admin.close()
    retention = {topic: int(described[topic]["retention.ms"]["value"]) for topic in topics}
    assert retention == dict.fromkeys(topics, THIRTY_DAYS_MS)


def test_reports_verify_and_history_after_the_erasure(privacy_workload: Workload) -> None:
    assert privacy_workload.reports_before_forget is not None
    assert privacy_workload.reports_after_forget == privacy_workload.reports_before_forget
    pipeline = privacy_workload.pipeline
    verified = pipeline.run("verify")
    assert verified.code == 0, verified.messages
    unknown = pipeline.run("history", EMAIL)
    assert unknown.code == 1 and "does not exist" in unknown.messages[0], unknown.messages
    history = pipeline.run_json("history", privacy_workload.erased_lead_id)
    assert history["verified"] is True
    events = {(e["aggregate"], e["type"]): e for e in history["events"]}
    assert events["lead", "LeadCaptured"]["data"]["external_id"] == ERASED_TEXT
    assert set(events["lead", "LeadQualifiedAsSQL"]["data"]["bant"].values()) == {ERASED_TEXT}
    assert events["lead", "LeadErased"]["data"]["reason"] == "erasure request lf13-77"
    lead = history["as_of"]["aggregates"][0]
    assert lead["state"]["reached"] == ["new", "mql", "sal", "sql", "converted"]
