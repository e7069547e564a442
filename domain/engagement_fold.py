"""A lead's engagements folded into a form whose size does not grow with their number.

Scoring (``domain.scoring``) sums per kind ``points * 0.5 ** (age_days / half_life)``, the
age measured up to ``as_of``. Because ``0.5 ** ((as_of - t) / h)`` is
``0.5 ** ((as_of - H) / h) * 0.5 ** ((H - t) / h)``, the engagements of one kind are kept
as a count and one weight, the sum of ``0.5 ** ((H - t) / h)``, at a reference time H, the
horizon. The horizon only moves forward (its weights are then scaled down); an engagement
dated before it is added with its own decay. Scores are computed as of the horizon or
later, so no engagement already folded in is ever left out.

The weights hold for one half-life. When the rules' half-life changes, each kind's
engagements are re-weighted as if they had all happened at one time (the time that gives
their current weight): exact for engagements of one time, close otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from pydantic import Field

from domain.deep_copy import SharesImmutables
from domain.scoring import (
    Engagement,
    ScoreBreakdown,
    ScoringRules,
    breakdown,
    capped_engagement,
    load_scoring_rules,
)

_DAY = timedelta(days=1)


def default_half_life_days() -> float:
    """The half-life of engagements stored before the half-life was recorded with them."""
    return load_scoring_rules().half_life_days


class KindFold(SharesImmutables):
    count: int = 0
    weight: float = 0.0


class EngagementFold(SharesImmutables):
    """Per kind, how many engagements and their decayed weight at ``horizon``."""

    horizon: datetime | None = None
    half_life_days: float = Field(default_factory=default_half_life_days, gt=0)
    kinds: dict[str, KindFold] = {}

    @classmethod
    def of(cls, engagements: Iterable[Engagement], half_life_days: float) -> EngagementFold:
        fold = cls(half_life_days=half_life_days)
        for engagement in engagements:
            fold.add(engagement.kind, engagement.occurred_at)
        return fold

    @property
    def count(self) -> int:
        return sum(k.count for k in self.kinds.values())

    def as_of(self, occurred_at: datetime) -> datetime:
        """When a score computed for a change at ``occurred_at`` is taken."""
        return occurred_at if self.horizon is None else max(self.horizon, occurred_at)

    def add(self, kind: str, occurred_at: datetime) -> None:
        self.advance(occurred_at)
        assert self.horizon is not None
        entry = self.kinds.setdefault(kind, KindFold())
        entry.count += 1
        entry.weight += self._decay(self.horizon - occurred_at)

    def advance(self, to: datetime) -> None:
        """Move the horizon forward to ``to`` (never back)."""
        if self.horizon is None:
            self.horizon = to
            return
        if to <= self.horizon:
            return
        factor = self._decay(to - self.horizon)
        for entry in self.kinds.values():
            entry.weight *= factor
        self.horizon = to

    def use_half_life(self, half_life_days: float) -> None:
        """Re-weight for another half-life (see the module's docstring)."""
        if half_life_days == self.half_life_days:
            return
        for entry in self.kinds.values():
            if entry.weight > 0:  # 0: every engagement decayed to nothing
                age_in_half_lives = -math.log2(entry.weight / entry.count)
                entry.weight = entry.count * 0.5 ** (
                    age_in_half_lives * self.half_life_days / half_life_days
                )
        self.half_life_days = half_life_days

    def decayed_points(
        self, rules: ScoringRules, as_of: datetime
    ) -> tuple[dict[str, float], dict[str, int]]:
        """Per kind, the decayed points at ``as_of`` (not before the horizon) and the count."""
        fold = self
        if rules.half_life_days != self.half_life_days:
            fold = self.model_copy(deep=True)
            fold.use_half_life(rules.half_life_days)
        later = fold._decay(as_of - fold.horizon) if fold.horizon is not None else 1.0
        sums: dict[str, float] = {}
        for kind, entry in fold.kinds.items():
            rule = rules.kinds.get(kind)
            if rule is not None:
                sums[kind] = rule.points * entry.weight * later
        return sums, {kind: entry.count for kind, entry in fold.kinds.items()}

    def _decay(self, age: timedelta) -> float:
        return float(0.5 ** ((age / _DAY) / self.half_life_days))


def score_folded(
    rules: ScoringRules,
    attributes: Mapping[str, object],
    fold: EngagementFold,
    as_of: datetime,
) -> ScoreBreakdown:
    """``domain.scoring.score_lead`` of the folded engagements, ``as_of`` not before the
    fold's horizon."""
    if fold.horizon is not None and as_of < fold.horizon:
        msg = f"a folded score is taken at its horizon {fold.horizon} or later, not {as_of}"
        raise ValueError(msg)
    sums, counts = fold.decayed_points(rules, as_of)
    return breakdown(rules, attributes, capped_engagement(rules, sums, counts))
