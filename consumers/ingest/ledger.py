"""What engagement ingest did with each record it consumed: one row per record.

Table ``leadflow_ingest_ledger`` in the event store's database, keyed by
(consumer group, topic, partition, offset). A record handled again after a crash (its
offset was not committed yet) maps to the same key and the same verdict, and the row is
inserted only once; so accepted + duplicate + dead-lettered always equals the records
the group consumed, across restarts. Dead letters keep their reason here as well as on
the dead-letter topic, so ``leadflow dlq`` can show them. Text is stored as
``adapters.storable_text`` makes it (no NUL, no lone surrogate; a reason bounded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from adapters.storable_text import storable_reason, storable_text
from adapters.store_db import StoreDb

TABLE = "leadflow_ingest_ledger"
Status = Literal["accepted", "duplicate", "dead_lettered"]
STATUSES: tuple[Status, ...] = ("accepted", "duplicate", "dead_lettered")


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    group: str
    topic: str
    partition: int
    offset: int
    status: Status
    event_id: str | None = None
    problem: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IngestCounts:
    accepted: int = 0
    duplicate: int = 0
    dead_lettered: int = 0

    @property
    def consumed(self) -> int:
        return self.accepted + self.duplicate + self.dead_lettered

    def add(self, other: IngestCounts) -> IngestCounts:
        return IngestCounts(
            self.accepted + other.accepted,
            self.duplicate + other.duplicate,
            self.dead_lettered + other.dead_lettered,
        )

    def plus(self, status: Status, count: int = 1) -> IngestCounts:
        values = {s: getattr(self, s) for s in STATUSES}
        values[status] += count
        return IngestCounts(**values)


def _storable(text: str | None) -> str | None:
    return None if text is None else storable_text(text)


class IngestLedger:
    def __init__(self, db: StoreDb) -> None:
        self._db = db
        db.create_table(
            "CREATE TABLE IF NOT EXISTS {t} ("
            " consumer_group TEXT NOT NULL,"
            " topic TEXT NOT NULL,"
            " kafka_partition INTEGER NOT NULL,"
            " kafka_offset BIGINT NOT NULL,"
            " status TEXT NOT NULL,"
            " event_id TEXT,"
            " problem TEXT,"
            " reason TEXT,"
            " recorded_at TEXT NOT NULL,"
            " PRIMARY KEY (consumer_group, topic, kafka_partition, kafka_offset))",
            t=TABLE,
        )

    def record(self, entries: Sequence[LedgerEntry]) -> None:
        """Insert the entries in one transaction; entries already present stay as they were."""
        if not entries:
            return
        now = datetime.now(UTC).isoformat()
        rows = [
            (
                e.group,
                e.topic,
                e.partition,
                e.offset,
                e.status,
                _storable(e.event_id),
                _storable(e.problem),
                None if e.reason is None else storable_reason(e.reason),
                now,
            )
            for e in entries
        ]
        with self._db.transaction():
            self._db.executemany(
                "INSERT INTO {t} (consumer_group, topic, kafka_partition, kafka_offset, status,"
                " event_id, problem, reason, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                rows,
                t=TABLE,
            )

    def counts(self, group: str | None = None) -> dict[tuple[str, str], IngestCounts]:
        """(group, topic) → counts, for one group or all."""
        rows = self._db.execute(
            "SELECT consumer_group, topic, status, COUNT(*) FROM {t}"
            " WHERE CAST(? AS TEXT) IS NULL OR consumer_group = ?"
            " GROUP BY consumer_group, topic, status ORDER BY consumer_group, topic",
            (group, group),
            t=TABLE,
        )
        result: dict[tuple[str, str], IngestCounts] = {}
        for row_group, topic, status, count in rows:
            key = (str(row_group), str(topic))
            result[key] = result.get(key, IngestCounts()).plus(status, int(count))
        return result

    def dead_letters(self, group: str | None = None, limit: int = 20) -> list[LedgerEntry]:
        """The most recent dead letters, newest first."""
        rows = self._db.execute(
            "SELECT consumer_group, topic, kafka_partition, kafka_offset, status, event_id,"
            " problem, reason FROM {t} WHERE status = 'dead_lettered'"
            " AND (CAST(? AS TEXT) IS NULL OR consumer_group = ?)"
            " ORDER BY recorded_at DESC, kafka_offset DESC LIMIT ?",
            (group, group, limit),
            t=TABLE,
        )
        return [
            LedgerEntry(str(g), str(t), int(p), int(o), s, e, pr, r)
            for g, t, p, o, s, e, pr, r in rows
        ]
