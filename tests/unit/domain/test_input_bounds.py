"""The bounds every command is held to: JSON text, timestamps, amounts and identifiers."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from domain.commands import COMMAND_ADAPTER, CaptureLead, OpenDeal
from domain.input_limits import JsonRefused, in_time_range, load_json

CAPTURE = {
    "command": "capture_lead",
    "lead": "a@example.com",
    "source": "web",
    "occurred_at": "2026-01-01T00:00:00Z",
}
DEAL = {"command": "open_deal", "deal": "D-1", "amount": "100", "occurred_at": "2026-01-01"}
RANGE = "from 1970-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z"


def command(data: dict[str, Any]) -> Any:
    return COMMAND_ADAPTER.validate_python(data)


def fullwidth(text: str) -> str:
    """``text`` in fullwidth forms (U+FF01..U+FF5E), as East Asian input methods type it."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


# --- JSON text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1000 + "]" * 1000,
        '{"attributes": {"x": ' + "[" * 1000 + "]" * 1000 + "}}",
        "[" * 600 + "]" * 600,  # decodes, but deeper than anything may walk recursively
    ],
)
def test_json_nested_far_too_deep_is_refused_not_a_recursion_error(text: str) -> None:
    with pytest.raises(JsonRefused, match="nested far deeper than 8 levels") as refused:
        load_json(text)
    assert refused.value.beyond_limits


def test_a_number_beyond_the_digit_limit_is_refused_not_a_value_error() -> None:
    with pytest.raises(JsonRefused, match="a number has more than 4300 digits") as refused:
        load_json('{"n": ' + "9" * 5000 + "}")
    assert refused.value.beyond_limits


def test_a_key_given_twice_is_refused_when_keys_must_be_unique() -> None:
    text = '{"a": {"lead": "x@example.com", "lead": "y@example.com"}}'
    assert load_json(text) == {"a": {"lead": "y@example.com"}}  # JSON's usual reading
    with pytest.raises(JsonRefused, match='an object has the key "lead" twice'):
        load_json(text, unique_keys=True)
    assert load_json('[{"a": 1}, {"a": 2}]', unique_keys=True) == [{"a": 1}, {"a": 2}]


def test_nan_is_not_json_and_ordinary_json_decodes() -> None:
    with pytest.raises(JsonRefused, match="NaN is not valid JSON") as refused:
        load_json('{"n": NaN}')
    assert not refused.value.beyond_limits
    with pytest.raises(json.JSONDecodeError):
        load_json('{"n": ')
    nested = "[" * 300 + "]" * 300  # bounded later by the fields' own rules, with a path
    assert load_json('{"a": [1, {"b": 2.5}], "n": ' + nested + "}")["a"] == [1, {"b": 2.5}]


# --- timestamps ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T12:00:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),  # naive is UTC
        ("1970-01-01T00:00:00Z", datetime(1970, 1, 1, tzinfo=UTC)),
        ("2199-12-31T23:59:59.999999Z", datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("1970-01-01T01:00:00+01:00", datetime(1970, 1, 1, tzinfo=UTC)),
    ],
)
def test_timestamps_are_carried_in_utc(given: str, stored: datetime) -> None:
    occurred_at = command({**CAPTURE, "occurred_at": given}).occurred_at
    assert occurred_at == stored and occurred_at.utcoffset() is not None
    assert occurred_at.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    "given",
    [
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:59:59+01:00",
        "2200-01-01T00:00:00Z",
        "2199-12-31T23:00:00-01:00",
    ],
)
def test_timestamps_outside_the_range_are_refused_naming_field_and_range(given: str) -> None:
    with pytest.raises(ValidationError) as refused:
        command({**CAPTURE, "occurred_at": given})
    (error,) = refused.value.errors()
    assert error["loc"] == ("capture_lead", "occurred_at")
    assert RANGE in error["msg"]


