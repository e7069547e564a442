"""Funnel, KPI, stalled and as-of figures equal an independent computation from the
generated command list, on SQLite and on PostgreSQL read models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from projections.catch_up import catch_up
from projections.reports import (
    FunnelFilters,
    funnel_report,
    kpi_report,
    pipeline_positions,
    stalled_report,
)
from projections.reports.as_of import read_model_as_of
from projections.store import ReadModelStore
from tests.integration.projections.conftest import Scenario
from tests.integration.projections.expected import (
    expected_funnel,
    expected_kpis,
    expected_stalled,
    simulate,
)
from tests.integration.projections.helpers import new_read_model

AS_OF_MOMENTS = (datetime(2026, 2, 10, 12, 0, tzinfo=UTC), datetime(2026, 3, 31, 23, 0, tzinfo=UTC))


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], scope="module"
)
def live(
    request: pytest.FixtureRequest, scenario: Scenario, tmp_path_factory: Any
) -> Iterator[ReadModelStore]:
    directory = tmp_path_factory.mktemp("rm")
    store = new_read_model(request, request.param, directory, scenario.app.stage_model)
    assert catch_up(scenario.app, store) == scenario.events
    yield store
    store.close()


def assert_funnel(report: dict[str, Any], expected: dict[str, Any]) -> None:
    assert [s["stage"] for s in report["stages"]] == [
        "new",
        "mql",
        "sal",
        "sql",
        "converted",
        "won",
    ]
    for got, want in zip(report["stages"], expected["stages"], strict=True):
        for key in ("reached", "current", "exited_to_recycled", "exited_to_disqualified"):
            assert got[key] == want[key], (got["stage"], key)
        for key in ("conversion_from_previous", "cumulative_conversion"):
            assert got[key] == pytest.approx(want[key], abs=6e-5), (got["stage"], key)
        for key in ("median_days_in_stage", "p90_days_in_stage"):
            assert got[key] == pytest.approx(want[key], abs=0.006), (got["stage"], key)
    assert report["exits"] == expected["exits"]
    assert report["deals"] == expected["deals"]


def assert_kpis(report: dict[str, Any], expected: dict[str, Any]) -> None:
    for key in ("open_deals", "won_deals", "lost_deals"):
        assert report[key] == expected[key], key
    assert report["win_rate"] == pytest.approx(expected["win_rate"], abs=6e-5)
    for key in (
        "avg_deal_size",
        "avg_sales_cycle_days",
        "sales_velocity_per_day",
        "weighted_pipeline",
    ):
        assert report[key] == pytest.approx(expected[key], abs=0.006), key
    default = {s["stage"]: s for s in report["by_stage"] if s["pipeline"] == "default"}
    for stage, want in expected["by_stage"].items():
        assert default[stage]["count"] == want["count"], stage
        assert default[stage]["value"] == pytest.approx(want["value"], abs=0.006), stage


def test_the_scenario_covers_every_path(live: ReadModelStore) -> None:
    stages = {s.stage: s for s in funnel_report(live).stages}
    assert all(stages[name].current > 0 for name in ("new", "mql", "sal", "sql", "converted"))
    assert all(s.exited_to_recycled or s.exited_to_disqualified for s in list(stages.values())[:4])
    kpis = kpi_report(live)
    assert kpis.open_deals and kpis.won_deals and kpis.lost_deals


def test_funnel_matches_independent_computation(live: ReadModelStore, scenario: Scenario) -> None:
    leads, deals = simulate(scenario.commands)
    assert_funnel(funnel_report(live).model_dump(mode="json"), expected_funnel(leads, deals))


@pytest.mark.parametrize(
    "filters",
    [
        {"cohort": "2026-02"},
        {"source": "web"},
        {"campaign": "brand"},
        {"segment": "enterprise"},
        {"segment": "unknown"},
        {"cohort": "2026-03", "source": "paid_search"},
        {"source": "nowhere"},
    ],
    ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()),
)
def test_filtered_funnel_matches(
    live: ReadModelStore, scenario: Scenario, filters: dict[str, str]
) -> None:
    leads, deals = simulate(scenario.commands)
    report = funnel_report(live, FunnelFilters.model_validate(filters))
    assert_funnel(report.model_dump(mode="json"), expected_funnel(leads, deals, **filters))


def test_kpis_match_independent_computation(live: ReadModelStore, scenario: Scenario) -> None:
    _, deals = simulate(scenario.commands)
    expected = expected_kpis(deals, scenario.app.stage_model)
    assert_kpis(kpi_report(live).model_dump(mode="json"), expected)


@pytest.mark.parametrize("at", AS_OF_MOMENTS, ids=lambda m: m.date().isoformat())
def test_as_of_matches_independent_computation(scenario: Scenario, at: datetime) -> None:
    leads, deals = simulate(scenario.commands, at=at)
    with read_model_as_of(scenario.app, at) as past:
        assert_funnel(funnel_report(past).model_dump(mode="json"), expected_funnel(leads, deals))
        filtered = funnel_report(past, FunnelFilters(cohort="2026-01"))
        assert_funnel(
            filtered.model_dump(mode="json"), expected_funnel(leads, deals, cohort="2026-01")
        )
        assert_kpis(
            kpi_report(past).model_dump(mode="json"), expected_kpis(deals, scenario.app.stage_model)
        )
        stalled = stalled_report(past, at)
    want_leads, want_deals = expected_stalled(leads, deals, scenario.app.stage_model, at)
    assert {s.external_id for s in stalled.leads} == want_leads
    assert {d.external_id.upper() for d in stalled.deals} == want_deals
    assert want_leads and want_deals


def test_as_of_after_everything_equals_live(live: ReadModelStore, scenario: Scenario) -> None:
    with read_model_as_of(scenario.app, datetime(2100, 1, 1, tzinfo=UTC)) as future:
        assert funnel_report(future) == funnel_report(live)
        assert kpi_report(future) == kpi_report(live)


def test_stalled_matches_independent_computation(live: ReadModelStore, scenario: Scenario) -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    leads, deals = simulate(scenario.commands)
    want_leads, want_deals = expected_stalled(leads, deals, scenario.app.stage_model, now)
    report = stalled_report(live, now)
    assert {s.external_id for s in report.leads} == want_leads
    assert {d.external_id.upper() for d in report.deals} == want_deals
    assert report.leads and report.deals
    positions = pipeline_positions(live, limit=10_000, now=now)
    assert {p.external_id for p in positions if p.stalled and p.kind == "lead"} == want_leads
    assert {
        p.external_id.upper() for p in positions if p.stalled and p.kind == "deal"
    } == want_deals


def test_pipeline_positions(live: ReadModelStore, scenario: Scenario) -> None:
    leads, deals = simulate(scenario.commands)
    everything = pipeline_positions(live, limit=10_000)
    assert len(everything) == len(leads) + len(deals)
    assert [p.entered_stage_at for p in everything] == sorted(
        p.entered_stage_at for p in everything
    )
    sal = pipeline_positions(live, kind="lead", stage="sal", limit=10_000)
    assert {p.external_id for p in sal} == {
        ref for ref, lead in leads.items() if lead.stage == "sal"
    }
    assert all(p.funnel_stage == "consideration" for p in sal)
    assert any(p.owner for p in sal)  # accepted ones have an owner; fast-tracked ones not
    open_deals = pipeline_positions(live, kind="deal", stage="needs_analysis", limit=10_000)
    assert len(open_deals) == sum(1 for d in deals.values() if d.stage == "needs_analysis")
    for p in open_deals:
        assert p.amount is not None and p.weighted_amount == pytest.approx(
            p.amount * 0.2, abs=0.006
        )
    assert len(pipeline_positions(live, kind="lead", limit=5)) == 5
    owned = pipeline_positions(live, owner="kim", limit=10_000)
    assert owned and all(p.owner == "kim" for p in owned)


def test_facts_agree_with_the_aggregates(live: ReadModelStore, scenario: Scenario) -> None:
    with live.read() as tx:
        leads = {
            row[0]: row[1:]
            for row in tx.execute(
                "SELECT external_id, stage, owner, score, version, entered_stage_at FROM rm_leads"
            )
        }
        reached: dict[str, set[str]] = {}
        for external_id, stage in tx.execute(
            "SELECT l.external_id, r.stage FROM rm_lead_reached r "
            "JOIN rm_leads l ON l.lead_id = r.lead_id"
        ):
            reached.setdefault(external_id, set()).add(stage)
        deals = {
            row[0]: row[1:]
            for row in tx.execute(
                "SELECT external_id, stage, status, amount_minor, version, lead_id FROM rm_deals"
            )
        }
    for ref, (stage, owner, score, version, entered) in leads.items():
        lead = scenario.app.get_lead(ref)
        assert (stage, owner, score, version) == (lead.stage, lead.owner, lead.score, lead.version)
        assert entered == lead.entered_stage_at.astimezone(UTC).isoformat(timespec="microseconds")
        assert reached[ref] == set(lead.reached), ref
    for ref, (stage, status, amount_minor, version, lead_id) in deals.items():
        deal = scenario.app.get_deal(ref)
        assert (stage, status, version) == (deal.stage, deal.status, deal.version)
        assert amount_minor == int(deal.amount * 100)
        assert lead_id == (str(deal.lead_id) if deal.lead_id else None)
