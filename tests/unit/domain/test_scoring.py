from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.config_file import ConfigFileError
from domain.scoring import (
    ENGAGEMENT_KINDS,
    Engagement,
    FitRule,
    KindRule,
    ScoreBreakdown,
    ScoringRules,
    engagement_score,
    fit_score,
    load_scoring_rules,
    parse_scoring_rules,
    score_lead,
)

AS_OF = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POSITIVE_KINDS = tuple(k for k in ENGAGEMENT_KINDS if k != "unsubscribe")
PERFECT_FIT = {
    "industry": "SaaS",
    "employees": 250,
    "revenue": "12,000,000",
    "title": "VP of Sales",
    "country": "nl",
}


def default_rules() -> ScoringRules:
    return load_scoring_rules()


def rules_with(*fit_rules: FitRule, kinds: dict[str, KindRule] | None = None) -> ScoringRules:
    base = default_rules()
    return ScoringRules(
        version="test",
        mql_threshold=base.mql_threshold,
        fit_rules=fit_rules,
        half_life_days=base.half_life_days,
        kinds=kinds or base.kinds,
    )


def rule(**fields: Any) -> FitRule:
    return FitRule.model_validate({"attribute": "x", "points": 10, "reason": "x", **fields})


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


# --- defaults ---------------------------------------------------------------------------------


def test_default_rules_load_and_are_cached() -> None:
    rules = default_rules()
    assert rules is load_scoring_rules()
    assert rules.version == "2026.1"
    assert rules.mql_threshold == 60
    assert rules.half_life_days == 30
    assert tuple(rules.kinds) == ENGAGEMENT_KINDS
    assert rules.kinds["unsubscribe"].points < 0
    assert all(rules.kinds[k].points > 0 for k in POSITIVE_KINDS)


def test_rules_loaded_twice_are_equal() -> None:
    path = Path(str(files("domain") / "default_scoring.toml"))
    assert load_scoring_rules(path) == load_scoring_rules(path) == default_rules()


def test_engagement_kinds_constant() -> None:
    assert ENGAGEMENT_KINDS == (
        "page_view",
        "pricing_page_view",
        "email_open",
        "email_click",
        "form_submit",
        "content_download",
        "webinar_attended",
        "demo_request",
        "unsubscribe",
    )


def test_default_fit_rules_score_a_perfect_fit() -> None:
    score, reasons = fit_score(default_rules(), PERFECT_FIT)
    assert score == 55
    assert score < default_rules().mql_threshold  # fit alone never makes an MQL
    assert reasons == [
        "industry in target industries (+15)",
        "employees between 50 and 5000 (+15)",
        "revenue at least 5M (+5)",
        "senior title (+15)",
        "country in target markets (+5)",
    ]


def test_missing_or_unusable_attributes_score_zero() -> None:
    assert fit_score(default_rules(), {}) == (0, [])
    junk = {"industry": None, "employees": "lots", "revenue": True, "title": 7}
    assert fit_score(default_rules(), junk) == (0, [])


# --- fit rule ops -----------------------------------------------------------------------------


def test_op_in_is_case_insensitive_and_accepts_lists() -> None:
    rules = rules_with(rule(op="in", values=["Software", "fintech"]))
    assert fit_score(rules, {"x": " SOFTWARE "})[0] == 10
    assert fit_score(rules, {"x": ["retail", "FinTech"]})[0] == 10
    assert fit_score(rules, {"x": "software house"})[0] == 0


def test_op_contains_any_matches_whole_words() -> None:
    rules = rules_with(rule(op="contains_any", values=["vp", "Director", "chief", "cto"]))
    for title in ("VP Sales", "Marketing director", "CHIEF of staff", "Co-CTO"):
        assert fit_score(rules, {"x": title})[0] == 10, title
    for title in ("Software Engineer", "Contractor", "Directorate clerk"):
        assert fit_score(rules, {"x": title})[0] == 0, title


def test_op_gte_and_lte_coerce_numbers_leniently() -> None:
    gte = rules_with(rule(op="gte", value=5_000_000))
    for value in (5_000_000, 5e6, "5,000,000", "$5M", "5m", "12000000", "0.005bn"):
        assert fit_score(gte, {"x": value})[0] == 10, value
    for value in (4_999_999, "4.9M", "n/a", float("nan"), False):
        assert fit_score(gte, {"x": value})[0] == 0, value
    lte = rules_with(rule(op="lte", value=100))
    assert fit_score(lte, {"x": "100"})[0] == 10
    assert fit_score(lte, {"x": 101})[0] == 0


def test_op_between_is_inclusive() -> None:
    rules = rules_with(rule(op="between", min=50, max=5000))
    for value in (50, "5000", 250.5, "51-200", "1k", "1000+"):
        assert fit_score(rules, {"x": value})[0] == 10, value
    for value in (49, "5001", "10k", "10000+"):
        assert fit_score(rules, {"x": value})[0] == 0, value


