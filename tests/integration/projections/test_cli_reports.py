"""`leadflow funnel | kpis | pipeline | stalled | project | rebuild | verify`."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from leadflow.bootstrap import load_settings, open_application
from leadflow.cli.main import main
from projections.catch_up import catch_up
from projections.reports import funnel_report, kpi_report
from projections.store import open_scratch_store
from service.application import LeadflowApp
from tests.integration.projections.helpers import (
    Publisher,
    apply_commands,
    create_topic,
    event_store,
)
from tests.integration.projections.scenario import generate_commands

COMMANDS = generate_commands(seed=5, leads=80, direct_deals=2)
FIRST, LATER = COMMANDS[: len(COMMANDS) // 2], COMMANDS[len(COMMANDS) // 2 :]


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--json")
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name in ("LEADFLOW_KAFKA_BOOTSTRAP", "LEADFLOW_POSTGRES_DSN", "LEADFLOW_POSTGRES_SCHEMA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LEADFLOW_LOG_LEVEL", "warning")
    return Cli(capsys)


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli) -> Iterator[LeadflowApp]:
    monkeypatch.setenv("LEADFLOW_DATA_DIR", str(tmp_path))
    _, app = event_store(tmp_path, FIRST)
    cli.capsys.readouterr()  # the store's creation logs (its privacy key); not the CLI's
    yield app
    app.close()


def rebuilt_funnel(app: LeadflowApp) -> dict[str, Any]:
    with open_scratch_store(app.stage_model) as scratch:
        catch_up(app, scratch)
        return funnel_report(scratch).model_dump(mode="json")


def test_reports_catch_up_first_so_they_reflect_everything_stored(
    embedded: LeadflowApp, cli: Cli
) -> None:
    assert cli.json("funnel") == rebuilt_funnel(embedded)
    apply_commands(embedded, LATER)  # e.g. `leadflow import` in between
    assert cli.json("funnel") == rebuilt_funnel(embedded)
    with open_scratch_store(embedded.stage_model) as scratch:
        catch_up(embedded, scratch)
        assert cli.json("kpis") == kpi_report(scratch).model_dump(mode="json")


def test_tables_filters_and_as_of(embedded: LeadflowApp, cli: Cli) -> None:
    code, out, _ = cli("funnel", "--cohort", "2026-02", "--source", "web")
    assert code == 0
    assert "Funnel (cohort=2026-02, source=web)" in out and "converted" in out and "Deals:" in out
    code, out, _ = cli("kpis")
    assert code == 0 and "win rate %" in out and "needs_analysis" in out
    code, out, _ = cli("stalled", "--as-of", "2026-03-01")
    assert code == 0 and "Stalled MQLs as of 2026-03-01 23:59 UTC" in out
    past = cli.json("funnel", "--as-of", "2026-02-01")
    assert past["stages"][0]["reached"] < cli.json("funnel")["stages"][0]["reached"]
    deals = cli.json("pipeline", "--kind", "deal", "--limit", "3")
    assert len(deals) == 3 and {d["kind"] for d in deals} == {"deal"}
    leads = cli.json("pipeline", "--kind", "lead", "--stage", "sal")
    assert leads and all(p["stage"] == "sal" and p["funnel_stage"] for p in leads)
    stalled = cli.json("stalled", "--as-of", "2026-04-01T00:00:00+02:00")
    assert stalled["as_of"] == "2026-04-01T00:00:00+02:00" and stalled["leads"]


@pytest.mark.parametrize(
    "argv",
    [
        ("funnel", "--cohort", "2026-13"),
        ("funnel", "--segment", "huge"),
        ("pipeline", "--limit", "0"),
        ("kpis", "--as-of", "yesterday"),
    ],
)
def test_bad_arguments_are_refused(embedded: LeadflowApp, cli: Cli, argv: tuple[str, ...]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(*argv)
    assert exit_info.value.code == 2
    assert "error: argument" in cli.capsys.readouterr().err


def test_no_event_store_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.setenv("LEADFLOW_DATA_DIR", str(tmp_path / "empty"))
    code, out, err = cli("funnel")
    assert code == 1 and not out
    assert err.startswith("leadflow funnel: no event store at ") and err.count("\n") == 1
    code, _, err = cli("rebuild", "--from-kafka")
    assert code == 1 and "LEADFLOW_KAFKA_BOOTSTRAP" in err


def test_project_rebuild_and_verify(embedded: LeadflowApp, cli: Cli, tmp_path: Path) -> None:
    total = embedded.recorder.max_notification_id() or 0
    assert cli("project") == (0, f"projected {total:,} events\n", "")
    assert cli("project")[1] == "projected 0 events\n"
    apply_commands(embedded, LATER)
    followed = (embedded.recorder.max_notification_id() or 0) - total
    assert cli("project", "--follow", "--max-seconds", "1") == (
        0,
        f"projected {followed:,} events\n",
        "",
    )
    code, out, _ = cli("verify")
    assert code == 0 and out.splitlines()[-1].startswith("verify OK:")

    read_models = sqlite3.connect(tmp_path / "read_models.sqlite3")
    with read_models:
        lead_id = read_models.execute(
            "SELECT lead_id FROM rm_leads WHERE stage = 'sal' ORDER BY lead_id LIMIT 1"
        ).fetchone()[0]
        read_models.execute("UPDATE rm_leads SET stage = 'sql' WHERE lead_id = ?", (lead_id,))
    code, out, _ = cli("verify")
    assert code == 3
    assert f"difference: rm_leads[lead_id={lead_id}]: stage: live='sql' rebuilt='sal'" in out
    assert out.splitlines()[-1].startswith("verify FAILED:")
    assert cli("rebuild")[0] == 0  # from the event store, in embedded mode
    assert cli("verify")[0] == 0
    read_models.close()


def test_verify_detects_an_event_edited_in_the_event_store(
    embedded: LeadflowApp, cli: Cli, tmp_path: Path
) -> None:
    assert cli("project")[0] == 0
    with sqlite3.connect(tmp_path / "events.sqlite3") as events:
        rowid, state = events.execute(
            "SELECT rowid, state FROM stored_events WHERE topic LIKE '%DealStageChanged' "
            'AND CAST(state AS TEXT) LIKE \'%"to_stage":"needs_analysis"%\' ORDER BY rowid'
        ).fetchone()
        edited = bytes(state).replace(b'"to_stage":"needs_analysis"', b'"to_stage":"negotiation"')
        events.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (edited, rowid))
    code, out, _ = cli("verify")
    assert code == 3
    assert "broken chain: aggregate " in out and "the event was altered" in out
    assert "difference: rm_deals[deal_id=" in out and "stage: live='needs_analysis'" in out


@pytest.mark.postgres
def test_postgresql_stores_through_the_cli(
    postgres_dsn: str, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LEADFLOW_POSTGRES_DSN", postgres_dsn)
    monkeypatch.setenv("LEADFLOW_POSTGRES_SCHEMA", schema)
    app = open_application(load_settings())
    try:
        apply_commands(app, FIRST)
        assert cli.json("funnel") == rebuilt_funnel(app)
        assert cli("verify")[0] == 0
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f"UPDATE {schema}.rm_deals SET amount_minor = amount_minor + 1")
        code, out, _ = cli("verify")
        assert code == 3 and "amount_minor: live=" in out
        assert cli("rebuild", "--from-store")[0] == 0
        assert cli("verify")[0] == 0
    finally:
        app.close()


@pytest.mark.kafka
def test_kafka_mode_through_the_cli(
    embedded: LeadflowApp, cli: Cli, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = create_topic(kafka_bootstrap, partitions=3)
    publisher = Publisher(embedded, kafka_bootstrap, topic)
    try:
        publisher.publish_new()
    finally:
        publisher.close()
    monkeypatch.setenv("LEADFLOW_KAFKA_BOOTSTRAP", kafka_bootstrap)
    monkeypatch.setenv("LEADFLOW_PROJECTOR_TOPIC", topic)
    monkeypatch.setenv("LEADFLOW_PROJECTOR_GROUP_ID", f"cli-{uuid.uuid4().hex[:8]}")
    total = embedded.recorder.max_notification_id()
    assert (
        cli("project", "--until-idle", "--max-seconds", "60")[1] == f"projected {total:,} events\n"
    )
    assert cli.json("funnel") == rebuilt_funnel(embedded)
    assert cli("verify")[0] == 0
    # a bounded events topic (the default) no longer holds the oldest events: the store does
    code, out, _ = cli("rebuild")
    assert (code, out) == (0, f"rebuilt the read model from the event store: {total:,} events\n")
    code, _, err = cli("rebuild", "--from-kafka")
    assert code == 1 and "rebuild --from-store" in err
    monkeypatch.setenv("LEADFLOW_KAFKA_EVENTS_RETENTION_MS", "-1")  # the topic is whole
    code, out, _ = cli("rebuild", "--max-seconds", "60")  # Kafka mode: from offset zero
    assert (code, out) == (0, f"rebuilt the read model from Kafka: {total:,} events\n")
    assert cli("verify")[0] == 0
    apply_commands(embedded, LATER)  # stored but not yet relayed: the read model lags
    code, out, _ = cli("verify")
    assert code == 3 and "a read model that lags the event store" in out
