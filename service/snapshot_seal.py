"""Snapshots sealed by the audit key: proven without replaying their events.

A process holding the audit key's private part signs each snapshot it takes: the
signature covers a fixed label, the aggregate, its version, topic, chain position and
state (compact, key-sorted JSON). Nobody without the key can seal an edited snapshot, so
a snapshot whose seal verifies with the configured key, and whose chain position is
still the stored event's hash at its version, is used as it is. Anything else (no seal,
another key's, an old snapshot) is proven by replay (``service.snapshot_proof``).
"""

from __future__ import annotations

import base64
import binascii
import json

from eventsourcing.persistence import AggregateRecorder

from adapters.audit_keys import AuditKey
from adapters.audit_log import AuditConfig
from domain.aggregate import Snapshot

_LABEL = b"leadflow snapshot seal v1\x00"


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


def audit_key_of(recorder: AggregateRecorder) -> AuditKey | None:
    """The audit key the composition root attached to the event store's recorder."""
    audit = getattr(recorder, "audit", None)
    return audit.key if isinstance(audit, AuditConfig) else None


def sealed(snapshot: Snapshot, key: AuditKey | None) -> Snapshot:
    """``snapshot`` sealed by ``key`` when it holds the private part; else as it is."""
    if key is None or key.private is None or snapshot.chain_hash is None:
        return snapshot
    signature = base64.b64encode(key.sign(seal_message(snapshot))).decode()
    return snapshot.model_copy(update={"seal": signature, "seal_key_id": key.key_id})


def seal_verdict(snapshot: Snapshot, key: AuditKey | None) -> bool | None:
    """True when ``key`` sealed ``snapshot``, False when a seal naming ``key`` does not
    verify (the snapshot was altered), None when there is no seal by ``key`` to check."""
    if key is None or snapshot.seal is None or snapshot.seal_key_id != key.key_id:
        return None
    try:
        signature = base64.b64decode(snapshot.seal, validate=True)
    except (binascii.Error, ValueError):
        return False
    return key.verifies(seal_message(snapshot), signature)
