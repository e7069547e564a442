"""The whole event log chained in notification order, and its signed heads.

Every stored event gets a chain entry in the transaction that stores it: its link is
SHA-256 over a fixed label, the previous entry's link (32 zero bytes for the first),
and the event's stored bytes (notification id, topic, originator id, version, state).
With an audit key, the head of the chain (position and link) is signed with Ed25519 in
the same transaction and kept in ``leadflow_signed_heads``; the recorder then appends
it to the witness (``adapters.audit_witness``). The chain alone can be recomputed by
anyone; a signed head cannot, so it anchors every event up to its position.

On PostgreSQL the entries are written after eventsourcing's insert, under the writers'
lock the recorder takes first (``adapters.write_lock``): writers are serialised, so
entries never interleave and positions follow commit order. SQLite serialises writers
itself.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from psycopg import sql

if TYPE_CHECKING:  # the key module needs the event store's error, which needs this module
    from adapters.audit_keys import AuditKey

CHAIN_TABLE = "leadflow_log_chain"
HEADS_TABLE = "leadflow_signed_heads"
HEADS_KWARG = "leadflow_signed_heads"
GENESIS = bytes(32)
_LINK_LABEL = b"leadflow log chain v1\x00"
_HEAD_LABEL = b"leadflow signed head v1\x00"

SQLITE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {CHAIN_TABLE} (position INTEGER PRIMARY KEY, link BLOB NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {HEADS_TABLE} (position INTEGER PRIMARY KEY, "
    "link BLOB NOT NULL, key_id TEXT NOT NULL, signature BLOB NOT NULL, signed_at TEXT NOT NULL)",
)


def link_for(
    previous: bytes,
    position: int,
    topic: str,
    originator_id: UUID | str,
    version: int,
    state: bytes,
) -> bytes:
    """The chain link of one stored event after the entry whose link is ``previous``."""
    topic_bytes = topic.encode("utf-8")
    originator = _originator_bytes(originator_id)
    digest = hashlib.sha256(_LINK_LABEL)
    digest.update(previous)
    digest.update(struct.pack(">QI", position, len(topic_bytes)))
    digest.update(topic_bytes)
    digest.update(struct.pack(">I", len(originator)))
    digest.update(originator)
    digest.update(struct.pack(">QQ", version, len(state)))
    digest.update(state)
    return digest.digest()


def _originator_bytes(originator_id: UUID | str) -> bytes:
    """A UUID's 16 bytes, whether the recorder gives it as a UUID or as its text."""
    if isinstance(originator_id, UUID):
        return originator_id.bytes
    try:
        return UUID(originator_id).bytes
    except ValueError:
        return originator_id.encode("utf-8")


@dataclass(frozen=True, slots=True)
class SignedHead:
    """The chain's head at ``position`` signed by the audit key ``key_id``."""

    position: int
    link: bytes
    key_id: str
    signature: bytes
    signed_at: str

    def message(self) -> bytes:
        return signed_message(self.position, self.link, self.key_id, self.signed_at)

    def as_row(self) -> tuple[int, bytes, str, bytes, str]:
        return (self.position, self.link, self.key_id, self.signature, self.signed_at)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> SignedHead:
        position, link, key_id, signature, signed_at = row
        return cls(
            int(position), stored_bytes(link), str(key_id), stored_bytes(signature), str(signed_at)
        )


