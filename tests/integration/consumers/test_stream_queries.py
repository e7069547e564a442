"""The ingest ledger on both stores, and the CLI that reads it (``stream-stats``, ``dlq``)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from adapters.settings import Settings
from consumers.ingest.ledger import IngestCounts, IngestLedger, LedgerEntry
from consumers.relay.position import RelayPosition
from leadflow.bootstrap import open_store_db
from leadflow.cli.main import main
from tests.settings_helpers import settings_with


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return settings_with(data_dir=tmp_path / "data")
    dsn = request.getfixturevalue("postgres_dsn")
    return settings_with(postgres_dsn=dsn, postgres_schema=f"t_{uuid.uuid4().hex[:12]}")


def entry(group: str, offset: int, status: str, **extra: str) -> LedgerEntry:
    return LedgerEntry(group, "engagement", offset % 3, offset, status, **extra)  # type: ignore[arg-type]


def test_the_ledger_counts_each_record_once(settings: Settings) -> None:
    with open_store_db(settings) as db:
        ledger = IngestLedger(db)
        first = [
            entry("g", 0, "accepted", event_id="e0"),
            entry("g", 1, "duplicate", event_id="e0"),
            entry("g", 2, "dead_lettered", problem="not_json", reason="not JSON: line 1"),
        ]
        ledger.record(first)
        ledger.record([*first, entry("g", 3, "accepted", event_id="e3")])  # read again
        ledger.record([entry("other", 0, "dead_lettered", problem="empty", reason="empty")])
        assert IngestLedger(db).counts("g") == {("g", "engagement"): IngestCounts(2, 1, 1)}
        assert IngestLedger(db).counts()[("other", "engagement")] == IngestCounts(0, 0, 1)
        letters = ledger.dead_letters(limit=5)
        assert {(x.group, x.offset, x.problem) for x in letters} == {
            ("g", 2, "not_json"),
            ("other", 0, "empty"),
        }
        assert [x.reason for x in ledger.dead_letters("g")] == ["not JSON: line 1"]
        assert len(ledger.dead_letters(limit=1)) == 1


def test_stream_stats_and_dlq_commands(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LEADFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LEADFLOW_LOG_LEVEL", "error")
    monkeypatch.delenv("LEADFLOW_POSTGRES_DSN", raising=False)
    monkeypatch.delenv("LEADFLOW_KAFKA_BOOTSTRAP", raising=False)
    with open_store_db(settings_with(data_dir=tmp_path / "data")) as db:
        IngestLedger(db).record(
            [
                entry("g", 0, "accepted", event_id="e0"),
                entry("g", 1, "dead_lettered", problem="oversized", reason="oversized: 70000"),
            ]
        )
        RelayPosition(db, "leadflow.events.v1").save(0)

    assert main(["stream-stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["ingest"] == [
        {
            "group": "g",
            "topic": "engagement",
            "accepted": 1,
            "duplicate": 0,
            "dead_lettered": 1,
            "consumed": 2,
        }
    ]
    assert stats["relay"] == [{"topic": "leadflow.events.v1", "position": 0, "behind": 0}]

    assert main(["stream-stats"]) == 0
    table = capsys.readouterr().out
    assert "dead-lettered" in table and "leadflow.events.v1" in table

    assert main(["dlq", "--json"]) == 0
    [letter] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (letter["offset"], letter["problem"]) == (1, "oversized")
    assert main(["dlq"]) == 0
    assert "oversized: oversized: 70000" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["relay", "ingest"])
def test_the_stream_processes_need_kafka(tmp_path: Path, monkeypatch, capsys, command) -> None:
    monkeypatch.setenv("LEADFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("LEADFLOW_KAFKA_BOOTSTRAP", raising=False)
    assert main([command, "--once"]) == 1
    error = capsys.readouterr().err
    assert "needs Kafka: set LEADFLOW_KAFKA_BOOTSTRAP" in error
    assert len(error.strip().splitlines()) == 1
