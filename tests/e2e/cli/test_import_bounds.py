"""``leadflow import`` with input at and beyond the bounds: each bad line is refused with its
number, every other line is applied, and what was applied stays reportable."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.settings import Settings
from domain.errors import UnknownAggregate
from domain.input_limits import IDENTIFIER_RULE
from leadflow.bootstrap import open_application
from tests.e2e.cli.conftest import Cli

RANGE = "from 1970-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z"


def capture(lead: str, **fields: object) -> str:
    line = {
        "command": "capture_lead",
        "lead": lead,
        "source": "web",
        "occurred_at": "2026-01-05T09:00:00Z",
        **fields,
    }
    return json.dumps(line, ensure_ascii=False)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_lines_beyond_the_json_limits_are_refused_and_the_rest_applied(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    deep = "[" * 1000 + "]" * 1000
    lines = [
        capture("a@example.com"),
        capture("b@example.com")[:-1] + ', "attributes": {"x": ' + deep + "}}",
        capture("c@example.com"),
        deep,
        capture("d@example.com")[:-1] + ', "attributes": {"n": ' + "9" * 5000 + "}}",
        capture("e@example.com"),
    ]

    run = cli("import", str(write(tmp_path / "bad.jsonl", lines)))

    assert run.code == 1
    assert run.lines == [
        "line 2: not acceptable JSON: nested far deeper than 8 levels",
        "line 4: not acceptable JSON: nested far deeper than 8 levels",
        "line 5: not acceptable JSON: a number has more than 4300 digits",
        "applied 3, duplicate 0, rejected 3, total 6",
    ]
    assert "Traceback" not in run.err and "unexpected" not in run.err
    app = open_application(Settings(data_dir=data_dir))
    try:
        for lead in ("a@example.com", "c@example.com", "e@example.com"):
            assert app.get_lead(lead).stage == "new"
    finally:
        app.close()


def test_timestamps_out_of_range_are_refused_and_the_reports_still_run(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    lines = [
        capture("a@example.com"),
        capture("far@example.com", occurred_at="9999-12-31T23:59:59-05:00"),
        capture("old@example.com", occurred_at="1969-12-31T23:59:59Z"),
        capture("edge@example.com", occurred_at="2199-12-31T23:59:59Z"),
        capture("offset@example.com", occurred_at="2026-01-05T09:00:00+02:00"),
    ]

    run = cli("import", str(write(tmp_path / "times.jsonl", lines)))

    assert run.lines == [
        "line 2: capture_lead.occurred_at: Value error, 9999-12-31T23:59:59-05:00 is outside "
        f"the accepted range of timestamps, {RANGE}",
        "line 3: capture_lead.occurred_at: Value error, 1969-12-31T23:59:59+00:00 is outside "
        f"the accepted range of timestamps, {RANGE}",
        "applied 3, duplicate 0, rejected 2, total 5",
    ]
    app = open_application(Settings(data_dir=data_dir))
    try:
        assert app.get_lead("offset@example.com").captured_at.isoformat() == (
            "2026-01-05T07:00:00+00:00"
        )
    finally:
        app.close()
    funnel = cli("funnel", "--json")
    assert funnel.code == 0
    assert cli("stalled", "--as-of", "2199-12-31").code == 0
    assert cli("verify").code == 0


@pytest.mark.parametrize("report", ["stalled", "kpis", "funnel"])
@pytest.mark.parametrize("as_of", ["0001-01-01", "9999-12-31T23:59:59-05:00", "2200-01-01"])
def test_as_of_outside_the_range_is_one_line_and_exits_non_zero(
    cli: Cli, capsys: pytest.CaptureFixture[str], report: str, as_of: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli(report, "--as-of", as_of)

    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert errors == [
        f"leadflow {report}: error: argument --as-of: {as_of!r} is outside the accepted "
        f"range, {RANGE}"
    ]


def test_crm_amounts_are_stored_exactly_and_reported_in_cents(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    lines = [
        '{"command":"open_deal","deal":"OPP-1","amount":9225.225,"currency":"PEN",'
        '"occurred_at":"2026-01-05T09:00:00Z"}',
        '{"command":"open_deal","deal":"OPP-2","amount":"1200.50",'
        '"occurred_at":"2026-01-05T09:00:00Z"}',
        '{"command":"win_deal","deal":"OPP-1","amount":"9225.2251",'
        '"occurred_at":"2026-01-06T09:00:00Z"}',
    ]

    run = cli("import", str(write(tmp_path / "amounts.jsonl", lines)))

    assert (run.code, run.lines) == (0, ["applied 3, duplicate 0, rejected 0, total 3"])
    kpis = json.loads(cli("kpis", "--json").out)
    assert (kpis["avg_deal_size"], kpis["weighted_pipeline"]) == (9225.23, 120.05)
    app = open_application(Settings(data_dir=data_dir))
    try:
        deal = app.get_deal("OPP-1")
        assert (deal.stage, deal.amount) == ("closed_won", Decimal("9225.2251"))
    finally:
        app.close()


def ref_refused(line: int, what: str) -> str:
    """The import's line for a lead ref refused for ``what`` at its fourth character."""
    return (
        f"line {line}: capture_lead.lead: Value error, contains {what} at position 3; "
        + IDENTIFIER_RULE
    )


def lead_stages(data_dir: Path, *refs: str) -> list[str | None]:
    """Each lead's stage; None for a lead that does not exist."""
    app = open_application(Settings(data_dir=data_dir))
    try:
        stages: list[str | None] = []
        for ref in refs:
            try:
                stages.append(app.get_lead(ref).stage)
            except UnknownAggregate:
                stages.append(None)
        return stages
    finally:
        app.close()


def test_identifiers_are_normalised_and_invisible_characters_refused(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "Ada@Example.com")
    lines = [
        capture(fullwidth),
        '{"command":"mark_mql","lead":"ada@example.com","occurred_at":"2026-01-06T09:00:00Z"}',
        capture("ada\u200b@example.com"),
        capture("ada\u202e@example.com"),
    ]

    run = cli("import", str(write(tmp_path / "ids.jsonl", lines)))

    assert run.lines == [
        ref_refused(3, "zero-width character U+200B (ZERO WIDTH SPACE)"),
        ref_refused(4, "bidirectional formatting character U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        "applied 2, duplicate 0, rejected 2, total 4",
    ]
    assert lead_stages(data_dir, "ada@example.com") == ["mql"]


def test_a_soft_hyphen_does_not_make_a_second_ada(cli: Cli, data_dir: Path, tmp_path: Path) -> None:
    lines = [capture("ada@example.com"), capture("ada\u00ad@example.com")]

    run = cli("import", str(write(tmp_path / "ids.jsonl", lines)))

    assert run.code == 1
    assert run.lines == [
        ref_refused(2, "format character U+00AD (SOFT HYPHEN)"),
        "applied 1, duplicate 0, rejected 1, total 2",
    ]
    assert lead_stages(data_dir, "ada@example.com", "ada\u00ad@example.com") == ["new", None]


def test_a_look_up_compares_identifiers_as_commands_do(
    cli: Cli, data_dir: Path, tmp_path: Path
) -> None:
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in "Ada@Example.com")
    cli("import", str(write(tmp_path / "ids.jsonl", [capture("ada@example.com")])))

    shown = cli("lead", "show", fullwidth)

    assert shown.code == 0, shown.err
    assert "ada@example.com" in shown.out
