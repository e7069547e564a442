"""Business time never runs backwards on an aggregate's stage line.

A lifecycle or deal change (a stage transition, a deal's amount or close date) whose
``occurred_at`` is earlier than the aggregate's latest stage change is refused: it would
make the aggregate leave a stage before it entered it. Activity (engagements, contacts,
attribute updates) may arrive late and is recorded at its own time.

Historical data whose source got the order wrong is imported with ``backdated=true`` on
the command: the change is then recorded at the latest stage change, and its event keeps
the time the source gave in ``backdated_from``. Nothing is moved silently.

An MQL reached automatically (a score crossing the threshold, possibly lifted by a late
engagement) takes place at the later of the triggering event's time and the latest stage
change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.aggregate import Aggregate, EventContext
from domain.errors import IllegalTransition
from domain.events import DomainEvent


def iso_utc(moment: datetime) -> str:
    """A timestamp as messages show it: ISO 8601, ``Z`` for UTC."""
    return moment.isoformat().replace("+00:00", "Z")


class BeforeLastChange(IllegalTransition):
    """A change dated before the aggregate's latest stage change, sent without backdating."""

    def __init__(self, line: StageLine, attempted: str, at: datetime) -> None:
        why = (
            "before its last stage change; send it with backdated=true to record it at "
            "the last change"
        )
        super().__init__(line.kind, line.external_id, line.aggregate_id, line.stage, attempted, why)
        self.since = line.since
        self.at = at
        self.args = (
            f"{line.kind} {line.external_id!r} ({line.aggregate_id}) is in stage "
            f"{line.stage!r} since {iso_utc(line.since)}: cannot {attempted} at "
            f"{iso_utc(at)}, {why}",
        )


@dataclass(frozen=True, slots=True)
class ChangeTime:
    """When a change is recorded, and the source's time when that was moved forward."""

    at: datetime
    backdated_from: datetime | None = None

    @property
    def payload(self) -> dict[str, Any]:
        """The event fields recording a backdating (none when the time was kept)."""
        return {} if self.backdated_from is None else {"backdated_from": self.backdated_from}


@dataclass(frozen=True, slots=True)
class StageLine:
    """Where an aggregate stands on its stage line: which stage, since when."""

    kind: str
    external_id: str
    aggregate_id: UUID
    stage: str
    since: datetime

    def change_at(self, attempted: str, occurred_at: datetime, *, backdated: bool) -> ChangeTime:
        """The time to record a change at, or ``BeforeLastChange`` when it would go back."""
        if occurred_at >= self.since:
            return ChangeTime(occurred_at)
        if not backdated:
            raise BeforeLastChange(self, attempted, occurred_at)
        return ChangeTime(self.since, backdated_from=occurred_at)

    def automatic_at(self, occurred_at: datetime) -> datetime:
        """When a change the domain makes by itself (an automatic MQL) takes place."""
        return max(occurred_at, self.since)


class StagedAggregate(Aggregate):
    """An aggregate with a stage line, whose changes never go back in business time."""

    def _line(self) -> StageLine:
        raise NotImplementedError

    def _change(
        self,
        event_class: type[DomainEvent],
        attempted: str,
        ctx: EventContext,
        occurred_at: datetime,
        **payload: Any,
    ) -> datetime:
        """Trigger a change at a business time no earlier than the last stage change
        (refused, or moved forward when the command is backdated); that time."""
        when = self._line().change_at(attempted, occurred_at, backdated=ctx.backdated)
        self.trigger(event_class, ctx, when.at, **when.payload, **payload)
        return when.at
