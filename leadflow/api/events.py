"""``GET /v1/events``: lead and deal changes as Server-Sent Events, for dashboards and tools
that cannot speak Kafka.

The stream follows the event store's notification log, the log the projectors read: each
event's ``id`` is its notification id, so a client that reconnects with ``Last-Event-ID``
(or ``?after=``) resumes right after the last change it saw. Without either, the stream
starts at the newest change. A comment line is sent while nothing happens, to keep proxies
from closing an idle connection.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal, cast
from uuid import UUID

import anyio
import structlog
from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel

from adapters.api_keys import ApiKey
from adapters.event_envelope import DECODE_ERRORS, envelope_from_notification
from adapters.mapper import MAX_STORED_INT, PydanticMapper
from leadflow.api.auth import require
from leadflow.api.roles import Permission
from leadflow.api.state import ApiState, api_state

log = structlog.get_logger("leadflow.api.events")

BATCH = 500
KEEP_ALIVE_SECONDS = 15.0
_ENVELOPE_ONLY = {"originator_id", "originator_version", "timestamp", "prev_hash", "hash"}


class Change(BaseModel):
    """One stored event of a lead or a deal (the SSE ``data``; ``event`` is its kind)."""

    aggregate: Literal["lead", "deal"]
    aggregate_id: UUID
    version: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    data: dict[str, Any]


class Unreadable(BaseModel):
    """A stored event that cannot be decoded (``event: unreadable``), named as verify does."""

    notification_id: int
    problem: str


routes = APIRouter(prefix="/v1")


def _start(state: ApiState, last_event_id: str | None, after: int | None) -> int:
    if last_event_id is not None:
        return min(int(last_event_id), MAX_STORED_INT)
    if after is not None:
        return after
    return state.app.recorder.max_notification_id() or 0


def _changes(state: ApiState, after: int) -> list[ServerSentEvent]:
    mapper = cast(PydanticMapper, state.app.mapper)
    found = []
    for notification in state.app.recorder.select_notifications(
        start=after, limit=BATCH, inclusive_of_start=False
    ):
        ident = str(notification.id)
        try:
            envelope = envelope_from_notification(mapper, notification)
        except DECODE_ERRORS as error:
            why = Unreadable(notification_id=notification.id, problem=str(error))
            found.append(ServerSentEvent(id=ident, event="unreadable", data=why))
            continue
        event = envelope.event
        change = Change(
            aggregate="deal" if envelope.aggregate_type == "deal" else "lead",
            aggregate_id=event.originator_id,
            version=event.originator_version,
            type=event.event_type,
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
            actor=event.actor,
            data=event.model_dump(mode="json", exclude=_ENVELOPE_ONLY),
        )
        found.append(ServerSentEvent(id=ident, event=change.aggregate, data=change))
    return found


@routes.get(
    "/events",
    tags=["events"],
    operation_id="events",
    response_class=EventSourceResponse,
    responses={200: {"description": "`event: lead`, `event: deal` or `event: unreadable`"}},
)
async def events(
    state: Annotated[ApiState, Depends(api_state)],
    key: Annotated[ApiKey, Depends(require(Permission.EVENTS))],
    last_event_id: Annotated[
        str | None,
        Header(alias="Last-Event-ID", pattern=r"^[0-9]{1,40}$", description="the last id seen"),
    ] = None,
    after: Annotated[
        int | None, Query(ge=0, le=MAX_STORED_INT, description="resume after this event id")
    ] = None,
    follow: Annotated[bool, Query(description="false: send what is stored, then end")] = True,
) -> AsyncIterator[ServerSentEvent]:
    position = _start(state, last_event_id, after)
    log.info("events_stream_opened", after=position, follow=follow)
    poll = state.settings.api.sse_poll_seconds
    quiet_since = time.monotonic()
    while True:
        batch = await anyio.to_thread.run_sync(_changes, state, position)
        for change in batch:
            yield change
        if batch:
            position = int(batch[-1].id or position)
            quiet_since = time.monotonic()
            if len(batch) == BATCH:
                continue
        if not follow:
            return
        if time.monotonic() - quiet_since >= KEEP_ALIVE_SECONDS:
            yield ServerSentEvent(comment="keep-alive")
            quiet_since = time.monotonic()
        await anyio.sleep(poll)
