"""``POST /v1/leads/{ref}/erasure``: forget a lead's personal data (``leadflow forget``),
for the ``admin`` role. Asking again answers the same, with ``already_erased`` (an erasure
a crash interrupted is finished then), so a retry is always safe."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from adapters.api_keys import ApiKey
from leadflow.api.auth import require
from leadflow.api.json_body import JsonBodyRoute
from leadflow.api.roles import Permission
from leadflow.api.state import ApiState, api_state
from leadflow.bootstrap import forget_lead_in
from service.erasure import AlreadyErased, Erasure

routes = APIRouter(prefix="/v1", route_class=JsonBodyRoute)


class ErasureRequest(BaseModel):
    reason: str = Field(
        min_length=1,
        max_length=500,
        description="why (recorded in plain on the LeadErased event: do not name the person)",
    )


class ErasureResult(BaseModel):
    lead_id: UUID
    deal_ids: list[UUID]
    erased_at: datetime = Field(description="when the lead was erased (the first time)")
    already_erased: bool = Field(description="it was erased before this request")
    key_destroyed: bool = Field(
        description="false only for a lead stored before per-lead keys: its personal "
        "fields are then NOT erased"
    )
    snapshots_deleted: int
    ledger_rows_scrubbed: int
    ingest_records_scrubbed: int
    unlinked: bool = Field(
        description="its external id's index entry was deleted by this request: the "
        "email maps to no lead any more (a later capture makes a new one)"
    )


@routes.post("/leads/{ref}/erasure", tags=["privacy"], operation_id="forget_lead")
async def forget(
    state: Annotated[ApiState, Depends(api_state)],
    key: Annotated[ApiKey, Depends(require(Permission.ERASE))],
    ref: Annotated[str, Path(max_length=320, description="the lead's external id or UUID")],
    request: ErasureRequest,
) -> ErasureResult:
    """Record LeadErased (the API key as who asked, the reason, now), destroy the lead's
    data key (every personal field of its events and its deals' reads as erased), delete
    their snapshots, overwrite the command ledger's mentions of it and null the read
    model's personal columns. Stages, times and amounts stay; the chains still verify."""
    try:
        erasure = await state.write(
            forget_lead_in, state.app, state.settings, ref, request.reason, key.name
        )
    except AlreadyErased as error:
        return _result(error.erasure, already=True)
    return _result(erasure, already=False)


def _result(erasure: Erasure, *, already: bool) -> ErasureResult:
    return ErasureResult(
        lead_id=erasure.lead_id,
        deal_ids=list(erasure.deal_ids),
        erased_at=erasure.erased_at,
        already_erased=already,
        key_destroyed=erasure.key_destroyed,
        snapshots_deleted=erasure.snapshots_deleted,
        ledger_rows_scrubbed=erasure.ledger_rows_scrubbed,
        ingest_records_scrubbed=erasure.ingest_records_scrubbed,
        unlinked=erasure.unlinked,
    )
