"""The folded engagements score as the listed ones do (``domain.engagement_fold``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.aggregate import EventContext
from domain.engagement_fold import EngagementFold, score_folded
from domain.lead import Lead
from domain.scoring import (
    ENGAGEMENT_KINDS,
    Engagement,
    ScoringRules,
    engagement_score,
    load_scoring_rules,
    score_lead,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULES = load_scoring_rules()
ATTRIBUTES = {"industry": "SaaS", "employees": 250}

_ENGAGEMENTS = st.lists(
    st.tuples(st.sampled_from(ENGAGEMENT_KINDS), st.floats(-400, 400, allow_nan=False)),
    max_size=60,
)


def engagement(kind: str, day: float) -> Engagement:
    return Engagement(kind, T0 + timedelta(days=day))


def raw_sums(rules: ScoringRules, engagements: list[Engagement], as_of: datetime) -> list[float]:
    """Per kind the capped sum, and the engagement total, before rounding, summed one
    engagement at a time."""
    sums: dict[str, float] = {}
    for e in engagements:
        age = (as_of - e.occurred_at) / timedelta(days=1)
        points = rules.kinds[e.kind].points * 0.5 ** (age / rules.half_life_days)
        sums[e.kind] = sums.get(e.kind, 0.0) + points
    capped = [max(-rules.kinds[k].cap, min(rules.kinds[k].cap, s)) for k, s in sums.items()]
    return [*capped, sum(capped)]


def near_rounding_boundary(figures: list[float]) -> bool:
    """Within 1e-9 of a boundary of rounding to 2 decimals (x.xx5)."""
    return any(abs(abs(f) * 100 % 1 - 0.5) * 0.01 < 1e-9 for f in figures)


@settings(max_examples=200, deadline=None)
@given(_ENGAGEMENTS, st.floats(0, 100, allow_nan=False))
def test_folded_engagements_score_as_the_listed_ones(
    listed: list[tuple[str, float]], days_after: float
) -> None:
    engagements = [engagement(kind, day) for kind, day in listed]
    fold = EngagementFold.of(engagements, RULES.half_life_days)
    as_of = fold.as_of(T0) + timedelta(days=days_after)
    folded = score_folded(RULES, ATTRIBUTES, fold, as_of)
    expected = score_lead(RULES, ATTRIBUTES, engagements, as_of)
    if folded != expected:
        assert near_rounding_boundary(raw_sums(RULES, engagements, as_of))
        assert [r.split(" (")[0] for r in folded.reasons] == [
            r.split(" (")[0] for r in expected.reasons
        ]
        assert abs(folded.engagement - expected.engagement) <= 0.0100001


def test_a_horizon_that_moves_forward_decays_what_was_folded() -> None:
    fold = EngagementFold.of([engagement("demo_request", 0)], RULES.half_life_days)
    fold.advance(T0 + timedelta(days=RULES.half_life_days))
    fold.add("demo_request", T0 + timedelta(days=1))  # late: with its own decay
    as_of = T0 + timedelta(days=2 * RULES.half_life_days)
    listed = [engagement("demo_request", 0), engagement("demo_request", 1)]
    assert score_folded(RULES, {}, fold, as_of) == score_lead(RULES, {}, listed, as_of)


def test_another_half_life_is_exact_for_engagements_of_one_time() -> None:
    halved = RULES.model_copy(update={"half_life_days": RULES.half_life_days / 2})
    same_time = [engagement("email_click", 3)] * 4
    fold = EngagementFold.of(same_time, RULES.half_life_days)
    as_of = T0 + timedelta(days=40)
    assert engagement_score(halved, same_time, as_of) == (
        score_folded(halved, {}, fold, as_of).engagement,
        list(score_folded(halved, {}, fold, as_of).reasons),
    )


def test_a_snapshot_listing_engagements_loads_folded() -> None:
    lead = Lead.capture(
        UUID(int=1),
        "old@example.com",
        "web",
        None,
        {},
        RULES,
        EventContext(causation_id="c", correlation_id="c", actor="tester"),
        T0,
    )
    state = lead.model_dump(mode="json")
    state["engagements"] = [
        {"kind": "webinar_attended", "occurred_at": "2025-12-30T00:00:00Z"},
        {"kind": "page_view", "occurred_at": "2026-01-02T00:00:00Z"},
    ]
    state["engagement_ids"] = ["a", "b"]
    loaded = Lead.model_validate(state)
    assert loaded.engagements.count == 2
    assert loaded.engagements.horizon == T0 + timedelta(days=1)
    assert "engagement_ids" not in loaded.model_dump()
