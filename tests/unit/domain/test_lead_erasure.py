"""An erased lead (domain only): ``LeadErased`` keeps its stage and times, refuses every
later change, and the personal-field table names real fields of real events."""

from __future__ import annotations

import pytest

from domain.errors import ErasedLead
from domain.events import EVENT_CLASSES, LeadErased
from domain.personal_fields import FIRMOGRAPHIC_ATTRIBUTES, PERSONAL_FIELDS
from domain.scoring import load_scoring_rules
from tests.unit.domain.lifecycle_fixtures import BANT, at, ctx, lead_in


def test_an_erased_lead_keeps_its_stage_and_refuses_every_later_change() -> None:
    lead = lead_in("sql")
    lead.erase("erasure request 12", ctx("dpo"), at(5))
    erased = lead.pending_events[-1]
    assert isinstance(erased, LeadErased) and erased.actor == "dpo"
    assert erased.reason == "erasure request 12"
    assert (lead.stage, lead.erased_at) == ("sql", at(5))

    with pytest.raises(ErasedLead, match=f"lead {lead.id} is erased"):
        lead.log_contact("call", "hello", ctx(), at(6))
    with pytest.raises(ErasedLead):
        lead.qualify(BANT, ctx(), at(6))
    with pytest.raises(ErasedLead, match="already erased"):
        lead.erase("again", ctx(), at(6))
    with pytest.raises(ErasedLead):
        lead.update_attributes({"title": "CEO"}, load_scoring_rules(), ctx(), at(6))


def test_every_personal_field_is_a_field_of_its_event() -> None:
    for event_class, fields in PERSONAL_FIELDS.items():
        assert event_class in EVENT_CLASSES.values()
        assert set(fields) <= set(event_class.model_fields), event_class.__name__
    assert LeadErased not in PERSONAL_FIELDS  # the record of an erasure outlives the key
    assert {"industry", "employees", "country", "revenue"} == FIRMOGRAPHIC_ATTRIBUTES
