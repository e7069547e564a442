"""``leadflow import``: summary, line numbers and reasons, --strict, idempotent re-import, stdin."""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from domain.commands import COMMAND_NAMES
from leadflow.bootstrap import open_application
from service.application import LeadflowApp
from service.importer import (
    ImportAborted,
    ImportReport,
    ProgressPrinter,
    content_command_id,
    import_commands,
)
from tests.e2e.cli.cli_runner import run_subprocess
from tests.e2e.cli.conftest import Cli
from tests.settings_helpers import settings_with
from tests.store_ids import lead_uuid

ADA_REF = "ada@example.com"
BAD_JSON = (
    '{"command":"capture_lead","lead":"bob@example.com","source":"web" '
    '"occurred_at":"2026-01-05T09:00:00Z"}'
)
MIXED: list[bytes] = [
    b'{"command":"capture_lead","lead":"Ada@Example.com","source":"web",'
    b'"occurred_at":"2026-01-05T09:00:00Z","attributes":{"industry":"software"}}',
    b"   ",
    BAD_JSON.encode(),
    b'{"command":"promote_lead","lead":"ada@example.com","occurred_at":"2026-01-05T10:00:00Z"}',
    b'{"command":"capture_lead","lead":"cy@example.com","occurred_at":"2026-01-05T09:00:00Z"}',
    b'{"command":"accept_lead","lead":"ada@example.com","occurred_at":"2026-01-05T10:00:00Z"}',
    b'{"command":"log_contact","lead":"ada@example.com","channel":"call","outcome":"caf\xe9",'
    b'"occurred_at":"2026-01-05T11:00:00Z"}',
    b'{"command":"mark_mql","lead":"ada@example.com","reason":"asked for a demo",'
    b'"occurred_at":"2026-01-05T12:00:00Z"}',
    b'{"command":"accept_lead","lead":"ada@example.com","owner":"sam",'
    b'"occurred_at":"2026-01-05T13:00:00Z"}',
    b'{"command":"open_deal","deal":"D-1","amount":-5,"occurred_at":"2026-01-05T14:00:00Z"}',
    b'{"command":"log_contact","lead":"ada@example.com","channel":"call","outcome":"booked",'
    b'"command_id":"crm-call-1","occurred_at":"2026-01-05T15:00:00Z"}',
    b'{"command":"open_deal","deal":"D-1","lead":"ada@example.com","amount":"1200.50",'
    b'"fast_track":true,"occurred_at":"2026-01-06T09:00:00Z"}',
    b'{"command":"move_deal","deal":"D-1","stage":"proposal_sent",'
    b'"occurred_at":"2026-01-07T09:00:00Z"}',
]


def expected_rejections(ada: UUID) -> list[str]:
    """The rejections of MIXED, for a store where ada@example.com has the id ``ada``."""
    return [
        f"line 3: not JSON: Expecting ',' delimiter at column {BAD_JSON.index(' ') + 2}",
        f"line 4: unknown command 'promote_lead'; expected one of: {', '.join(COMMAND_NAMES)}",
        "line 5: capture_lead.source: Field required",
        f"line 6: lead 'ada@example.com' ({ada}) is in stage 'new': cannot accept: "
        "sales accepts only an MQL",
        "line 7: not UTF-8: invalid continuation byte: byte 0xe9 at byte "
        f"{MIXED[6].index(0xE9) + 1}",
        "line 10: open_deal.amount: Input should be greater than or equal to 0",
    ]


def write_mixed(path: Path) -> Path:
    path.write_bytes(b"\n".join(MIXED) + b"\n")
    return path


def versions(data_dir: Path) -> dict[UUID, int]:
    """Every aggregate in the store and its version."""
    app = open_application(settings_with(data_dir=data_dir))
    try:
        found: dict[UUID, int] = {}
        for n in app.recorder.select_notifications(start=1, limit=1_000_000):
            aggregate_id = UUID(str(n.originator_id))
            found[aggregate_id] = max(found.get(aggregate_id, 0), n.originator_version)
        return found
    finally:
        app.close()


