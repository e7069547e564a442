"""Validation of engagement records, and ``leadflow engage`` (no Kafka needed)."""

from __future__ import annotations

import json
import random
import typing
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from pydantic import ValidationError

from consumers.contracts.engagement import (
    EngagementRecordV1,
    InvalidEngagement,
    to_commands,
)
from consumers.contracts.schema_files import REPO_SCHEMAS
from consumers.ingest.apply import IngestLimits, _Planned, _Planner, apply_engagements
from consumers.ingest.submit import split_records, submit_payload
from domain import commands as c
from domain.input_limits import IDENTIFIER_RULE
from domain.scoring import ENGAGEMENT_KINDS, EngagementKind
from leadflow.bootstrap import open_application
from leadflow.cli.main import main
from service.application import LeadflowApp
from tests.integration.consumers.engagement_samples import (
    POISON_LABELS,
    bad_samples,
    encode,
    expected_counts,
    nested,
    valid_record,
    valid_samples,
)
from tests.integration.consumers.stream_helpers import engagement_ids
from tests.settings_helpers import settings_with

LIMITS = IngestLimits(max_bytes=64 * 1024, max_future=timedelta(days=1))


@pytest.fixture
def app(tmp_path: Path) -> typing.Iterator[LeadflowApp]:
    application = open_application(settings_with(data_dir=tmp_path / "data"))
    yield application
    application.close()


def test_the_record_kinds_are_the_domain_kinds() -> None:
    assert typing.get_args(EngagementKind) == ENGAGEMENT_KINDS


@pytest.mark.parametrize("sample", bad_samples(), ids=lambda s: s.label or s.expect)
def test_every_kind_of_bad_input_is_named_with_where_and_why(sample) -> None:
    with pytest.raises(InvalidEngagement) as caught:
        LIMITS.parse(sample.value)
    assert caught.value.problem == sample.expect
    assert len(caught.value.reason) > 20


def test_reasons_say_what_where_and_why() -> None:
    def reason(raw: bytes) -> str:
        with pytest.raises(InvalidEngagement) as caught:
            LIMITS.parse(raw)
        return caught.value.reason

    good = valid_record("e1", "ada@example.com")
    assert reason(b"ab\xffcd") == "not UTF-8: byte 0xff at byte offset 2: invalid start byte"
    assert reason(b'{\n "a": }') == "not JSON: line 2 column 7: Expecting value"
    assert reason(b"[1]") == "not a JSON object: the record is a JSON array: [1]"
    assert "kind: Input should be 'page_view'" in reason(encode({**good, "kind": "fax"}))
    assert "kind: " in reason(encode({**good, "kind": "fax"}))
    assert reason(encode({**good, "extra": 1})).endswith("extra: unknown field")
    assert "event_id: required field is missing" in reason(encode({"kind": "page_view"}))
    assert "names no lead" in reason(encode({k: v for k, v in good.items() if k != "email"}))
    far = datetime.now(UTC) + timedelta(days=2)
    assert "occurred_at: lies more than 1 day after the time of ingest" in reason(
        encode({**good, "occurred_at": far.isoformat()})
    )
    assert reason(b"x" * 70_000) == (
        "oversized: the record has 70000 bytes; the limit is 65536 bytes"
    )


def test_unbounded_values_are_named_with_where_and_why() -> None:
    def reason(label: str) -> str:
        [sample] = [s for s in bad_samples() if s.label == label]
        with pytest.raises(InvalidEngagement) as caught:
            LIMITS.parse(sample.value)
        assert caught.value.problem == "invalid_fields"
        return caught.value.reason.removeprefix("invalid engagement record: record: ")

    assert reason("nested 300 deep") == "properties.a.a.a.a.a.a.a.a: nested deeper than 8 levels"
    assert reason("nested 2000 deep") == "not acceptable JSON: nested far deeper than 8 levels"
    assert reason("employees a 400-digit integer") == (
        "attributes.employees: integer out of range (401 digits; at most ±2**53)"
    )
    assert reason("NUL in id") == "event_id: contains control character U+0000 at position 3"
    assert reason("control character in a key") == (
        "properties.bell\\u0007 (the key): contains control character U+0007 at position 4; "
        + IDENTIFIER_RULE
    )
    assert reason("number out of range") == "properties.n: not a finite number"


