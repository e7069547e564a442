"""The integrity settings recorded in the event store: whether its events are encrypted
(with the key's fingerprint, never the key), whether they are compressed, and the audit
key id of the signed log (``adapters.audit_log``), and the id scheme of its leads and deals
with the check value of its privacy master key (``adapters.privacy_keys``).

The first process on a store records them; every later one compares its own settings
with what is recorded and refuses to start, before it writes anything, when they
disagree. A store that predates the record has it inferred once from its first stored
events, read with the configured settings. Changing the cipher key of an existing store
is refused; rotation is not supported yet. So is opening a store with another privacy
master key: the same email would silently become a second lead. A store whose id scheme
is not recorded gets the scheme its first lead's id shows (version 4: random ids in a
keyed index; version 8: keyed ids; else the legacy uuid5 scheme), or, without a lead,
the configured one unless its first aggregate id is neither (the legacy scheme).
The record also notes when the log chain was started, so that a store whose chain was
emptied is not taken for one from before the chain (``leadflow.bootstrap``).
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Cipher

from adapters.event_store import StoreSettingsError, cipher_key_bytes, key_fingerprint
from adapters.settings import StoreSettings
from adapters.store_db import StoreDb

TABLE = "leadflow_store_integrity"

_CREATE = """
CREATE TABLE IF NOT EXISTS {t} (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    encrypted BOOLEAN NOT NULL,
    key_fingerprint TEXT,
    compressed BOOLEAN NOT NULL,
    audit_key_id TEXT,
    recorded_at TEXT NOT NULL,
    id_scheme TEXT,
    key_check TEXT,
    log_chained_at TEXT
)"""
_ADDED_COLUMNS = ("id_scheme", "key_check", "log_chained_at")  # not in an older leadflow's
_SAMPLE = 20  # first stored events read to infer the settings of an older store
_KEY = "LEADFLOW_CIPHER_KEY"
_COMPRESS = "LEADFLOW_COMPRESS_EVENTS"
_AUDIT_KEY = "LEADFLOW_AUDIT_KEY_FILE"
_MASTER_KEY = "LEADFLOW_PRIVACY_MASTER_KEY_FILE"


class StoreTampered(Exception):
    """The store shows that it was changed outside leadflow (one line; the CLI exits 3)."""


@dataclass(frozen=True, slots=True)
class IntegritySettings:
    encrypted: bool
    key_fingerprint: str | None
    compressed: bool
    audit_key_id: str | None = None
    id_scheme: str | None = None
    key_check: str | None = None
    log_chained_at: str | None = None
    """When the store's log chain was started (every event chained since): a store that
    records it and holds no chain was emptied, never one from before the chain."""


@dataclass(frozen=True, slots=True)
class WantedIds:
    """The id scheme a new store gets, the schemes of stores whose events predate the
    record (keyed: version 8 lead ids; legacy: uuid5 ones), and the configured privacy
    master key's check value and file."""

    scheme: str
    legacy_scheme: str
    key_check: str
    key_source: str
    keyed_scheme: str = ""


def configured_integrity(store: StoreSettings) -> IntegritySettings:
    """What the settings say (the cipher key checked: StoreSettingsError when malformed)."""
    key = cipher_key_bytes(store)
    return IntegritySettings(
        encrypted=key is not None,
        key_fingerprint=None if key is None else key_fingerprint(key),
        compressed=store.compress_events,
    )


def check_store_integrity(
    store: StoreSettings,
    recorder: ApplicationRecorder,
    cipher: Cipher | None,
    audit_key_id: str | None = None,
    *,
    audit_key_verifies_only: bool = False,
    ids: WantedIds | None = None,
) -> IntegritySettings:
    """Refuse (StoreSettingsError, one line naming the setting) when ``store``'s settings
    (and the audit key ``audit_key_id``) disagree with what the event store records;
    record them when nothing is recorded yet (the audit key id also when a store starts
    being signed). A process whose audit key only verifies (a public key) never signs,
    so its key is not compared: the signed log's verification judges it. The id scheme
    and master key check (``ids``) are recorded once and compared on every later open.
    On PostgreSQL, call it under the DDL lock. Returns what is recorded."""
    wanted = replace(configured_integrity(store), audit_key_id=audit_key_id)
    with StoreDb(store) as db:
        recorded = _read(db)
        if recorded is None:
            first = recorder.select_notifications(start=None, limit=_SAMPLE)
            if first:
                _check_first_events(db.location, [n.state for n in first], wanted, cipher)
            db.execute(_CREATE, t=TABLE)
            db.execute(
                "INSERT INTO {t} (id, encrypted, key_fingerprint, compressed, audit_key_id, "
                "recorded_at) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                (
                    wanted.encrypted,
                    wanted.key_fingerprint,
                    wanted.compressed,
                    wanted.audit_key_id,
                    datetime.now(UTC).isoformat(),
                ),
                t=TABLE,
            )
            recorded = _read(db)
            assert recorded is not None
        if ids is not None:
            recorded = _record_ids(db, recorder, recorded, ids)
        if audit_key_verifies_only:
            wanted = replace(wanted, audit_key_id=recorded.audit_key_id)
        _compare(db.location, recorded, wanted)
        if recorded.audit_key_id is None and wanted.audit_key_id is not None:
            db.execute(
                "UPDATE {t} SET audit_key_id = ? WHERE id = 1", (wanted.audit_key_id,), t=TABLE
            )
            recorded = replace(recorded, audit_key_id=wanted.audit_key_id)
    return recorded