def test_fit_points_add_up_and_may_be_negative() -> None:
    rules = rules_with(
        rule(op="in", values=["a"], points=12.5, reason="is a"),
        rule(op="in", values=["a"], points=-20, reason="competitor"),
    )
    assert fit_score(rules, {"x": "a"}) == (-7.5, ["is a (+12.5)", "competitor (-20)"])


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"op": "in"}, "values"),
        ({"op": "in", "values": []}, "values"),
        ({"op": "gte", "values": ["a"]}, "value"),
        ({"op": "between", "min": 5}, "max"),
        ({"op": "between", "min": 5, "max": 1}, "max"),
        ({"op": "lte", "value": 1, "min": 0}, "min"),
    ],
)
def test_fit_rule_operands_must_fit_the_op(
    tmp_path: Path, fields: dict[str, Any], key: str
) -> None:
    data = _default_data()
    data["fit"]["rules"][1] = {"attribute": "x", "points": 1, "reason": "x", **fields}
    with pytest.raises(ConfigFileError) as info:
        parse_scoring_rules(data, "rules.toml")
    assert info.value.key == f"fit.rules[1].{key}"


# --- engagement -------------------------------------------------------------------------------


def test_decay_halves_at_one_half_life() -> None:
    rules = default_rules()
    points = rules.kinds["webinar_attended"].points
    at = [
        engagement_score(rules, [Engagement("webinar_attended", ago(d))], AS_OF)[0]
        for d in (0, 30, 60)
    ]
    assert at == [points, points / 2, points / 4]


def test_cap_per_kind() -> None:
    rules = default_rules()
    score, reasons = engagement_score(rules, [Engagement("demo_request", AS_OF)] * 5, AS_OF)
    assert score == rules.kinds["demo_request"].cap
    assert reasons == ["demo_request x5 (+30, cap 30)"]


def test_caps_apply_per_kind_not_overall() -> None:
    rules = default_rules()
    engagements = [Engagement("demo_request", AS_OF)] * 3 + [Engagement("page_view", AS_OF)] * 30
    score, _ = engagement_score(rules, engagements, AS_OF)
    assert score == rules.kinds["demo_request"].cap + rules.kinds["page_view"].cap


def test_negative_kind_is_floored_at_minus_cap() -> None:
    rules = default_rules()
    score, reasons = engagement_score(rules, [Engagement("unsubscribe", AS_OF)] * 3, AS_OF)
    assert score == -30
    assert reasons == ["unsubscribe x3 (-30, floor -30)"]


def test_reasons_show_count_decayed_points_and_cap() -> None:
    rules = default_rules()
    engagements = [Engagement("webinar_attended", ago(5)), Engagement("webinar_attended", ago(9))]
    score, reasons = engagement_score(rules, engagements, AS_OF)
    assert reasons == [f"webinar_attended x2 (+{score}, cap 30)"]
    assert 0 < score < 30


def test_future_engagements_are_ignored() -> None:
    rules = default_rules()
    future = [Engagement("demo_request", AS_OF + timedelta(seconds=1))]
    assert engagement_score(rules, future, AS_OF) == (0, [])
    now = [Engagement("demo_request", AS_OF)]
    assert engagement_score(rules, now, AS_OF)[0] == 30


def test_unknown_kinds_are_not_scored_but_reported() -> None:
    score, reasons = engagement_score(default_rules(), [Engagement("tweet", AS_OF)], AS_OF)
    assert score == 0
    assert reasons == ["tweet x1 (unknown kind, not scored)"]


# --- whole score --------------------------------------------------------------------------------


def test_score_lead_sums_fit_and_engagement() -> None:
    rules = default_rules()
    result = score_lead(rules, PERFECT_FIT, [Engagement("form_submit", ago(30))], AS_OF)
    assert result == ScoreBreakdown(
        fit=55,
        engagement=5,
        total=60,
        rule_version="2026.1",
        reasons=(
            *fit_score(rules, PERFECT_FIT)[1],
            "form_submit x1 (+5, cap 20)",
        ),
    )


def test_scoring_is_deterministic_and_ignores_the_wall_clock() -> None:
    rules = default_rules()
    engagements = [Engagement(k, ago(i * 3.7)) for i, k in enumerate(ENGAGEMENT_KINDS)]
    first = score_lead(rules, PERFECT_FIT, engagements, AS_OF)
    assert score_lead(rules, PERFECT_FIT, list(engagements), AS_OF) == first
    # Shifting every timestamp by decades changes nothing: only ages matter.
    shift = timedelta(days=365 * 70)
    moved = [Engagement(e.kind, e.occurred_at - shift) for e in engagements]
    assert score_lead(rules, PERFECT_FIT, moved, AS_OF - shift) == first


# --- invalid files ------------------------------------------------------------------------------


def _default_text() -> str:
    return (files("domain") / "default_scoring.toml").read_text(encoding="utf-8")


