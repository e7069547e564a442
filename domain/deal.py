"""The Deal aggregate: an opportunity moving through one pipeline of the stage model.

An open deal moves to any stage its pipeline allows (backwards too), is won or lost
from any open stage, and changes amount and expected close date. A closed deal changes
only by being reopened.

Business time: a change dated before the deal's latest stage change (its opening, a move,
a win, a loss or a reopening) is refused unless backdated (see ``domain.business_time``).
A deal opened from a lead opens no earlier than the lead's conversion.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal, Self
from uuid import UUID

from domain.aggregate import EventContext
from domain.business_time import ChangeTime, StagedAggregate, StageLine
from domain.errors import IllegalTransition
from domain.events import (
    DealAmountChanged,
    DealCloseDateChanged,
    DealLost,
    DealOpened,
    DealReopened,
    DealStageChanged,
    DealWon,
    DomainEvent,
)
from domain.stage_model import Pipeline

DealStatus = Literal["open", "won", "lost"]


class Deal(StagedAggregate):
    KIND: ClassVar[str] = "deal"
    CREATED_BY: ClassVar[type[DomainEvent]] = DealOpened

    lead_id: UUID | None = None
    lead_external_id: str | None = None
    amount: Decimal
    currency: str
    pipeline: str
    stage: str
    status: DealStatus = "open"
    owner: str | None = None
    expected_close_date: date | None = None
    opened_at: datetime
    entered_stage_at: datetime
    last_activity_at: datetime
    closed_at: datetime | None = None
    closed_from_stage: str | None = None
    lost_reason: str | None = None
    competitor: str | None = None

    # --- commands -------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        deal_id: UUID,
        external_id: str,
        pipeline: Pipeline,
        amount: Decimal,
        currency: str,
        lead_id: UUID | None,
        lead_external_id: str | None,
        owner: str | None,
        expected_close_date: date | None,
        ctx: EventContext,
        occurred_at: datetime,
        *,
        converted_at: datetime | None = None,
    ) -> Self:
        """``converted_at``: when the lead's conversion into this deal was recorded (a
        backdated conversion moves it forward; the deal then opens at the same time)."""
        when = (
            ChangeTime(converted_at, backdated_from=occurred_at)
            if converted_at is not None and converted_at > occurred_at
            else ChangeTime(occurred_at)
        )
        return cls._new(
            DealOpened,
            deal_id,
            ctx,
            when.at,
            **when.payload,
            external_id=external_id,
            lead_id=lead_id,
            lead_external_id=lead_external_id,
            amount=amount,
            currency=currency,
            pipeline=pipeline.name,
            stage=pipeline.first_stage.name,
            owner=owner,
            expected_close_date=expected_close_date,
        )

    def move(
        self, to_stage: str, pipeline: Pipeline, ctx: EventContext, occurred_at: datetime
    ) -> bool:
        """Move an open deal; moving onto the won stage wins it. False if already there."""
        attempted = f"move to {to_stage!r}"
        self._require_open(attempted)
        if to_stage not in {s.name for s in pipeline.stages}:
            self._refuse(attempted, f"pipeline {pipeline.name!r} has no such stage")
        if to_stage == pipeline.won_stage.name:
            self.win(None, pipeline, ctx, occurred_at)
            return True
        if to_stage == pipeline.lost_stage.name:
            self._refuse(attempted, "losing a deal needs a reason: use lose_deal")
        if to_stage == self.stage:
            return False
        if not pipeline.can_move(self.stage, to_stage):
            self._refuse(attempted, f"pipeline {pipeline.name!r} does not allow this move")
        self._change(
            DealStageChanged,
            f"move it to {to_stage!r}",
            ctx,
            occurred_at,
            from_stage=self.stage,
            to_stage=to_stage,
        )
        return True

    def win(
        self,
        amount: Decimal | None,
        pipeline: Pipeline,
        ctx: EventContext,
        occurred_at: datetime,
    ) -> None:
        self._require_open("win")
        self._change(
            DealWon,
            "win it",
            ctx,
            occurred_at,
            from_stage=self.stage,
            to_stage=pipeline.won_stage.name,
            amount=self.amount if amount is None else amount,
        )

    def lose(
        self,
        reason: str,
        competitor: str | None,
        pipeline: Pipeline,
        ctx: EventContext,
        occurred_at: datetime,
    ) -> None:
        self._require_open("lose")
        self._change(
            DealLost,
            "lose it",
            ctx,
            occurred_at,
            from_stage=self.stage,
            to_stage=pipeline.lost_stage.name,
            reason=reason,
            competitor=competitor,
        )

    def reopen(
        self,
        to_stage: str | None,
        reason: str | None,
        pipeline: Pipeline,
        ctx: EventContext,
        occurred_at: datetime,
    ) -> None:
        target = to_stage or self.closed_from_stage or pipeline.first_stage.name
        attempted = f"reopen into {target!r}"
        if self.status == "open":
            self._refuse(attempted, "the deal is open")
        if target not in {s.name for s in pipeline.open_stages}:
            self._refuse(attempted, f"{target!r} is not an open stage of {pipeline.name!r}")
        self._change(
            DealReopened,
            f"reopen it into {target!r}",
            ctx,
            occurred_at,
            from_stage=self.stage,
            to_stage=target,
            reason=reason,
        )

    def change_amount(
        self, amount: Decimal, currency: str | None, ctx: EventContext, occurred_at: datetime
    ) -> bool:
        self._require_open("change the amount")
        currency = currency or self.currency
        if amount == self.amount and currency == self.currency:
            return False
        self._change(
            DealAmountChanged,
            "change its amount",
            ctx,
            occurred_at,
            amount=amount,
            currency=currency,
        )
        return True

    def change_close_date(
        self, expected: date | None, ctx: EventContext, occurred_at: datetime
    ) -> bool:
        self._require_open("change the expected close date")
        if expected == self.expected_close_date:
            return False
        self._change(
            DealCloseDateChanged,
            "change its expected close date",
            ctx,
            occurred_at,
            expected_close_date=expected,
        )
        return True

    # --- guards ---------------------------------------------------------------------

    def _require_open(self, attempted: str) -> None:
        if self.status != "open":
            self._refuse(attempted, f"the deal is closed ({self.status}); reopen it first")

    def _line(self) -> StageLine:
        return StageLine("deal", self.external_id, self.id, self.stage, self.entered_stage_at)

    def _refuse(self, attempted: str, why: str) -> None:
        raise IllegalTransition("deal", self.external_id, self.id, self.stage, attempted, why)

    # --- personal data ---------------------------------------------------------------

    @classmethod
    def data_key_owner_of_new(cls, aggregate_id: UUID, payload: dict[str, Any]) -> UUID:
        """A deal opened from a lead seals under the lead's key: forgetting the lead
        shreds them too."""
        lead_id = payload.get("lead_id")
        return lead_id if isinstance(lead_id, UUID) else aggregate_id

    def data_key_owner(self) -> UUID:
        return self.lead_id or self.id

    # --- event application ----------------------------------------------------------

    @classmethod
    def from_created(cls, event: DomainEvent) -> Self:
        assert isinstance(event, DealOpened)
        deal = cls(
            id=event.originator_id,
            external_id=event.external_id,
            created_on=event.timestamp,
            modified_on=event.timestamp,
            lead_id=event.lead_id,
            lead_external_id=event.lead_external_id,
            amount=event.amount,
            currency=event.currency,
            pipeline=event.pipeline,
            stage=event.stage,
            owner=event.owner,
            expected_close_date=event.expected_close_date,
            opened_at=event.occurred_at,
            entered_stage_at=event.occurred_at,
            last_activity_at=event.occurred_at,
        )
        deal._advance(event)
        return deal

    def apply(self, event: DomainEvent) -> None:
        super().apply(event)
        self.last_activity_at = max(self.last_activity_at, event.occurred_at)

    def _enter(self, stage: str, at: datetime) -> None:
        self.stage = stage
        self.entered_stage_at = at

    def _on_DealStageChanged(self, e: DealStageChanged) -> None:
        self._enter(e.to_stage, e.occurred_at)

    def _on_DealAmountChanged(self, e: DealAmountChanged) -> None:
        self.amount = e.amount
        self.currency = e.currency

    def _on_DealCloseDateChanged(self, e: DealCloseDateChanged) -> None:
        self.expected_close_date = e.expected_close_date

    def _on_DealWon(self, e: DealWon) -> None:
        self.status = "won"
        self.amount = e.amount
        self._close(e.from_stage, e.to_stage, e.occurred_at)

    def _on_DealLost(self, e: DealLost) -> None:
        self.status = "lost"
        self.lost_reason = e.reason
        self.competitor = e.competitor
        self._close(e.from_stage, e.to_stage, e.occurred_at)

    def _close(self, from_stage: str, to_stage: str, at: datetime) -> None:
        self.closed_at = at
        self.closed_from_stage = from_stage
        self._enter(to_stage, at)

    def _on_DealReopened(self, e: DealReopened) -> None:
        self.status = "open"
        self.closed_at = None
        self.lost_reason = None
        self.competitor = None
        self._enter(e.to_stage, e.occurred_at)
