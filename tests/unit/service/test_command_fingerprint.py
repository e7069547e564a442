"""A command's fingerprint depends on its content, not on how it was written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

from hypothesis import given
from hypothesis import strategies as st

from adapters.command_ledger import LedgerEntry
from domain import commands as c
from service.command_fingerprint import (
    content_command_id,
    fingerprint,
    stamped_on_receipt,
    summary,
)

T0 = datetime(2026, 1, 2, 10, tzinfo=UTC)


def parsed(data: dict[str, Any]) -> c.Command:
    command: c.Command = c.COMMAND_ADAPTER.validate_python(data)
    return command


@given(
    offset_hours=st.integers(min_value=-12, max_value=14),
    actor_null=st.booleans(),
    correlation=st.none() | st.sampled_from(["run-1", "import 7"]),
    command_id=st.none() | st.sampled_from(["c-1", "c-2"]),
    reverse_keys=st.booleans(),
)
def test_formatting_ids_and_nulls_do_not_change_the_fingerprint(
    offset_hours: int,
    actor_null: bool,
    correlation: str | None,
    command_id: str | None,
    reverse_keys: bool,
) -> None:
    zone = timezone(timedelta(hours=offset_hours))
    base = {
        "command": "log_contact",
        "lead": "B@x.com",
        "channel": "call",
        "occurred_at": "2026-01-02T10:00:00Z",
    }
    variant: dict[str, Any] = {
        **base,
        "lead": "b@x.com",
        "occurred_at": T0.astimezone(zone).isoformat(),
    }
    if actor_null:
        variant["actor"] = None
    if correlation is not None:
        variant["correlation_id"] = correlation
    if command_id is not None:
        variant["command_id"] = command_id
    keys = sorted(variant, reverse=reverse_keys)

    assert fingerprint(parsed({k: variant[k] for k in keys})) == fingerprint(parsed(base))


def test_backdated_null_reads_as_absent() -> None:
    base = {"command": "win_deal", "deal": "D-9", "occurred_at": "2026-01-02T10:00:00Z"}
    with_null = parsed({**base, "backdated": None})
    assert with_null.backdated is False
    assert fingerprint(with_null) == fingerprint(parsed(base))
    assert fingerprint(parsed({**base, "backdated": True})) != fingerprint(parsed(base))


def test_other_content_has_another_fingerprint() -> None:
    one = parsed(
        {
            "command": "log_contact",
            "lead": "b@x.com",
            "channel": "call",
            "occurred_at": "2026-01-02T10:00:00Z",
        }
    )
    others = [
        one.model_copy(update={"channel": "email"}),
        one.model_copy(update={"occurred_at": T0 + timedelta(seconds=1)}),
        one.model_copy(update={"actor": "sam"}),
        one.model_copy(update={"lead": "c@x.com"}),
    ]
    assert len({fingerprint(o) for o in [one, *others]}) == 5
    assert content_command_id(one) == "sha256:" + fingerprint(one).hex()


def test_a_null_that_clears_a_value_is_content() -> None:
    keep = parsed({"command": "update_deal", "deal": "D-1", "occurred_at": "2026-01-02T10:00:00Z"})
    clear = parsed({**keep.model_dump(mode="json", exclude_none=True), "expected_close_date": None})
    assert fingerprint(keep) != fingerprint(clear)


def test_a_time_stamped_on_receipt_is_not_content() -> None:
    sent = c.MarkMql(lead="b@x.com", occurred_at=T0, command_id="m-1")
    later = c.MarkMql(lead="b@x.com", occurred_at=T0 + timedelta(minutes=5), command_id="m-1")
    assert fingerprint(stamped_on_receipt(sent)) == fingerprint(stamped_on_receipt(later))
    assert fingerprint(sent) != fingerprint(later)


def test_summary_names_the_command_and_its_ref() -> None:
    deal = c.OpenDeal(deal="D-9", lead="b@x.com", amount=1, occurred_at=T0)
    assert summary(deal) == "open_deal D-9"
    assert summary(c.MarkMql(lead="b@x.com", occurred_at=T0)) == "mark_mql b@x.com"


def test_a_ledger_row_round_trips() -> None:
    entry = LedgerEntry("c-1", b"\x01" * 32, "open_deal D-9", (uuid4(), uuid4()), 3, None)
    refused = LedgerEntry(
        "c-2", b"\x02" * 32, "mark_mql b@x.com", refusal="lead 'b@x.com' does not exist"
    )
    assert LedgerEntry.from_row(entry.as_row()) == entry
    assert LedgerEntry.from_row(refused.as_row()) == refused
