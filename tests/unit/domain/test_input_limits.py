"""Commands refuse input that could not travel through Kafka and PostgreSQL intact."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from domain.commands import COMMAND_ADAPTER
from domain.scoring import parse_number

BASE = {
    "command": "capture_lead",
    "lead": "a@example.com",
    "source": "web",
    "occurred_at": "2026-01-01T00:00:00Z",
}


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lead": "bad\x00lead"}, "control character U+0000 at position 3"),
        ({"source": "web\x07"}, "control character U+0007"),
        ({"actor": "sdr\x00"}, "control character U+0000"),
        ({"attributes": {"title": "CEO\x00"}}, "title: contains control character"),
        ({"attributes": {"bad\x00key": 1}}, "contains control character"),
        ({"attributes": nested(9)}, "nested deeper than 8 levels"),
        ({"attributes": {"employees": 10**400}}, "employees: integer out of range"),
        ({"attributes": {"blob": "x" * 40_000}}, "bytes of JSON; at most 32768"),
        ({"attributes": {"": 1}}, "keys must be 1 to 200 characters"),
        ({"command_id": "generated:0a1b"}, "starts with 'generated:', which leadflow reserves"),
    ],
)
def test_unsafe_input_is_refused_with_where_and_why(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        COMMAND_ADAPTER.validate_python({**BASE, **change})


def test_ordinary_input_passes() -> None:
    command = COMMAND_ADAPTER.validate_python(
        {
            **BASE,
            "attributes": {
                "title": "VP\tSales",
                "employees": 250,
                "tags": ["a", "b"],
                "nested": nested(5),
            },
        }
    )
    assert command.attributes["employees"] == 250  # type: ignore[union-attr]


def test_bant_answers_refuse_control_characters() -> None:
    with pytest.raises(ValidationError, match="control character"):
        COMMAND_ADAPTER.validate_python(
            {
                "command": "qualify_lead",
                "lead": "a@example.com",
                "occurred_at": "2026-01-01T00:00:00Z",
                "bant": {"budget": "1\x00", "authority": "a", "need": "n", "timeline": "t"},
            }
        )


def test_huge_numbers_do_not_break_scoring() -> None:
    assert parse_number(10**400) is None
