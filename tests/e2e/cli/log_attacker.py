"""An attacker with database access but without the audit key: reads and rewrites the
event store's tables directly, knowing every published algorithm (the per-aggregate
hash chain and the log chain)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from adapters.audit_log import CHAIN_TABLE, GENESIS, HEADS_TABLE, link_for
from adapters.store_db import StoreDb
from domain.hash_chain import GENESIS_HASH, event_digest
from leadflow.bootstrap import load_settings


@dataclass(frozen=True, slots=True)
class Row:
    position: int
    originator_id: UUID
    version: int
    topic: str
    state: bytes

    def data(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.state)
        return value


class Attacker:
    def __init__(self) -> None:
        self.db = StoreDb(load_settings().store)
        sqlite = self.db.dialect == "sqlite"
        self.events = "stored_events" if sqlite else "leadflow_events"
        self.position = "rowid" if sqlite else "notification_id"

    def close(self) -> None:
        self.db.close()

    def _id(self, aggregate_id: UUID) -> Any:
        return aggregate_id.hex if self.db.dialect == "sqlite" else aggregate_id

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute(
            statement, params, events=self.events, chain=CHAIN_TABLE, heads=HEADS_TABLE
        )

    def rows(self) -> list[Row]:
        return [
            Row(int(p), UUID(str(o)), int(v), t, bytes(s))
            for p, o, v, t, s in self.sql(
                f"SELECT {self.position}, originator_id, originator_version, topic, state "
                f"FROM {{events}} ORDER BY {self.position}"
            )
        ]

    def delete_event(self, aggregate_id: UUID, version: int) -> int:
        position = next(
            r.position
            for r in self.rows()
            if r.originator_id == aggregate_id and r.version == version
        )
        self.sql(
            "DELETE FROM {events} WHERE originator_id = ? AND originator_version = ?",
            (self._id(aggregate_id), version),
        )
        return position

    def write_state(self, aggregate_id: UUID, version: int, data: dict[str, Any]) -> None:
        self.sql(
            "UPDATE {events} SET state = ? WHERE originator_id = ? AND originator_version = ?",
            (json.dumps(data).encode(), self._id(aggregate_id), version),
        )

    def rechain_aggregate(self, aggregate_id: UUID) -> None:
        """Recompute the aggregate's own hash chain over its stored events."""
        previous = GENESIS_HASH
        for row in (r for r in self.rows() if r.originator_id == aggregate_id):
            data = row.data()
            data["prev_hash"] = previous
            data["hash"] = event_digest(row.topic, str(aggregate_id), row.version, data)
            self.write_state(aggregate_id, row.version, data)
            previous = data["hash"]

    def rechain_log(self) -> None:
        """Recompute the whole log chain from the events now stored (it has no secret)."""
        link, entries = GENESIS, []
        for row in self.rows():
            link = link_for(
                link, row.position, row.topic, row.originator_id, row.version, row.state
            )
            entries.append((row.position, link))
        self.sql("DELETE FROM {chain}")
        self.db.executemany(
            "INSERT INTO {chain} (position, link) VALUES (?, ?)", entries, chain=CHAIN_TABLE
        )

    def swap_positions(self, first: int, second: int) -> None:
        """Give two stored events each other's notification position."""
        spare = 1_000_000
        for old, new in ((first, spare), (second, first), (spare, second)):
            self.sql(
                f"UPDATE {{events}} SET {self.position} = ? WHERE {self.position} = ?", (new, old)
            )


_COPIED = {
    "chain": "position, link",
    "heads": "position, link, key_id, signature, signed_at",
    "ledger": "command_id, fingerprint, command, aggregate_ids, events, refusal",
}


def copy_of_store(attacker: Attacker) -> dict[str, list[tuple[Any, ...]]]:
    """Every row an earlier copy of the store would hold (events, chain, heads, ledger)."""
    columns = dict(_COPIED, events=f"{attacker.position}, {_EVENT_COLUMNS}")
    return {
        name: attacker.db.execute(f"SELECT {cols} FROM {{t}}", t=_table(attacker, name))
        for name, cols in columns.items()
    }


def restore(attacker: Attacker, copy: dict[str, list[tuple[Any, ...]]]) -> None:
    """Put the store back to ``copy`` (as restoring a backup would)."""
    columns = dict(_COPIED, events=f"{attacker.position}, {_EVENT_COLUMNS}")
    for name, rows in copy.items():
        table = _table(attacker, name)
        attacker.db.execute("DELETE FROM {t}", t=table)
        marks = ", ".join("?" * len(columns[name].split(",")))
        attacker.db.executemany(
            f"INSERT INTO {{t}} ({columns[name]}) VALUES ({marks})", rows, t=table
        )


_EVENT_COLUMNS = "originator_id, originator_version, topic, state"


def _table(attacker: Attacker, name: str) -> str:
    return {
        "events": attacker.events,
        "chain": CHAIN_TABLE,
        "heads": HEADS_TABLE,
        "ledger": "leadflow_command_ledger",
    }[name]
