"""The deal part of a demo journey: a deal moving through the pipeline, sometimes back, to
a win (now and then after a discount) or a loss (a few lost deals are reopened)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from domain import commands as c
from domain.stage_model import Pipeline
from leadflow.demo import catalog as cat
from leadflow.demo.timeline import Timeline


@dataclass(slots=True)
class _Deal:
    external_id: str
    stage: str
    amount: Decimal
    expected_close: date
    status: str = "open"


class DealJourney(Timeline):
    def __init__(
        self,
        rng: random.Random,
        prefix: str,
        email: str,
        script: Mapping[str, Sequence[str]],
        pipeline: Pipeline,
        deal_ref: str,
    ) -> None:
        super().__init__(rng, prefix, email, script)
        self.pipeline = pipeline
        self.deal_ref = deal_ref
        self.account_executive = rng.choice(cat.ACCOUNT_EXECUTIVES)
        self.deal: _Deal | None = None

    def _start_deal(self, t: datetime, amount: Decimal, expected_close: date) -> None:
        self.deal = _Deal(self.deal_ref, self.pipeline.first_stage.name, amount, expected_close)
        self._later(t, self._dwell(0), self._deal_step)

    def _deal_amount(self, employees: int) -> Decimal:
        low, high = next(r for limit, r in cat.DEAL_SIZES if employees <= limit)
        return Decimal(round(self.rng.uniform(low, high), -2)).quantize(Decimal("1"))

    def _dwell(self, position: int) -> tuple[float, float]:
        low, high = cat.DEAL_DWELL_DAYS[min(position, len(cat.DEAL_DWELL_DAYS) - 1)]
        return (low * 24.0, high * 24.0)

    def _deal_step(self, t: datetime) -> None:
        deal = self.deal
        if deal is None or deal.status != "open":
            return
        stages = [s.name for s in self.pipeline.open_stages]
        position = stages.index(deal.stage)
        lose = (0.08, 0.1, 0.14, 0.25)[min(position, 3)]
        back = 0.07 if position >= 2 else 0.0
        step = self._choose(
            "deal",
            (
                ("stall", 0.06),
                ("lose", lose),
                ("back", back),
                ("slip", 0.06),
                ("advance", 0.8 - lose - back),
            ),
        )
        ae = self.account_executive
        if step == "lose":
            self._lose_deal(t, deal)
        elif step == "back":
            deal.stage = stages[max(position - 1, 0)]
            self._emit(t, c.MoveDeal, ae, deal=deal.external_id, stage=deal.stage)
            self._later(t, self._dwell(position - 1), self._deal_step)
        elif step == "slip":
            slipped = max(deal.expected_close, t.date()) + timedelta(days=self.rng.randint(14, 35))
            deal.expected_close = slipped
            self._emit(t, c.UpdateDeal, ae, deal=deal.external_id, expected_close_date=slipped)
            self._later(t, self._dwell(position), self._deal_step)
        elif step == "advance" and position + 1 < len(stages):
            deal.stage = stages[position + 1]
            self._emit(t, c.MoveDeal, ae, deal=deal.external_id, stage=deal.stage)
            self._later(t, self._dwell(position + 1), self._deal_step)
        elif step == "advance":
            self._win_deal(t, deal)

    def _win_deal(self, t: datetime, deal: _Deal) -> None:
        ae = self.account_executive
        how = self._choose("win", (("plain", 0.55), ("discount", 0.3), ("final_amount", 0.15)))
        amount = None
        if how != "plain":
            final = (deal.amount * Decimal(self.rng.uniform(0.8, 0.95))).quantize(Decimal("1"))
            if how == "discount":
                self._emit(t, c.UpdateDeal, ae, deal=deal.external_id, amount=final)
            else:
                amount = final
            deal.amount = final
        self._emit(t, c.WinDeal, ae, deal=deal.external_id, amount=amount)
        deal.status = "won"

    def _lose_deal(self, t: datetime, deal: _Deal) -> None:
        reasons = cat.LOST_REASONS
        reason = self._choose("lost_reason", [(r, w) for r, w in reasons])
        competitor = self.rng.choice(cat.COMPETITORS) if reason == "chose a competitor" else None
        self._emit(
            t,
            c.LoseDeal,
            self.account_executive,
            deal=deal.external_id,
            reason=reason,
            competitor=competitor,
        )
        deal.status = "lost"
        if self._choose("after_loss", (("reopen", 0.12), ("none", 0.88))) == "reopen":
            self._later(t, (120, 480), self._reopen_deal)

    def _reopen_deal(self, t: datetime) -> None:
        deal = self.deal
        if deal is None or deal.status != "lost":
            return
        stages = [s.name for s in self.pipeline.open_stages]
        deal.stage = stages[-2] if len(stages) > 1 else stages[-1]
        deal.status = "open"
        reason = self.rng.choice(cat.DEAL_REOPEN_REASONS)
        self._emit(
            t,
            c.ReopenDeal,
            self.account_executive,
            deal=deal.external_id,
            stage=deal.stage,
            reason=reason,
        )
        self._later(t, self._dwell(len(stages) - 2), self._deal_step)
