from __future__ import annotations

from uuid import uuid4

import pytest

from domain.aggregate import project_aggregate
from domain.errors import IllegalTransition
from domain.events import (
    LeadAccepted,
    LeadConverted,
    LeadFastTracked,
    LeadQualifiedAsMQL,
    LeadQualifiedAsSQL,
    LeadRejected,
)
from tests.unit.domain.lifecycle_fixtures import BANT, RULES, at, ctx, lead_in, new_lead

ALL_STAGES = ["new", "mql", "sal", "sql", "converted", "recycled", "disqualified"]


def test_capture_starts_new_with_fit_score() -> None:
    lead = new_lead(attributes={"industry": "software", "employees": 250})
    assert lead.stage == "new"
    assert lead.version >= 1
    assert lead.score > 0
    assert lead.reached == ["new"]


def test_happy_path_new_to_converted() -> None:
    lead = lead_in("converted")
    assert lead.stage == "converted"
    assert lead.reached == ["new", "mql", "sal", "sql", "converted"]
    assert lead.bant == BANT
    assert lead.owner == "sam"
    types = [type(e) for e in lead.collect_events()]
    assert types[-4:] == [LeadQualifiedAsMQL, LeadAccepted, LeadQualifiedAsSQL, LeadConverted]


@pytest.mark.parametrize(
    ("stage", "command"),
    [
        (stage, command)
        for command, allowed in {
            "mark_mql": {"new", "recycled"},
            "accept": {"mql"},
            "reject": {"mql"},
            "qualify": {"sal"},
            "recycle": {"mql", "sal", "sql"},
            "disqualify": {"new", "mql", "sal", "sql", "recycled"},
            "reopen": {"disqualified"},
        }.items()
        for stage in ALL_STAGES
        if stage not in allowed
    ],
)
def test_every_illegal_transition_names_lead_stage_and_attempt(stage: str, command: str) -> None:
    lead = lead_in(stage)
    calls = {
        "mark_mql": lambda: lead.mark_mql(None, ctx(), at(9)),
        "accept": lambda: lead.accept("sam", None, ctx(), at(9)),
        "reject": lambda: lead.reject("no budget", ctx(), at(9)),
        "qualify": lambda: lead.qualify(BANT, ctx(), at(9)),
        "recycle": lambda: lead.recycle("later", ctx(), at(9)),
        "disqualify": lambda: lead.disqualify("spam", ctx(), at(9)),
        "reopen": lambda: lead.reopen(None, ctx(), at(9)),
    }
    version = lead.version
    with pytest.raises(IllegalTransition) as info:
        calls[command]()
    message = str(info.value)
    assert "ada@example.com" in message
    assert f"stage {stage!r}" in message
    assert "cannot" in message
    assert lead.version == version


@pytest.mark.parametrize(
    ("stage", "command", "expected"),
    [
        ("new", "mark_mql", "mql"),
        ("recycled", "mark_mql", "mql"),
        ("mql", "accept", "sal"),
        ("mql", "reject", "recycled"),
        ("sal", "qualify", "sql"),
        ("mql", "recycle", "recycled"),
        ("sal", "recycle", "recycled"),
        ("sql", "recycle", "recycled"),
        ("new", "disqualify", "disqualified"),
        ("sql", "disqualify", "disqualified"),
        ("recycled", "disqualify", "disqualified"),
    ],
)
def test_every_legal_transition(stage: str, command: str, expected: str) -> None:
    lead = lead_in(stage)
    {
        "mark_mql": lambda: lead.mark_mql(None, ctx(), at(9)),
        "accept": lambda: lead.accept("sam", None, ctx(), at(9)),
        "reject": lambda: lead.reject("no budget", ctx(), at(9)),
        "qualify": lambda: lead.qualify(BANT, ctx(), at(9)),
        "recycle": lambda: lead.recycle("later", ctx(), at(9)),
        "disqualify": lambda: lead.disqualify("spam", ctx(), at(9)),
    }[command]()
    assert lead.stage == expected
    assert lead.entered_stage_at == at(9)


def test_reject_records_reason_and_returns_to_nurturing() -> None:
    lead = lead_in("mql")
    lead.reject("no budget this year", ctx(), at(5))
    rejected = [e for e in lead.collect_events() if isinstance(e, LeadRejected)]
    assert rejected[0].reason == "no budget this year"
    assert lead.stage == "recycled"


