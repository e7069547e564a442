"""The keyed lead index, kept in the event store's database.

Table ``leadflow_lead_index`` (the SQLite file or the PostgreSQL schema of the events):
``ref_mac``, the HMAC-SHA256 of a lead's normalised external id under a sub-key of the
privacy master key (``service.indexed_ids``), and the lead's random id. It holds no email
and no key. Forgetting a lead deletes its row (on SQLite ``secure_delete`` zeroes it).
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from adapters.settings import StoreSettings
from adapters.store_db import StoreDb, ThreadDbs

TABLE = "leadflow_lead_index"
_BY_LEAD = "leadflow_lead_index_by_lead"
_READ_CHUNK = 500  # MACs per query
_CREATE = "CREATE TABLE IF NOT EXISTS {{t}} (ref_mac {blob} PRIMARY KEY, lead_id TEXT NOT NULL)"
_INSERT = "INSERT INTO {t} (ref_mac, lead_id) VALUES (?, ?) ON CONFLICT (ref_mac) DO NOTHING"
_FIND = "SELECT ref_mac, lead_id FROM {t} WHERE ref_mac IN "
_DELETE = "DELETE FROM {t} WHERE lead_id = ? RETURNING 1"


def create_lead_index_table(db: StoreDb) -> None:
    """The index table, if missing (PostgreSQL: call it under the DDL lock)."""
    blob = "BYTEA" if db.dialect == "postgres" else "BLOB"
    db.execute(_CREATE.format(blob=blob), t=TABLE)
    db.execute(f"CREATE INDEX IF NOT EXISTS {_BY_LEAD} ON {{t}} (lead_id)", t=TABLE)


class StoredLeadIndex:
    """The index of one store, one connection per thread."""

    def __init__(self, store: StoreSettings) -> None:
        self._dbs = ThreadDbs(store)

    def _db(self) -> StoreDb:
        return self._dbs.get()

    def find(self, macs: Sequence[bytes]) -> dict[bytes, UUID]:
        found: dict[bytes, UUID] = {}
        for start in range(0, len(macs), _READ_CHUNK):
            chunk = macs[start : start + _READ_CHUNK]
            query = _FIND + f"({', '.join('?' * len(chunk))})"
            for mac, lead_id in self._db().execute(query, chunk, t=TABLE):
                found[bytes(mac)] = UUID(str(lead_id))
        return found

    def claim(self, rows: Sequence[tuple[bytes, UUID]]) -> None:
        """Insert-or-ignore: a MAC that has a row keeps it (whoever inserted first)."""
        db = self._db()
        with db.transaction():
            db.executemany(_INSERT, [(mac, str(lead_id)) for mac, lead_id in rows], t=TABLE)

    def delete(self, lead_id: UUID) -> int:
        return len(self._db().execute(_DELETE, (str(lead_id),), t=TABLE))

    def close(self) -> None:
        self._dbs.close()