def _read(db: StoreDb) -> IntegritySettings | None:
    if not db.has_table(TABLE):
        return None
    _add_columns(db)
    rows = db.execute(
        "SELECT encrypted, key_fingerprint, compressed, audit_key_id, id_scheme, key_check, "
        "log_chained_at FROM {t} WHERE id = 1",
        t=TABLE,
    )
    if not rows:
        return None
    encrypted, fingerprint, compressed, audit_key_id, id_scheme, key_check, chained = rows[0]
    return IntegritySettings(
        bool(encrypted), fingerprint, bool(compressed), audit_key_id, id_scheme, key_check, chained
    )


def record_log_chained(store: StoreSettings) -> None:
    """Record that the store's log chain is started (once; call it when every stored event
    is chained). On PostgreSQL, call it under the DDL lock."""
    with StoreDb(store) as db:
        db.execute(
            "UPDATE {t} SET log_chained_at = ? WHERE id = 1 AND log_chained_at IS NULL",
            (datetime.now(UTC).isoformat(),),
            t=TABLE,
        )


def _add_columns(db: StoreDb) -> None:
    """The columns added since in a table an older leadflow created without them."""
    if db.dialect == "postgres":
        query = "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(?)"
        present = {row[0] for row in db.execute(query, (db.table(TABLE),))}
    else:
        present = {row[0] for row in db.execute("SELECT name FROM pragma_table_info(?)", (TABLE,))}
    for column in _ADDED_COLUMNS:
        if column in present:
            continue
        if db.dialect == "postgres":  # under the DDL lock
            db.execute(f"ALTER TABLE {{t}} ADD COLUMN IF NOT EXISTS {column} TEXT", t=TABLE)
            continue
        try:
            db.execute(f"ALTER TABLE {{t}} ADD COLUMN {column} TEXT", t=TABLE)
        except sqlite3.OperationalError as error:
            if "duplicate column" not in str(error):  # another process added it first
                raise


def _record_ids(
    db: StoreDb, recorder: ApplicationRecorder, recorded: IntegritySettings, ids: WantedIds
) -> IntegritySettings:
    """``recorded`` with its id scheme and key check, recorded now if missing; refused
    (StoreSettingsError) when the store's key check is not this master key's."""
    if recorded.id_scheme is None or recorded.key_check is None:
        scheme = recorded.id_scheme or _scheme_of_events(recorder, ids)
        db.execute(
            "UPDATE {t} SET id_scheme = ?, key_check = ? WHERE id = 1 AND key_check IS NULL",
            (scheme, ids.key_check),
            t=TABLE,
        )
        updated = _read(db)
        assert updated is not None
        recorded = updated
    if recorded.key_check != ids.key_check:
        msg = (
            f"{_MASTER_KEY}: the event store at {db.location} was created with the privacy "
            f"master key checked {recorded.key_check}; the key in {ids.key_source} checks "
            f"{ids.key_check} (another master key would make the same email a second lead)"
        )
        raise StoreSettingsError(msg)
    return recorded


def _scheme_of_events(recorder: ApplicationRecorder, ids: WantedIds) -> str:
    """The id scheme of a store that does not record one, from the version of its first
    lead's id (4: the configured, indexed scheme; 8: keyed; else legacy); without a lead
    in its first events, the configured one unless its first aggregate id is not a
    version 8 one (a deal of a legacy store)."""
    first = recorder.select_notifications(start=None, limit=_SAMPLE)
    leads = [n for n in first if str(n.topic).endswith(":LeadCaptured")]
    if leads:
        version = UUID(str(leads[0].originator_id)).version
        by_version = {4: ids.scheme, 8: ids.keyed_scheme or ids.scheme}
        return by_version.get(version or 0, ids.legacy_scheme)
    if not first or UUID(str(first[0].originator_id)).version == 8:
        return ids.scheme
    return ids.legacy_scheme


