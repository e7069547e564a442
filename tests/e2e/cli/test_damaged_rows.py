"""A stored event row damaged below leadflow (SQLite keeps whatever a column is given: text
for bytes, a word for a version, an id that is no UUID; any store: an absurd amount) is
an integrity problem: ``verify``, ``history`` and ``rebuild`` name it and exit 3, never
1, never a traceback. On SQLite and PostgreSQL where the store can hold the damage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from leadflow.bootstrap import load_settings
from tests.e2e.cli.cli_runner import run_subprocess
from tests.e2e.cli.conftest import Cli
from tests.e2e.cli.test_signed_log import signed
from tests.e2e.cli.test_store_integrity import ADA, _deal_of_ada, _sql, store
from tests.store_ids import deal_uuid, lead_uuid

# the fixtures: the in-process CLI's store, SQLite or PostgreSQL; one signed by an audit key
__all__ = ["signed", "store"]
# the session's PostgreSQL is looked up before ``data_dir`` clears LEADFLOW_* variables
pytestmark = pytest.mark.usefixtures("postgres_dsn")

COLUMNS = ("originator_id", "originator_version", "topic", "state")
# each example runs verify and history in-process on one store, damaged then restored
_FEW_EXAMPLES = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _assert_integrity_problem(cli: Cli, *argv: str) -> None:
    run = cli(*argv)
    assert "unexpected" not in run.err, (argv, run.err)
    assert "Traceback" not in run.err + run.out, argv
    assert run.code == 3, (argv, run.code, run.out, run.err)


def _row_key(store: str) -> str:
    return "rowid" if store == "sqlite" else "notification_id"


def _won_row(store: str) -> tuple[Any, ...]:
    """The notification id and columns of the deal's DealWon event."""
    [row] = _sql(
        f"SELECT {_row_key(store)}, {', '.join(COLUMNS)} FROM {{events}} "
        "WHERE originator_id = ? AND originator_version = 2",
        deal_uuid("D-1"),
    )
    return tuple(row)


def _set(store: str, position: int, column: str, value: Any) -> None:
    _sql(f"UPDATE {{events}} SET {column} = ? WHERE {_row_key(store)} = ?", value, position)


def _won_deal(cli: Cli, store: str) -> tuple[Any, ...]:
    _deal_of_ada(cli)
    assert cli("win-deal", "D-1", "--amount", "32000").code == 0
    return _won_row(store)


@pytest.fixture
def won_deal(cli: Cli, store: str) -> tuple[Any, ...]:
    return _won_deal(cli, store)


@pytest.mark.parametrize(
    ("column", "damage", "named"),
    [
        ("state", "CAST(state AS TEXT)", "has its state stored as str, not bytes"),
        ("originator_id", "'zz'", "has an aggregate id that is not a UUID"),
        ("originator_version", "'x'", "has a version that is not a positive integer (str)"),
        ("originator_version", "1e30", "has a version that is not a positive integer (float)"),
        ("originator_version", "-5", "has a version that is not a positive integer (int)"),
    ],
)
def test_a_column_of_another_type_is_named_exit_3(
    cli: Cli, data_dir: Path, column: str, damage: str, named: str
) -> None:
    position = _won_deal(cli, "sqlite")[0]
    _sql(f"UPDATE {{events}} SET {column} = {damage} WHERE rowid = ?", position)  # SQLite only

    verify = cli("verify")
    for argv in (("verify",), ("history", ADA), ("rebuild", "--from-store")):
        _assert_integrity_problem(cli, *argv)
    assert any(
        line.startswith(f"unreadable event: notification {position} ") and named in line
        for line in verify.lines
    ), verify.out


