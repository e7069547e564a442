"""Witness lines that are not what leadflow wrote (issue 12): each malformed line is a
named witness problem (exit 3), never a crash; a line beyond the end of the store is
a rollback only when its signature verifies (test_signed_log: a deleted last event),
else it is reported as forged. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.cli.conftest import Cli
from tests.e2e.cli.test_signed_log import ADA, _two_leads, signed

__all__ = ["signed"]  # the fixture: a store signed by a new audit key, and its witness
pytestmark = pytest.mark.usefixtures("postgres_dsn")

_GOOD = {"link": "ab" * 32, "key_id": "x", "signature": "cd" * 64, "signed_at": "x"}
MALFORMED = [
    '{"position": 1e400, "link": "ab", "key_id": "x", "signature": "00", "signed_at": "x"}',
    json.dumps({"position": 2**70, **_GOOD}),
    json.dumps({"position": 0, **_GOOD}),
    json.dumps({"position": "3", **_GOOD}),
    json.dumps({"position": 3, **_GOOD, "link": "ab"}),
    json.dumps({"position": 3, **_GOOD, "signature": None}),
    json.dumps([3]),
    "[" * 100_000,
    "not json",
]


def test_every_malformed_witness_line_is_named_never_a_crash(cli: Cli, signed: Path) -> None:
    _two_leads(cli)
    genuine = len(signed.read_text().splitlines())
    torn = '{"position": 3, "li'
    with signed.open("a") as file:
        file.write("\n".join([*MALFORMED, torn]))

    verify = cli("verify")
    history = cli("history", ADA)

    assert verify.code == 3, verify.out + verify.err
    assert "unexpected" not in verify.out + verify.err
    for number in range(genuine + 1, genuine + len(MALFORMED) + 2):
        assert f"{signed} line {number} is not a signed head" in verify.out, verify.out
    assert "position is not a whole number" in verify.out
    assert "(the last line: an append cut short, or an edit)" in verify.out
    assert "signed log FAILED" in verify.out
    assert history.code == 3, history.out + history.err


def test_a_forged_witness_line_beyond_the_store_is_forged_not_a_rollback(
    cli: Cli, signed: Path
) -> None:
    _two_leads(cli)
    last = json.loads(signed.read_text().splitlines()[-1])
    beyond = last["position"] + 5
    with signed.open("a") as file:
        file.write(json.dumps({**last, "position": beyond}) + "\n")

    verify = cli("verify")

    assert verify.code == 3, verify.out + verify.err
    assert f"at notification {beyond}" in verify.out
    assert "does not verify with the audit keys" in verify.out
    assert "rolled back" not in verify.out
