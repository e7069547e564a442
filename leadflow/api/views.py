"""What lead and deal resources look like, and their ``ETag`` (the aggregate version)."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from domain.deal import Deal
from domain.lead import Lead

_HIDDEN_FIELDS = {"causations", "engagement_ids"}


class AggregateView(BaseModel):
    kind: Literal["lead", "deal"]
    id: UUID
    external_id: str
    stage: str
    version: int
    state: dict[str, Any] = Field(description="the full state, as `leadflow lead show --json`")


class CommandResult(BaseModel):
    status: Literal["applied", "duplicate"]
    replayed: bool = Field(description="the Idempotency-Key was seen: the recorded outcome")
    events: int
    aggregates: list[AggregateView]


def view(aggregate: Lead | Deal) -> AggregateView:
    return AggregateView(
        kind="lead" if isinstance(aggregate, Lead) else "deal",
        id=aggregate.id,
        external_id=aggregate.external_id,
        stage=aggregate.stage,
        version=aggregate.version,
        state=aggregate.model_dump(mode="json", exclude=_HIDDEN_FIELDS),
    )


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(header: str) -> set[int] | None:
    """The versions an ``If-Match`` accepts; None for ``*`` (any)."""
    versions: set[int] = set()
    for part in header.split(","):
        tag = part.strip().removeprefix("W/").strip('"')
        if tag == "*":
            return None
        if tag.isdigit():
            versions.add(int(tag))
    return versions
