"""Personal fields sealed under their lead's data key before hashing (``domain.personal_fields``,
``adapters.personal_seal``): they open to what was sealed, the stored bytes hold none of
it, and once the key is destroyed they read as erased while the chain still verifies and
the lead still replays."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.utils import get_topic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.event_envelope import event_from_state
from adapters.event_store import event_store_env
from adapters.lead_keys import WRAPPING_KEY_LABEL, LeadKeys, create_lead_keys_table
from adapters.personal_seal import PersonalSeal, UnopenableValue
from adapters.settings import Settings
from adapters.store_db import StoreDb
from domain import commands as c
from domain.errors import ErasedLead
from domain.events import (
    Bant,
    DealLost,
    DomainEvent,
    EngagementRecorded,
    LeadCaptured,
    LeadQualifiedAsSQL,
)
from domain.personal_fields import ERASED_TEXT, SEALED_PREFIX, open_state, seal_state
from leadflow.bootstrap import open_application, privacy_master_key
from service.application import LeadflowApp
from tests.settings_helpers import settings_with

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EMAIL = "ada.lovelace@example.com"
BANT = Bant(budget="fifty k", authority="Ada signs", need="an engine", timeline="Q3")

_text = st.text(min_size=1, max_size=40).filter(lambda t: not t.startswith("\x1f"))
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> PersonalSeal:
    settings = settings_with(data_dir=tmp_path_factory.mktemp("keys"))
    with StoreDb(settings.store) as db:
        create_lead_keys_table(db)
    return PersonalSeal(LeadKeys(settings.store, b"k" * 32))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    email=_text,
    attributes=st.dictionaries(_text, _json, max_size=4),
    properties=st.dictionaries(_text, _json, max_size=4),
    reason=_text,
)
def test_sealed_fields_open_to_what_was_sealed(
    seal: PersonalSeal,
    email: str,
    attributes: dict[str, Any],
    properties: dict[str, Any],
    reason: str,
) -> None:
    owner = uuid4()
    cases: list[tuple[type[Any], dict[str, Any]]] = [
        (LeadCaptured, {"external_id": email, "source": "web", "attributes": attributes}),
        (
            EngagementRecorded,
            {"engagement_id": "e1", "kind": "form_submit", "properties": properties},
        ),
        (DealLost, {"from_stage": "a", "to_stage": "b", "reason": reason, "competitor": email}),
    ]
    for cls, plain in cases:
        stored: dict[str, Any] = {
            k: (dict(v) if isinstance(v, dict) else v) for k, v in plain.items()
        }
        topic = get_topic(cls)
        seal_state(cls, topic, owner, stored, seal)
        assert open_state(cls, topic, stored, seal) == plain
        for name in ("external_id", "properties", "reason", "competitor"):
            if name in stored:
                assert stored[name].startswith(SEALED_PREFIX)
        # a sealed value does not open in another field
        sealed_field = next(
            k for k in stored if isinstance(stored[k], str) and stored[k].startswith(SEALED_PREFIX)
        )
        with pytest.raises(UnopenableValue):
            seal.open(stored[sealed_field], topic, "elsewhere")


def test_destroyed_keys_read_as_erased_markers_the_events_accept(seal: PersonalSeal) -> None:
    owner = uuid4()
    topic = get_topic(LeadQualifiedAsSQL)
    state: dict[str, Any] = {"bant": BANT.model_dump()}
    seal_state(LeadQualifiedAsSQL, topic, owner, state, seal)
    captured: dict[str, Any] = {
        "external_id": EMAIL,
        "source": "web",
        "attributes": {"name": "Ada", "industry": "saas", "employees": 250},
    }
    captured_topic = get_topic(LeadCaptured)
    seal_state(LeadCaptured, captured_topic, owner, captured, seal)
    assert captured["attributes"]["industry"] == "saas"  # firmographics stay readable

    seal.keys.destroy(owner)
    opened = open_state(LeadQualifiedAsSQL, topic, state, seal)
    assert opened["bant"] == dict.fromkeys(("budget", "authority", "need", "timeline"), ERASED_TEXT)
    assert open_state(LeadCaptured, captured_topic, captured, seal) == {
        "external_id": ERASED_TEXT,
        "source": "web",
        "attributes": {"name": ERASED_TEXT, "industry": "saas", "employees": 250},
    }
    with pytest.raises(ErasedLead, match=str(owner)):
        seal_state(LeadCaptured, captured_topic, owner, {"external_id": EMAIL}, seal)


def _lifecycle(app: LeadflowApp) -> None:
    app.handle(
        c.CaptureLead(
            lead=EMAIL,
            source="web",
            attributes={"name": "Ada Lovelace", "title": "VP Engineering", "industry": "saas"},
            occurred_at=T0,
        )
    )
    app.handle(
        c.RecordEngagement(
            lead=EMAIL,
            event_id="e1",
            kind="demo_request",
            properties={"message": "call 07700900123"},
            occurred_at=T0,
        )
    )
    app.handle(c.AcceptLead(lead=EMAIL, owner="sam", reason="met Ada at a fair", occurred_at=T0))
    app.handle(c.QualifyLead(lead=EMAIL, bant=BANT, occurred_at=T0))
    app.handle(c.OpenDeal(deal="D-1", lead=EMAIL, amount=Decimal(5000), occurred_at=T0))
    app.handle(
        c.LoseDeal(
            deal="D-1", reason="Ada chose Babbage Ltd", competitor="Babbage Ltd", occurred_at=T0
        )
    )


PERSONAL = (
    "ada.lovelace",
    "Lovelace",
    "VP Engineering",
    "07700900123",
    "Ada at a fair",
    "Ada signs",
    "Babbage",
)


def test_the_store_holds_only_ciphertext_and_verifies_after_the_key_is_destroyed(
    store_settings: Settings,
) -> None:
    with open_application(store_settings) as app:
        _lifecycle(app)
        lead = app.get_lead(EMAIL)
        assert lead.external_id == EMAIL and lead.attributes["title"] == "VP Engineering"
        deal = app.get_deal("D-1")
        stored = [s.state for i in (lead.id, deal.id) for s in app.recorder.select_events(i)]
        assert not [p for p in PERSONAL for state in stored if p.encode() in state]
        assert b"saas" in stored[0]
        assert _field(app.events_of(deal.id)[0], "lead_external_id") == EMAIL

    keys = LeadKeys(
        store_settings.store, privacy_master_key(store_settings).derive(WRAPPING_KEY_LABEL)
    )
    assert keys.destroy(lead.id)
    with open_application(store_settings) as app:
        assert app.verify_chain(lead.id).ok and app.verify_chain(deal.id).ok
        events = app.events_of(lead.id)
        assert _field(events[0], "external_id") == ERASED_TEXT
        deal_events = app.events_of(deal.id)
        assert _field(deal_events[0], "lead_external_id") == ERASED_TEXT
        assert _field(deal_events[-1], "reason") == ERASED_TEXT
        replayed = app.get_lead(str(lead.id))
        assert replayed.stage == "converted" and replayed.owner == "sam"
        assert replayed.attributes == {
            "name": ERASED_TEXT,
            "title": ERASED_TEXT,
            "industry": "saas",
        }
        assert app.get_deal("D-1").status == "lost"


def test_events_stored_before_sealing_read_as_they_are(tmp_path: Path) -> None:
    plain = {"external_id": EMAIL, "source": "web", "attributes": {"name": "Ada"}}
    event = event_from_state(get_topic(LeadCaptured), uuid4(), 1, {**_envelope(), **plain})
    assert isinstance(event, LeadCaptured) and event.external_id == EMAIL


def _field(event: DomainEvent, name: str) -> Any:
    return getattr(event, name)


def _envelope() -> dict[str, Any]:
    return {
        "timestamp": T0.isoformat(),
        "event_id": str(uuid4()),
        "occurred_at": T0.isoformat(),
        "actor": "cli",
        "causation_id": "x",
        "correlation_id": "x",
        "prev_hash": "0" * 64,
        "hash": "",
    }


def test_a_store_written_before_sealing_opens_reads_and_verifies(store_settings: Settings) -> None:
    with open_application(store_settings) as opened:  # tables, integrity record, id scheme
        ids = opened.ids
    with LeadflowApp(event_store_env(store_settings.store), ids=ids) as before:
        _lifecycle(before)  # no PersonalData: personal fields stored plain
    with open_application(store_settings) as app:
        lead = app.get_lead(EMAIL)
        assert lead.external_id == EMAIL and lead.bant == BANT
        assert EMAIL.encode() in app.recorder.select_events(lead.id)[0].state
        assert app.verify_chain(lead.id).ok
        app.handle(c.LogContact(lead=EMAIL, channel="call", outcome="Ada again", occurred_at=T0))
        assert b"Ada again" not in app.recorder.select_events(lead.id)[-1].state
        assert _field(app.events_of(lead.id)[-1], "outcome") == "Ada again"
