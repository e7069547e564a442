"""One stored event the projector cannot decode freezes its aggregate (the strict gap
rule dead-letters every later event of it): the log and ``leadflow verify`` say which
aggregate and why, and the documented way out (fix the event, rebuild) thaws it."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from uuid import UUID

from structlog.testing import capture_logs

from projections.catch_up import catch_up
from projections.frozen_aggregates import WAY_OUT
from projections.store import open_scratch_store
from service.application import LeadflowApp
from tests.integration.projections.test_cli_reports import Cli, cli, embedded

__all__ = ["cli", "embedded"]  # fixtures


def _break_second_event(events_db: Path) -> tuple[str, int, bytes, int]:
    """Make version 2 of an aggregate with several events undecodable: (aggregate id,
    its last version, the original state, the row)."""
    with sqlite3.connect(events_db) as events:
        aggregate_id, last = events.execute(
            "SELECT originator_id, MAX(originator_version) FROM stored_events "
            "GROUP BY originator_id HAVING MAX(originator_version) >= 4 "
            "ORDER BY originator_id LIMIT 1"
        ).fetchone()
        rowid, state = events.execute(
            "SELECT rowid, state FROM stored_events "
            "WHERE originator_id = ? AND originator_version = 2",
            (aggregate_id,),
        ).fetchone()
        events.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (b"{not json", rowid))
    return str(UUID(aggregate_id)), int(last), bytes(state), int(rowid)


def test_a_frozen_aggregate_is_named_with_its_cause_and_a_rebuild_thaws_it(
    embedded: LeadflowApp, cli: Cli, tmp_path: Path
) -> None:
    events_db = tmp_path / "events.sqlite3"
    aggregate_id, last, state, rowid = _break_second_event(events_db)

    with open_scratch_store(embedded.stage_model) as scratch, capture_logs() as logs:
        catch_up(embedded, scratch)
    [frozen] = [e for e in logs if e["event"] == "aggregate_frozen"]
    assert frozen["aggregate_id"] == aggregate_id and frozen["version"] == 1
    assert frozen["held"] == last - 2
    # the cause's text may quote the event: verify gives it, the log line points there
    assert frozen["cause"] == "see leadflow verify" and frozen["way_out"] == WAY_OUT

    assert cli("project")[0] == 0
    code, out, err = cli("verify")
    assert code == 3, err
    assert (
        f"frozen aggregate: aggregate {aggregate_id} held at version 1 (event-store): "
        f"{last - 2} later events dead-lettered, since version 2 was not applied: notification "
    ) in out
    assert f"way out: {WAY_OUT}" in out and "leadflow rebuild --from-store" in out
    assert "1 frozen aggregates" in out.splitlines()[-1]

    with sqlite3.connect(events_db) as events:  # the event fixed (e.g. from a backup)
        events.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state, rowid))
    assert cli("rebuild", "--from-store")[0] == 0
    code, out, _ = cli("verify")
    assert code == 0 and "frozen" not in out.replace("0 frozen aggregates", "")