@pytest.mark.parametrize(("depth", "allowed"), [(7, True), (8, False)])
def test_records_are_bounded_as_the_commands_they_become(depth: int, allowed: bool) -> None:
    """One set of limits: a record's properties nest exactly as deep as a command's may."""
    raw = encode(valid_record("e1", "ada@example.com"))[:-1] + b', "properties": '
    raw += nested(depth) + b"}"
    properties = json.loads(raw)["properties"]
    command = {
        "command": "record_engagement",
        "lead": "ada@example.com",
        "event_id": "e1",
        "kind": "page_view",
        "occurred_at": "2026-01-01T00:00:00Z",
        "properties": properties,
    }
    if allowed:
        c.COMMAND_ADAPTER.validate_python(command)
        assert LIMITS.parse(raw).properties == properties
    else:
        with pytest.raises(ValidationError, match="nested deeper than 8 levels"):
            c.COMMAND_ADAPTER.validate_python(command)
        with pytest.raises(InvalidEngagement, match="nested deeper than 8 levels"):
            LIMITS.parse(raw)


def test_limits_are_configurable() -> None:
    record = valid_record("e1", "ada@example.com")
    record["occurred_at"] = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    raw = encode(record)
    assert LIMITS.parse(raw).event_id == "e1"
    with pytest.raises(InvalidEngagement, match="lies more than 2 hours after"):
        IngestLimits(max_bytes=64 * 1024, max_future=timedelta(hours=2)).parse(raw)
    with pytest.raises(InvalidEngagement, match="the limit is 100 bytes"):
        IngestLimits(max_bytes=100, max_future=timedelta(days=1)).parse(raw)


