"""The Lead aggregate: lifecycle new → mql → sal → sql → converted, with side exits.

Rules (each refusal names the lead, its stage and the attempted change):
- MQL is reached from ``new`` or ``recycled``: by hand, or automatically when a score
  change reaches the threshold (for a recycled lead: when an engagement lifts the score
  across the threshold, so old points alone never re-qualify it).
- SAL: sales accepts an MQL; rejecting it (with a reason) sends it back to nurturing
  (``recycled``).
- SQL needs an SAL lead and all four BANT answers.
- Any stage further than the next one is reached only by ``fast_track``, which records
  the reason and the skipped stages.
- ``recycled`` and ``disqualified`` are side exits; a disqualified lead can be reopened
  into the stage it left.
- Business time: a stage change dated before the lead's latest stage change is refused
  unless backdated; an automatic MQL takes place no earlier than the latest stage change
  (see ``domain.business_time``). Engagements, contacts and attribute updates may come late.
- Engagements are kept folded (``domain.engagement_fold``): the state does not grow with
  them. Whether an engagement id was seen before is the command ledger's business.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from domain.aggregate import EventContext
from domain.business_time import StagedAggregate, StageLine
from domain.engagement_fold import EngagementFold, default_half_life_days, score_folded
from domain.errors import ErasedLead, IllegalTransition
from domain.events import (
    Bant,
    ContactLogged,
    DomainEvent,
    EngagementRecorded,
    LeadAccepted,
    LeadAttributesUpdated,
    LeadCaptured,
    LeadConverted,
    LeadDisqualified,
    LeadErased,
    LeadFastTracked,
    LeadQualifiedAsMQL,
    LeadQualifiedAsSQL,
    LeadRecycled,
    LeadRejected,
    LeadReopened,
    LeadScored,
    LeadStage,
)
from domain.scoring import Engagement, ScoreBreakdown, ScoringRules
from domain.stage_model import LIFECYCLE_ORDER as _MODEL_ORDER

LIFECYCLE_ORDER: tuple[LeadStage, ...] = ("new", "mql", "sal", "sql", "converted")
assert LIFECYCLE_ORDER == _MODEL_ORDER
FAST_TRACK_TARGETS: tuple[LeadStage, ...] = ("mql", "sal", "sql")
_NURTURING: tuple[LeadStage, ...] = ("new", "recycled")


class _EngagementRef(BaseModel):
    """An engagement as snapshots taken before the fold listed it."""

    model_config = ConfigDict(frozen=True)

    kind: str
    occurred_at: datetime


_OLD_ENGAGEMENTS = TypeAdapter(list[_EngagementRef])


def _main_line_position(stage: str) -> int:
    """Where a stage sits on the main line; nurturing and exit stages count as ``new``."""
    return LIFECYCLE_ORDER.index(stage) if stage in LIFECYCLE_ORDER else 0


def skipped_stages(from_stage: str, to_stage: LeadStage) -> tuple[LeadStage, ...]:
    """The main-line stages a lead jumping from ``from_stage`` to ``to_stage`` passes
    without entering: a fast-track, or a fast-tracked conversion (``to_stage`` converted).
    They count as reached, in the aggregate and in the read model alike."""
    return LIFECYCLE_ORDER[_main_line_position(from_stage) + 1 : LIFECYCLE_ORDER.index(to_stage)]


class Lead(StagedAggregate):
    KIND: ClassVar[str] = "lead"
    CREATED_BY: ClassVar[type[DomainEvent]] = LeadCaptured

    stage: LeadStage = "new"
    stage_before_exit: LeadStage | None = None
    entered_stage_at: datetime
    captured_at: datetime
    last_activity_at: datetime
    source: str
    campaign: str | None = None
    attributes: dict[str, Any] = {}
    engagements: EngagementFold = Field(default_factory=EngagementFold)
    score: float = 0.0
    score_as_of: datetime | None = None
    rule_version: str | None = None
    bant: Bant | None = None
    owner: str | None = None
    reached: list[LeadStage] = ["new"]
    fast_tracks: int = 0
    deal_ids: list[UUID] = []
    last_conversion_at: datetime | None = None
    erased_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _fold_listed_engagements(cls, data: Any) -> Any:
        """Snapshots taken before the fold list every engagement (and their ids): folded."""
        if not isinstance(data, dict) or not isinstance(data.get("engagements"), list):
            return data
        listed = _OLD_ENGAGEMENTS.validate_python(data["engagements"])
        fold = EngagementFold.of(
            (Engagement(e.kind, e.occurred_at) for e in listed), default_half_life_days()
        )
        if data.get("score_as_of") is not None:
            fold.advance(TypeAdapter(datetime).validate_python(data["score_as_of"]))
        kept = {k: v for k, v in data.items() if k != "engagement_ids"}
        return {**kept, "engagements": fold}

    # --- commands -------------------------------------------------------------------

    @classmethod
    def capture(
        cls,
        lead_id: UUID,
        external_id: str,
        source: str,
        campaign: str | None,
        attributes: Mapping[str, Any],
        rules: ScoringRules,
        ctx: EventContext,
        occurred_at: datetime,
    ) -> Self:
        lead = cls._new(
            LeadCaptured,
            lead_id,
            ctx,
            occurred_at,
            external_id=external_id,
            source=source,
            campaign=campaign,
            attributes=dict(attributes),
        )
        lead._rescore(rules, ctx, occurred_at, crossed_from=None)
        return lead

    def update_attributes(
        self,
        attributes: Mapping[str, Any],
        rules: ScoringRules,
        ctx: EventContext,
        occurred_at: datetime,
    ) -> bool:
        changed = {k: v for k, v in attributes.items() if self.attributes.get(k) != v}
        if not changed:
            return False
        before = self._score_if_recycled(rules, occurred_at)
        self.trigger(LeadAttributesUpdated, ctx, occurred_at, attributes=changed)
        self._rescore(rules, ctx, occurred_at, crossed_from=before)
        return True

    def record_engagement(
        self,
        engagement_id: str,
        kind: str,
        properties: Mapping[str, Any],
        source: str | None,
        campaign: str | None,
        rules: ScoringRules,
        ctx: EventContext,
        occurred_at: datetime,
    ) -> None:
        before = self._score_if_recycled(rules, occurred_at)
        self.trigger(
            EngagementRecorded,
            ctx,
            occurred_at,
            engagement_id=engagement_id,
            kind=kind,
            source=source,
            campaign=campaign,
            properties=dict(properties),
        )
        self._rescore(rules, ctx, occurred_at, crossed_from=before)

    def log_contact(
        self, channel: str, outcome: str | None, ctx: EventContext, occurred_at: datetime
    ) -> None:
        self.trigger(ContactLogged, ctx, occurred_at, channel=channel, outcome=outcome)

    def mark_mql(self, reason: str | None, ctx: EventContext, occurred_at: datetime) -> None:
        self._require(_NURTURING, "mark as MQL", "only a new or recycled lead becomes an MQL")
        self._change(
            LeadQualifiedAsMQL,
            "mark it as MQL",
            ctx,
            occurred_at,
            via="manual",
            score=self.score,
            reason=reason,
            from_stage=self.stage,
        )

    def accept(
        self, owner: str | None, reason: str | None, ctx: EventContext, occurred_at: datetime
    ) -> None:
        self._require(("mql",), "accept", "sales accepts only an MQL")
        self._change(
            LeadAccepted, "accept it", ctx, occurred_at, owner=owner or ctx.actor, reason=reason
        )

    def reject(self, reason: str, ctx: EventContext, occurred_at: datetime) -> None:
        self._require(("mql",), "reject", "sales rejects only an MQL")
        self._change(LeadRejected, "reject it", ctx, occurred_at, reason=reason)

    def qualify(self, bant: Bant, ctx: EventContext, occurred_at: datetime) -> None:
        self._require(
            ("sal",),
            "qualify as SQL",
            "an SQL must first be accepted by sales (SAL); use fast_track to skip stages",
        )
        self._change(LeadQualifiedAsSQL, "qualify it as SQL", ctx, occurred_at, bant=bant)

    def fast_track(
        self, to_stage: LeadStage, reason: str, ctx: EventContext, occurred_at: datetime
    ) -> None:
        attempted = f"fast-track to {to_stage!r}"
        if to_stage not in FAST_TRACK_TARGETS:
            self._refuse(attempted, f"fast-track goes to one of {', '.join(FAST_TRACK_TARGETS)}")
        if self.stage in ("converted", "disqualified"):
            self._refuse(attempted, f"a {self.stage} lead cannot be fast-tracked")
        if LIFECYCLE_ORDER.index(to_stage) <= _main_line_position(self.stage):
            self._refuse(attempted, "fast-track only moves a lead forward")
        skipped = skipped_stages(self.stage, to_stage)
        self._change(
            LeadFastTracked,
            f"fast-track it to {to_stage!r}",
            ctx,
            occurred_at,
            from_stage=self.stage,
            to_stage=to_stage,
            skipped=skipped,
            reason=reason,
        )

    def recycle(self, reason: str, ctx: EventContext, occurred_at: datetime) -> None:
        self._require(
            ("mql", "sal", "sql"), "recycle", "only an MQL, SAL or SQL goes back to nurturing"
        )
        self._change(
            LeadRecycled, "recycle it", ctx, occurred_at, from_stage=self.stage, reason=reason
        )

    def disqualify(self, reason: str, ctx: EventContext, occurred_at: datetime) -> None:
        if self.stage in ("converted", "disqualified"):
            self._refuse("disqualify", f"the lead is already {self.stage}")
        self._change(
            LeadDisqualified,
            "disqualify it",
            ctx,
            occurred_at,
            from_stage=self.stage,
            reason=reason,
        )

    def reopen(self, reason: str | None, ctx: EventContext, occurred_at: datetime) -> None:
        self._require(("disqualified",), "reopen", "only a disqualified lead can be reopened")
        self._change(
            LeadReopened,
            "reopen it",
            ctx,
            occurred_at,
            to_stage=self.stage_before_exit or "new",
            reason=reason,
        )

    def convert(
        self,
        deal_id: UUID,
        deal_external_id: str,
        fast_track: bool,
        ctx: EventContext,
        occurred_at: datetime,
    ) -> datetime:
        """Open a deal from this lead. Without ``fast_track`` the lead must be an SQL.

        Returns the business time the conversion was recorded at (the deal opens then).
        """
        attempted = f"open deal {deal_external_id!r}"
        if self.stage == "converted":
            return self._change(
                LeadConverted,
                f"open deal {deal_external_id!r} from it",
                ctx,
                occurred_at,
                deal_id=deal_id,
                deal_external_id=deal_external_id,
                from_stage=self.stage,
                fast_tracked=False,
            )
        if self.stage == "disqualified":
            self._refuse(attempted, "reopen the lead first")
        if self.stage != "sql" and not fast_track:
            self._refuse(attempted, "the lead must be an SQL (or the command must fast-track)")
        return self._change(
            LeadConverted,
            f"convert it into deal {deal_external_id!r}",
            ctx,
            occurred_at,
            deal_id=deal_id,
            deal_external_id=deal_external_id,
            from_stage=self.stage,
            fast_tracked=self.stage != "sql",
        )

    def erase(self, reason: str, ctx: EventContext, occurred_at: datetime) -> None:
        """Record that the lead's personal data is forgotten (its key is destroyed next)."""
        self.refuse_if_erased("erase it again (already erased)")
        super().trigger(LeadErased, ctx, occurred_at, reason=reason, deal_ids=list(self.deal_ids))

    def refuse_if_erased(self, attempted: str = "take this command") -> None:
        if self.erased_at is not None:
            raise ErasedLead(self.id, attempted)

    def trigger(
        self,
        event_class: type[DomainEvent],
        ctx: EventContext,
        occurred_at: datetime,
        **payload: Any,
    ) -> DomainEvent:
        """An erased lead records nothing more."""
        self.refuse_if_erased()
        return super().trigger(event_class, ctx, occurred_at, **payload)

    # --- scoring --------------------------------------------------------------------

    def _as_of(self, occurred_at: datetime) -> datetime:
        """Scores are taken no earlier than every engagement and score so far."""
        return self.engagements.as_of(occurred_at)

    def _score_with(self, rules: ScoringRules, as_of: datetime) -> ScoreBreakdown:
        return score_folded(rules, self.attributes, self.engagements, as_of)

    def _score_if_recycled(self, rules: ScoringRules, occurred_at: datetime) -> float | None:
        """The score before a change: only a recycled lead's re-qualification looks at it."""
        if self.stage != "recycled":
            return None
        return self._score_with(rules, self._as_of(occurred_at)).total

    def _rescore(
        self,
        rules: ScoringRules,
        ctx: EventContext,
        occurred_at: datetime,
        crossed_from: float | None,
    ) -> None:
        as_of = self._as_of(occurred_at)
        result = self._score_with(rules, as_of)
        if result.total == self.score and result.rule_version == self.rule_version:
            return
        self.trigger(
            LeadScored,
            ctx,
            occurred_at,
            fit=result.fit,
            engagement=result.engagement,
            total=result.total,
            previous_total=self.score,
            as_of=as_of,
            rule_version=result.rule_version,
            reasons=result.reasons,
            half_life_days=rules.half_life_days,
        )
        threshold = rules.mql_threshold
        if result.total < threshold or self.stage not in _NURTURING:
            return
        if self.stage == "recycled" and (crossed_from is None or crossed_from >= threshold):
            return
        self.trigger(
            LeadQualifiedAsMQL,
            ctx,
            self._line().automatic_at(occurred_at),
            via="score",
            score=result.total,
            reason=f"score {result.total} reached threshold {threshold} "
            f"(rules {result.rule_version})",
            from_stage=self.stage,
        )

    # --- guards ---------------------------------------------------------------------

    def _line(self) -> StageLine:
        """Each further deal of a converted lead is a change on its stage line too."""
        since = max(self.entered_stage_at, self.last_conversion_at or self.entered_stage_at)
        return StageLine("lead", self.external_id, self.id, self.stage, since)

    def _require(self, stages: tuple[LeadStage, ...], attempted: str, why: str) -> None:
        if self.stage not in stages:
            self._refuse(attempted, why)

    def _refuse(self, attempted: str, why: str) -> None:
        self.refuse_if_erased(attempted)  # that is the reason, whatever else stands in the way
        raise IllegalTransition("lead", self.external_id, self.id, self.stage, attempted, why)

    # --- event application ----------------------------------------------------------

    @classmethod
    def from_created(cls, event: DomainEvent) -> Self:
        assert isinstance(event, LeadCaptured)
        lead = cls(
            id=event.originator_id,
            external_id=event.external_id,
            created_on=event.timestamp,
            modified_on=event.timestamp,
            entered_stage_at=event.occurred_at,
            captured_at=event.occurred_at,
            last_activity_at=event.occurred_at,
            source=event.source,
            campaign=event.campaign,
            attributes=dict(event.attributes),
        )
        lead._advance(event)
        return lead

    def apply(self, event: DomainEvent) -> None:
        super().apply(event)
        self.last_activity_at = max(self.last_activity_at, event.occurred_at)

    def _enter(self, stage: LeadStage, at: datetime) -> None:
        self.stage = stage
        self.entered_stage_at = at
        if stage not in self.reached:
            self.reached.append(stage)

    def _skip(self, stages: tuple[LeadStage, ...]) -> None:
        """A fast-track passes the skipped stages: they count as reached."""
        self.fast_tracks += 1
        self.reached += [stage for stage in stages if stage not in self.reached]

    def _on_LeadAttributesUpdated(self, e: LeadAttributesUpdated) -> None:
        self.attributes = {**self.attributes, **e.attributes}

    def _on_EngagementRecorded(self, e: EngagementRecorded) -> None:
        self.engagements.add(e.kind, e.occurred_at)

    def _on_LeadScored(self, e: LeadScored) -> None:
        self.score = e.total
        self.score_as_of = e.as_of
        self.rule_version = e.rule_version
        if e.half_life_days is not None:
            self.engagements.use_half_life(e.half_life_days)
        self.engagements.advance(e.as_of)

    def _on_ContactLogged(self, e: ContactLogged) -> None:
        pass

    def _on_LeadQualifiedAsMQL(self, e: LeadQualifiedAsMQL) -> None:
        self._enter("mql", e.occurred_at)

    def _on_LeadAccepted(self, e: LeadAccepted) -> None:
        self.owner = e.owner
        self._enter("sal", e.occurred_at)

    def _on_LeadRejected(self, e: LeadRejected) -> None:
        self.stage_before_exit = self.stage
        self._enter("recycled", e.occurred_at)

    def _on_LeadQualifiedAsSQL(self, e: LeadQualifiedAsSQL) -> None:
        self.bant = e.bant
        self._enter("sql", e.occurred_at)

    def _on_LeadFastTracked(self, e: LeadFastTracked) -> None:
        self._skip(e.skipped)
        self._enter(e.to_stage, e.occurred_at)

    def _on_LeadRecycled(self, e: LeadRecycled) -> None:
        self.stage_before_exit = e.from_stage
        self._enter("recycled", e.occurred_at)

    def _on_LeadDisqualified(self, e: LeadDisqualified) -> None:
        self.stage_before_exit = e.from_stage
        self._enter("disqualified", e.occurred_at)

    def _on_LeadReopened(self, e: LeadReopened) -> None:
        self._enter(e.to_stage, e.occurred_at)

    def _on_LeadErased(self, e: LeadErased) -> None:
        self.erased_at = e.occurred_at

    def _on_LeadConverted(self, e: LeadConverted) -> None:
        if e.fast_tracked:
            self._skip(skipped_stages(e.from_stage, "converted"))
        self.deal_ids.append(e.deal_id)
        self.last_conversion_at = e.occurred_at
        if self.stage != "converted":
            self._enter("converted", e.occurred_at)
