"""What ``leadflow forget`` changes in the event store's database besides recording the
erasure: the lead's data key is destroyed (``adapters.lead_keys``), the snapshots of the
lead and its deals are deleted (they hold its state in plain; they are caches, taken
again from the events), and the command ledger's summaries and refusals that name the
lead are overwritten. On SQLite, ``secure_delete`` zeroes what is deleted or replaced,
and a checkpoint then truncates the write-ahead log, so no old copy stays in any file.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import structlog

from adapters.command_ledger import ERASED_FINGERPRINT
from adapters.command_ledger import TABLE as LEDGER_TABLE
from adapters.lead_keys import LeadKeys
from adapters.settings import StoreSettings
from adapters.store_db import StoreDb
from domain.personal_fields import ERASED_TEXT

log = structlog.get_logger("leadflow.erased_rows")


_DELETE_SNAPSHOTS = {
    "sqlite": "DELETE FROM {t} WHERE originator_id = ? RETURNING 1",
    "postgres": "DELETE FROM {t} WHERE originator_id = ?::uuid RETURNING 1",
}
_LEDGER_ROWS = "SELECT command_id, command, refusal FROM {t} WHERE "
_LEDGER_TOUCHED = {
    "sqlite": _LEDGER_ROWS + "instr(aggregate_ids, ?) > 0",
    "postgres": _LEDGER_ROWS + "position(?::bytea in aggregate_ids) > 0",
}
_LEDGER_NAMING = {
    "sqlite": _LEDGER_ROWS + "instr(command, ?) > 0 OR instr(COALESCE(refusal, ''), ?) > 0",
    "postgres": _LEDGER_ROWS + "strpos(command, ?) > 0 OR strpos(COALESCE(refusal, ''), ?) > 0",
}
_LEDGER_SCRUB = "UPDATE {t} SET command = ?, refusal = ?, fingerprint = ? WHERE command_id = ?"
_RECORDS_NAMING = {
    "sqlite": "instr(COALESCE({column}, ''), ?) > 0",
    "postgres": "strpos(COALESCE({column}, ''), ?) > 0",
}
_RECORDS_SCRUB = (
    "UPDATE {{t}} SET event_id = CASE WHEN {event_id} THEN ? ELSE event_id END, "
    "reason = CASE WHEN {reason} THEN ? ELSE reason END WHERE {event_id} OR {reason} "
    "RETURNING 1"
)


class StoreErasure:
    """Destroys what the store keeps of one lead (each step may be run again)."""

    def __init__(
        self,
        store: StoreSettings,
        keys: LeadKeys,
        snapshots_table: str | None,
        records_table: str | None = None,
    ) -> None:
        self._store = store
        self.keys = keys
        self._snapshots = snapshots_table
        self._records = records_table  # the ingest's record of each engagement record

    def destroy_key(self, lead_id: UUID) -> bool:
        return self.keys.destroy(lead_id)

    def delete_snapshots(self, aggregate_ids: Sequence[UUID]) -> int:
        if self._snapshots is None:
            return 0
        with StoreDb(self._store) as db:
            statement = _DELETE_SNAPSHOTS[db.dialect]
            return sum(
                len(db.execute(statement, (_stored_id(db, i),), t=self._snapshots))
                for i in aggregate_ids
            )

    def scrub_ledger(self, aggregate_ids: Sequence[UUID], names: Sequence[str]) -> int:
        """Overwrite the summary (but its command's name) and the refusal of every ledger
        row that touched one of ``aggregate_ids`` or names one of ``names``."""
        with StoreDb(self._store) as db:
            rows = {
                row[0]: row
                for aggregate_id in aggregate_ids
                for row in db.execute(
                    _LEDGER_TOUCHED[db.dialect], (aggregate_id.bytes,), t=LEDGER_TABLE
                )
            }
            for name in names:
                naming = db.execute(_LEDGER_NAMING[db.dialect], (name, name), t=LEDGER_TABLE)
                rows.update((row[0], row) for row in naming)
            scrubbed = [
                (
                    f"{command.split(' ', 1)[0]} {ERASED_TEXT}",
                    refusal and ERASED_TEXT,
                    ERASED_FINGERPRINT,
                    command_id,
                )
                for command_id, command, refusal in rows.values()
            ]
            db.executemany(_LEDGER_SCRUB, scrubbed, t=LEDGER_TABLE)
        return len(scrubbed)

    def scrub_records(self, names: Sequence[str]) -> int:
        """Overwrite the source's event id and the dead-letter reason of every ingest
        record that holds one of ``names`` (a reason may quote the record it refused)."""
        if self._records is None or not names:
            return 0
        with StoreDb(self._store) as db:
            if not db.has_table(self._records):  # no ingest ever ran on this store
                return 0
            naming = _RECORDS_NAMING[db.dialect]
            statement = _RECORDS_SCRUB.format(
                event_id=naming.format(column="event_id"), reason=naming.format(column="reason")
            )
            scrubbed = 0
            for name in names:
                params = (name, ERASED_TEXT, name, ERASED_TEXT, name, name)
                scrubbed += len(db.execute(statement, params, t=self._records))
        return scrubbed

    def truncate_log(self) -> None:
        """SQLite: copy the write-ahead log into the file and empty it (older page images
        would keep what was overwritten); PostgreSQL: nothing (see the README)."""
        with StoreDb(self._store) as db:
            if db.dialect == "sqlite":
                busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)")[0]
                if busy:
                    log.warning("wal_not_truncated", store=db.location)


def _stored_id(db: StoreDb, aggregate_id: UUID) -> str:
    """An aggregate id as eventsourcing stores it (SQLite: 32 hex digits)."""
    return aggregate_id.hex if db.dialect == "sqlite" else str(aggregate_id)
