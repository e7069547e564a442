"""One data key per lead, kept wrapped in the event store's database.

Table ``leadflow_lead_keys`` (the SQLite file or the PostgreSQL schema of the events):
the lead id, its 32-byte data key wrapped with AES-256-GCM under the master key's
``lead data keys`` sub-key (a random 12-byte nonce, the lead id as associated data),
when the key was created and when it was destroyed. ``destroy`` overwrites the wrapped
key with NULL: every value sealed under it becomes unreadable (crypto-shredding).

A key is created on a lead's first sealed value; two processes creating it at once both
insert-or-ignore and read back, so both use the one that was stored first. Unwrapped keys
(and destroyed ones, as destroyed) are kept in a bounded in-process cache, so replaying a
lead's events reads its key once.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.settings import StoreSettings
from adapters.store_db import StoreDb, ThreadDbs
from adapters.store_integrity import StoreTampered

TABLE = "leadflow_lead_keys"
WRAPPING_KEY_LABEL = "lead data keys"  # the master key's sub-key that wraps data keys
DATA_KEY_SIZE = 32
NONCE_SIZE = 12
_CACHED_KEYS = 4096
_READ_CHUNK = 500  # leads per key-table query
_INSERT = (
    "INSERT INTO {t} (lead_id, nonce, wrapped_key, created_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (lead_id) DO NOTHING"
)
_READ_MANY = "SELECT lead_id, nonce, wrapped_key, erased_at FROM {t} WHERE lead_id IN "
_CREATE = """
CREATE TABLE IF NOT EXISTS {{t}} (
    lead_id TEXT PRIMARY KEY,
    nonce {blob},
    wrapped_key {blob},
    created_at TEXT NOT NULL,
    erased_at TEXT
)"""

log = structlog.get_logger("leadflow.lead_keys")


class DataKeyUnreadable(StoreTampered):
    """A stored data key that the master key in use cannot unwrap: the store already
    refuses another master key (its key check), so the key table was altered (exit 3)."""


class MissingDataKey(ValueError):
    """A sealed value names a lead that has no data key: the key table lost a row."""


class _Destroyed:
    """The cache's entry for a destroyed key."""


_DESTROYED = _Destroyed()


def create_lead_keys_table(db: StoreDb) -> None:
    """The key table, if missing (PostgreSQL: call it under the DDL lock)."""
    blob = "BYTEA" if db.dialect == "postgres" else "BLOB"
    db.execute(_CREATE.format(blob=blob), t=TABLE)


