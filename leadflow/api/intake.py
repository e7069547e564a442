"""``POST /v1/engagements``: engagement records in the ingest's schema
(``leadflow.engagement.v1``), one or a batch, each judged and answered on its own, as
``leadflow engage`` and the Kafka ingest judge them."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel

from adapters.api_keys import ApiKey
from consumers.contracts.engagement import EngagementRecordV1, InvalidEngagement
from consumers.ingest.apply import IngestLimits, apply_isolating
from leadflow.api.auth import require
from leadflow.api.json_body import JsonBodyRoute
from leadflow.api.problems import ApiProblem
from leadflow.api.roles import Permission
from leadflow.api.state import ApiState, api_state


class RecordResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "refused"]
    event_id: str | None = None
    reason: str | None = None


class IntakeResult(BaseModel):
    results: list[RecordResult]


routes = APIRouter(prefix="/v1", route_class=JsonBodyRoute)


ENGAGEMENT_SCHEMA = "EngagementRecordV1"
_ONE_OR_MANY = {"$ref": f"#/components/schemas/{ENGAGEMENT_SCHEMA}"}


@routes.post(
    "/engagements",
    tags=["engagements"],
    operation_id="submit_engagements",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"anyOf": [_ONE_OR_MANY, {"type": "array", "items": _ONE_OR_MANY}]}
                }
            },
        }
    },
)
async def submit(
    state: Annotated[ApiState, Depends(api_state)],
    records: Annotated[dict[str, Any] | list[Any], Body()],
    key: Annotated[ApiKey, Depends(require(Permission.INTAKE))],
) -> IntakeResult:
    """Each record: ``accepted``, ``duplicate`` (its event_id was seen) or ``refused``
    with the reason (invalid, or refused by the domain)."""
    raw = [records] if isinstance(records, dict) else records
    limit = state.settings.api.max_batch
    if len(raw) > limit:
        msg = f"{len(raw)} records; at most {limit} per request (LEADFLOW_API_MAX_BATCH)"
        raise ApiProblem(413, "payload-too-large", "Too many records", msg)
    limits = IngestLimits.from_settings(state.settings.stream)
    parsed: list[EngagementRecordV1 | InvalidEngagement] = []
    for record in raw:
        try:
            parsed.append(limits.parse(json.dumps(record, ensure_ascii=False).encode()))
        except InvalidEngagement as bad:
            parsed.append(bad)
    valid = [(p, f"http:{p.event_id}") for p in parsed if isinstance(p, EngagementRecordV1)]
    verdicts = iter(await state.write(apply_isolating, state.app, valid, key.name))
    results = []
    for index, item in enumerate(parsed):
        verdict = item if isinstance(item, InvalidEngagement) else next(verdicts)
        event_id = item.event_id if isinstance(item, EngagementRecordV1) else None
        if isinstance(verdict, InvalidEngagement):
            results.append(
                RecordResult(
                    index=index, status="refused", event_id=event_id, reason=verdict.reason
                )
            )
        else:
            status: Literal["accepted", "duplicate"] = (
                "accepted" if verdict == "applied" else "duplicate"
            )
            results.append(RecordResult(index=index, status=status, event_id=event_id))
    return IntakeResult(results=results)
