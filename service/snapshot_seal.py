"""Sealed snapshots: proven without replaying their events.

A process holding a seal key signs each snapshot it takes: the signature covers a fixed
label, the aggregate, its version, topic, chain position and state (compact, key-sorted
JSON). The seal key is the audit key when one is configured (an auditor can check such a
seal with the public key; only its seals are then trusted), else the local seal key:
HMAC-SHA256 under a sub-key of the privacy master key (``LOCAL_SEAL_LABEL``), so someone
who can write the database but cannot read the key file cannot seal an edited snapshot. A
snapshot whose seal verifies with the key it names, and whose chain position is still
the stored event's hash at its version, is used as it is. Anything else (no seal, an
unknown key's, an old snapshot) is proven by replay (``service.snapshot_proof``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import Protocol

from eventsourcing.persistence import AggregateRecorder

from adapters.audit_keys import AuditKey
from adapters.audit_log import AuditConfig
from domain.aggregate import Snapshot

_LABEL = b"leadflow snapshot seal v1\x00"
LOCAL_SEAL_LABEL = "snapshot seal"


class SealKey(Protocol):
    @property
    def key_id(self) -> str: ...

    @property
    def can_sign(self) -> bool: ...

    def sign(self, message: bytes) -> bytes: ...

    def verifies(self, message: bytes, signature: bytes) -> bool: ...


@dataclass(frozen=True)
class LocalSealKey:
    """HMAC-SHA256 under a secret only this installation holds."""

    secret: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        return "local:" + hashlib.sha256(b"key id\x00" + self.secret).hexdigest()[:16]

    @property
    def can_sign(self) -> bool:
        return True

    def sign(self, message: bytes) -> bytes:
        return hmac.new(self.secret, message, hashlib.sha256).digest()

    def verifies(self, message: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(message), signature)


@dataclass(frozen=True)
class _AuditSeal:
    key: AuditKey

    @property
    def key_id(self) -> str:
        return self.key.key_id

    @property
    def can_sign(self) -> bool:
        return self.key.private is not None

    def sign(self, message: bytes) -> bytes:
        return self.key.sign(message)

    def verifies(self, message: bytes, signature: bytes) -> bool:
        return self.key.verifies(message, signature)


def seal_message(snapshot: Snapshot) -> bytes:
    body = {
        "id": str(snapshot.originator_id),
        "version": snapshot.originator_version,
        "topic": snapshot.topic,
        "chain_hash": snapshot.chain_hash,
        "state": snapshot.state,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _LABEL + text.encode("utf-8")


def seal_key(recorder: AggregateRecorder, local: LocalSealKey | None) -> SealKey | None:
    """The one key whose seals this process makes and trusts: the audit key the
    composition root attached to the event store's recorder when there is one, else the
    local seal key. With an audit key, a local seal is not trusted: the local key's file
    may sit beside the database, and the audit key's promise must not rest on it."""
    audit = getattr(recorder, "audit", None)
    if isinstance(audit, AuditConfig) and audit.key is not None:
        return _AuditSeal(audit.key)
    return local


def sealed(snapshot: Snapshot, key: SealKey | None) -> Snapshot:
    """``snapshot`` sealed by ``key`` when it can sign; else as it is."""
    if key is None or not key.can_sign or snapshot.chain_hash is None:
        return snapshot
    signature = base64.b64encode(key.sign(seal_message(snapshot))).decode()
    return snapshot.model_copy(update={"seal": signature, "seal_key_id": key.key_id})


def seal_verdict(snapshot: Snapshot, key: SealKey | None) -> bool | None:
    """True when ``key`` sealed ``snapshot``, False when a seal naming ``key`` does not
    verify (the snapshot was altered), None when there is no seal by ``key`` to check."""
    if key is None or snapshot.seal is None or snapshot.seal_key_id != key.key_id:
        return None
    try:
        signature = base64.b64decode(snapshot.seal, validate=True)
    except (binascii.Error, ValueError):
        return False
    return key.verifies(seal_message(snapshot), signature)