def stored_bytes(value: object) -> bytes:
    """A stored binary column as bytes; a value of another type (SQLite stores what it is
    given) becomes bytes that match nothing, so damage is reported, never a crash."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8")


def signed_message(position: int, link: bytes, key_id: str, signed_at: str) -> bytes:
    """The bytes an audit key signs for a head."""
    return b"".join(
        (
            _HEAD_LABEL,
            struct.pack(">Q", position),
            link,
            key_id.encode(),
            b"\x00",
            signed_at.encode(),
        )
    )


def sign_head(key: AuditKey, position: int, link: bytes) -> SignedHead:
    signed_at = datetime.now(UTC).isoformat()
    signature = key.sign(signed_message(position, link, key.key_id, signed_at))
    return SignedHead(position, link, key.key_id, signature, signed_at)


class Witness(Protocol):
    """Where signed heads are also kept, outside the event store."""

    def append(self, heads: Sequence[SignedHead]) -> None: ...


@dataclass(frozen=True, slots=True)
class AuditConfig:
    """What the recorder does beside chaining: sign heads with ``key`` (when set) and
    append them to ``witness`` (when set)."""

    key: AuditKey | None = None
    witness: Witness | None = None


class _Cursor(Protocol):
    def execute(self, query: Any, params: Any = ..., /) -> Any: ...

    def executemany(self, query: Any, params_seq: Any, /) -> Any: ...

    def fetchone(self) -> Any: ...


def _chain(
    previous: bytes, stored_events: Sequence[StoredEvent], positions: Sequence[int]
) -> list[tuple[int, bytes]]:
    entries: list[tuple[int, bytes]] = []
    for event, position in zip(stored_events, positions, strict=True):
        previous = link_for(
            previous,
            position,
            event.topic,
            event.originator_id,
            event.originator_version,
            event.state,
        )
        entries.append((position, previous))
    return entries


def _last_link(row: Any) -> bytes:
    if row is None:
        return GENESIS
    value = row["link"] if isinstance(row, dict) else row[0]
    return bytes(value)


def write_chain(
    cursor: _Cursor,
    dialect: sql.Composable | None,
    stored_events: Sequence[StoredEvent],
    positions: Sequence[int],
    config: AuditConfig,
    heads: list[SignedHead] | None,
) -> None:
    """Chain ``stored_events`` (stored at ``positions``) after the last entry, and sign
    the new head when there is a key, in the caller's transaction. ``dialect`` is the
    PostgreSQL schema (an Identifier), or None on SQLite."""
    if not stored_events:
        return
    chain, signed = _tables(dialect)
    cursor.execute(_sql("SELECT link FROM {} ORDER BY position DESC LIMIT 1", dialect, chain))
    entries = _chain(_last_link(cursor.fetchone()), stored_events, positions)
    insert = "INSERT INTO {} (position, link) VALUES (?, ?)"
    cursor.executemany(_sql(insert, dialect, chain), entries)
    if config.key is None:
        return
    position, link = entries[-1]
    head = sign_head(config.key, position, link)
    cursor.execute(
        _sql(
            "INSERT INTO {} (position, link, key_id, signature, signed_at) VALUES (?,?,?,?,?)",
            dialect,
            signed,
        ),
        head.as_row(),
    )
    if heads is not None:
        heads.clear()
        heads.append(head)


def _tables(schema: sql.Composable | None) -> tuple[Any, Any]:
    if schema is None:
        return CHAIN_TABLE, HEADS_TABLE
    return (
        sql.SQL(".").join([schema, sql.Identifier(CHAIN_TABLE)]),
        sql.SQL(".").join([schema, sql.Identifier(HEADS_TABLE)]),
    )


def _sql(statement: str, schema: sql.Composable | None, table: Any) -> Any:
    if schema is None:
        return statement.format(table)
    return sql.SQL(statement.replace("?", "%s")).format(table)


def postgres_ddl(schema: str) -> list[sql.Composed]:
    ident = sql.Identifier(schema)
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.{} (position bigint PRIMARY KEY, link bytea NOT NULL)"
        ).format(ident, sql.Identifier(CHAIN_TABLE)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.{} (position bigint PRIMARY KEY, link bytea NOT NULL, "
            "key_id text NOT NULL, signature bytea NOT NULL, signed_at text NOT NULL)"
        ).format(ident, sql.Identifier(HEADS_TABLE)),
    ]


def heads_to_witness(kwargs: dict[str, Any]) -> list[SignedHead] | None:
    heads: list[SignedHead] | None = kwargs.get(HEADS_KWARG)
    return heads
