from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import uuid4

import pytest

from domain.deal import Deal
from domain.errors import IllegalTransition
from domain.events import DealLost, DealReopened, DealStageChanged, DealWon
from tests.unit.domain.lifecycle_fixtures import MODEL, PIPELINE, at, ctx, new_deal


def test_opens_in_first_stage_of_pipeline() -> None:
    deal = new_deal()
    assert deal.stage == "qualification"
    assert deal.status == "open"
    assert deal.pipeline == "default"


@pytest.mark.parametrize("target", ["needs_analysis", "proposal_sent", "negotiation"])
def test_moves_forward_and_backward_between_open_stages(target: str) -> None:
    deal = new_deal()
    assert deal.move(target, PIPELINE, ctx(), at(1))
    assert deal.stage == target
    assert deal.move("qualification", PIPELINE, ctx(), at(2))
    assert deal.stage == "qualification"
    assert deal.entered_stage_at == at(2)
    changes = [e for e in deal.collect_events() if isinstance(e, DealStageChanged)]
    assert [(e.from_stage, e.to_stage) for e in changes] == [
        ("qualification", target),
        (target, "qualification"),
    ]


def test_move_to_same_stage_is_a_no_op() -> None:
    deal = new_deal()
    version = deal.version
    assert not deal.move("qualification", PIPELINE, ctx(), at(1))
    assert deal.version == version


def test_move_to_unknown_stage_is_refused_with_names() -> None:
    deal = new_deal()
    with pytest.raises(IllegalTransition) as info:
        deal.move("signed", PIPELINE, ctx(), at(1))
    assert "deal 'deal-1'" in str(info.value)
    assert "stage 'qualification'" in str(info.value)
    assert "no such stage" in str(info.value)


def test_moving_onto_won_stage_wins_but_lost_needs_a_reason() -> None:
    deal = new_deal()
    with pytest.raises(IllegalTransition, match="needs a reason"):
        deal.move("closed_lost", PIPELINE, ctx(), at(1))
    deal.move("closed_won", PIPELINE, ctx(), at(1))
    assert deal.status == "won"


@pytest.mark.parametrize(
    "stage", ["qualification", "needs_analysis", "proposal_sent", "negotiation"]
)
def test_win_and_lose_from_any_open_stage(stage: str) -> None:
    won, lost = new_deal(), new_deal()
    for deal in (won, lost):
        deal.move(stage, PIPELINE, ctx(), at(1))
    won.win(Decimal("12500"), PIPELINE, ctx(), at(2))
    lost.lose("price", "Acme CRM", PIPELINE, ctx(), at(2))
    assert (won.status, won.stage, won.amount) == ("won", "closed_won", Decimal("12500"))
    assert (lost.status, lost.stage, lost.competitor) == ("lost", "closed_lost", "Acme CRM")
    assert isinstance(won.collect_events()[-1], DealWon)
    event = lost.collect_events()[-1]
    assert isinstance(event, DealLost)
    assert event.from_stage == stage


@pytest.mark.parametrize("close", ["win", "lose"])
def test_closed_deal_changes_only_by_reopening(close: str) -> None:
    deal = new_deal()
    deal.move("negotiation", PIPELINE, ctx(), at(1))
    if close == "win":
        deal.win(None, PIPELINE, ctx(), at(2))
    else:
        deal.lose("no budget", None, PIPELINE, ctx(), at(2))
    version = deal.version
    attempts = [
        lambda: deal.move("qualification", PIPELINE, ctx(), at(3)),
        lambda: deal.win(None, PIPELINE, ctx(), at(3)),
        lambda: deal.lose("x", None, PIPELINE, ctx(), at(3)),
        lambda: deal.change_amount(Decimal(1), None, ctx(), at(3)),
        lambda: deal.change_close_date(date(2026, 5, 1), ctx(), at(3)),
    ]
    for attempt in attempts:
        with pytest.raises(IllegalTransition, match="reopen it first"):
            attempt()
    assert deal.version == version
    deal.reopen(None, None, PIPELINE, ctx(), at(4))
    assert (deal.status, deal.stage) == ("open", "negotiation")
    assert isinstance(deal.collect_events()[-1], DealReopened)


def test_reopen_open_deal_or_into_closed_stage_is_refused() -> None:
    deal = new_deal()
    with pytest.raises(IllegalTransition, match="the deal is open"):
        deal.reopen(None, None, PIPELINE, ctx(), at(1))
    deal.lose("timing", None, PIPELINE, ctx(), at(2))
    with pytest.raises(IllegalTransition, match="not an open stage"):
        deal.reopen("closed_won", None, PIPELINE, ctx(), at(3))


def test_amount_and_close_date_change_on_open_deal() -> None:
    deal = new_deal()
    assert deal.change_amount(Decimal("20000"), "USD", ctx(), at(1))
    assert not deal.change_amount(Decimal("20000"), "USD", ctx(), at(1))
    assert deal.change_close_date(date(2026, 3, 31), ctx(), at(1))
    assert (deal.amount, deal.currency, deal.expected_close_date) == (
        Decimal("20000"),
        "USD",
        date(2026, 3, 31),
    )


def test_pipeline_with_restricted_transitions_is_enforced() -> None:
    renewal = MODEL.pipeline("renewal")
    deal = Deal.open(
        uuid4(), "r-1", renewal, Decimal(1), "EUR", None, None, None, None, ctx(), at(0)
    )
    assert deal.stage == "renewal_review"
    assert deal.move("renewal_proposal", renewal, ctx(), at(1))
    with pytest.raises(IllegalTransition, match="does not allow this move"):
        deal.move("renewal_review", renewal, ctx(), at(2))
