"""Audit key rotation: the store records each change of signing key, signed by both keys.

A rotation record holds the old and the new public key, the log position up to which the
old key signs (heads after it are the new key's, up to the next rotation; a key rotated
back to signs again), the time, and the signature of both keys over all of it. An
auditor holding either key trusts the other through the record; nobody without a key
can forge one. After a rotation the store's integrity settings
record the new key id, so a process started with the old key is refused. Stop every
writer before rotating: a process that keeps the old key signs heads the verifier then
reports as signed by a key not valid there.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from adapters.audit_keys import AuditKey, raw_public_bytes
from adapters.audit_log import CHAIN_TABLE, stored_bytes
from adapters.store_db import StoreDb
from adapters.store_integrity import TABLE as INTEGRITY_TABLE

TABLE = "leadflow_audit_key_rotations"
_LABEL = b"leadflow audit key rotation v1\x00"
_CREATE = (
    "CREATE TABLE IF NOT EXISTS {{t}} (old_public {blob} NOT NULL, new_public {blob} NOT NULL, "
    "up_to {integer} NOT NULL, rotated_at TEXT NOT NULL, old_signature {blob} NOT NULL, "
    "new_signature {blob} NOT NULL)"
)


def _create_table(db: StoreDb) -> None:
    sqlite = db.dialect == "sqlite"
    types = (
        {"blob": "BLOB", "integer": "INTEGER"} if sqlite else {"blob": "bytea", "integer": "bigint"}
    )
    db.create_table(_CREATE.format(**types), t=TABLE)


@dataclass(frozen=True, slots=True)
class Rotation:
    old_public: bytes
    new_public: bytes
    up_to: int
    rotated_at: str
    old_signature: bytes
    new_signature: bytes

    def message(self) -> bytes:
        return b"".join(
            (
                _LABEL,
                self.old_public,
                self.new_public,
                struct.pack(">Q", self.up_to),
                self.rotated_at.encode(),
            )
        )

    def keys(self) -> tuple[AuditKey, AuditKey]:
        return _public(self.old_public), _public(self.new_public)

    def signed_by_both(self) -> bool:
        old, new = self.keys()
        message = self.message()
        return old.verifies(message, self.old_signature) and new.verifies(
            message, self.new_signature
        )


def _public(raw: bytes) -> AuditKey:
    return AuditKey(Ed25519PublicKey.from_public_bytes(raw), None, None)


@dataclass(frozen=True, slots=True)
class KeySpan:
    """A key trusted for the heads in its ranges: positions ``after`` < p <= ``up_to``
    (``up_to`` None: no end). A key rotated away from and back to signs in several."""

    key: AuditKey
    ranges: tuple[tuple[int, int | None], ...] = ((0, None),)

    def covers(self, position: int) -> bool:
        return any(
            position > after and (up_to is None or position <= up_to)
            for after, up_to in self.ranges
        )

    def describe_ranges(self) -> str:
        """E.g. "1 to 2, 5 onwards"; "none" when every range is empty."""
        texts = [
            f"{after + 1} onwards" if up_to is None else f"{after + 1} to {up_to}"
            for after, up_to in self.ranges
            if up_to is None or up_to > after
        ]
        return ", ".join(texts) or "none"


KeyRing = dict[str, KeySpan]


def key_ring(trusted: AuditKey, rotations: Sequence[Rotation]) -> KeyRing:
    """The keys trusted from ``trusted`` through rotation records signed by both keys,
    each with the positions it signs: the records tied to ``trusted`` (directly or through
    another such record), in the order they were made, cut the log into ranges, each
    signed by the key rotated away from at its end and rotated to at its start."""
    tied = _tied_rotations(trusted, rotations)
    if not tied:
        return {trusted.key_id: KeySpan(trusted.public_only())}
    ranges: dict[str, list[tuple[int, int | None]]] = {}
    keys: dict[str, AuditKey] = {}
    after = 0
    for number, (rotation, (old, new)) in enumerate(tied):
        following = tied[number + 1][0].up_to if number + 1 < len(tied) else None
        for key, span in ((old, (after, rotation.up_to)), (new, (rotation.up_to, following))):
            keys[key.key_id] = key
            if span not in ranges.setdefault(key.key_id, []):
                ranges[key.key_id].append(span)
        after = rotation.up_to
    return {ident: KeySpan(keys[ident], tuple(spans)) for ident, spans in ranges.items()}


def _tied_rotations(
    trusted: AuditKey, rotations: Sequence[Rotation]
) -> list[tuple[Rotation, tuple[AuditKey, AuditKey]]]:
    """The records signed by both keys that tie a key to ``trusted``, oldest first."""
    valid: list[tuple[Rotation, tuple[AuditKey, AuditKey]]] = []
    for rotation in rotations:
        try:
            pair = rotation.keys()
        except ValueError:  # a damaged record ties no key
            continue
        if rotation.signed_by_both():
            valid.append((rotation, pair))
    known = {trusted.key_id}
    tied: list[tuple[Rotation, tuple[AuditKey, AuditKey]]] = []
    while untied := [
        item for item in valid if {key.key_id for key in item[1]} & known and item not in tied
    ]:
        tied += untied
        known |= {key.key_id for _, pair in untied for key in pair}
    return sorted(tied, key=lambda item: (item[0].up_to, item[0].rotated_at))


def read_rotations(db: StoreDb) -> list[Rotation]:
    _create_table(db)
    rows = db.execute(
        "SELECT old_public, new_public, up_to, rotated_at, old_signature, new_signature "
        "FROM {t} ORDER BY up_to",
        t=TABLE,
    )
    return [_rotation(row) for row in rows]


def _rotation(row: Sequence[Any]) -> Rotation:
    old, new, up_to, rotated_at, old_signature, new_signature = row
    return Rotation(
        stored_bytes(old),
        stored_bytes(new),
        int(up_to),
        str(rotated_at),
        stored_bytes(old_signature),
        stored_bytes(new_signature),
    )


def rotate(db: StoreDb, old: AuditKey, new: AuditKey) -> Rotation:
    """Record the change from ``old`` to ``new`` (both private) at the log's current head
    and make ``new`` the store's audit key."""
    _create_table(db)
    with db.transaction():
        if db.dialect == "postgres":
            db.execute("LOCK TABLE {t} IN EXCLUSIVE MODE", t=CHAIN_TABLE)
        head = db.execute("SELECT MAX(position) FROM {t}", t=CHAIN_TABLE)[0][0]
        unsigned = Rotation(
            raw_public_bytes(old.public),
            raw_public_bytes(new.public),
            int(head or 0),
            datetime.now(UTC).isoformat(),
            b"",
            b"",
        )
        message = unsigned.message()
        rotation = Rotation(
            unsigned.old_public,
            unsigned.new_public,
            unsigned.up_to,
            unsigned.rotated_at,
            old.sign(message),
            new.sign(message),
        )
        db.execute(
            "INSERT INTO {t} (old_public, new_public, up_to, rotated_at, old_signature, "
            "new_signature) VALUES (?, ?, ?, ?, ?, ?)",
            (
                rotation.old_public,
                rotation.new_public,
                rotation.up_to,
                rotation.rotated_at,
                rotation.old_signature,
                rotation.new_signature,
            ),
            t=TABLE,
        )
        db.execute("UPDATE {t} SET audit_key_id = ? WHERE id = 1", (new.key_id,), t=INTEGRITY_TABLE)
    return rotation
