"""The events topic carries personal fields only as ciphertext (real broker, real stores).

A lead captured with an email and personal attributes, engaged, contacted, qualified with
BANT, converted into a deal that is won, is relayed to Kafka: no record of the events
topic (key, value or headers) holds any of its personal values, and a Kafka-mode
projector, opening them with the application's seal, builds the read model a rebuild
from the store gives. After ``forget`` a rebuild from the topic shows ``[erased]`` where
the store's rebuild does, and verify finds no difference."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from adapters.settings import Settings
from adapters.stopping import ProcessStop
from consumers.contracts.schema_files import REPO_SCHEMAS
from consumers.projection.kafka import KafkaProjector
from consumers.projection.runner import personal_data
from domain import commands as c
from domain.events import Bant
from domain.personal_fields import ERASED_TEXT
from leadflow import bootstrap
from projections.schema import LEADS
from projections.store import ReadModelStore
from projections.verify import verify_read_model
from service.application import LeadflowApp
from tests.integration.consumers.stream_helpers import StreamSetup, read_topic, stream_setup

pytestmark = pytest.mark.kafka

EMAIL = "grace.hopper@example.com"
ATTRIBUTES = {
    "name": "Grace Brewster Hopper",
    "title": "Rear Admiral of Compilers",
    "phone": "+1 202 555 0187",
    "industry": "software",
    "employees": 250,
    "country": "us",
}
BANT = Bant(
    budget="seventy thousand dollars",
    authority="Grace approves it herself",
    need="a compiler for the fleet",
    timeline="before the next sea trials",
)
PERSONAL = (
    EMAIL,
    "grace.hopper",
    "Grace Brewster Hopper",
    "Rear Admiral of Compilers",
    "+1 202 555 0187",
    "pager 0199 4477",
    "left a message for Grace",
    "met Grace at the navy fair",
    *BANT.model_dump().values(),
)


def _at(day: int) -> datetime:
    return datetime(2026, 3, 1, 9, tzinfo=UTC) + timedelta(days=day)


def _lifecycle(app: LeadflowApp) -> None:
    app.handle(c.CaptureLead(lead=EMAIL, source="web", attributes=ATTRIBUTES, occurred_at=_at(0)))
    app.handle(
        c.RecordEngagement(
            lead=EMAIL,
            event_id="form-1",
            kind="demo_request",
            properties={"mobile": "pager 0199 4477"},
            occurred_at=_at(1),
        )
    )
    app.handle(
        c.LogContact(
            lead=EMAIL, channel="call", outcome="left a message for Grace", occurred_at=_at(1)
        )
    )
    if app.get_lead(EMAIL).stage == "new":
        app.handle(c.MarkMql(lead=EMAIL, occurred_at=_at(2)))
    app.handle(
        c.AcceptLead(
            lead=EMAIL, owner="sam", reason="met Grace at the navy fair", occurred_at=_at(2)
        )
    )
    app.handle(c.QualifyLead(lead=EMAIL, bant=BANT, occurred_at=_at(3)))
    app.handle(c.OpenDeal(deal="D-7", lead=EMAIL, amount=Decimal("70000"), occurred_at=_at(4)))
    app.handle(c.WinDeal(deal="D-7", occurred_at=_at(5)))


def _found_on_topic(setup: StreamSetup, bootstrap_servers: str) -> list[str]:
    """The personal values found in any record of the events topic (key, value, headers)."""
    found = []
    for record in read_topic(bootstrap_servers, setup.stream.events_topic):
        data = b"\x00".join(
            [record.key or b"", record.value or b"", *(k.encode() + v for k, v in record.headers)]
        )
        found += [f"offset {record.offset}: {v}" for v in PERSONAL if v.encode() in data]
    return found


def _check_records_against_the_schema(setup: StreamSetup, bootstrap_servers: str) -> int:
    """Every record's value is valid under ``schemas/events/v1/record.json`` and each
    personal field it holds is sealed; how many personal values were checked."""
    schema = json.loads((REPO_SCHEMAS / "events/v1/record.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema)
    sealed = re.compile(schema["$defs"]["SealedValue"]["pattern"])
    personal = schema["x-personal-fields"]
    firmographic = set(schema["x-firmographic-attributes"])
    checked = 0
    for record in read_topic(bootstrap_servers, setup.stream.events_topic):
        value = json.loads(record.value)
        validator.validate(value)
        for name, kind in personal.get(value["topic"], {}).items():
            field = value["state"].get(name)
            items = (
                [v for k, v in field.items() if k not in firmographic]
                if kind == "attributes"
                else [field]
            )
            for item in (i for i in items if i is not None):
                assert isinstance(item, str) and sealed.match(item), (value["topic"], name)
                checked += 1
    return checked


def _external_id(store: ReadModelStore) -> Any:
    with store.read() as tx:
        [(external_id,)] = tx.execute(f"SELECT external_id FROM {LEADS.name}")
    return external_id


def _kafka_settings(setup: StreamSetup) -> Settings:
    """The setup's settings with the projector reading its events topic."""
    projector = setup.settings.projector.model_copy(
        update={"topic": setup.stream.events_topic, "session_timeout_ms": 6000}
    )
    return setup.settings.model_copy(update={"projector": projector})


