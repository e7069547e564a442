"""The stored state and hash of every kind of event, pinned for fixed inputs.

Speeding up event building (construction, dump, sealing, canonical JSON) must leave
every stored byte and every hash as they were: the chain of stores written before has
to keep verifying. The clock and the event ids are fixed here, and personal fields are
sealed by a deterministic ``PersonalData`` (the real seal's nonce is random; where it
puts its output is what this pins)."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Collection, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from adapters.mapper import JSONTranscoder, PydanticMapper
from domain import aggregate
from domain.aggregate import Aggregate, EventContext
from domain.deal import Deal
from domain.events import Bant, DomainEvent
from domain.lead import Lead
from domain.personal_fields import SEALED_PREFIX
from domain.scoring import load_scoring_rules
from domain.stage_model import load_stage_model

RULES = load_scoring_rules()
PIPELINE = load_stage_model().pipeline(None)
T0 = datetime(2026, 3, 2, 8, 15, 30, 250_000, tzinfo=UTC)
RECORDED = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
LEAD_ID = UUID(int=0x1EAD)
DEAL_ID = UUID(int=0xDEA1)

# sha-256 over every event's stored bytes (as the mapper writes them) and hash, in order
PINNED = "14f4b34065d585dbf421b58776731012ce9ce6bbcbafe908ec555d8a61fd9702"


class DeterministicSeal:
    """Seals as a digest of everything the real seal binds a value to."""

    def seal(self, key_owner: UUID, topic: str, field: str, value: Any) -> str:
        plain = json.dumps([str(key_owner), topic, field, value], sort_keys=True)
        return f"{SEALED_PREFIX}{key_owner.hex}:{hashlib.sha256(plain.encode()).hexdigest()}"

    def seal_fields(self, key_owner: UUID, topic: str, values: Mapping[str, Any]) -> dict[str, str]:
        return {field: self.seal(key_owner, topic, field, value) for field, value in values.items()}

    def prepare(self, key_owners: Collection[UUID]) -> None:
        return None

    def open(self, sealed: str, topic: str, field: str) -> Any:
        raise NotImplementedError


@pytest.fixture
def fixed_clock_and_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    ticks = itertools.count()
    monkeypatch.setattr(
        aggregate, "utc_now", lambda: RECORDED + timedelta(microseconds=next(ticks))
    )
    ids = itertools.count(1)
    monkeypatch.setattr(aggregate, "uuid4", lambda: UUID(int=next(ids)))


def contexts() -> Iterator[EventContext]:
    for n in itertools.count(1):
        yield EventContext(
            actor="pin-tester",
            causation_id=f"cmd-{n}",
            correlation_id=f"corr-{n}",
            on_behalf_of="Zoë" if n % 3 == 0 else None,
            personal_data=DeterministicSeal(),
        )


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def lifecycle() -> list[Aggregate]:
    ctx = contexts()
    lead = Lead.capture(
        LEAD_ID,
        "zoë.o'brien@example.com",
        "web",
        "spring \u2028 launch",
        {"industry": "saas", "employees": 120, "title": "VP \"Sales\"", "ratio": 1e-7,
         "tags": ["a", {"b": None, "é": 2.5}], "revenue": None},
        RULES, next(ctx), at(0),
    )  # fmt: skip
    lead.record_engagement(
        "eng-1", "webinar_attended", {"title": "Q2 \x00 plan", "n": 3}, "web", None,
        RULES, next(ctx), at(1),
    )  # fmt: skip
    lead.update_attributes({"employees": 5000, "title": "CRO"}, RULES, next(ctx), at(2))
    lead.log_contact("call", "left a message", next(ctx), at(3))
    lead.accept("sam", None, next(ctx), at(4))
    lead.qualify(
        Bant(budget="50k €", authority="VP", need="visibility", timeline="Q3"), next(ctx), at(5)
    )
    lead.recycle("not now", next(ctx), at(6))
    lead.mark_mql("asked for a demo", next(ctx), at(7))
    lead.fast_track("sql", "referral", next(ctx), at(8))
    lead.disqualify("wrong fit", next(ctx), at(9))
    lead.reopen(None, next(ctx), at(10))
    converted_at = lead.convert(DEAL_ID, "crm-77", False, next(ctx), at(11))
    deal = Deal.open(
        DEAL_ID, "crm-77", PIPELINE, Decimal("12500.50"), "EUR", LEAD_ID, lead.external_id,
        "sam", date(2026, 6, 30), next(ctx), at(11), converted_at=converted_at,
    )  # fmt: skip
    stages = [s.name for s in PIPELINE.stages]
    deal.move(stages[1], PIPELINE, next(ctx), at(12))
    deal.change_amount(Decimal("13000"), "EUR", next(ctx), at(13))
    deal.change_close_date(None, next(ctx), at(14))
    deal.lose("budget cut", "Rival Inc", PIPELINE, next(ctx), at(15))
    deal.reopen(None, "came back", PIPELINE, next(ctx), at(16))
    deal.win(Decimal("14000.25"), PIPELINE, next(ctx), at(17))
    lead.erase("asked to be forgotten", next(ctx), at(18))
    return [lead, deal]


def stored_events(aggregates: list[Aggregate]) -> list[tuple[DomainEvent, bytes]]:
    mapper = PydanticMapper(transcoder=JSONTranscoder())
    return [
        (event, mapper.to_stored_event(event).state)
        for agg in aggregates
        for event in agg.collect_events()
    ]


@pytest.mark.usefixtures("fixed_clock_and_ids")
def test_every_events_stored_bytes_and_hash_are_as_pinned() -> None:
    stored = stored_events(lifecycle())
    pinned = hashlib.sha256()
    for event, state in stored:
        pinned.update(state)
        pinned.update(event.hash.encode())

    assert len({type(event) for event, _ in stored}) >= 20
    assert pinned.hexdigest() == PINNED
