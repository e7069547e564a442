"""``leadflow demo`` end to end: commands → events → projectors → reports, on real stores."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from adapters.settings import KafkaSettings, Settings
from domain import commands as c
from leadflow.bootstrap import open_application
from leadflow.demo import QUARTER_END, QUARTER_START, generate_quarter
from leadflow.demo.runner import DemoResult, run_demo
from leadflow.demo.workspace import MARKER
from leadflow.errors import CliError
from projections.reports.funnel import FUNNEL_STAGES
from tests.e2e.cli.cli_runner import LEADFLOW
from tests.e2e.demo.helpers import embedded_env, embedded_settings, run_leadflow
from tests.settings_helpers import settings_with

SEED, LEADS = 42, 200


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, DemoResult]:
    settings = embedded_settings(tmp_path_factory.mktemp("demo"))
    return settings, run_demo(settings, seed=SEED, leads=LEADS)


def test_every_generated_command_is_applied(demo_run: tuple[Settings, DemoResult]) -> None:
    summary = demo_run[1].summary
    assert summary.refused == 0
    assert summary.duplicates == 0
    assert summary.applied == summary.commands == len(generate_quarter(SEED, LEADS))
    assert summary.events > summary.commands
    assert (summary.quarter_start, summary.stalled_as_of) == (QUARTER_START, QUARTER_END)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_seed_generates_only_legal_commands(tmp_path: Path, seed: int) -> None:
    """The generator predicts scoring and stage rules; a refusal means it drifted from them."""
    summary = run_demo(embedded_settings(tmp_path), seed=seed, leads=150).summary
    assert (summary.refused, summary.duplicates) == (0, 0)
    assert summary.applied == summary.commands


def test_the_funnel_has_leads_at_every_stage(demo_run: tuple[Settings, DemoResult]) -> None:
    funnel = demo_run[1].funnel
    reached = {stage.stage: stage.reached for stage in funnel.stages}
    assert list(reached) == list(FUNNEL_STAGES)
    assert reached["new"] == LEADS
    assert all(count > 0 for count in reached.values()), reached
    assert list(reached.values()) == sorted(reached.values(), reverse=True)
    assert funnel.exits.recycled > 0 and funnel.exits.disqualified > 0


def test_deal_figures_agree_with_the_generated_commands(
    demo_run: tuple[Settings, DemoResult],
) -> None:
    mix = Counter(type(x).__name__ for x in generate_quarter(SEED, LEADS))
    deals, kpis = demo_run[1].funnel.deals, demo_run[1].kpis
    assert deals.opened == mix["OpenDeal"]
    assert deals.won == kpis.won_deals == mix["WinDeal"] > 0
    assert kpis.lost_deals > 0 and kpis.open_deals > 0
    assert deals.opened == deals.open + deals.won + deals.lost
    assert kpis.win_rate is not None and 0 < kpis.win_rate < 1
    assert kpis.weighted_pipeline > 0


def test_the_stalled_list_is_not_empty(demo_run: tuple[Settings, DemoResult]) -> None:
    stalled = demo_run[1].stalled
    assert stalled.as_of == QUARTER_END
    assert stalled.leads and stalled.deals
    assert all(lead.hours_waiting > lead.sla_hours for lead in stalled.leads)


def test_rerunning_replaces_the_previous_demo_with_the_same_result(
    demo_run: tuple[Settings, DemoResult],
) -> None:
    settings, first = demo_run
    marker = json.loads((settings.store.data_dir / MARKER).read_text())
    assert marker["events"] == first.summary.events
    again = run_demo(settings, seed=SEED, leads=LEADS)
    assert _without_lead_ids(again.document()) == _without_lead_ids(first.document())


def _without_lead_ids(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the stalled leads' ids left out: a new store's lead ids are random."""
    stalled = document["stalled"]
    leads = [{k: v for k, v in lead.items() if k != "lead_id"} for lead in stalled["leads"]]
    assert leads, "the quarter has stalled leads"
    return {**document, "stalled": {**stalled, "leads": leads}}