def test_close_dates_are_refused_outside_the_range() -> None:
    assert command({**DEAL, "expected_close_date": "2199-12-31"}).expected_close_date == date(
        2199, 12, 31
    )
    with pytest.raises(ValidationError, match=r"expected_close_date\n.*1970-01-01 to 2199-12-31"):
        command({**DEAL, "expected_close_date": "9999-12-31"})


def test_as_of_keeps_its_offset_within_the_range() -> None:
    moment = datetime(2026, 4, 1, tzinfo=UTC).astimezone()
    assert in_time_range(moment) is moment
    with pytest.raises(ValueError, match=re.escape(RANGE)):
        in_time_range(datetime(1, 1, 1))


# --- amounts -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount", ["9225.225", "0.0001", "12.345678", "1200.50", "99999999999999.999999"]
)
def test_amounts_keep_the_precision_crms_export(amount: str) -> None:
    opened = command({**DEAL, "amount": amount})
    assert isinstance(opened, OpenDeal) and str(opened.amount) == amount
    assert command({**DEAL, "amount": float(amount) if len(amount) < 12 else amount}).amount


def test_an_amount_in_a_json_number_is_kept_exactly() -> None:
    line = '{"command": "win_deal", "deal": "D-1", "amount": 9225.225, "occurred_at": "2026-01-01"}'
    assert COMMAND_ADAPTER.validate_json(line).amount == Decimal("9225.225")  # type: ignore[union-attr]


@pytest.mark.parametrize("amount", ["1.0000001", "-1", "100000000000000.00"])
def test_amounts_beyond_the_bounds_are_refused(amount: str) -> None:
    with pytest.raises(ValidationError, match="amount"):
        command({**DEAL, "amount": amount})


# --- identifiers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "carried"),
    [
        ("  Ada@Example.COM ", "ada@example.com"),
        (fullwidth("Ada@Example.com"), "ada@example.com"),
        ("STRASSE@x.de", "strasse@x.de"),
        ("Straße@X.de", "strasse@x.de"),  # case folding, not lower()
        (f"CRM-{fullwidth('0042')}", "CRM-0042"),  # NFKC; a non-email id keeps its case
    ],
)
def test_lead_refs_are_normalised(given: str, carried: str) -> None:
    captured = command({**CAPTURE, "lead": given})
    assert isinstance(captured, CaptureLead) and captured.lead == carried


def test_deal_refs_are_nfkc_but_keep_their_case() -> None:
    assert command({**DEAL, "deal": fullwidth("D-1")}).deal == "D-1"
    assert command({**DEAL, "deal": "D-1", "lead": fullwidth("ADA@x.com")}).lead == "ada@x.com"


@pytest.mark.parametrize(
    ("ref", "what"),
    [
        ("ada\u200b@example.com", "zero-width character U+200B"),
        ("ada@example.com\ufeff", "zero-width character U+FEFF"),
        ("\u2060ada@example.com", "zero-width character U+2060"),
        ("ada\u202e@example.com", "bidirectional formatting character U+202E"),
        ("ada\u2066@example.com", "bidirectional formatting character U+2066"),
        ("ada\u0085@example.com", "control character U+0085"),
        ("ada\u009b@example.com", "control character U+009B"),
        ("ada\t@example.com", "control character U+0009"),
    ],
)
def test_invisible_characters_in_refs_are_refused_naming_the_field(ref: str, what: str) -> None:
    with pytest.raises(ValidationError) as refused:
        command({**CAPTURE, "lead": ref})
    (error,) = refused.value.errors()
    assert error["loc"] == ("capture_lead", "lead")
    assert what in error["msg"]
    with pytest.raises(ValidationError, match=r"open_deal\.deal|deal\n"):
        command({**DEAL, "deal": ref.replace("@", "-")})


def test_event_ids_are_not_case_folded() -> None:
    engagement = {**CAPTURE, "command": "record_engagement", "kind": "page_view"}
    del engagement["source"]
    recorded = command({**engagement, "event_id": "Msg-1@Mail.Example"})
    assert recorded.event_id == "Msg-1@Mail.Example"
