"""A forgotten lead's personal columns in the read model: what its events now give.

Once a lead's data key is destroyed its sealed fields read as ``[erased]``, so a rebuild
gives ``[erased]`` for the lead's external id and for its deals' lost reasons and
competitors; the live rows are set to the same, so ``leadflow verify`` finds no
difference. (Free pages of a SQLite read model and dead letters are not covered yet.)
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from domain.personal_fields import ERASED_TEXT
from projections.schema import DEALS, LEADS
from projections.store import ReadModelStore, Tx

_LEAD = f"UPDATE {LEADS.name} SET external_id = ? WHERE lead_id = ?"  # noqa: S608
_DEAL = (
    f"UPDATE {DEALS.name} SET "  # noqa: S608
    "lost_reason = CASE WHEN lost_reason IS NULL THEN NULL ELSE ? END, "
    "competitor = CASE WHEN competitor IS NULL THEN NULL ELSE ? END "
    "WHERE deal_id = ?"
)


def erase_personal_facts(store: ReadModelStore, lead_id: UUID, deal_ids: Sequence[UUID]) -> None:
    def erase(tx: Tx) -> None:
        tx.execute(_LEAD, (ERASED_TEXT, str(lead_id)))
        for deal_id in deal_ids:
            tx.execute(_DEAL, (ERASED_TEXT, ERASED_TEXT, str(deal_id)))

    store.write(erase)
