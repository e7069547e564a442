"""Snapshots sealed by the audit key: used without replaying their events while the seal
and chain position hold; an edited one is refused on load (exit 3), reported by verify,
and never feeds a new event. On SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.cli.conftest import Cli
from tests.e2e.cli.log_attacker import Attacker
from tests.e2e.cli.test_signed_log import signed
from tests.e2e.cli.test_snapshot_integrity import (
    _edit_snapshot,
    _forge_owner,
    _snapshot_versions,
    build_snapshotted_deal,
)
from tests.e2e.cli.test_store_integrity import _stored_events
from tests.store_ids import deal_uuid

__all__ = ["signed"]  # the fixture: a store signed by a new audit key
# the session's PostgreSQL is looked up before ``data_dir`` clears LEADFLOW_* variables
pytestmark = pytest.mark.usefixtures("postgres_dsn")


@pytest.fixture
def sealed_deal(signed: Path, cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Deal D-1 (owner alice) with a snapshot at version 2 sealed by the audit key."""
    del signed
    build_snapshotted_deal(cli, monkeypatch)


def _seal_of_ada_snapshot(snapshot: dict[str, object]) -> None:
    assert isinstance(snapshot["seal"], str)
    assert isinstance(snapshot["seal_key_id"], str)


@pytest.mark.usefixtures("sealed_deal")
def test_a_snapshot_is_sealed_and_used(cli: Cli) -> None:
    _edit_snapshot(_seal_of_ada_snapshot)  # unchanged: only looked at
    shown = cli("deal", "show", "D-1")
    assert shown.code == 0, shown.err
    assert "alice" in shown.out
    assert cli("rebuild").code == 0
    assert cli("verify").code == 0


@pytest.mark.usefixtures("sealed_deal")
def test_an_edited_sealed_snapshot_is_refused_and_never_laundered(cli: Cli) -> None:
    deal_id = deal_uuid("D-1")
    _edit_snapshot(_forge_owner)
    events_before = _stored_events()

    shown = cli("deal", "show", "D-1")
    moved = cli("move-deal", "D-1", "--stage", "needs_analysis")
    assert cli("rebuild").code == 0
    verify = cli("verify")

    expected = (
        f"stored snapshot 2 of aggregate {deal_id} differs from its events in owner "
        "(the snapshot was altered or its events were; it is not used)"
    )
    assert shown.code == 3
    assert shown.messages == [f"leadflow deal: {expected}"]
    assert moved.code == 3
    assert _stored_events() == events_before
    assert _snapshot_versions() == [2]
    assert verify.code == 3
    assert f"forged snapshot: stored snapshot 2 of aggregate {deal_id} differs from its " in (
        verify.out
    )


@pytest.mark.usefixtures("sealed_deal")
def test_a_seal_alone_replaced_is_refused(cli: Cli) -> None:
    def other_seal(snapshot: dict[str, object]) -> None:
        snapshot["seal"] = "A" * 88

    _edit_snapshot(other_seal)
    shown = cli("deal", "show", "D-1")
    verify = cli("verify")
    assert shown.code == 3
    assert "has a seal its key did not make" in shown.err
    assert verify.code == 3
    assert "has a seal its key did not make" in verify.out


@pytest.mark.usefixtures("sealed_deal")
def test_a_sealed_snapshot_at_a_position_the_store_no_longer_holds_is_refused(
    cli: Cli,
) -> None:
    """Event 2 rewritten (another hash): the sealed position is not the stored event's."""
    attacker = Attacker()
    try:
        [row] = [
            r for r in attacker.rows() if r.originator_id == deal_uuid("D-1") and r.version == 2
        ]
        forged = row.data()
        forged["hash"] = "e" * 64
        attacker.write_state(deal_uuid("D-1"), 2, forged)
    finally:
        attacker.close()
    shown = cli("deal", "show", "D-1")
    assert shown.code == 3
    assert "but event 2 has hash eeeeeeeeeeee" in shown.err