def test_other_data_in_the_data_dir_is_never_overwritten(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path)
    app = open_application(settings)
    app.handle(c.CaptureLead(lead="own@lead.example", source="crm", occurred_at=QUARTER_START))
    app.close()
    with pytest.raises(CliError, match="--fresh"):
        run_demo(settings, seed=1, leads=10)
    result = run_demo(settings, seed=1, leads=10, fresh=True)
    assert result.summary.refused == 0
    app = open_application(settings)
    assert app.recorder.max_notification_id() == result.summary.events
    app.close()


def test_events_added_after_a_demo_need_fresh(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path)
    run_demo(settings, seed=1, leads=10)
    app = open_application(settings)
    app.handle(c.CaptureLead(lead="late@lead.example", source="crm", occurred_at=QUARTER_START))
    app.close()
    with pytest.raises(CliError, match="added after the last demo"):
        run_demo(settings, seed=1, leads=10)


def test_kafka_mode_is_refused(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path).model_copy(
        update={"kafka": KafkaSettings(bootstrap="127.0.0.1:9")}
    )
    with pytest.raises(CliError, match="embedded"):
        run_demo(settings, seed=1, leads=10)


@pytest.mark.slow
def test_the_command_prints_funnel_kpis_and_stalled_list(tmp_path: Path) -> None:
    done = run_leadflow(tmp_path, "demo", "--leads", str(LEADS))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for section in ("Funnel", "Pipeline health", "Stalled MQLs", "Stalled deals"):
        assert section in out
    reached = {}
    for stage in FUNNEL_STAGES:
        row = re.search(rf"^{stage}\s+([\d,]+)\s", out, re.MULTILINE)
        assert row, f"no funnel row for {stage}:\n{out}"
        reached[stage] = int(row.group(1).replace(",", ""))
    assert all(count > 0 for count in reached.values()), reached
    assert "demo: 100%" in done.stderr  # progress lines when stderr is not a terminal
    assert (tmp_path / "events.sqlite3").exists() and (tmp_path / MARKER).exists()

    again = run_leadflow(tmp_path, "demo", "--leads", str(LEADS), "--json")
    assert again.returncode == 0, again.stderr
    document = json.loads(again.stdout)
    assert set(document) == {"demo", "funnel", "kpis", "stalled"}
    assert [s["reached"] for s in document["funnel"]["stages"]] == list(reached.values())

    funnel = run_leadflow(tmp_path, "funnel", "--json")
    assert funnel.returncode == 0, funnel.stderr
    assert json.loads(funnel.stdout)["stages"] == document["funnel"]["stages"]


def test_bad_arguments_get_one_clear_line(tmp_path: Path) -> None:
    done = run_leadflow(tmp_path, "demo", "--leads", "0")
    assert done.returncode == 2
    assert "--leads: 0 is not between 1 and" in done.stderr


@pytest.mark.postgres
def test_the_demo_runs_on_postgresql(postgres_dsn: str) -> None:
    schema = f"t_{uuid4().hex[:12]}"
    settings = settings_with(postgres_dsn=postgres_dsn, postgres_schema=schema)
    result = run_demo(settings, seed=3, leads=60)
    assert result.summary.refused == 0
    assert result.funnel.stages[0].reached == 60
    with pytest.raises(CliError, match="needs an empty one"):
        run_demo(settings, seed=3, leads=60)
    with pytest.raises(CliError, match="never deletes PostgreSQL data"):
        run_demo(settings, seed=3, leads=60, fresh=True)


def test_a_reader_that_stops_early_is_not_an_error(demo_run: tuple[Settings, DemoResult]) -> None:
    """``leadflow pipeline | head -1``: the closed pipe ends it quietly, exit 0."""
    data_dir = demo_run[0].store.data_dir
    reader = subprocess.Popen(
        [LEADFLOW, "pipeline"],
        env=embedded_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # before anything is written: every write meets a closed pipe
    errors = reader.stderr.read().decode()
    assert reader.wait(timeout=120) == 0, errors
    assert "Broken pipe" not in errors
    assert "Exception ignored" not in errors
