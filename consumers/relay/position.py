"""The relay's published position: the last notification id the broker acknowledged.

Kept in the event store's database (table ``leadflow_relay_position``), one row per
target topic. The position only ever moves forward, so a stale relay that lost its
lock cannot move it back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.store_db import StoreDb

TABLE = "leadflow_relay_position"


def _create_table(db: StoreDb) -> None:
    db.create_table(
        "CREATE TABLE IF NOT EXISTS {t} ("
        " relay TEXT PRIMARY KEY,"
        " notification_id BIGINT NOT NULL,"
        " updated_at TEXT NOT NULL)",
        t=TABLE,
    )


class RelayPosition:
    def __init__(self, db: StoreDb, relay: str) -> None:
        self._db = db
        self.relay = relay
        _create_table(db)

    def load(self) -> int:
        rows = self._db.execute(
            "SELECT notification_id FROM {t} WHERE relay = ?", (self.relay,), t=TABLE
        )
        return int(rows[0][0]) if rows else 0

    def save(self, notification_id: int) -> None:
        self._db.execute(
            "INSERT INTO {t} (relay, notification_id, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (relay) DO UPDATE"
            " SET notification_id = excluded.notification_id, updated_at = excluded.updated_at"
            " WHERE {t}.notification_id < excluded.notification_id",
            (self.relay, notification_id, datetime.now(UTC).isoformat()),
            t=TABLE,
        )


def read_positions(db: StoreDb) -> dict[str, int]:
    """Every relay's position, for ``leadflow stream-stats`` (empty before the first relay)."""
    _create_table(db)
    rows = db.execute("SELECT relay, notification_id FROM {t} ORDER BY relay", t=TABLE)
    return {str(relay): int(position) for relay, position in rows}
