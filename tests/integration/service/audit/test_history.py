"""``leadflow history``: a generated lead's full history, as-of state, export, tampering."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from domain.commands import CaptureLead
from domain.errors import DomainError, UnknownAggregate
from leadflow.bootstrap import open_application
from leadflow.demo import generate_quarter
from leadflow.demo.runner import run_demo
from service.lead_history import LeadHistory, lead_history, parse_as_of
from tests.e2e.demo.helpers import embedded_settings, run_leadflow
from tests.settings_helpers import settings_with

SEED = 42
LEAD_RE = r"[a-z.]+@[a-z]+\.example"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("history")
    run_demo(embedded_settings(path), seed=SEED, leads=40)
    return path


def history_of(data_dir: Path, ref: str, as_of: str | None = None) -> LeadHistory:
    app = open_application(embedded_settings(data_dir))
    try:
        return lead_history(app, ref, parse_as_of(as_of) if as_of else None)
    finally:
        app.close()


def won_lead(data_dir: Path) -> LeadHistory:
    """The first showcase journey: MQL by score, accepted, qualified, deal won."""
    first = generate_quarter(SEED, 1)[0]
    assert isinstance(first, CaptureLead)
    return history_of(data_dir, first.lead)


def minutes_before(moment: datetime | None, minutes: int) -> str:
    assert moment is not None
    return (moment - timedelta(minutes=minutes)).isoformat()


def test_history_lists_every_event_of_the_lead_and_its_deal(data_dir: Path) -> None:
    history = won_lead(data_dir)
    assert history.verified
    kinds = {e.aggregate for e in history.events}
    assert kinds == {"lead", "deal"}
    for kind in kinds:
        versions = [e.version for e in history.events if e.aggregate == kind]
        assert versions == list(range(1, len(versions) + 1))
    types = [e.type for e in history.events]
    for expected in (
        "LeadCaptured",
        "LeadScored",
        "LeadQualifiedAsMQL",
        "LeadAccepted",
        "LeadQualifiedAsSQL",
        "LeadConverted",
        "DealOpened",
        "DealWon",
    ):
        assert expected in types
    assert types.index("LeadConverted") < types.index("DealOpened") < types.index("DealWon")
    for event in history.events:
        assert event.occurred_at is not None and event.recorded_at is not None
        assert event.actor and event.causation_id and event.correlation_id
        assert event.event_id is not None and event.problem is None
    recorded = [e.recorded_at for e in history.events]
    assert recorded == sorted(recorded)  # type: ignore[type-var]
    captured = history.events[0]
    assert captured.data["source"] == "referral"
    assert captured.data["attributes"]["industry"]
    assert [c.describe() for c in history.chains] == [
        f"verified ({c.events_stored} events)" for c in history.chains
    ]


def test_the_lead_is_found_by_email_in_any_case_or_by_uuid(data_dir: Path) -> None:
    history = won_lead(data_dir)
    by_id = history_of(data_dir, str(history.lead_id))
    by_upper = history_of(data_dir, history.external_id.upper())
    assert by_id.events == by_upper.events == history.events


def test_as_of_rebuilds_the_earlier_state(data_dir: Path) -> None:
    history = won_lead(data_dir)
    accepted = next(e for e in history.events if e.type == "LeadAccepted")
    before = history_of(data_dir, history.external_id, minutes_before(accepted.occurred_at, 1))
    lead, deal = before.as_of.aggregates
    assert lead.exists and lead.state is not None
    assert lead.state["stage"] == "mql"
    assert lead.state["reached"] == ["new", "mql"]
    assert not deal.exists and deal.state is None
    assert before.as_of.events_included == lead.events_applied < len(history.events)

    now = history.as_of.aggregates
    assert now[0].state is not None and now[0].state["stage"] == "converted"
    assert now[1].state is not None and now[1].state["status"] == "won"

    nothing = history_of(data_dir, history.external_id, "2025-12-31")
    assert not any(state.exists for state in nothing.as_of.aggregates)


def test_a_bare_as_of_date_means_the_end_of_that_day() -> None:
    assert parse_as_of("2026-02-15") == parse_as_of("2026-02-15T23:59:59.999999Z")
    assert parse_as_of("2026-02-15T10:00") == parse_as_of("2026-02-15T11:00+01:00")
    with pytest.raises(ValueError, match="not an ISO 8601"):
        parse_as_of("15/02/2026")


def test_an_unknown_lead_is_named(data_dir: Path) -> None:
    with pytest.raises(UnknownAggregate, match=r"'nobody@nowhere\.example' does not exist"):
        history_of(data_dir, "nobody@nowhere.example")
    done = run_leadflow(data_dir, "history", "nobody@nowhere.example")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "leadflow history: lead 'nobody@nowhere.example' does not exist"
    ]


def test_a_deal_points_to_its_lead(data_dir: Path) -> None:
    history = won_lead(data_dir)
    deal_id = history.as_of.aggregates[1].aggregate_id
    for ref in ("DEAL-00001", str(deal_id)):
        with pytest.raises(DomainError, match=f"is a deal, not a lead: its lead is '{LEAD_RE}'"):
            history_of(data_dir, ref)


def test_an_export_into_a_missing_directory_is_refused(data_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "missing" / "lead.jsonl"
    done = run_leadflow(
        data_dir, "history", won_lead(data_dir).external_id, "--export", str(target)
    )
    assert done.returncode == 1
    assert f"directory {target.parent} does not exist" in done.stderr


def test_the_command_prints_history_state_and_verified_chains(data_dir: Path) -> None:
    history = won_lead(data_dir)
    accepted = next(e for e in history.events if e.type == "LeadAccepted")
    as_of = minutes_before(accepted.occurred_at, 1)
    done = run_leadflow(data_dir, "history", history.external_id, "--as-of", as_of)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"hash chain of lead {history.external_id}: verified (" in out
    assert "hash chain of deal DEAL-00001: verified (" in out
    assert f"history: {len(history.events)} events in recorded order" in out
    assert "LeadCaptured" in out and "DealWon" in out and "data: {" in out
    assert "stage mql" in out
    assert "deal DEAL-00001: did not exist yet" in out


def test_json_and_export(data_dir: Path, tmp_path: Path) -> None:
    history = won_lead(data_dir)
    export = tmp_path / "audit" / "lead.jsonl"
    export.parent.mkdir()
    done = run_leadflow(data_dir, "history", history.external_id, "--json", "--export", str(export))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["verified"] is True
    assert len(document["events"]) == len(history.events)

    lines = [json.loads(line) for line in export.read_text().splitlines()]
    assert [line["record"] for line in lines] == ["event"] * len(history.events) + ["summary"]
    assert [line["type"] for line in lines[:-1]] == [e.type for e in history.events]
    assert all(line["occurred_at"] and line["recorded_at"] for line in lines[:-1])
    summary = lines[-1]
    assert summary["verified"] is True
    assert summary["events"] == len(history.events)
    assert summary["lead_id"] == str(history.lead_id)
    assert {c["aggregate"] for c in summary["chains"]} == {"lead", "deal"}
    assert not list(export.parent.glob(".lead.jsonl.*"))  # no temporary file left behind


def tamper(data_dir: Path, lead_id: str, version: int, change: bytes | None = None) -> None:
    """Edit one stored event in place, behind leadflow's back."""
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        key = (lead_id.replace("-", ""), version)
        (state,) = db.execute(
            "SELECT state FROM stored_events WHERE originator_id = ? AND originator_version = ?",
            key,
        ).fetchone()
        edited = change if change is not None else state.replace(b'"referral"', b'"outbound"')
        assert edited != state
        db.execute(
            "UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
            (edited, *key),
        )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (None, "stored content does not match its hash"),
        (b"{not json", "cannot be decoded: JSONDecodeError"),
    ],
)
def test_a_tampered_event_breaks_the_chain(
    data_dir: Path, tmp_path: Path, change: bytes | None, problem: str
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(data_dir, copy)
    history = won_lead(copy)
    tamper(copy, str(history.lead_id), 1, change)

    done = run_leadflow(copy, "history", history.external_id)
    assert done.returncode == 3, done.stderr
    assert (
        f"hash chain of lead {history.external_id}: BROKEN at version 1: {problem}" in done.stdout
    )
    assert "hash chain of deal DEAL-00001: verified (" in done.stdout
    assert "Traceback" not in done.stderr

    broken = history_of(copy, history.external_id)
    assert not broken.verified
    assert len(broken.events) == len(history.events)  # nothing hidden


@pytest.mark.postgres
def test_history_on_postgresql(postgres_dsn: str) -> None:
    settings = settings_with(postgres_dsn=postgres_dsn, postgres_schema=f"t_{uuid4().hex[:12]}")
    run_demo(settings, seed=SEED, leads=3)
    first = generate_quarter(SEED, 1)[0]
    assert isinstance(first, CaptureLead)
    app = open_application(settings)
    try:
        history = lead_history(app, first.lead, parse_as_of("2026-01-31"))
    finally:
        app.close()
    assert history.verified
    assert {c.aggregate for c in history.chains} == {"lead", "deal"}
    lead_state = history.as_of.aggregates[0].state
    assert lead_state is not None and lead_state["stage"] == "converted"