def _assert_read_model_verifies(settings: Settings) -> None:
    """What ``leadflow verify`` checks: the live read model equals a rebuild from the store
    (by an application of its own, as the command's: the writer's caches a lead's key)."""
    with bootstrap.open_application(settings) as app, bootstrap.open_read_model(settings) as live:
        result = verify_read_model(app, live)
    assert result.differences == [] and result.ok, result


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_the_events_topic_holds_personal_fields_only_sealed_even_after_forget(
    request: pytest.FixtureRequest, tmp_path: Path, kafka_bootstrap: str, kind: str
) -> None:
    dsn = request.getfixturevalue("postgres_dsn") if kind == "postgres" else None
    setup = stream_setup(tmp_path, kafka_bootstrap, dsn)
    settings = _kafka_settings(setup)
    app = setup.open_app("writer")
    try:
        _lifecycle(app)
        assert setup.relay(app).run(once=True, max_seconds=60).published > 0
        assert _found_on_topic(setup, kafka_bootstrap) == []
        # external id, 3 attributes, properties, outcome, reason, BANT, the deal's external id
        assert _check_records_against_the_schema(setup, kafka_bootstrap) >= 9

        # the Kafka-mode projector (`leadflow project`) opens them with the app's seal
        applied = bootstrap.run_projector(settings, ProcessStop(90), until_idle=True)
        assert applied == app.recorder.max_notification_id()
        with bootstrap.open_read_model(settings) as live:
            assert _external_id(live) == EMAIL
        _assert_read_model_verifies(settings)

        erased = bootstrap.forget_lead(settings, EMAIL, "GDPR erasure request 7", "dpo")
        assert setup.relay(app).run(once=True, max_seconds=60).published == 1  # LeadErased
        assert _found_on_topic(setup, kafka_bootstrap) == []

        # the projector goes on from its stored positions: LeadErased; forget has set the
        # read model's personal columns to what the events now give
        assert bootstrap.run_projector(settings, ProcessStop(90), until_idle=True) == 1
        with bootstrap.open_read_model(settings) as live:
            assert _external_id(live) == ERASED_TEXT
        _assert_read_model_verifies(settings)

        # `leadflow rebuild --from-kafka`: a new process, its key cache empty
        rebuilt = bootstrap.rebuild(settings, "kafka", max_seconds=90)
        assert rebuilt == app.recorder.max_notification_id()
        with bootstrap.open_read_model(settings) as live:
            assert _external_id(live) == ERASED_TEXT
        _assert_read_model_verifies(settings)
        assert erased.deal_ids, "the won deal was erased with its lead"
    finally:
        app.close()


def test_a_projector_holding_the_key_from_before_forget_still_ends_at_erased(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """A projector lagging behind a forget opens the lead's earlier records with the key
    it had cached; projecting LeadErased sets the read model to what a rebuild gives."""
    setup = stream_setup(tmp_path, kafka_bootstrap)
    settings = _kafka_settings(setup)
    app = setup.open_app("writer")
    try:
        _lifecycle(app)
        lead_id = app.get_lead(EMAIL).id
        bootstrap.forget_lead(settings, EMAIL, "GDPR erasure request 8", "dpo")
        assert setup.relay(app).run(once=True, max_seconds=60).published > 0
        options = settings.projector.model_copy(update={"group_id": "lagging"})
        with bootstrap.open_read_model(settings) as live:
            # the writer's seal still holds the lead's key, as a running projector would
            KafkaProjector(settings.kafka, live, options, personal_data(app)).run(
                until_idle=True, max_seconds=90
            )
            assert _external_id(live) == ERASED_TEXT
        _assert_read_model_verifies(settings)
        # the premise: the writer's seal opened the lead's records after the forget
        assert app.events_of(lead_id)[0].external_id == EMAIL  # type: ignore[attr-defined]
    finally:
        app.close()
