"""A snapshot is a cache proven against its events: one an attacker with database access
edited is refused by every command that would read it (exit 3, naming the aggregate),
reported by ``leadflow verify`` after a rebuild, and never feeds a new event. On SQLite
and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.cli.conftest import Cli
from tests.e2e.cli.test_store_integrity import ADA, _sql, _stored_events, store
from tests.store_ids import deal_uuid

__all__ = ["store"]  # the fixture, shared with the other integrity tests
# the session's PostgreSQL is looked up before ``data_dir`` clears LEADFLOW_* variables
pytestmark = pytest.mark.usefixtures("postgres_dsn")


@pytest.fixture
def snapshotted_deal(cli: Cli, store: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Deal D-1 owned by alice at version 2, with a snapshot at version 2."""
    build_snapshotted_deal(cli, monkeypatch)
    return store


def build_snapshotted_deal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_SNAPSHOT_INTERVAL", "2")
    assert cli("capture-lead", ADA, "--source", "web").code == 0
    assert cli("fast-track", ADA, "--to", "sql", "--reason", "demo request").code == 0
    opened = cli("open-deal", "D-1", "--amount", "100", "--lead", ADA, "--owner", "alice")
    assert opened.code == 0, opened.err
    assert cli("update-deal", "D-1", "--amount", "200").code == 0
    assert _snapshot_versions() == [2]


def _snapshot_versions() -> list[int]:
    rows = _sql(
        "SELECT originator_version FROM {snapshots} WHERE originator_id = ? "
        "ORDER BY originator_version",
        deal_uuid("D-1"),
    )
    return [int(v) for (v,) in rows]


def _edit_snapshot(edit: Any) -> None:
    """Rewrite the deal's snapshot at version 2 as an attacker would: decode, edit, store."""
    [(state,)] = _sql(
        "SELECT state FROM {snapshots} WHERE originator_id = ? AND originator_version = 2",
        deal_uuid("D-1"),
    )
    snapshot = json.loads(bytes(state))
    edit(snapshot)
    _sql(
        "UPDATE {snapshots} SET state = ? WHERE originator_id = ? AND originator_version = 2",
        json.dumps(snapshot).encode(),
        deal_uuid("D-1"),
    )


def _forge_owner(snapshot: dict[str, Any]) -> None:
    snapshot["state"]["owner"] = "mallory"


def _forge_owner_and_position(snapshot: dict[str, Any]) -> None:
    """The owner edited; the claimed chain position still that of event 2."""
    _forge_owner(snapshot)
    assert snapshot["chain_hash"] == snapshot["state"]["last_hash"]


def _drop_position(snapshot: dict[str, Any]) -> None:
    """An older-format snapshot (no chain position) with the owner edited."""
    _forge_owner(snapshot)
    del snapshot["chain_hash"]


def _claim_other_position(snapshot: dict[str, Any]) -> None:
    snapshot["chain_hash"] = "f" * 64


@pytest.mark.usefixtures("snapshotted_deal")
def test_a_snapshot_is_honest_and_used(cli: Cli) -> None:
    shown = cli("deal", "show", "D-1")
    assert shown.code == 0, shown.err
    assert "alice" in shown.out
    assert cli("verify").code == 0


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (_forge_owner_and_position, "differs from its events in owner"),
        (_claim_other_position, "claims chain position ffffffffffff… but event 2 has hash"),
    ],
)
@pytest.mark.usefixtures("snapshotted_deal")
def test_an_edited_snapshot_is_refused_reported_and_never_laundered(
    cli: Cli, edit: Any, problem: str
) -> None:
    deal_id = deal_uuid("D-1")
    _edit_snapshot(edit)
    events_before = _stored_events()
    named = f"stored snapshot 2 of aggregate {deal_id} "

    rebuilt = cli("rebuild")
    verify = cli("verify")
    shown = cli("deal", "show", "D-1")
    moved = cli("move-deal", "D-1", "--stage", "needs_analysis")
    history = cli("history", ADA)

    assert rebuilt.code == 0, rebuilt.err
    assert verify.code == 3, verify.out
    [reported] = [line for line in verify.lines if line.startswith("forged snapshot: ")]
    assert reported.startswith(f"forged snapshot: {named}")
    assert problem in reported
    assert "mallory" not in verify.out
    assert shown.code == 3
    [message] = shown.messages
    assert message.startswith(f"leadflow deal: {named}")
    assert problem in message
    assert "mallory" not in shown.out
    assert moved.code == 3
    assert _stored_events() == events_before
    assert _snapshot_versions() == [2]
    assert history.code == 3
    assert f"forged snapshot: {named}" in history.out
    assert "mallory" not in history.out


@pytest.mark.usefixtures("snapshotted_deal")
def test_a_snapshot_beyond_a_truncated_log_is_refused(cli: Cli) -> None:
    """The events after the last snapshot are gone and so is event 2: the snapshot
    claims a version the log no longer reaches."""
    deal_id = deal_uuid("D-1")
    _sql(
        "DELETE FROM {events} WHERE originator_id = ? AND originator_version = 2",
        deal_id,
    )
    shown = cli("deal", "show", "D-1")
    verify = cli("verify")
    assert shown.code == 3
    assert shown.messages == [
        f"leadflow deal: stored snapshot 2 of aggregate {deal_id} claims version 2 but its "
        "aggregate's events end at version 1 (the snapshot was altered or its events were; "
        "it is not used)"
    ]
    assert verify.code == 3
    assert any(line.startswith("forged snapshot: ") for line in verify.lines)


@pytest.mark.usefixtures("snapshotted_deal")
def test_an_edited_snapshot_without_a_chain_position_is_not_used_and_is_reported(
    cli: Cli,
) -> None:
    """A snapshot recording no chain position (as older leadflow took them) that does not
    match its events is replayed past, never refused: an older leadflow may have derived
    its state differently. The forged value is never shown or written; verify reports it."""
    deal_id = deal_uuid("D-1")
    _edit_snapshot(_drop_position)

    shown = cli("deal", "show", "D-1")
    moved = cli("move-deal", "D-1", "--stage", "needs_analysis")
    assert cli("rebuild").code == 0
    verify = cli("verify")

    assert shown.code == 0, shown.err
    assert "alice" in shown.out
    assert "mallory" not in shown.out
    assert moved.code == 0, moved.err
    assert "mallory" not in cli("deal", "show", "D-1").out
    assert verify.code == 3
    assert (
        f"forged snapshot: stored snapshot 2 of aggregate {deal_id} differs from its events "
        "in owner and records no chain position (taken by an older leadflow, or altered)"
    ) in verify.out
