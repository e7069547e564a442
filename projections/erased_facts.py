"""A forgotten lead's personal columns in the read model: what its events now give.

Once a lead's data key is destroyed its sealed fields read as ``[erased]``, so a rebuild
gives ``[erased]`` for the lead's external id and for its deals' lost reasons and
competitors; the live rows are set to the same, so ``leadflow verify`` finds no
difference. Dead letters of their events keep the error but lose the payload (the event
as it was read). A SQLite read model deletes securely (``secure_delete``: freed space is
zeroed) and its write-ahead log is emptied afterwards, so no page keeps the old values.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from domain.personal_fields import ERASED_TEXT
from projections.schema import DEAD_LETTERS, DEALS, LEADS
from projections.store import ReadModelStore, Tx

_LEAD = f"UPDATE {LEADS.name} SET external_id = ? WHERE lead_id = ?"  # noqa: S608
_DEAL = (
    f"UPDATE {DEALS.name} SET "  # noqa: S608
    "lost_reason = CASE WHEN lost_reason IS NULL THEN NULL ELSE ? END, "
    "competitor = CASE WHEN competitor IS NULL THEN NULL ELSE ? END "
    "WHERE deal_id = ?"
)


_DEAD_LETTERS = f"UPDATE {DEAD_LETTERS.name} SET payload = ? WHERE aggregate_id IN (?, ?)"  # noqa: S608


def erase_personal_facts(store: ReadModelStore, lead_id: UUID, deal_ids: Sequence[UUID]) -> None:
    def erase(tx: Tx) -> None:
        tx.execute(_LEAD, (ERASED_TEXT, str(lead_id)))
        for deal_id in deal_ids:
            tx.execute(_DEAL, (ERASED_TEXT, ERASED_TEXT, str(deal_id)))
        for aggregate_id in (lead_id, *deal_ids):
            # as the projector names it, or as a stored row does (SQLite: 32 hex digits)
            tx.execute(_DEAD_LETTERS, (ERASED_TEXT, str(aggregate_id), aggregate_id.hex))

    store.write(erase)
    store.truncate_log()  # the pages before the update stay in the log until then