def test_the_damaged_store_of_the_acceptance_check_in_a_real_process(
    cli: Cli, data_dir: Path
) -> None:
    position = _won_deal(cli, "sqlite")[0]
    _sql("UPDATE {events} SET state = CAST(state AS TEXT) WHERE rowid = ?", position)
    for argv in (("verify",), ("history", ADA), ("rebuild", "--from-store")):
        run = run_subprocess(data_dir, *argv)
        assert run.code == 3, (argv, run.out, run.err)
        assert "unexpected" not in run.err and "Traceback" not in run.err


def test_an_absurd_stored_amount_is_a_damaged_event(
    cli: Cli, store: str, won_deal: tuple[Any, ...]
) -> None:
    position, *_, state = won_deal
    stored = json.loads(bytes(state))
    stored["amount"] = "1e999999"
    _set(store, position, "state", json.dumps(stored).encode())

    verify = cli("verify")
    shown = cli("deal", "show", "D-1")
    for argv in (("verify",), ("history", ADA), ("rebuild", "--from-store")):
        _assert_integrity_problem(cli, *argv)
    assert any(
        line.startswith(f"unreadable event: notification {position} ") and "amount" in line
        for line in verify.lines
    ), verify.out
    assert shown.code == 3
    assert shown.messages[0].startswith(
        f"leadflow deal: stored event 2 of aggregate {deal_uuid('D-1')} cannot be decoded: "
    )


