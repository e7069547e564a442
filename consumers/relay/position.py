"""The relay's published position and its fencing epoch, in the event store's database.

``leadflow_relay_position``: the last notification id the broker acknowledged, one row
per target topic; it only ever moves forward. ``leadflow_relay_epoch``: a number that
grows by one each time a relay becomes active (``take_epoch``, under the relay lock).
A save checks, in its own transaction, that no relay took a newer epoch since; if one
did, the save fails with ``RelayFenced`` and the deposed relay stops publishing. Every
record the relay publishes carries its epoch (header ``relay_epoch``), so consumers can
drop what a deposed relay sent after its successor started.
"""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.store_db import StoreDb

TABLE = "leadflow_relay_position"
EPOCH_TABLE = "leadflow_relay_epoch"


_EPOCH = "SELECT epoch FROM {t} WHERE relay = ?"
_EPOCH_FOR_UPDATE = _EPOCH + " FOR UPDATE"


class RelayFenced(Exception):
    """Another relay became active after this one (a newer epoch): this one must stop."""


def _create_tables(db: StoreDb) -> None:
    db.create_table(
        "CREATE TABLE IF NOT EXISTS {t} ("
        " relay TEXT PRIMARY KEY,"
        " notification_id BIGINT NOT NULL,"
        " updated_at TEXT NOT NULL)",
        t=TABLE,
    )
    db.create_table(
        "CREATE TABLE IF NOT EXISTS {t} ("
        " relay TEXT PRIMARY KEY,"
        " epoch BIGINT NOT NULL,"
        " taken_at TEXT NOT NULL)",
        t=EPOCH_TABLE,
    )


class RelayPosition:
    def __init__(self, db: StoreDb, relay: str) -> None:
        self._db = db
        self.relay = relay
        self.epoch: int | None = None
        """This relay's epoch once taken; saves are then fenced by it."""
        _create_tables(db)

    def load(self) -> int:
        rows = self._db.execute(
            "SELECT notification_id FROM {t} WHERE relay = ?", (self.relay,), t=TABLE
        )
        return int(rows[0][0]) if rows else 0

    def take_epoch(self) -> int:
        """The next epoch, taken by the holder of the relay lock as it becomes active."""
        with self._db.transaction():
            self._db.execute(
                "INSERT INTO {t} (relay, epoch, taken_at) VALUES (?, 1, ?)"
                " ON CONFLICT (relay) DO UPDATE"
                " SET epoch = {t}.epoch + 1, taken_at = excluded.taken_at",
                (self.relay, _now()),
                t=EPOCH_TABLE,
            )
            self.epoch = self._current_epoch()
        return self.epoch

    def check_epoch(self) -> None:
        """Raise ``RelayFenced`` when another relay took a newer epoch than ours."""
        current = self._current_epoch()
        if self.epoch is not None and current != self.epoch:
            msg = (
                f"relay {self.relay}: epoch {self.epoch} was superseded by epoch {current} "
                "(another relay became active); this one stops publishing"
            )
            raise RelayFenced(msg)

    def save(self, notification_id: int) -> None:
        """Save the position; once an epoch is taken, only while it is still the newest."""
        with self._db.transaction():
            if self.epoch is not None:
                self.check_epoch()
            self._db.execute(
                "INSERT INTO {t} (relay, notification_id, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (relay) DO UPDATE"
                " SET notification_id = excluded.notification_id,"
                " updated_at = excluded.updated_at"
                " WHERE {t}.notification_id < excluded.notification_id",
                (self.relay, notification_id, _now()),
                t=TABLE,
            )

    def _current_epoch(self) -> int:
        # PostgreSQL: FOR UPDATE waits for a successor taking its epoch, and reads it
        query = _EPOCH_FOR_UPDATE if self._db.dialect == "postgres" else _EPOCH
        rows = self._db.execute(query, (self.relay,), t=EPOCH_TABLE)
        return int(rows[0][0]) if rows else 0


def _now() -> str:
    return datetime.now(UTC).isoformat()


def read_positions(db: StoreDb) -> dict[str, int]:
    """Every relay's position, for ``leadflow stream-stats`` (empty before the first relay)."""
    _create_tables(db)
    rows = db.execute("SELECT relay, notification_id FROM {t} ORDER BY relay", t=TABLE)
    return {str(relay): int(position) for relay, position in rows}