def test_a_valid_record_becomes_capture_and_engagement_commands() -> None:
    raw = encode(
        valid_record(
            "mautic-1",
            "Ada@Example.com",
            "form_submit",
            lead="crm-7",
            occurred_at="2026-03-01T10:00:00",
            source="mautic",
            campaign="spring",
            attributes={"company": "Acme", "employees": "1,200", "region": "emea"},
            properties={"form": "demo"},
        )
    )
    record = LIMITS.parse(raw)
    assert record.occurred_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    capture, engage = to_commands(record, "kafka:t/0/5/mautic-1", "ingest")
    assert capture.lead == engage.lead == "crm-7"
    assert capture.attributes == {
        "company": "Acme",
        "employees": "1,200",
        "region": "emea",
        "email": "Ada@Example.com",
    }
    assert (capture.source, capture.campaign) == ("mautic", "spring")
    assert engage.event_id == "mautic-1" and engage.kind == "form_submit"
    assert engage.command_id == "kafka:t/0/5/mautic-1"
    assert capture.command_id == "kafka:t/0/5/mautic-1:capture"
    assert engage.correlation_id == capture.correlation_id == "mautic-1"
    long_origin = "kafka:" + "t" * 240 + "/0/5/x"
    assert len(to_commands(record, long_origin, "ingest")[1].command_id or "") <= 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=20,
)
record_like = st.fixed_dictionaries(
    {},
    optional={
        "event_id": st.one_of(st.text(max_size=20), st.integers()),
        "email": st.one_of(st.emails(), st.text(max_size=10), st.none()),
        "lead": st.one_of(st.text(max_size=10), st.none()),
        "kind": st.one_of(st.sampled_from(ENGAGEMENT_KINDS), st.text(max_size=10)),
        "occurred_at": st.one_of(
            st.datetimes().map(lambda d: d.isoformat()), st.text(max_size=12), st.integers()
        ),
        "attributes": st.one_of(st.dictionaries(st.text(max_size=8), json_values), json_values),
        "properties": json_values,
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(raw=st.one_of(st.binary(max_size=300), json_values.map(encode), record_like.map(encode)))
def test_any_input_is_either_a_record_or_an_invalid_engagement(raw: bytes) -> None:
    try:
        record = LIMITS.parse(raw)
    except InvalidEngagement as bad:
        assert bad.reason and bad.problem
        return
    assert isinstance(record, EngagementRecordV1)
    capture, engage = to_commands(record, "kafka:t/0/1/x", "ingest")
    assert c.COMMAND_ADAPTER.validate_python(engage.model_dump()) == engage
    assert capture.lead == engage.lead


def test_applying_records_is_idempotent_and_reports_duplicates(app: LeadflowApp) -> None:
    samples = valid_samples(random.Random(7), 60)
    records = [(LIMITS.parse(s.value), f"kafka:t/0/{i}") for i, s in enumerate(samples)]
    first = apply_engagements(app, records, "ingest")
    counts = expected_counts(samples)
    assert first.count("applied") == counts["accepted"]
    assert first.count("duplicate") == counts["duplicate"]
    stored = app.recorder.max_notification_id()
    again = apply_engagements(app, records, "ingest")  # the same records read again
    assert again == ["redelivered" if v == "applied" else v for v in first]
    assert app.recorder.max_notification_id() == stored


def test_attributes_decided_on_stale_state_never_overwrite(app: LeadflowApp) -> None:
    """Two ingest members plan a capture of the same new lead; the second stores last."""
    first = valid_record("race-1", "race@example.com", attributes={"industry": "software"})
    second = valid_record(
        "race-2", "race@example.com", attributes={"industry": "retail", "title": "CTO"}
    )
    late = _Planner(app, "ingest").plan(LIMITS.parse(encode(second)), "kafka:t/1/0")
    assert isinstance(late, _Planned)  # planned while the lead did not exist yet
    assert apply_engagements(app, [(LIMITS.parse(encode(first)), "kafka:t/0/0")], "ingest") == [
        "applied"
    ]
    results = app.handle_many(late.commands)
    assert not any(isinstance(r, Exception) for r in results)
    lead = app.get_lead("race@example.com")
    assert lead.attributes["industry"] == "software", "the first value stays"
    assert lead.attributes["title"] == "CTO", "what the lead lacked is filled in"
    assert lead.engagements.count == 2


def test_a_lead_addressed_by_an_unknown_kind_of_id_is_refused(app: LeadflowApp) -> None:
    deal = app.handle(c.OpenDeal(deal="d-1", amount=Decimal(10), occurred_at=datetime.now(UTC)))
    refused = next(s for s in bad_samples(str(deal.aggregate_ids[0])) if s.expect == "refused")
    [verdict] = apply_engagements(app, [(LIMITS.parse(refused.value), "o")], "ingest")
    assert isinstance(verdict, InvalidEngagement)
    assert verdict.problem == "refused"
    assert "refused by the domain: lead" in verdict.reason


def test_split_records_reads_json_lines_or_one_object() -> None:
    pretty = b'\n\n{\n  "event_id": "e1"\n}\n'
    assert list(split_records(pretty)) == [(3, b'{\n  "event_id": "e1"\n}')]
    lines = b'{"a": 1}\n\n{"b": 2}\nnot json\n'
    assert list(split_records(lines)) == [(1, b'{"a": 1}'), (3, b'{"b": 2}'), (4, b"not json")]


def test_submit_reports_each_line(app: LeadflowApp) -> None:
    good = encode(valid_record("e1", "ada@example.com", "demo_request"))
    payload = b"\n".join([good, b"{broken", good, encode(valid_record("e2", "bob@example.com"))])
    results = submit_payload(app, payload, LIMITS)
    assert [(r.line, r.status) for r in results] == [
        (1, "accepted"),
        (2, "invalid"),
        (3, "duplicate"),
        (4, "accepted"),
    ]
    assert results[1].reason == (
        "not JSON: line 1 column 2: Expecting property name enclosed in double quotes"
    )
    again = submit_payload(app, payload, LIMITS)
    assert [r.status for r in again] == ["duplicate", "invalid", "duplicate", "duplicate"]
    assert engagement_ids(app, "ada@example.com") == {"e1"}


def test_engage_cli(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("LEADFLOW_DATA_DIR", str(tmp_path / "cli"))
    monkeypatch.setenv("LEADFLOW_LOG_LEVEL", "error")
    good = tmp_path / "good.jsonl"
    good.write_bytes(encode(valid_record("e1", "ada@example.com")) + b"\n")
    assert main(["engage", "--file", str(good)]) == 0
    assert "1 records: 1 accepted, 0 duplicate, 0 invalid" in capsys.readouterr().out

    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(good.read_bytes() + b"[1]\n")
    assert main(["engage", "--file", str(mixed), "--json"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["line"], r["status"]) for r in lines] == [(1, "duplicate"), (2, "invalid")]

    assert main(["engage", "--file", str(tmp_path / "missing.jsonl")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_the_committed_engagement_schema_agrees_with_the_validation() -> None:
    schema = json.loads((REPO_SCHEMAS / "engagement/v1/engagement.json").read_text())
    validator = Draft202012Validator(schema)
    for sample in valid_samples(random.Random(3), 30):
        assert sample.value is not None
        assert validator.is_valid(json.loads(sample.value))
    for sample in bad_samples():
        if sample.label in POISON_LABELS:
            continue  # the bounds on depth, text and numbers are the validation's alone
        # without the optional rfc3339-validator, jsonschema does not check date-time
        if sample.expect in {"invalid_fields", "not_object"} and sample.label != "bad date":
            assert not validator.is_valid(json.loads(sample.value or b"")), sample.label
