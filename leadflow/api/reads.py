"""``/v1`` queries: a lead, a deal, a lead's history, the pipeline board, the funnel, the
KPIs, the stalled list and ``verify``: the same service calls as the CLI's."""

from __future__ import annotations

import base64
import binascii
import json
import pathlib
import tempfile
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, Field

from adapters.api_keys import ApiKey
from domain import commands as c
from leadflow.api.auth import require
from leadflow.api.problems import ApiProblem
from leadflow.api.reading import as_of_moment, report_store
from leadflow.api.roles import Permission
from leadflow.api.state import ApiState, api_state
from leadflow.api.views import AggregateView, etag, view
from projections.reports import (
    FunnelFilters,
    FunnelReport,
    KpiReport,
    Position,
    StalledReport,
    funnel_report,
    kpi_report,
    pipeline_positions,
    stalled_report,
)
from projections.segments import Segment
from projections.verify import verify_read_model
from service.lead_history import export_jsonl, lead_history

State = Annotated[ApiState, Depends(api_state)]
Ref = Annotated[str, Path(max_length=320, description="external id or UUID")]
AsOf = Annotated[
    str | None,
    Query(
        max_length=64,
        description="business time, ISO 8601 date or date-time (a bare date: end of day)",
    ),
]
_ALL = 2**31 - 1
JSON_LINES = "application/jsonl"


ReadAggregate = Annotated[ApiKey, Depends(require(Permission.READ_AGGREGATE))]
ReadHistory = Annotated[ApiKey, Depends(require(Permission.HISTORY))]
ReadBoard = Annotated[ApiKey, Depends(require(Permission.BOARD))]
ReadReports = Annotated[ApiKey, Depends(require(Permission.REPORTS))]
Verify = Annotated[ApiKey, Depends(require(Permission.VERIFY))]


class Page(BaseModel):
    items: list[Position]
    next_cursor: str | None = Field(description="pass as cursor for the next page")


class VerifyResult(BaseModel):
    ok: bool
    aggregates: int
    events_checked: int
    differences: list[str]
    broken_chains: list[str]
    unreadable_events: list[str]
    frozen_aggregates: list[str]


routes = APIRouter(prefix="/v1")


@routes.get("/leads/{ref}", tags=["leads"], operation_id="get_lead")
def get_lead(ref: Ref, state: State, response: Response, key: ReadAggregate) -> AggregateView:
    found = view(state.app.get_lead(ref))
    response.headers["ETag"] = etag(found.version)
    return found


@routes.get("/deals/{ref}", tags=["deals"], operation_id="get_deal")
def get_deal(ref: Ref, state: State, response: Response, key: ReadAggregate) -> AggregateView:
    found = view(state.app.get_deal(ref))
    response.headers["ETag"] = etag(found.version)
    return found


@routes.get("/leads/{ref}/history", tags=["audit"], operation_id="lead_history")
def history(ref: Ref, state: State, key: ReadHistory, as_of: AsOf = None) -> dict[str, Any]:
    """Every event of the lead and its deals, their hash chains (``verified``) and the
    state as of ``as_of``: the document of ``leadflow history --json``."""
    return lead_history(state.app, ref, as_of_moment(as_of)).document()


@routes.get(
    "/leads/{ref}/history/export",
    tags=["audit"],
    operation_id="lead_history_export",
    response_class=Response,
    responses={200: {"content": {JSON_LINES: {"schema": {"type": "string"}}}}},
)
def history_export(ref: Ref, state: State, key: ReadHistory, as_of: AsOf = None) -> Response:
    """The history as JSON Lines, as ``leadflow history --export`` writes it: one
    ``{"record": "event"}`` line per event, then a ``{"record": "summary"}`` line."""
    history = lead_history(state.app, ref, as_of_moment(as_of))
    with tempfile.TemporaryDirectory(prefix="leadflow-export-") as scratch:
        path = pathlib.Path(scratch) / "history.jsonl"
        export_jsonl(history, path)
        content = path.read_bytes()
    name = f"lead-{history.lead_id}.jsonl"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(content, media_type=JSON_LINES, headers=disposition)


def _cursor(position: Position) -> str:
    key = [position.entered_stage_at.isoformat(), position.kind, position.id]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _after(cursor: str) -> tuple[datetime, str, str]:
    try:
        moment, kind, ident = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(moment), str(kind), str(ident)
    except (ValueError, TypeError, binascii.Error):
        raise ApiProblem(
            422, "invalid-input", "Invalid input", "cursor: not a cursor this API gave"
        ) from None


@routes.get("/pipeline", tags=["reports"], operation_id="pipeline_board")
def board(
    state: State,
    key: ReadBoard,
    kind: Literal["lead", "deal"] | None = None,
    stage: Annotated[c.Key | None, Query()] = None,
    owner: Annotated[c.Text | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=2000)] = None,
    as_of: AsOf = None,
) -> Page:
    """Where every lead and deal stands, longest in its stage first; page by ``cursor``."""
    moment = as_of_moment(as_of)
    after = _after(cursor) if cursor else None
    with report_store(state, moment) as store:
        positions = pipeline_positions(store, kind, stage, owner, _ALL, now=moment)
    if after is not None:
        positions = [p for p in positions if (p.entered_stage_at, p.kind, p.id) > after]
    page = positions[:limit]
    more = len(positions) > limit
    return Page(items=page, next_cursor=_cursor(page[-1]) if more and page else None)


@routes.get("/reports/funnel", tags=["reports"], operation_id="funnel")
def funnel(
    state: State,
    key: ReadReports,
    cohort: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")] = None,
    source: Annotated[c.Text | None, Query()] = None,
    campaign: Annotated[c.Text | None, Query()] = None,
    segment: Segment | None = None,
    as_of: AsOf = None,
) -> FunnelReport:
    filters = FunnelFilters.model_validate(
        {"cohort": cohort, "source": source, "campaign": campaign, "segment": segment}
    )
    with report_store(state, as_of_moment(as_of)) as store:
        return funnel_report(store, filters)


@routes.get("/reports/kpis", tags=["reports"], operation_id="kpis")
def kpis(state: State, key: ReadReports, as_of: AsOf = None) -> KpiReport:
    with report_store(state, as_of_moment(as_of)) as store:
        return kpi_report(store)


@routes.get("/reports/stalled", tags=["reports"], operation_id="stalled")
def stalled(state: State, key: ReadReports, as_of: AsOf = None) -> StalledReport:
    moment = as_of_moment(as_of)
    with report_store(state, moment) as store:
        return stalled_report(store, moment or datetime.now(UTC))


@routes.get("/verify", tags=["audit"], operation_id="verify")
def verify(state: State, key: Verify) -> VerifyResult:
    """Rebuild the read model into a scratch store, compare it with the live one and
    verify every hash chain (``leadflow verify``)."""
    with report_store(state) as live:
        until = None if state.settings.kafka_mode else live.last_notification_id()
        result = verify_read_model(state.app, live, until=until)
    return VerifyResult(
        ok=result.ok,
        aggregates=result.aggregates,
        events_checked=result.events_checked,
        differences=[str(d) for d in result.differences],
        broken_chains=[str(b) for b in result.broken_chains],
        unreadable_events=[str(u) for u in result.unreadable_events],
        frozen_aggregates=[str(f) for f in result.frozen_aggregates],
    )
