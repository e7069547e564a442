"""Forgetting one lead's personal data on request (GDPR Art. 17) by crypto-shredding.

``forget_lead`` records ``LeadErased`` (who asked is the actor, why is the reason, when
is now; no personal data), then has the store destroy what it keeps of the person: the
lead's data key (every sealed field of its events and its deals' events reads as erased
from then on), the snapshots of the lead and its deals, the command ledger's summaries
and refusals naming it, and the id scheme's index entry of its external id (the email
then maps to nothing; capturing it again makes a new lead). Stages, scores, amounts and
times stay, so funnels and KPIs do not change, and the hash chains still verify: they
cover the ciphertext.

Every step may run again: forgetting a lead already erased finishes whatever an
interrupted run left (the key, snapshots, ledger rows) and answers AlreadyErased.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

import structlog

from domain import commands as c
from domain.errors import DomainError
from domain.personal_fields import ERASED_TEXT
from service.application import LeadflowApp
from service.ids import as_uuid, normalise_ref

log = structlog.get_logger("leadflow.service.erasure")


class ErasureStore(Protocol):
    """What the event store's database destroys of one lead (``adapters.erased_rows``)."""

    def destroy_key(self, lead_id: UUID) -> bool: ...

    def delete_snapshots(self, aggregate_ids: Sequence[UUID]) -> int: ...

    def scrub_ledger(self, aggregate_ids: Sequence[UUID], names: Sequence[str]) -> int: ...

    def scrub_records(self, names: Sequence[str]) -> int: ...

    def truncate_log(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Erasure:
    lead_id: UUID
    deal_ids: tuple[UUID, ...]
    erased_at: datetime
    key_destroyed: bool
    snapshots_deleted: int
    ledger_rows_scrubbed: int
    ingest_records_scrubbed: int = 0
    unlinked: bool = False
    """The lead's entry in the id scheme's index was deleted now (its external id maps to
    nothing from then on; schemes that derive ids cannot unlink)."""


class AlreadyErased(DomainError):
    """The lead was erased before; nothing of its personal data is left to forget."""

    def __init__(self, erasure: Erasure) -> None:
        self.erasure = erasure
        finished = " (an interrupted erasure was finished now)" if erasure.key_destroyed else ""
        super().__init__(
            f"lead {erasure.lead_id} is already erased (since "
            f"{erasure.erased_at.isoformat()}){finished}"
        )


def forget_lead(
    app: LeadflowApp, store: ErasureStore, ref: str, reason: str, actor: str
) -> Erasure:
    """Erase the lead ``ref`` names (UnknownAggregate when none; AlreadyErased, after
    finishing the job, when it was erased before)."""
    lead = app.get_lead(ref)
    already = lead.erased_at
    names = {n for n in (lead.external_id, _external_ref(ref)) if n and n != ERASED_TEXT}
    if already is None:
        now = datetime.now(UTC)
        app.handle(c.ForgetLead(lead=str(lead.id), reason=reason, actor=actor, occurred_at=now))
        lead = app.get_lead(str(lead.id))  # as erased: with a deal opened meanwhile, if any
    ids = (lead.id, *lead.deal_ids)
    erasure = Erasure(
        lead_id=lead.id,
        deal_ids=tuple(lead.deal_ids),
        erased_at=already or lead.erased_at or datetime.now(UTC),
        ledger_rows_scrubbed=store.scrub_ledger(ids, sorted(names)),
        ingest_records_scrubbed=store.scrub_records(sorted(names)),
        snapshots_deleted=store.delete_snapshots(ids),
        key_destroyed=store.destroy_key(lead.id),
        unlinked=app.ids.forget_lead(lead.id),
    )
    store.truncate_log()
    app.evict(ids)
    log.info(
        "lead_forgotten",
        lead_id=str(lead.id),
        deals=len(lead.deal_ids),
        already_erased=already is not None,
        key_destroyed=erasure.key_destroyed,
        snapshots_deleted=erasure.snapshots_deleted,
        ledger_rows_scrubbed=erasure.ledger_rows_scrubbed,
        ingest_records_scrubbed=erasure.ingest_records_scrubbed,
        unlinked=erasure.unlinked,
    )
    if already is not None:
        raise AlreadyErased(erasure)
    return erasure


def _external_ref(ref: str) -> str | None:
    return None if as_uuid(ref.strip()) is not None else normalise_ref(ref)
