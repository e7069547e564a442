"""The command ledger, on SQLite and PostgreSQL: a command with an id is decided once.

A re-import leaves the same state and reports the same refusals; an id reused for other
content is refused naming the id; the same command written differently is one command;
ledger rows of a batch that stores no events are still written; two writers racing with
one id store it once; snapshots from before the ledger (with ``causations``) still load.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from adapters.settings import Settings
from domain import commands as c
from domain.aggregate import Snapshot
from domain.errors import DomainError
from domain.lead import Lead
from leadflow.bootstrap import open_application
from service.application import LeadflowApp
from service.importer import import_commands
from service.unit_of_work import CommandIdReused, RefusedBefore

JAN = datetime(2026, 1, 1, 9, tzinfo=UTC)


def day(n: int) -> str:
    return (JAN + timedelta(days=n - 1)).isoformat().replace("+00:00", "Z")


THREE_LINES = [
    json.dumps(
        {"command": "capture_lead", "lead": "a@x.com", "source": "web", "occurred_at": day(1)}
    ),
    json.dumps({"command": "accept_lead", "lead": "a@x.com", "occurred_at": day(2)}),
    json.dumps({"command": "mark_mql", "lead": "a@x.com", "occurred_at": day(3)}),
]


def test_reimporting_a_file_with_a_refused_line_changes_nothing(store_settings: Settings) -> None:
    with open_application(store_settings) as app:
        first = import_commands(THREE_LINES, app)
        version = app.get_lead("a@x.com").version
    with open_application(store_settings) as fresh:
        second = import_commands(THREE_LINES, fresh)
        lead = fresh.get_lead("a@x.com")

    assert (first.applied, first.duplicate, first.rejected) == (2, 0, 1)
    assert (second.applied, second.duplicate, second.rejected) == (0, 2, 1)
    assert second.rejections == first.rejections
    assert first.rejections[0].line == 2
    assert (lead.stage, lead.version) == ("mql", version)


def test_a_reused_command_id_with_other_content_is_refused_naming_it(app: LeadflowApp) -> None:
    app.handle(c.OpenDeal(deal="D-9", amount=100, occurred_at=JAN, command_id="c-3"))
    results = app.handle_many([c.WinDeal(deal="D-9", occurred_at=JAN, command_id="c-3")])

    refused = results[0]
    assert isinstance(refused, CommandIdReused)
    assert str(refused) == (
        "command id 'c-3' was already used for a different command (open_deal D-9); send a new id"
    )
    assert app.get_deal("D-9").stage != "won"
    # nothing was recorded for the refused reuse: the original entry stands
    assert app.ledger_entries(["c-3"])["c-3"].command == "open_deal D-9"


def test_a_recorded_refusal_is_refused_again_with_its_reason(app: LeadflowApp) -> None:
    accept = c.AcceptLead(lead="late@x.com", occurred_at=JAN, command_id="acc-1")
    first = app.handle_many([accept])[0]
    app.handle(c.CaptureLead(lead="late@x.com", source="web", occurred_at=JAN))
    app.handle(c.MarkMql(lead="late@x.com", occurred_at=JAN))
    again = app.handle_many([accept])[0]

    assert isinstance(first, DomainError) and isinstance(again, RefusedBefore)
    assert str(again) == str(first)
    assert app.get_lead("late@x.com").stage == "mql"


def test_the_same_contact_written_three_ways_is_stored_once(app: LeadflowApp) -> None:
    base = {"command": "log_contact", "lead": "b@x.com", "channel": "call"}
    lines = [
        json.dumps(
            {"command": "capture_lead", "lead": "b@x.com", "source": "web", "occurred_at": day(1)}
        ),
        json.dumps({**base, "occurred_at": "2026-01-02T10:00:00Z"}),
        json.dumps({**base, "occurred_at": "2026-01-02T10:00:00+00:00"}),
        json.dumps({**base, "occurred_at": "2026-01-02T11:00:00+01:00", "actor": None}),
    ]

    report = import_commands(lines, app)

    assert (report.applied, report.duplicate, report.rejected) == (2, 2, 0)
    contacts = [
        e for e in app.events_of(app.resolve_lead("b@x.com")) if "Contact" in type(e).__name__
    ]
    assert len(contacts) == 1


def test_a_batch_of_refusals_alone_records_them(app: LeadflowApp) -> None:
    commands = [
        c.MarkMql(lead="nobody@x.com", occurred_at=JAN, command_id="r-1"),
        c.WinDeal(deal="D-none", occurred_at=JAN, command_id="r-2"),
    ]
    stored = app.recorder.max_notification_id()

    results = app.handle_many(commands)
    entries = app.ledger_entries(["r-1", "r-2"])

    assert all(isinstance(r, DomainError) for r in results)
    assert app.recorder.max_notification_id() == stored
    assert {k: e.refusal for k, e in entries.items()} == {
        k: str(r) for k, r in zip(["r-1", "r-2"], results, strict=True)
    }


def test_two_writers_racing_with_one_id_store_it_once(store_settings: Settings) -> None:
    with open_application(store_settings) as setup:
        setup.handle(c.CaptureLead(lead="race@x.com", source="web", occurred_at=JAN))
    command = c.LogContact(lead="race@x.com", channel="call", occurred_at=JAN, command_id="once")
    statuses: list[str] = []
    start = threading.Barrier(4)

    def write() -> None:
        with open_application(store_settings) as app:
            start.wait()
            statuses.append(app.handle(command).status)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with open_application(store_settings) as app:
        events = app.events_of(app.resolve_lead("race@x.com"))

    assert sorted(statuses) == ["applied", "duplicate", "duplicate", "duplicate"]
    assert sum(e.causation_id == "once" for e in events) == 1


def test_a_snapshot_taken_before_the_ledger_still_loads(app: LeadflowApp) -> None:
    app.handle(c.CaptureLead(lead="old@x.com", source="web", occurred_at=JAN, command_id="k"))
    lead = app.get_lead("old@x.com")
    state = {**lead.model_dump(mode="json"), "causations": ["k", "other"]}
    snapshot = Snapshot(
        originator_id=lead.id,
        originator_version=lead.version,
        timestamp=JAN,
        topic="domain.lead:Lead",
        state=state,
    )

    loaded = Lead.model_validate(snapshot.state)

    assert loaded.model_dump() == lead.model_dump()