class LeadKeys:
    """The key table of one store, unwrapping with ``wrapping_key``."""

    def __init__(
        self, store: StoreSettings, wrapping_key: bytes, cached: int = _CACHED_KEYS
    ) -> None:
        if len(wrapping_key) != DATA_KEY_SIZE:
            raise ValueError("a wrapping key has 32 bytes")
        self._wrap = AESGCM(wrapping_key)
        self._dbs = ThreadDbs(store)
        self._lock = threading.Lock()
        self._cache: OrderedDict[UUID, bytes | _Destroyed] = OrderedDict()
        self._cached = cached

    def __repr__(self) -> str:
        return "LeadKeys(<key>)"

    def _db(self) -> StoreDb:
        return self._dbs.get()

    def key_for_new(self, lead_id: UUID) -> bytes | None:
        """The lead's data key, created now if it has none; None when it was destroyed."""
        known = self._cached_key(lead_id)
        if known is not None:
            return None if isinstance(known, _Destroyed) else known
        self._db().execute(_INSERT, self._new_row(lead_id), t=TABLE)
        key = self.key(lead_id)  # whichever process inserted first
        if key is None and not self.is_destroyed(lead_id):  # pragma: no cover - just inserted
            raise MissingDataKey(f"lead {lead_id} has no data key right after creating one")
        return key

    def key(self, lead_id: UUID) -> bytes | None:
        """The lead's data key; None when it was destroyed (MissingDataKey: no row)."""
        known = self._cached_key(lead_id)
        if known is None:
            known = self._read(lead_id)
            self._remember(lead_id, known)
        return None if isinstance(known, _Destroyed) else known

    def is_destroyed(self, lead_id: UUID) -> bool:
        try:
            return self.key(lead_id) is None
        except MissingDataKey:
            return False

    def destroy(self, lead_id: UUID) -> bool:
        """Overwrite the lead's wrapped key with NULL; True when it was destroyed now,
        False when it was already (or never existed)."""
        rows = self._db().execute(
            "UPDATE {t} SET nonce = NULL, wrapped_key = NULL, erased_at = ? "
            "WHERE lead_id = ? AND erased_at IS NULL RETURNING lead_id",
            (_now(), str(lead_id)),
            t=TABLE,
        )
        self._remember(lead_id, _DESTROYED)
        if rows:
            log.info("lead_data_key_destroyed", lead_id=str(lead_id))
        return bool(rows)

    def forget_cached(self) -> None:
        """Drop the cache (another process may have destroyed keys)."""
        with self._lock:
            self._cache.clear()

    def close(self) -> None:
        self._dbs.close()

    def prepare(self, lead_ids: Iterable[UUID]) -> None:
        """Keys for these leads in the cache, those without one created now: one read and
        at most one write for a whole batch (``key_for_new`` would take one each)."""
        wanted = sorted({i for i in lead_ids if self._cached_key(i) is None}, key=str)
        if not wanted:
            return
        missing = set(wanted) - self._read_many(wanted)
        if not missing:
            return
        rows = [self._new_row(lead_id) for lead_id in sorted(missing, key=str)]
        db = self._db()
        with db.transaction():
            db.executemany(_INSERT, rows, t=TABLE)
        self._read_many(sorted(missing, key=str))  # whichever process inserted first

    def _new_row(self, lead_id: UUID) -> tuple[str, bytes, bytes, str]:
        """A row for the table: a new random key, wrapped."""
        nonce = secrets.token_bytes(NONCE_SIZE)
        wrapped = self._wrap.encrypt(nonce, secrets.token_bytes(DATA_KEY_SIZE), _aad(lead_id))
        return str(lead_id), nonce, wrapped, _now()

    def load(self, lead_ids: Iterable[UUID]) -> None:
        """Read into the cache the keys of these leads not cached yet, in one query per
        500 leads, creating none: a reader about to open many leads' values. A lead with
        no row, or a key that does not unwrap, is left for ``key`` to report."""
        wanted = sorted({i for i in lead_ids if self._cached_key(i) is None}, key=str)
        self._read_many(wanted, strict=False)

    def _read_many(self, lead_ids: Sequence[UUID], *, strict: bool = True) -> set[UUID]:
        """Read and cache these leads' keys; the leads that have a row. Not ``strict``:
        a key that does not unwrap is skipped, not raised."""
        found: set[UUID] = set()
        for start in range(0, len(lead_ids), _READ_CHUNK):
            chunk = lead_ids[start : start + _READ_CHUNK]
            marks = ", ".join("?" * len(chunk))
            query = _READ_MANY + f"({marks})"
            rows = self._db().execute(query, [str(i) for i in chunk], t=TABLE)
            for lead_id, nonce, wrapped, erased_at in rows:
                owner = UUID(str(lead_id))
                try:
                    key = self._unwrapped(owner, nonce, wrapped, erased_at)
                except DataKeyUnreadable:
                    if strict:
                        raise
                    continue
                self._remember(owner, key)
                found.add(owner)
        return found

    def _read(self, lead_id: UUID) -> bytes | _Destroyed:
        rows = self._db().execute(
            "SELECT nonce, wrapped_key, erased_at FROM {t} WHERE lead_id = ?",
            (str(lead_id),),
            t=TABLE,
        )
        if not rows:
            msg = f"lead {lead_id} has no data key in {self._db().location} ({TABLE})"
            raise MissingDataKey(msg)
        return self._unwrapped(lead_id, *rows[0])

    def _unwrapped(
        self, lead_id: UUID, nonce: Any, wrapped: Any, erased_at: Any
    ) -> bytes | _Destroyed:
        if erased_at is not None or wrapped is None:
            return _DESTROYED
        try:
            return self._wrap.decrypt(bytes(nonce), bytes(wrapped), _aad(lead_id))
        except InvalidTag:
            msg = (
                f"the data key of lead {lead_id} in {self._db().location} cannot be unwrapped "
                "with this privacy master key (the key table was altered, or "
                "LEADFLOW_PRIVACY_MASTER_KEY_FILE names another key)"
            )
            raise DataKeyUnreadable(msg) from None

    def _cached_key(self, lead_id: UUID) -> bytes | _Destroyed | None:
        with self._lock:
            known = self._cache.get(lead_id)
            if known is not None:
                self._cache.move_to_end(lead_id)
            return known

    def _remember(self, lead_id: UUID, key: bytes | _Destroyed) -> None:
        with self._lock:
            self._cache[lead_id] = key
            self._cache.move_to_end(lead_id)
            while len(self._cache) > self._cached:
                self._cache.popitem(last=False)


def _aad(lead_id: UUID) -> bytes:
    return str(lead_id).encode("ascii")


def _now() -> str:
    return datetime.now(UTC).isoformat()
