"""The public topic leadflow.qualification.v1: committed schemas, mapping, and a consumer
that knows nothing of leadflow reading it from the real broker."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from adapters.event_envelope import envelope_from_notification
from adapters.mapper import PydanticMapper
from consumers.contracts import qualification as q
from consumers.contracts.schema_files import REPO_SCHEMAS, expected_files, stale_files, write_files
from consumers.relay.states_at_version import StatesAtVersion
from domain import commands as c
from leadflow.bootstrap import open_application
from service.application import LeadflowApp
from tests.integration.consumers.stream_helpers import lifecycle, stream_setup
from tests.settings_helpers import settings_with

SCHEMA_DIR = REPO_SCHEMAS / "qualification" / "v1"
ALL_TYPES = {q.event_type(m) for m in q.EVENT_MODELS}


def test_committed_schema_files_equal_what_the_models_generate() -> None:
    stale = stale_files(REPO_SCHEMAS)
    assert not stale, (
        f"schema files differ from the models: {stale}. A change of the public contract? "
        "Regenerate with `python -m consumers.contracts.qualification --write-schemas` "
        "only if it is additive (v1); anything else needs leadflow.qualification.v2."
    )


def test_a_model_change_is_detected(tmp_path: Path) -> None:
    write_files(tmp_path)
    assert stale_files(tmp_path) == []
    target = tmp_path / "qualification/v1/deal.won.json"
    document = json.loads(target.read_text())
    document["required"].remove("amount")
    target.write_text(json.dumps(document, indent=2) + "\n")
    (tmp_path / "qualification/v1/lead.left_over.json").write_text("{}\n")
    assert stale_files(tmp_path) == [
        "qualification/v1/deal.won.json",
        "qualification/v1/lead.left_over.json",
    ]


def test_the_check_command_passes_on_the_repo() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "consumers.contracts.qualification", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_every_committed_schema_is_valid_json_schema() -> None:
    names = {Path(name).name for name in expected_files() if name.startswith("qualification")}
    assert names == {f"{t}.json" for t in ALL_TYPES} | {"envelope.json"}
    for path in SCHEMA_DIR.glob("*.json"):
        Draft202012Validator.check_schema(json.loads(path.read_text()))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[LeadflowApp]:
    application = open_application(settings_with(data_dir=tmp_path / "data"))
    yield application
    application.close()


def test_every_public_event_type_maps_and_validates(app: LeadflowApp) -> None:
    for n in range(5):
        lifecycle(app, n)
    forgotten = app.get_lead("lead-4@example.com")  # converted: its deal is named too
    app.handle(
        c.ForgetLead(
            lead=str(forgotten.id), reason="art. 17", actor="dpo", occurred_at=datetime.now(UTC)
        )
    )
    lookup = StatesAtVersion(app)
    validators = {
        path.stem: Draft202012Validator(json.loads(path.read_text()))
        for path in SCHEMA_DIR.glob("*.json")
    }
    seen: set[str] = set()
    for aggregate_id in {n.originator_id for n in app.recorder.select_notifications(0, 999)}:
        for event in app.events_of(UUID(str(aggregate_id))):
            public = q.integration_event(event, lookup)
            if public is None:
                continue
            record = q.to_public_record(public)
            value = json.loads(record.value)
            validators["envelope"].validate(value)
            validators[value["type"]].validate(value)
            assert value["event_id"] == str(event.event_id)
            assert value["aggregate_version"] == event.originator_version
            assert record.key.decode() == str(event.originator_id)
            if value["type"] == "lead.erased":
                assert value["deal_ids"] == [str(i) for i in forgotten.deal_ids] != []
                assert "reason" not in value  # typed by a person: never published
            seen.add(value["type"])
    assert seen == ALL_TYPES


def test_states_at_version_equal_states_read_from_the_store(app: LeadflowApp) -> None:
    for n in range(10):
        lifecycle(app, n)
    followed = StatesAtVersion(app, capacity=4)  # small: some aggregates fall out
    from_store = StatesAtVersion(app, capacity=0)
    assert isinstance(app.mapper, PydanticMapper)
    public = 0
    for notification in app.recorder.select_notifications(0, 10_000):
        event = envelope_from_notification(app.mapper, notification).event
        followed.observe(event)
        expected = q.integration_event(event, from_store)
        assert q.integration_event(event, followed) == expected
        public += expected is not None
    assert public > 0
    assert followed.store_reads < public / 2, "most states come from memory"


def test_public_records_carry_the_state_as_of_the_event(app: LeadflowApp) -> None:
    lifecycle(app, 0)  # path 0: MQL, SAL, SQL, deal opened, moved, won
    lead = app.get_lead("lead-0@example.com")
    lookup = StatesAtVersion(app)
    published = [q.integration_event(e, lookup) for e in app.events_of(lead.id)]
    sal = next(p for p in published if isinstance(p, q.LeadSalReached))
    assert (sal.lead.stage, sal.owner, sal.lead.owner) == ("sal", "sam", "sam")
    mql = next(p for p in published if isinstance(p, q.LeadMqlReached))
    assert mql.lead.stage == "mql" and mql.lead.owner is None
    assert mql.lead.external_id == "lead-0@example.com"
    deal = app.get_deal("deal-lead-0")
    won = [q.integration_event(e, lookup) for e in app.events_of(deal.id)][-1]
    assert isinstance(won, q.DealWonEvent)
    assert (won.amount, won.currency, won.deal.status) == ("12500.00", "EUR", "won")
    assert won.deal.lead_external_id == "lead-0@example.com"


@pytest.mark.kafka
def test_a_consumer_that_knows_nothing_of_leadflow_validates_the_topic(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    setup = stream_setup(tmp_path, kafka_bootstrap)
    app = setup.open_app()
    for n in range(10):
        lifecycle(app, n)
    forgotten = app.get_lead("lead-4@example.com")
    app.handle(
        c.ForgetLead(lead=str(forgotten.id), reason="art. 17", occurred_at=datetime.now(UTC))
    )
    setup.relay(app).run(once=True, max_seconds=60)
    app.close()
    script = Path(__file__).with_name("plain_qualification_consumer.py")
    done = subprocess.run(
        [
            sys.executable,
            "-I",  # isolated: not even the repository is on sys.path
            str(script),
            kafka_bootstrap,
            setup.stream.qualification_topic,
            str(SCHEMA_DIR),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads(done.stdout)
    print("records per public type:", counts)
    assert set(counts) == ALL_TYPES
