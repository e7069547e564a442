"""A lead from capture to a won deal through ``leadflow serve`` (a real process, HTTP only):
its history verifies, and the funnel and KPIs equal the CLI's on the same store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.api.served import Served, run_cli, serving

LEAD = "ada@example.com"
DEAL = "D-100"
BANT = {"budget": "50k", "authority": "CTO", "need": "pipeline", "timeline": "Q3"}


def _drive(server: Served) -> None:
    with server.client("sales") as sales, server.client("marketing") as marketing:
        intake = marketing.post(
            "/v1/engagements",
            json={
                "event_id": "form-1",
                "email": LEAD,
                "kind": "form_submit",
                "occurred_at": "2026-03-01T10:00:00Z",
                "attributes": {"company": "Acme", "employees": 120},
            },
        )
        assert intake.status_code == 200, intake.text
        assert intake.json()["results"][0]["status"] == "accepted"
        steps = [
            ("/v1/leads/ada@example.com/mql", {"reason": "demo request"}),
            ("/v1/leads/ada@example.com/accept", {"owner": "bob"}),
            ("/v1/leads/ada@example.com/qualify", {"bant": BANT}),
            ("/v1/deals", {"deal": DEAL, "lead": LEAD, "amount": "12000.50"}),
            ("/v1/deals/D-100/move", {"stage": "proposal_sent"}),
            ("/v1/deals/D-100/win", {}),
        ]
        for path, body in steps:
            answer = sales.post(path, json=body)
            assert answer.status_code == 200, (path, answer.text)
            assert answer.json()["status"] == "applied"
            assert answer.headers["ETag"].strip('"').isdigit()
        deal = sales.get(f"/v1/deals/{DEAL}")
        assert deal.status_code == 200
        assert deal.json()["stage"] == "closed_won"
        assert deal.headers["ETag"] == f'"{deal.json()["version"]}"'
        assert sales.get(f"/v1/leads/{LEAD}").json()["stage"] == "converted"
        actors = {e["actor"] for e in _history(server)["events"]}
        assert actors == {"marketing-key", "sales-key"}  # the keys' names, never a client's


def _history(server: Served) -> dict[str, Any]:
    with server.client("auditor") as auditor:
        answer = auditor.get(f"/v1/leads/{LEAD}/history")
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    return document


def _cli_json(server: Served, *argv: str) -> object:
    done = run_cli(server.env, *argv, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _check(server: Served) -> None:
    _drive(server)
    history = _history(server)
    assert history["verified"] is True
    assert all(chain["ok"] for chain in history["chains"])
    with server.client("auditor") as auditor:
        export = auditor.get(f"/v1/leads/{LEAD}/history/export")
    assert export.status_code == 200
    lines = [json.loads(line) for line in export.text.splitlines()]
    assert [line["record"] for line in lines] == ["event"] * len(history["events"]) + ["summary"]
    assert lines[-1]["verified"] is True
    with server.client("manager") as manager:
        funnel = manager.get("/v1/reports/funnel").json()
        kpis = manager.get("/v1/reports/kpis").json()
        funnel_past = manager.get("/v1/reports/funnel", params={"as_of": "2026-03-02"}).json()
        verify = manager.get("/v1/verify").json()
    assert funnel == _cli_json(server, "funnel")
    assert kpis == _cli_json(server, "kpis")
    assert funnel_past == _cli_json(server, "funnel", "--as-of", "2026-03-02")
    assert kpis["won_deals"] == 1
    assert verify["ok"] is True


def test_capture_to_won_deal_on_sqlite(served: Served) -> None:
    _check(served)


@pytest.mark.postgres
def test_capture_to_won_deal_on_postgres(served_postgres: Served) -> None:
    _check(served_postgres)


@pytest.mark.postgres
@pytest.mark.kafka
def test_serve_in_kafka_mode_takes_commands_and_answers_reports(
    tmp_path: Path, postgres_dsn: str, kafka_bootstrap: str
) -> None:
    """With LEADFLOW_KAFKA_BOOTSTRAP the projector is another process: the API stores
    commands and reads whatever the read model holds, as the CLI's reports do."""
    schema = f"api_kafka_{uuid.uuid4().hex[:10]}"
    with serving(
        tmp_path / "data",
        postgres_dsn=postgres_dsn,
        postgres_schema=schema,
        kafka_bootstrap=kafka_bootstrap,
    ) as server:
        with server.client("sales") as sales:
            captured = sales.post("/v1/leads", json={"lead": "kafka@example.com", "source": "web"})
            assert captured.status_code == 200, captured.text
            assert sales.get("/v1/leads/kafka@example.com").json()["stage"] == "new"
        with server.client("manager") as manager:
            funnel = manager.get("/v1/reports/funnel")
        assert funnel.status_code == 200, funnel.text
        assert funnel.json() == _cli_json(server, "funnel")
