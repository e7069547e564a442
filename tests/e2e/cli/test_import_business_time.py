"""``leadflow import`` keeps business time in order: a change dated before the last stage
change is a line-numbered refusal naming both times, ``backdated`` records it at the last
change with the source's time, late activity is accepted, and no report goes negative."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from domain.aggregate import EventContext
from domain.events import DealOpened, DealWon, EngagementRecorded, LeadAccepted, LeadConverted
from leadflow.bootstrap import open_application
from tests.e2e.cli.conftest import Cli
from tests.settings_helpers import settings_with
from tests.store_ids import deal_uuid, lead_uuid


def line(command: str, occurred_at: str, **fields: Any) -> str:
    return json.dumps({"command": command, "occurred_at": occurred_at, **fields})


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


OUT_OF_ORDER = (
    line("capture_lead", "2026-01-01T09:00:00Z", lead="ada@example.com", source="web"),
    line("mark_mql", "2026-01-03T09:00:00Z", lead="ada@example.com"),
    line("accept_lead", "2025-12-31T09:00:00Z", lead="ada@example.com", owner="sam"),
    line(
        "record_engagement",
        "2025-12-20T09:00:00Z",
        lead="ada@example.com",
        event_id="web-1",
        kind="page_view",
    ),
    line("open_deal", "2026-02-01T09:00:00Z", deal="D-9", amount="1000"),
    line("win_deal", "2026-01-01T09:00:00Z", deal="D-9"),
)


def test_changes_dated_before_the_last_stage_change_are_refused_naming_both_times(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    run = cli("import", str(write(tmp_path / "in.jsonl", *OUT_OF_ORDER)))

    assert run.code == 1
    ada, d9 = lead_uuid("ada@example.com"), deal_uuid("D-9")
    assert run.lines == [
        f"line 3: lead 'ada@example.com' ({ada}) is in stage 'mql' since 2026-01-03T09:00:00Z: "
        "cannot accept it at 2025-12-31T09:00:00Z, before its last stage change; send it "
        "with backdated=true to record it at the last change",
        f"line 6: deal 'D-9' ({d9}) is in stage 'qualification' since 2026-02-01T09:00:00Z: "
        "cannot win it at 2026-01-01T09:00:00Z, before its last stage change; send it with "
        "backdated=true to record it at the last change",
        "applied 4, duplicate 0, rejected 2, total 6",
    ]
    app = open_application(settings_with(data_dir=data_dir))
    try:
        assert app.get_lead("ada@example.com").stage == "mql"
        assert app.get_deal("D-9").status == "open"
        late = [
            e
            for e in app.events_of(app.ids.lead("ada@example.com"))
            if isinstance(e, EngagementRecorded)
        ]
        assert [e.occurred_at for e in late] == [datetime(2025, 12, 20, 9, tzinfo=UTC)]
    finally:
        app.close()


def test_backdated_lines_are_recorded_at_the_last_change_with_their_own_time(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    lines = list(OUT_OF_ORDER)
    for index in (2, 5):
        lines[index] = json.dumps({**json.loads(lines[index]), "backdated": True})

    run = cli("import", str(write(tmp_path / "in.jsonl", *lines)))

    assert (run.code, run.lines) == (0, ["applied 6, duplicate 0, rejected 0, total 6"])
    app = open_application(settings_with(data_dir=data_dir))
    try:
        [accepted] = [
            e for e in app.events_of(app.ids.lead("ada@example.com")) if isinstance(e, LeadAccepted)
        ]
        assert accepted.occurred_at == datetime(2026, 1, 3, 9, tzinfo=UTC)
        assert accepted.backdated_from == datetime(2025, 12, 31, 9, tzinfo=UTC)
        [won] = [e for e in app.events_of(app.ids.deal("D-9")) if isinstance(e, DealWon)]
        assert won.occurred_at == datetime(2026, 2, 1, 9, tzinfo=UTC)
        assert won.backdated_from == datetime(2026, 1, 1, 9, tzinfo=UTC)
        assert app.verify_chain(app.ids.deal("D-9")).ok
    finally:
        app.close()
    kpis = json.loads(cli("kpis", "--json").out)
    assert (kpis["won_deals"], kpis["avg_sales_cycle_days"]) == (1, 0.0)
    history = json.loads(cli("history", "ada@example.com", "--json").out)
    shown = [e for e in history["events"] if e["type"] == "LeadAccepted"]
    assert [e["data"]["backdated_from"] for e in shown] == ["2025-12-31T09:00:00Z"]
    assert all("backdated_from" not in e["data"] for e in history["events"] if e not in shown)


def test_kpis_of_a_store_already_holding_a_deal_won_before_it_opened_are_never_negative(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    """Events written straight to the store, as a store older than the rule may hold them."""
    cli("import", str(write(tmp_path / "in.jsonl", OUT_OF_ORDER[4], _second_deal())))
    app = open_application(settings_with(data_dir=data_dir))
    try:
        deal = app.get_deal("D-9")
        ctx = EventContext(causation_id="old-store", correlation_id="old-store")
        deal.trigger(  # bypasses Deal.win and its rule, as an older leadflow did
            DealWon,
            ctx,
            datetime(2026, 1, 1, 9, tzinfo=UTC),
            from_stage=deal.stage,
            to_stage="closed_won",
            amount=Decimal(1000),
        )
        app.save(deal)
    finally:
        app.close()

    kpis = json.loads(cli("kpis", "--json").out)
    funnel = json.loads(cli("funnel", "--json").out)

    assert kpis["won_deals"] == 1
    assert kpis["avg_sales_cycle_days"] == 0.0
    assert kpis["sales_velocity_per_day"] is None  # a 0-day cycle has no velocity
    assert all(
        (s[key] or 0) >= 0
        for s in funnel["stages"]
        for key in ("median_days_in_stage", "p90_days_in_stage")
    )


def _second_deal() -> str:
    return line("open_deal", "2026-02-02T09:00:00Z", deal="D-10", amount="500")


def test_subcommands_refuse_an_out_of_order_change_in_one_line_and_take_backdated(
    cli: Cli,
) -> None:
    assert cli("open-deal", "D-9", "--amount", "10", "--at", "2026-02-01T09:00:00Z").code == 0

    refused = cli("win-deal", "D-9", "--at", "2026-01-01T09:00:00Z")
    backdated = cli("win-deal", "D-9", "--at", "2026-01-01T09:00:00Z", "--backdated")

    assert refused.code != 0
    assert refused.messages == [
        f"leadflow win-deal: deal 'D-9' ({deal_uuid('D-9')}) is in stage 'qualification' since "
        "2026-02-01T09:00:00Z: cannot win it at 2026-01-01T09:00:00Z, before its last stage "
        "change; send it with backdated=true to record it at the last change"
    ]
    assert backdated.code == 0


def test_a_backdated_conversion_opens_its_deal_at_the_conversion_time(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "in.jsonl",
        line("capture_lead", "2026-01-01T09:00:00Z", lead="ada@example.com", source="web"),
        line(
            "fast_track",
            "2026-01-05T09:00:00Z",
            lead="ada@example.com",
            to_stage="sql",
            reason="referral",
        ),
        line(
            "open_deal",
            "2026-01-03T09:00:00Z",
            deal="D-9",
            lead="ada@example.com",
            amount="10",
            backdated=True,
        ),
    )

    assert cli("import", str(path)).code == 0

    app = open_application(settings_with(data_dir=data_dir))
    try:
        converted = app.events_of(app.ids.lead("ada@example.com"))[-1]
        opened = app.events_of(app.ids.deal("D-9"))[0]
        assert isinstance(converted, LeadConverted)
        assert isinstance(opened, DealOpened)
        jan5, jan3 = datetime(2026, 1, 5, 9, tzinfo=UTC), datetime(2026, 1, 3, 9, tzinfo=UTC)
        assert (converted.occurred_at, converted.backdated_from) == (jan5, jan3)
        assert (opened.occurred_at, opened.backdated_from) == (jan5, jan3)
    finally:
        app.close()
