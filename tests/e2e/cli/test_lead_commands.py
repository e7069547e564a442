"""One subcommand per command, ``lead show`` / ``deal show``, and one-line errors."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leadflow.bootstrap import open_application
from leadflow.cli.lead_commands import SUBCOMMANDS
from tests.e2e.cli.cli_runner import CliRun, run_subprocess
from tests.e2e.cli.conftest import Cli
from tests.settings_helpers import settings_with
from tests.store_ids import lead_uuid

VERSION = r"\(version \d+\)"


def assert_applied(run: CliRun, *states: str) -> None:
    """``applied: lead x now in stage s (version n)[; deal ...]`` with the given states."""
    clauses = "; ".join(f"{re.escape(s)} {VERSION}" for s in states)
    assert run.code == 0, run.err
    assert re.fullmatch(f"applied: {clauses}", run.out.strip()), run.out


ADA, BOB = "ada@example.com", "bob@example.com"
# Each step: the arguments, then the state of every aggregate it changed.
SCENARIO: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (
        ("capture-lead", "Ada@Example.com", "--source", "web", "--campaign", "spring",
         "--attr", "industry=software", "--attr", "title=CTO", "--at", "2026-01-05T09:00:00Z"),
        (f"lead {ADA} now in stage new",),
    ),
    (
        ("record-engagement", ADA, "--event-id", "ev-1", "--kind", "webinar_attended",
         "--prop", "topic=pricing", "--at", "2026-01-06T09:00:00Z"),
        (f"lead {ADA} now in stage new",),
    ),
    (
        ("log-contact", ADA, "--channel", "call", "--outcome", "voicemail", "--actor", "alice"),
        (f"lead {ADA} now in stage new",),
    ),
    (("mark-mql", ADA, "--reason", "asked for pricing"), (f"lead {ADA} now in stage mql",)),
    (("accept-lead", ADA, "--owner", "sam"), (f"lead {ADA} now in stage sal",)),
    (
        ("qualify-lead", ADA, "--budget", "50k", "--authority", "VP Sales", "--need", "reporting",
         "--timeline", "Q2"),
        (f"lead {ADA} now in stage sql",),
    ),
    (
        ("open-deal", "D-1", "--amount", "12000.50", "--currency", "USD", "--lead", ADA,
         "--close-date", "2026-03-31"),
        (f"lead {ADA} now in stage converted", "deal D-1 now in stage qualification"),
    ),
    (("move-deal", "D-1", "--stage", "proposal_sent"), ("deal D-1 now in stage proposal_sent",)),
    (
        ("update-deal", "D-1", "--amount", "15000", "--close-date", "2026-04-30"),
        ("deal D-1 now in stage proposal_sent",),
    ),
    (
        ("lose-deal", "D-1", "--reason", "price", "--competitor", "Acme"),
        ("deal D-1 now in stage closed_lost",),
    ),
    (
        ("reopen-deal", "D-1", "--stage", "negotiation", "--reason", "came back"),
        ("deal D-1 now in stage negotiation",),
    ),
    (("win-deal", "D-1", "--amount", "14000"), ("deal D-1 now in stage closed_won",)),
    (("capture-lead", BOB, "--source", "webinar"), (f"lead {BOB} now in stage new",)),
    (("fast-track", BOB, "--to", "mql", "--reason", "demo"), (f"lead {BOB} now in stage mql",)),
    (("reject-lead", BOB, "--reason", "no budget"), (f"lead {BOB} now in stage recycled",)),
    (("mark-mql", BOB), (f"lead {BOB} now in stage mql",)),
    (("recycle-lead", BOB, "--reason", "later"), (f"lead {BOB} now in stage recycled",)),
    (("disqualify-lead", BOB, "--reason", "rival"), (f"lead {BOB} now in stage disqualified",)),
    (("reopen-lead", BOB, "--reason", "new budget"), (f"lead {BOB} now in stage recycled",)),
    (
        ("open-deal", "D-2", "--amount", "500", "--lead", BOB, "--fast-track", "--pipeline",
         "default", "--owner", "kim"),
        (f"lead {BOB} now in stage converted", "deal D-2 now in stage qualification"),
    ),
]  # fmt: skip


def test_every_subcommand_through_main(cli: Cli, data_dir: Path) -> None:
    for argv, states in SCENARIO:
        assert_applied(cli(*argv), *states)

    assert {argv[0] for argv, _ in SCENARIO} == {spec.name for spec in SUBCOMMANDS}
    app = open_application(settings_with(data_dir=data_dir))
    try:
        lead, deal = app.get_lead(ADA), app.get_deal("D-1")
        events = app.events_of(lead_uuid(ADA))
    finally:
        app.close()
    assert lead.owner == "sam"
    assert lead.bant is not None
    assert (lead.bant.need, lead.attributes["title"]) == ("reporting", "CTO")
    assert (deal.status, str(deal.amount), deal.currency, deal.owner) == (
        "won",
        "14000",
        "USD",
        "sam",
    )
    assert events[0].occurred_at == datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert "alice" in {e.actor for e in events}


def test_repeating_a_command_id_changes_nothing(cli: Cli) -> None:
    cli("capture-lead", "ada@example.com", "--source", "web")
    first = cli("log-contact", "ada@example.com", "--channel", "email", "--command-id", "c-1")
    again = cli("log-contact", "ada@example.com", "--channel", "email", "--command-id", "c-1")

    assert_applied(first, "lead ada@example.com now in stage new")
    assert again.code == 0
    assert again.out.strip() == first.out.strip().replace(
        "applied: lead ada@example.com now in",
        "duplicate: nothing changed; lead ada@example.com is in",
    )


def test_lead_show_and_deal_show(cli: Cli) -> None:
    cli("capture-lead", "ada@example.com", "--source", "web", "--campaign", "spring")
    cli("fast-track", "ada@example.com", "--to", "sql", "--reason", "demo request")
    cli("open-deal", "D-1", "--amount", "999.5", "--lead", "ada@example.com", "--owner", "sam")

    lead = cli("lead", "show", "ada@example.com")
    deal = cli("deal", "show", "D-1", "--json")

    assert lead.code == deal.code == 0
    assert lead.lines[0] == f"lead ada@example.com ({lead_uuid('ada@example.com')})"
    rows = {line.split()[0]: line.split(None, 1)[1] for line in lead.lines[1:]}
    assert rows["stage"].startswith("converted since ")
    assert rows["reached"] == "new, mql, sal, sql, converted"
    assert rows["source"] == "web / campaign spring"
    state = json.loads(deal.out)
    assert (state["kind"], state["stage"], state["amount"], state["owner"]) == (
        "deal", "qualification", "999.5", "sam",
    )  # fmt: skip
    assert "causations" not in state
    by_uuid = cli("lead", "show", str(lead_uuid("ada@example.com")), "--json")
    assert json.loads(by_uuid.out)["external_id"] == "ada@example.com"


def test_errors_are_one_line_naming_what_was_wrong(cli: Cli) -> None:
    cli("capture-lead", "ada@example.com", "--source", "web")

    refused = cli("accept-lead", "ada@example.com")
    bad_amount = cli("open-deal", "D-9", "--amount", "-1")
    bad_time = cli("mark-mql", "ada@example.com", "--at", "yesterday")
    unknown = cli("deal", "show", "nope")

    assert refused.code == bad_amount.code == bad_time.code == unknown.code == 1
    assert refused.messages == [
        f"leadflow accept-lead: lead 'ada@example.com' ({lead_uuid('ada@example.com')}) is in "
        "stage 'new': cannot accept: sales accepts only an MQL"
    ]
    assert bad_amount.messages == [
        "leadflow open-deal: --amount: Input should be greater than or equal to 0"
    ]
    assert bad_time.messages[0].startswith(
        "leadflow mark-mql: --at: Input should be a valid datetime"
    )
    assert unknown.messages == ["leadflow deal: deal 'nope' does not exist"]
    assert all(not run.out for run in (refused, bad_amount, bad_time, unknown))


def test_real_process_exit_codes_and_one_line_errors(tmp_path: Path) -> None:
    data = tmp_path / "data"

    captured = run_subprocess(data, "capture-lead", "ada@example.com", "--source", "web")
    refused = run_subprocess(data, "qualify-lead", "ada@example.com", "--budget", "b",
                             "--authority", "a", "--need", "n", "--timeline", "t")  # fmt: skip
    missing = run_subprocess(data, "win-deal", "no-such-deal")

    assert captured.code == 0
    assert captured.out.startswith("applied: lead ada@example.com now in stage new (version ")
    for run in (refused, missing):
        assert run.code == 1
        assert run.out == ""
        assert len(run.messages) == 1
        assert "Traceback" not in run.err
    assert "cannot qualify as SQL" in refused.messages[0]
    assert missing.messages == ["leadflow win-deal: deal 'no-such-deal' does not exist"]


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("1.234", "BHD", "1.234 BHD"),
        ("1000", "JPY", "1,000 JPY"),
        ("9225.225", "PEN", "9,225.225 PEN"),
        ("12000.5", "USD", "12,000.50 USD"),
    ],
)
def test_deal_show_prints_the_amount_as_stored_with_its_currency_s_decimals(
    cli: Cli, amount: str, currency: str, shown: str
) -> None:
    opened = cli("open-deal", "D-AMT", "--amount", amount, "--currency", currency)
    assert opened.code == 0, opened.err
    show = cli("deal", "show", "D-AMT")
    assert shown in show.out, show.out