def _default_data() -> dict[str, Any]:
    return tomllib.loads(_default_text())


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def _write(text: str) -> Path:
        path = tmp_path / "rules.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def load_error(path: Path) -> ConfigFileError:
    with pytest.raises(ConfigFileError) as info:
        load_scoring_rules(path)
    err = info.value
    assert err.file == str(path)
    assert str(err) == (
        f"{path}: {err.key}: {err.problem}" if err.key else f"{path}: {err.problem}"
    )
    return err


def test_unknown_engagement_kind(write: Callable[[str], Path]) -> None:
    err = load_error(write(_default_text() + "\n[engagement.kinds.tweet]\npoints = 1\ncap = 1\n"))
    assert err.key == "engagement.kinds.tweet"
    assert 'unknown engagement kind "tweet"' in err.problem


def test_missing_engagement_kind(write: Callable[[str], Path]) -> None:
    text = _default_text().replace("[engagement.kinds.email_open]", "[engagement.kinds.skip]")
    text = text.replace("[engagement.kinds.skip]\npoints = 1\ncap = 5\n", "")
    err = load_error(write(text))
    assert err.key == "engagement.kinds"
    assert 'missing engagement kind "email_open"' in err.problem


def test_syntax_error_names_the_line(write: Callable[[str], Path]) -> None:
    err = load_error(write('version = "1"\nmql_threshold = = 60\n'))
    assert err.line == 2
    assert err.key == "line 2"


def test_bad_half_life(write: Callable[[str], Path]) -> None:
    err = load_error(write(_default_text().replace("half_life_days = 30", "half_life_days = 0")))
    assert err.key == "engagement.half_life_days"
    assert "greater than 0" in err.problem


def test_negative_cap(write: Callable[[str], Path]) -> None:
    text = _default_text().replace("points = -30\ncap = 30", "points = -30\ncap = -30")
    err = load_error(write(text))
    assert err.key == "engagement.kinds.unsubscribe.cap"


def test_unknown_op(write: Callable[[str], Path]) -> None:
    err = load_error(write(_default_text().replace('op = "gte"', 'op = "greater"')))
    assert err.key == "fit.rules[2].op"
    assert "'greater'" in err.problem


def test_unknown_key_in_engagement_table(write: Callable[[str], Path]) -> None:
    err = load_error(write(_default_text().replace("half_life_days", "halflife_days")))
    assert err.key == "engagement.halflife_days"
    assert "unknown key" in err.problem


def test_missing_file(tmp_path: Path) -> None:
    err = load_error(tmp_path / "nope.toml")
    assert "file not found" in str(err)


# --- properties ---------------------------------------------------------------------------------

ages = st.floats(min_value=0, max_value=400, allow_nan=False)
positive_engagements = st.lists(
    st.builds(lambda kind, age: Engagement(kind, ago(age)), st.sampled_from(POSITIVE_KINDS), ages),
    max_size=30,
)
any_engagements = st.lists(
    st.builds(
        lambda kind, age: Engagement(kind, ago(age)),
        st.sampled_from(ENGAGEMENT_KINDS),
        st.floats(min_value=-30, max_value=400, allow_nan=False),
    ),
    max_size=30,
)
attributes = st.fixed_dictionaries(
    {},
    optional={
        "industry": st.sampled_from(["saas", "Retail", "fintech"]),
        "employees": st.one_of(st.integers(0, 10_000), st.sampled_from(["51-200", "5k", "?"])),
        "revenue": st.floats(0, 1e8, allow_nan=False),
        "title": st.sampled_from(["CEO", "Engineer", "Head of IT"]),
        "country": st.sampled_from(["US", "br", "nl"]),
    },
)


@given(positive_engagements, st.lists(ages, min_size=2, max_size=6))
def test_score_never_rises_as_time_passes(
    engagements: list[Engagement], later: list[float]
) -> None:
    rules = default_rules()
    scores = [
        score_lead(rules, PERFECT_FIT, engagements, AS_OF + timedelta(days=d)).total
        for d in sorted(later)
    ]
    assert scores == sorted(scores, reverse=True)


@given(
    st.sampled_from(ENGAGEMENT_KINDS),
    st.floats(-100, 100, allow_nan=False),
    st.floats(0, 100, allow_nan=False),
    st.lists(ages, max_size=40),
)
def test_kind_contribution_never_exceeds_its_cap(
    kind: str, points: float, cap: float, engagement_ages: list[float]
) -> None:
    kinds = {k: KindRule(points=points, cap=cap) for k in ENGAGEMENT_KINDS}
    rules = rules_with(kinds=kinds)
    score, _ = engagement_score(rules, [Engagement(kind, ago(a)) for a in engagement_ages], AS_OF)
    assert -round(cap, 2) <= score <= round(cap, 2)


@given(attributes, any_engagements)
def test_total_is_rounded_sum_of_fit_and_engagement(
    attrs: dict[str, object], engagements: list[Engagement]
) -> None:
    result = score_lead(default_rules(), attrs, engagements, AS_OF)
    assert result.total == round(result.fit + result.engagement, 2)
    assert result.rule_version == "2026.1"
    assert result == score_lead(default_rules(), attrs, engagements, AS_OF)