def test_mixed_file_reports_each_rejected_line_and_applies_the_rest(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    run = cli("import", str(write_mixed(tmp_path / "mixed.jsonl")))

    assert run.code == 1
    assert run.lines == [
        *expected_rejections(lead_uuid(ADA_REF)),
        "applied 6, duplicate 0, rejected 6, total 12",
    ]
    summary = json.loads(run.err.splitlines()[-1])
    assert summary["event"] == "import_finished"
    assert (summary["applied"], summary["rejected"], summary["total"]) == (6, 6, 12)
    app = open_application(settings_with(data_dir=data_dir))
    try:
        lead, deal = app.get_lead("ada@example.com"), app.get_deal("D-1")
        assert (lead.stage, lead.owner, lead.deal_ids) == ("converted", "sam", [deal.id])
        assert (deal.stage, str(deal.amount)) == ("proposal_sent", "1200.50")
        assert app.ledger_entries(["crm-call-1"])["crm-call-1"].refusal is None
    finally:
        app.close()


def test_reimport_reports_every_applied_line_duplicate_and_changes_nothing(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    path = write_mixed(tmp_path / "mixed.jsonl")
    first = cli("import", str(path), "--json")
    before = versions(data_dir)

    second = cli("import", str(path), "--json")

    assert versions(data_dir) == before
    assert len(before) == 2
    one, two = json.loads(first.out), json.loads(second.out)
    assert (one["applied"], one["duplicate"], one["rejected"], one["total"]) == (6, 0, 6, 12)
    assert (two["applied"], two["duplicate"], two["rejected"], two["total"]) == (0, 6, 6, 12)
    assert [r["line"] for r in two["rejections"]] == [r["line"] for r in one["rejections"]]
    assert second.code == 1


def test_strict_stops_at_the_first_rejected_line(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    run = cli("import", str(write_mixed(tmp_path / "mixed.jsonl")), "--strict")

    assert run.code == 1
    assert run.lines == [
        expected_rejections(lead_uuid(ADA_REF))[0],
        "applied 1, duplicate 0, rejected 1, total 2",
        "stopped at line 3 (--strict); before it: 1 applied, 0 duplicate",
    ]
    assert versions(data_dir) == {
        lead_uuid(ADA_REF): 2
    }  # captured and scored; nothing after line 3


def test_strict_stops_at_a_refused_command_without_applying_later_lines(
    data_dir: Path, tmp_path: Path
) -> None:
    lines = [MIXED[0], MIXED[5], MIXED[7]]  # capture, accept (refused: still new), mark_mql

    app = open_application(settings_with(data_dir=data_dir))
    try:
        report = import_commands(lines, app, strict=True)
        assert (report.applied, report.rejected, report.stopped_at) == (1, 1, 2)
        assert app.get_lead("ada@example.com").stage == "new"
    finally:
        app.close()


def test_stdin_dash_through_a_real_process(tmp_path: Path) -> None:
    data = b"\n".join(MIXED) + b"\n"

    first = run_subprocess(tmp_path / "data", "import", "-", stdin=data)
    again = run_subprocess(tmp_path / "data", "import", "-", stdin=data)

    assert first.code == again.code == 1
    ada = lead_uuid(ADA_REF, settings_with(data_dir=tmp_path / "data"))
    assert first.lines == [
        *expected_rejections(ada),
        "applied 6, duplicate 0, rejected 6, total 12",
    ]
    assert again.lines[-1] == "applied 0, duplicate 6, rejected 6, total 12"
    assert "Traceback" not in first.err + again.err


def test_content_hash_ignores_key_order_and_spacing(cli: Cli, tmp_path: Path) -> None:
    same = [
        '{"command": "capture_lead", "lead": "x@y.z", "source": "web", '
        '"occurred_at": "2026-01-05T09:00:00Z"}',
        '{"occurred_at":"2026-01-05T09:00:00Z","source":"web","lead":"x@y.z",'
        '"command":"capture_lead"}',
    ]
    path = tmp_path / "same.jsonl"
    path.write_text("\n".join(same) + "\n", encoding="utf-8")

    run = cli("import", str(path))

    assert run.code == 0
    assert run.lines == ["applied 1, duplicate 1, rejected 0, total 2"]
    assert content_command_id(json.loads(same[0])) == content_command_id(json.loads(same[1]))


def test_byte_order_mark_and_crlf_are_accepted(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + MIXED[0] + b"\r\n" + MIXED[7] + b"\r\n")

    run = cli("import", str(path))

    assert (run.code, run.lines) == (0, ["applied 2, duplicate 0, rejected 0, total 2"])


def test_missing_file_is_one_line_and_creates_nothing(cli: Cli, data_dir: Path) -> None:
    run = cli("import", str(data_dir / "nope.jsonl"))

    assert run.code == 1
    assert run.messages == [
        f"leadflow import: [Errno 2] No such file or directory: '{data_dir / 'nope.jsonl'}'"
    ]
    assert not data_dir.exists()


def _break_inserts(data_dir: Path) -> None:
    """Make every insert into the event store fail the way a broken disk would."""
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        db.execute(
            "CREATE TRIGGER break_inserts BEFORE INSERT ON stored_events "
            "BEGIN INSERT INTO no_such_table VALUES (1); END"
        )


def test_store_failure_aborts_with_what_was_done_and_a_rerun_resumes(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    assert cli("capture-lead", "first@example.com", "--source", "web").code == 0
    _break_inserts(data_dir)
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\n".join([MIXED[2], MIXED[0], MIXED[7]]) + b"\n")

    not_json = expected_rejections(UUID(int=0))[0]  # names no lead
    bad_json = not_json.replace("line 3", "line 1")

    run = cli("import", str(path))

    assert run.code == 1
    assert run.lines == [bad_json, "applied 0, duplicate 0, rejected 1, total 1"]
    assert run.messages == [
        "leadflow import: line 2: OperationalError: no such table: main.no_such_table; "
        "0 lines applied before it; importing the file again resumes "
        "(lines already applied count as duplicates)"
    ]
    with sqlite3.connect(data_dir / "events.sqlite3") as db:
        db.execute("DROP TRIGGER break_inserts")
    rerun = cli("import", str(path))
    assert rerun.lines == [bad_json, "applied 2, duplicate 0, rejected 1, total 3"]


def test_import_aborted_keeps_the_report_of_the_lines_before(data_dir: Path) -> None:
    app = open_application(settings_with(data_dir=data_dir))
    try:
        import_commands([MIXED[0]], app)
        _break_inserts(data_dir)
        with pytest.raises(ImportAborted) as aborted:
            import_commands([MIXED[2], MIXED[10], MIXED[7]], app)
    finally:
        app.close()
    assert aborted.value.line == aborted.value.report.aborted_at == 2
    assert (aborted.value.report.rejected, aborted.value.report.applied) == (1, 0)


@pytest.mark.postgres
def test_import_and_reimport_on_postgresql(postgres_dsn: str, tmp_path: Path) -> None:
    settings = settings_with(postgres_dsn=postgres_dsn, postgres_schema=f"t_{uuid4().hex[:12]}")
    app: LeadflowApp = open_application(settings)
    try:
        first = import_commands(MIXED, app, batch_size=4)
        second = import_commands(MIXED, app)
        lead = app.get_lead("ada@example.com")
        ada = app.ids.lead(ADA_REF)
    finally:
        app.close()
    assert (first.applied, first.duplicate, first.rejected) == (6, 0, 6)
    assert (second.applied, second.duplicate, second.rejected) == (0, 6, 6)
    assert [f"line {r.line}: {r.reason}" for r in first.rejections] == expected_rejections(ada)
    assert lead.stage == "converted"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_rewrites_one_line_on_a_terminal_and_prints_lines_elsewhere() -> None:
    report = ImportReport(applied=1200, duplicate=3, rejected=1, seconds=2.0)
    terminal, pipe = _Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        printer = ProgressPrinter(stream, interval=0)
        printer(report)
        printer(report)
        printer.close()

    line = "1,204 lines (1,200 applied, 3 duplicate, 1 rejected), 602 lines/s"
    assert terminal.getvalue() == f"\r{line}\x1b[K\r{line}\x1b[K\n"
    assert pipe.getvalue() == f"{line}\n{line}\n"