def _compare(location: str, recorded: IntegritySettings, wanted: IntegritySettings) -> None:
    where = f"the event store at {location}"
    if recorded.encrypted and not wanted.encrypted:
        msg = (
            f"{_KEY}: {where} is encrypted (key fingerprint {recorded.key_fingerprint}); "
            f"{_KEY} is not set"
        )
        raise StoreSettingsError(msg)
    if wanted.encrypted and not recorded.encrypted:
        msg = (
            f"{_KEY}: {where} is not encrypted; {_KEY} is set "
            "(encrypting an existing store is not supported)"
        )
        raise StoreSettingsError(msg)
    if recorded.encrypted and recorded.key_fingerprint != wanted.key_fingerprint:
        msg = (
            f"{_KEY}: {where} is encrypted with key fingerprint {recorded.key_fingerprint}; "
            f"this key's fingerprint is {wanted.key_fingerprint} "
            "(changing the key of an existing store is refused)"
        )
        raise StoreSettingsError(msg)
    _compare_audit_key(where, recorded.audit_key_id, wanted.audit_key_id)
    if recorded.compressed != wanted.compressed:
        msg = (
            f"{_COMPRESS}: the events of {where} are "
            f"{'' if recorded.compressed else 'not '}compressed; the setting says "
            f"{str(wanted.compressed).lower()}"
        )
        raise StoreSettingsError(msg)


def _compare_audit_key(where: str, recorded: str | None, wanted: str | None) -> None:
    if recorded is None or recorded == wanted:
        return
    if wanted is None:
        msg = (
            f"{_AUDIT_KEY}: the log of {where} is signed with audit key id {recorded}; "
            f"{_AUDIT_KEY} is not set"
        )
    else:
        msg = (
            f"{_AUDIT_KEY}: the log of {where} is signed with audit key id {recorded}; "
            f"this key's id is {wanted} (change it with leadflow audit rotate-key)"
        )
    raise StoreSettingsError(msg)


def _check_first_events(
    location: str, states: Sequence[bytes], wanted: IntegritySettings, cipher: Cipher | None
) -> None:
    """Infer the settings of a store that predates the record from its first stored events
    (the first one readable decides, so one damaged event does not mislead) and refuse,
    naming the likely setting, when they are not the configured ones."""
    where = f"the event store at {location}"
    form = next((f for f in map(stored_form, states) if f is not None), None)
    if form is not None:
        if wanted.encrypted:
            msg = f"{_KEY}: {where} is not encrypted; {_KEY} is set"
            raise StoreSettingsError(msg)
    elif cipher is None:
        msg = f"{_KEY}: {where} is encrypted; {_KEY} is not set"
        raise StoreSettingsError(msg)
    else:
        decrypted = [plain for plain in map(_decrypted(cipher), states) if plain is not None]
        if not decrypted:
            msg = (
                f"{_KEY}: {where} is encrypted with another key (its first events cannot be "
                f"decrypted with key fingerprint {wanted.key_fingerprint})"
            )
            raise StoreSettingsError(msg)
        form = next((f for f in map(stored_form, decrypted) if f is not None), None)
        if form is None:
            msg = f"{where}: its first stored events are not leadflow JSON under any setting"
            raise StoreSettingsError(msg)
    compressed = form == "zlib"
    if compressed != wanted.compressed:
        msg = (
            f"{_COMPRESS}: the events of {where} are {'' if compressed else 'not '}compressed; "
            f"the setting says {str(wanted.compressed).lower()}"
        )
        raise StoreSettingsError(msg)


def _decrypted(cipher: Cipher) -> Callable[[bytes], bytes | None]:
    def decrypt(state: bytes) -> bytes | None:
        try:
            return cipher.decrypt(state)
        except ValueError:
            return None

    return decrypt


def stored_form(data: bytes) -> Literal["json", "zlib"] | None:
    """How unencrypted stored bytes hold an event: a JSON object, a zlib-compressed one, or
    neither (encrypted, or damaged)."""
    if _json_object(data):
        return "json"
    try:
        inflated = zlib.decompress(data)
    except zlib.error:
        return None
    return "zlib" if _json_object(inflated) else None


def _json_object(data: bytes) -> bool:
    try:
        value: Any = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(value, dict)