_GARBAGE = st.one_of(
    st.none(),
    st.binary(max_size=40),
    st.text(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(),
)


@_FEW_EXAMPLES
@given(data=st.data())
def test_garbage_in_any_column_of_a_stored_event_is_exit_3_for_verify_and_history(
    cli: Cli, store: str, won_deal: tuple[Any, ...], data: st.DataObject
) -> None:
    position, *original = won_deal
    # PostgreSQL's typed columns only take bytes for the state and integers for the version
    columns = COLUMNS if store == "sqlite" else ("originator_version", "state")
    column = data.draw(st.sampled_from(columns), label="column")
    if store == "sqlite":
        value = data.draw(_GARBAGE, label="value")
    elif column == "state":
        value = data.draw(st.binary(max_size=64), label="value")
    else:
        value = data.draw(st.integers(-(2**63), 2**63 - 1), label="value")
    assume(value != original[COLUMNS.index(column)])
    try:
        _set(store, position, column, value)
    except Exception as error:  # e.g. a version that collides with another row's
        assume("unique" not in str(error).lower())
        raise
    try:
        _assert_integrity_problem(cli, "verify")
        _assert_integrity_problem(cli, "history", ADA)
    finally:
        _set(store, position, column, original[COLUMNS.index(column)])
        rebuilt = cli("rebuild", "--from-store")  # the live read model without its dead letters
    assert rebuilt.code == 0, rebuilt.err


def test_a_snapshot_row_of_another_type_is_named_exit_3(
    cli: Cli, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEADFLOW_SNAPSHOT_INTERVAL", "2")
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    assert cli("log-contact", ADA, "--channel", "email").code == 0
    _sql("UPDATE {snapshots} SET state = CAST(state AS TEXT)")  # SQLite only

    shown = cli("lead", "show", ADA)
    for argv in (("verify",), ("history", ADA)):
        _assert_integrity_problem(cli, *argv)
    assert shown.code == 3
    assert shown.messages == [
        f"leadflow lead: stored snapshot 2 of aggregate {lead_uuid(ADA)} has its state "
        "stored as str, not bytes"
    ]


def test_a_lead_whose_first_event_is_gone_is_a_damaged_history(cli: Cli, store: str) -> None:
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    lead_id = lead_uuid(ADA)
    _sql("DELETE FROM {events} WHERE originator_id = ? AND originator_version = 1", lead_id)

    shown = cli("lead", "show", ADA)
    contact = cli("log-contact", ADA, "--channel", "email")
    for argv in (("verify",), ("history", ADA)):
        _assert_integrity_problem(cli, *argv)
    named = (
        f"the stored events of aggregate {lead_id} start at version 2 (LeadScored), not with "
        "its creation event: earlier events are missing"
    )
    assert (shown.code, shown.messages) == (3, [f"leadflow lead: {named}"])
    assert (contact.code, contact.messages) == (3, [f"leadflow log-contact: {named}"])


def test_an_amount_no_read_model_holds_is_not_projected_exit_3(cli: Cli, store: str) -> None:
    _deal_of_ada(cli)
    [(position, state)] = _sql(
        f"SELECT {_row_key(store)}, state FROM {{events}} "
        "WHERE originator_id = ? AND originator_version = 1",
        deal_uuid("D-1"),
    )
    opened = json.loads(bytes(state))
    # 16 digits: a command of an older leadflow took it; in 1/10,000 CLF it is 20 digits
    opened |= {"amount": "9999999999999999", "currency": "CLF"}
    _set(store, position, "state", json.dumps(opened).encode())

    verify = cli("verify")
    for argv in (("verify",), ("rebuild", "--from-store")):
        _assert_integrity_problem(cli, *argv)
    assert any(
        line.startswith(f"unreadable event: notification {position} ")
        and "amount of 20 digits in minor units is too large" in line
        for line in verify.lines
    ), verify.out


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
    | st.sampled_from(["1e999999", "-1", "NaN", "9999-12-31T23:59:59-23:59", "0001-01-01"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


@_FEW_EXAMPLES
@given(data=st.data())
def test_any_value_in_any_field_of_a_stored_event_is_exit_3(
    cli: Cli, store: str, won_deal: tuple[Any, ...], data: st.DataObject
) -> None:
    position, *_, state = won_deal
    stored = json.loads(bytes(state))
    field = data.draw(st.sampled_from(sorted(stored)), label="field")
    value = data.draw(_JSON, label="value")
    assume(value != stored[field])
    _set(store, position, "state", json.dumps({**stored, field: value}).encode())
    try:
        _assert_integrity_problem(cli, "verify")
        _assert_integrity_problem(cli, "history", ADA)
    finally:
        _set(store, position, "state", bytes(state))
        rebuilt = cli("rebuild", "--from-store")
    assert rebuilt.code == 0, rebuilt.err


@pytest.mark.parametrize("version", [0, -1, 1e308, "2", [1]])
def test_a_stored_schema_version_that_is_no_version_is_exit_3(
    cli: Cli, data_dir: Path, version: Any
) -> None:
    position, *_, state = _won_deal(cli, "sqlite")
    stored = json.loads(bytes(state)) | {"schema_version": version}
    _set("sqlite", position, "state", json.dumps(stored).encode())

    verify = cli("verify")
    for argv in (("verify",), ("history", ADA), ("rebuild", "--from-store")):
        _assert_integrity_problem(cli, *argv)
    assert f"schema_version {version!r} of a stored DealWon is not a positive integer" in verify.out


@pytest.mark.parametrize("damage", ["state as text", "id no UUID", "absurd amount"])
@pytest.mark.usefixtures("signed")
def test_a_store_with_a_damaged_row_gets_no_proof(cli: Cli, tmp_path: Path, damage: str) -> None:
    kind = "sqlite" if load_settings().store.dsn is None else "postgres"
    if kind == "postgres" and damage != "absurd amount":
        pytest.skip("PostgreSQL's typed columns hold no such row")
    position, *_, state = _won_deal(cli, kind)
    if damage == "state as text":
        _sql("UPDATE {events} SET state = CAST(state AS TEXT) WHERE rowid = ?", position)
    elif damage == "id no UUID":
        _sql("UPDATE {events} SET originator_id = 'zz' WHERE rowid = ?", position)
    else:
        absurd = json.loads(bytes(state)) | {"amount": "1e999999"}
        _set(kind, position, "state", json.dumps(absurd).encode())
    out = tmp_path / "ada.proof.json"

    _assert_integrity_problem(cli, "history", ADA, "--proof", str(out))
    assert not out.exists()
