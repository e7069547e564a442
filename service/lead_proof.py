"""A lead's proof: what an auditor needs to check its events offline with the public key.

For each transaction that stored events of the lead or its deals, one segment: the log
link just before the transaction's first such event, every log entry from that event to
the transaction's signed head (the stored bytes as stored, base64; the lead's own events
also decoded, as ``data``), and that head with its signature. The whole log is never
included: only the rest of those transactions, which usually hold only the lead's own
events (an import batch may hold other leads' events: their stored bytes are needed to
recompute the links, as they are stored). The file is canonical JSON; the standalone
``leadflow_verify`` checks it, and it is checked with it before it is written.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator, Mapping
from typing import Any, cast
from uuid import UUID

import structlog
from eventsourcing.persistence import Notification

from adapters.audit_keys import AuditKey
from adapters.audit_log import CHAIN_TABLE, GENESIS, HEADS_TABLE, SignedHead
from adapters.audit_rotation import key_ring, read_rotations
from adapters.mapper import PydanticMapper, require_readable_row
from adapters.store_db import StoreDb
from leadflow_verify import FORMAT, ProofError, canonical, verify_proof
from service.application import LeadflowApp

log = structlog.get_logger("leadflow.service.lead_proof")

_PAGE = 1000


class ProofUnavailable(Exception):
    """No proof can be written for this lead: why, and what to do."""


def lead_proof(
    app: LeadflowApp,
    db: StoreDb,
    key: AuditKey,
    lead_id: UUID,
    aggregates: Mapping[UUID, str],
    *,
    compressed: bool,
) -> bytes:
    """The canonical proof of ``aggregates`` (id -> "lead" or "deal", the lead first),
    checked with ``key``; ProofUnavailable when its events are not all signed."""
    mapper = cast(PydanticMapper, app.mapper)
    if mapper.cipher is not None:
        msg = (
            "the event store is encrypted: an offline proof would need the cipher key to "
            "check the events, so none is written"
        )
        raise ProofUnavailable(msg)
    positions = {e.id: e for e in _notifications(app, 1) if _aggregate(e) in aggregates}
    counts = {ident: 0 for ident in aggregates}
    for event in positions.values():
        counts[_aggregate(event)] += 1
    segments: list[dict[str, Any]] = []
    position = min(positions, default=0)
    while position:
        head = _covering_head(db, positions[position])
        entries = list(_notifications(app, position, head.position))
        segments.append(
            {
                "start_link": _link_before(db, position).hex(),
                "entries": [_entry(e, aggregates, mapper) for e in entries],
                "head": _head(head),
            }
        )
        position = min((p for p in positions if p > head.position), default=0)
    proof = {
        "format": FORMAT,
        "lead_id": str(lead_id),
        "compressed": compressed,
        "aggregates": [
            {"kind": kind, "id": str(ident), "events": counts[ident]}
            for ident, kind in aggregates.items()
        ],
        "segments": segments,
    }
    data = canonical(proof)
    keys = [span.key.public for span in key_ring(key, read_rotations(db)).values()]
    try:
        verify_proof(data, keys)
    except ProofError as error:
        raise ProofUnavailable(f"the proof does not verify: {error}") from None
    log.info(
        "lead_proof_built",
        lead_id=str(lead_id),
        events=len(positions),
        segments=len(segments),
        key_id=key.key_id,
    )
    return data


def _aggregate(event: Notification) -> UUID:
    require_readable_row(event)  # a damaged row: the store, not the proof, is at fault
    return UUID(str(event.originator_id))


def _notifications(app: LeadflowApp, start: int, stop: int | None = None) -> Iterator[Notification]:
    while page := app.recorder.select_notifications(start=start, limit=_PAGE, stop=stop):
        yield from page
        start = page[-1].id + 1


def _covering_head(db: StoreDb, event: Notification) -> SignedHead:
    rows = db.execute(
        "SELECT position, link, key_id, signature, signed_at FROM {t} WHERE position >= ? "
        "ORDER BY position LIMIT 1",
        (event.id,),
        t=HEADS_TABLE,
    )
    if not rows:
        msg = (
            f"notification {event.id} (aggregate {event.originator_id} version "
            f"{event.originator_version}) is covered by no signed head: it was written "
            "without the audit key (LEADFLOW_AUDIT_KEY_FILE)"
        )
        raise ProofUnavailable(msg)
    return SignedHead.from_row(rows[0])


def _link_before(db: StoreDb, position: int) -> bytes:
    rows = db.execute(
        "SELECT link FROM {t} WHERE position < ? ORDER BY position DESC LIMIT 1",
        (position,),
        t=CHAIN_TABLE,
    )
    return bytes(rows[0][0]) if rows else GENESIS


def _entry(
    event: Notification, aggregates: Mapping[UUID, str], mapper: PydanticMapper
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "position": event.id,
        "topic": event.topic,
        "originator_id": str(_aggregate(event)),
        "version": event.originator_version,
        "state": base64.b64encode(event.state).decode(),
    }
    if _aggregate(event) in aggregates:
        entry["data"] = json.loads(mapper.plain_state(event))
    return entry


def _head(head: SignedHead) -> dict[str, Any]:
    return {
        "position": head.position,
        "link": head.link.hex(),
        "key_id": head.key_id,
        "signed_at": head.signed_at,
        "signature": base64.b64encode(head.signature).decode(),
    }