def test_reopen_returns_to_the_stage_it_left() -> None:
    lead = lead_in("sal")
    lead.disqualify("duplicate contact", ctx(), at(5))
    lead.reopen("not a duplicate after all", ctx(), at(6))
    assert lead.stage == "sal"


def test_fast_track_records_reason_and_skipped_stages() -> None:
    lead = new_lead()
    lead.fast_track("sql", "demo request from a perfect-fit account", ctx(), at(1))
    event = next(e for e in lead.collect_events() if isinstance(e, LeadFastTracked))
    assert event.skipped == ("mql", "sal")
    assert event.reason.startswith("demo request")
    assert lead.stage == "sql"
    assert lead.reached == ["new", "mql", "sal", "sql"]
    assert lead.bant is None


@pytest.mark.parametrize("stage", ["sql", "converted", "disqualified"])
def test_fast_track_refuses_backwards_or_closed(stage: str) -> None:
    lead = lead_in(stage)
    with pytest.raises(IllegalTransition, match="fast-track"):
        lead.fast_track("sql", "why not", ctx(), at(9))


def test_fast_track_refuses_non_lifecycle_target() -> None:
    with pytest.raises(IllegalTransition, match="fast-track goes to one of"):
        new_lead().fast_track("converted", "because", ctx(), at(1))


def test_convert_requires_sql_unless_fast_tracked() -> None:
    lead = lead_in("mql")
    with pytest.raises(IllegalTransition, match="must be an SQL"):
        lead.convert(uuid4(), "deal-9", False, ctx(), at(5))
    lead.convert(uuid4(), "deal-9", True, ctx(), at(5))
    assert lead.stage == "converted"
    assert lead.reached == ["new", "mql", "sal", "sql", "converted"]


def test_disqualified_lead_cannot_open_a_deal() -> None:
    lead = lead_in("disqualified")
    with pytest.raises(IllegalTransition, match="reopen the lead first"):
        lead.convert(uuid4(), "deal-9", True, ctx(), at(5))


def test_engagements_are_counted_not_kept_with_their_ids() -> None:
    """Idempotency by engagement id is the command ledger's; the state only folds them."""
    lead = new_lead()
    lead.record_engagement("ev-1", "page_view", {}, None, None, RULES, ctx(), at(1))
    lead.record_engagement("ev-2", "page_view", {}, None, None, RULES, ctx(), at(2))
    assert lead.engagements.count == 2
    assert "ev-1" not in lead.model_dump_json()


def test_score_reaching_threshold_makes_a_new_lead_mql() -> None:
    lead = new_lead(attributes={"industry": "software", "employees": 300, "title": "CTO"})
    for n, kind in enumerate(["demo_request", "webinar_attended", "pricing_page_view"]):
        lead.record_engagement(f"ev-{n}", kind, {}, None, None, RULES, ctx(), at(1 + n / 10))
    assert lead.score >= RULES.mql_threshold
    assert lead.stage == "mql"
    mql = next(e for e in lead.collect_events() if isinstance(e, LeadQualifiedAsMQL))
    assert mql.via == "score"
    assert RULES.version in (mql.reason or "")


def test_recycled_lead_needs_new_engagement_crossing_the_threshold() -> None:
    lead = new_lead(attributes={"industry": "software"})
    for n, kind in enumerate(["demo_request", "webinar_attended", "pricing_page_view"]):
        lead.record_engagement(f"ev-{n}", kind, {}, None, None, RULES, ctx(), at(1))
    assert lead.stage == "mql"
    lead.reject("not ready", ctx(), at(2))
    lead.log_contact("call", "left voicemail", ctx(), at(2.5))
    assert lead.stage == "recycled"
    # months later the old engagement has decayed; a fresh burst crosses the threshold again
    for n, kind in enumerate(["demo_request", "webinar_attended", "pricing_page_view"]):
        lead.record_engagement(f"late-{n}", kind, {}, None, None, RULES, ctx(), at(200 + n))
    assert lead.stage == "mql"
    assert lead.reached.count("mql") == 1


def test_scoring_is_deterministic_on_replay() -> None:
    lead = new_lead(attributes={"industry": "software"})
    lead.record_engagement("a", "email_click", {}, None, None, RULES, ctx(), at(3))
    lead.record_engagement("b", "page_view", {}, None, None, RULES, ctx(), at(1))
    events = lead.collect_events()
    replayed = project_aggregate(None, events)
    assert replayed is not None
    assert replayed.model_dump() == lead.model_dump()
